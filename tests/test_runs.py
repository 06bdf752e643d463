"""Runs never collide, files keep the user's umask, and a run prints nothing it need not."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from experiment_helpers import compose_cfg
from omegaconf import OmegaConf

from saematch_experiments.harness.cli import CLAIM, claim, run_experiment
from saematch_experiments.harness.config_location import CONF_DIR


def test_files_get_the_users_umask(tmp_path):
    from saematch.atomic import atomic_write_bytes
    from saematch.tracking import RunRecorder

    old = os.umask(0o022)
    try:
        with RunRecorder(tmp_path / "run", config={"a": 1}) as rec:
            rec.add_table("t", [{"layer": 0, "x": 1.0}])
            rec.finish({"ok": True})
        atomic_write_bytes(tmp_path / "cache.bin", b"x")
        os.umask(0o027)
        atomic_write_bytes(tmp_path / "group.bin", b"x")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    for name in ("config.json", "t.csv", "results.json"):
        assert mode(tmp_path / "run" / name) == 0o644, name
    assert mode(tmp_path / "cache.bin") == 0o644
    assert mode(tmp_path / "group.bin") == 0o640


def test_a_run_folder_holds_one_run(tmp_path):
    claim(tmp_path / "run")
    assert (tmp_path / "run" / CLAIM).is_file()
    with pytest.raises(FileExistsError, match="already holds another run"):
        claim(tmp_path / "run")


def test_second_run_into_a_used_folder_is_refused_before_work(test_zoo, tmp_path):
    cfg = compose_cfg("mse_curves", [], test_zoo, tmp_path)
    first = run_experiment(cfg, run_dir=tmp_path / "run")
    before = (tmp_path / "run" / "results.json").read_bytes()
    with pytest.raises(FileExistsError, match=str(tmp_path / "run")):
        run_experiment(cfg, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "results.json").read_bytes() == before
    assert first["layers"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`saematch <args>` in a fresh process (this checkout's code), run from cwd."""
    env = {**os.environ, "PYTHONPATH": str(Path(CONF_DIR).parent)}
    cmd = [sys.executable, "-m", "saematch_experiments.harness.cli", "logger=none", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_refused_run_leaves_the_first_runs_files_alone(tmp_path):
    """Hydra used to rewrite the first run's .hydra/ and append to its log before the claim
    refused the folder, and then the error said "nothing was written"."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    first = {
        CLAIM: "123 2026-01-01T00:00:00\n",
        ".hydra/config.yaml": "first: run\n",
        ".hydra/overrides.yaml": "- first=run\n",
        "cli.log": "the first run's log\n",
    }
    for name, text in first.items():
        (run / name).write_text(text)
    proc = _cli([f"hydra.run.dir={run}"], cwd=tmp_path)
    assert proc.returncode != 0 and "nothing was written" in proc.stderr, proc.stderr[-2000:]
    after = {str(p.relative_to(run)): p.read_text() for p in run.rglob("*") if p.is_file()}
    assert after == first


def test_run_names_cannot_leave_outputs_and_dry_runs_leave_no_folder(tmp_path):
    outputs = tmp_path / "a" / "outputs"
    proc = _cli(["experiment.name=../../x", f"paths.output_root={outputs}"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "experiment.name='../../x' is not a plain folder name" in proc.stderr, proc.stderr
    assert list(tmp_path.rglob("*")) == []  # neither tmp/x nor anything under outputs
    proc = _cli(["dry_run=true", f"paths.output_root={outputs}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (outputs / "ground_truth").exists() or not any((outputs / "ground_truth").iterdir())


def test_run_folders_differ_between_processes_started_together():
    code = "from saematch_experiments.harness.schema import RUN_ID; print(RUN_ID)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    ids = {p.communicate()[0].strip() for p in procs}
    assert len(ids) == 2 and all(ids)
    hydra_cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "hydra" / "default.yaml"))
    for d in (hydra_cfg["run"]["dir"], hydra_cfg["sweep"]["dir"]):
        assert d.endswith("_${run_id:}")


def test_long_documents_do_not_warn(test_zoo, capfd):
    from transformers import AutoTokenizer

    from saematch.data.batches import encode_text

    tok = AutoTokenizer.from_pretrained(str(test_zoo.model_dir))
    tok.model_max_length = 8
    ids = encode_text(tok, "def f(x):\n    return x + 1\n" * 20)
    assert len(ids) > 8
    assert "longer than the specified maximum" not in capfd.readouterr().err


def test_license_is_an_spdx_string():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]
