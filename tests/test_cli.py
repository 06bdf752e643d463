"""The `saematch` command: config composition, fail-fast validation, end-to-end runs, launchers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from experiment_helpers import compose_cfg, zoo_overrides
from hydra import compose, initialize_config_module

from saematch_experiments.harness.cli import run_experiment
from saematch_experiments.harness.config_location import CONF_DIR, CONFIG_PACKAGE
from saematch_experiments.harness.registry import names
from saematch_experiments.harness.schema import register_schemas

CONF = CONF_DIR
REPO = Path(__file__).resolve().parents[1]
GROUPS = ["model", "saes", "matching", "data", "judge", "descriptions", "logger"]
NEEDS_VALUE = {
    "data": {"local_text": ["data.path=/tmp/x.txt"]},
    "descriptions": {
        "neuronpedia_export": ["descriptions.root=/tmp/np"],
        "json": ["descriptions.path='/tmp/{layer}.json'"],
    },
}


def _compose(overrides):
    register_schemas()
    with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
        return compose("config", overrides=overrides)


@pytest.mark.parametrize(
    "group,option",
    [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))],
)
def test_every_group_option_composes(group, option):
    extra = NEEDS_VALUE.get(group, {}).get(option, [])
    cfg = _compose([f"{group}={option}", *extra])
    assert cfg[group] is not None


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_config_composes_and_validates(name):
    from saematch_experiments.harness.registry import options_of

    cfg = _compose([f"experiment={name}"])
    assert cfg.experiment.name == name
    options_of(cfg)  # every option has exactly one default, in the YAML


def test_the_registry_is_the_experiment_folder():
    assert names() == tuple(sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
    assert len(names()) >= 13


def test_default_experiment_is_ground_truth_on_the_planted_world():
    cfg = _compose([])
    assert cfg.experiment.name == "ground_truth"
    assert (
        cfg.saes._target_ == "saematch_experiments.harness.sae_sets.planted_set"
        and cfg.saes.size == "default"
    )
    assert (
        cfg.logger._target_ == "saematch.tracking.wandb_recorder" and cfg.logger.mode == "offline"
    )
    # every other experiment keeps the tiny zoo
    cfg = _compose(["experiment=layer_pruning"])
    assert cfg.model._target_ == "saematch_experiments.harness.models.zoo_model"
    assert cfg.saes._target_ == "saematch_experiments.harness.sae_sets.zoo_set"


@pytest.mark.parametrize(
    "override,message",
    [
        ("matching.mode=sideways", "sideways"),
        ("matching.foo=1", "matching.foo"),
        ("data.n_exampels=8", "n_exampels"),  # a typo'd key; a bad value: test_bad_inputs.py
        ("model=gpt5", "gpt5"),
        ("matching/solver=greedy", "greedy"),
    ],
)
def test_bad_override_fails_at_compose_time(override, message):
    with pytest.raises(Exception, match=message):
        _compose([override])


def test_added_unknown_key_fails_before_any_work(tmp_path):
    cfg = _compose(["+matching.foo=1", f"paths.output_root={tmp_path}"])
    with pytest.raises(ValueError, match="foo"):
        run_experiment(cfg)


def test_bad_experiment_option_fails_before_any_work(tmp_path):
    cfg = _compose(["+experiment.pairz=[1]", f"paths.output_root={tmp_path}"])
    with pytest.raises(ValueError, match="pairz") as e:
        run_experiment(cfg)
    assert "valid options" in str(e.value)
    assert not any(tmp_path.iterdir())  # nothing was started


def _saematch(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # as a user runs it
    env["PYTHONUNBUFFERED"] = "1"
    # The console script, not `python -m`: submitit pickles the task by module path.
    cmd = [str(Path(sys.executable).parent / "saematch"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


SMALL = ["data.n_examples=4", "data.seq_len=32", "model.batch_size=4"]


def test_end_to_end_default_run_with_offline_wandb(test_zoo, tmp_path):
    from saematch.tracking import find_offline_runs, read_offline_run

    run_dir = tmp_path / "run"
    args = [
        "experiment=layer_pruning",  # the default experiment is ground_truth (planted world)
        *zoo_overrides(test_zoo),
        *SMALL,
        f"hydra.run.dir={run_dir}",
        "logger.mode=offline",
    ]
    env_mode = os.environ.pop("WANDB_MODE", None)
    try:
        proc = _saematch(args, cwd=tmp_path)
    finally:
        if env_mode is not None:
            os.environ["WANDB_MODE"] = env_mode
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "ok" and results["wandb"]["ok"], results["wandb"]
    # the console: the headline table (a row per pruned layer) and the folder, nothing else
    out = proc.stdout.splitlines()
    assert out[0] == "layer_pruning:" and out[1].split()[:2] == ["layer", "pruned_block"]
    assert len(out) == 2 + test_zoo.n_layers - 1 + 1 and out[-1].startswith(f"files: {run_dir}")
    bars = ("Loading weights", "matching layers", "layer pruning")  # progress, on stderr
    noise = [
        ln
        for ln in proc.stderr.replace("\r", "\n").splitlines()
        if ln.strip() and not ln.lstrip().startswith(bars)
    ]
    assert noise == [], noise[:5]
    layers = results["results"]["layers"]
    assert len(layers) == test_zoo.n_layers - 1
    for row in layers.values():
        assert {"delta_loss", "explained_variance"} <= set(row)
    assert results["config"]["experiment"]["name"] == "layer_pruning"
    assert (run_dir / "layer_pruning.png").is_file() and (run_dir / "layer_pruning.csv").is_file()
    # what Hydra used to write before the claim, written by the run once the folder is its own
    assert "layer_pruning" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "cli.log").is_file()
    # The offline W&B run holds the same per-layer numbers as results.json.
    (wb_run,) = find_offline_runs(run_dir)
    wb = read_offline_run(wb_run)
    logged = {int(r["layer"]): r for r in wb["history"] if "delta_loss" in r}
    for layer, row in layers.items():
        assert logged[int(layer)]["delta_loss"] == pytest.approx(row["delta_loss"], rel=1e-6)
        assert logged[int(layer)]["explained_variance"] == pytest.approx(
            row["explained_variance"], rel=1e-6
        )


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local"])
def test_multirun_sweep(test_zoo, tmp_path, launcher):
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        "experiment=layer_pruning",
        *zoo_overrides(test_zoo),
        *SMALL,
        "logger=none",
        "experiment.pairs=[0]",
        "experiment.baselines=false",
        f"hydra.sweep.dir={sweep_dir}",
        "matching.fold=true,false",
    ]
    if launcher != "basic":
        args.append(f"hydra/launcher={launcher}")
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    if launcher == "submitit_local":
        args += ["hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1"]
    proc = _saematch(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(sweep_dir.glob("*/results.json"))
    assert len(results) == 2, list(sweep_dir.rglob("*"))[:20]
    folds = {json.loads(p.read_text())["config"]["matching"]["fold"] for p in results}
    assert folds == {True, False}


def test_run_experiment_directly_writes_results(test_zoo, tmp_path):
    cfg = compose_cfg(
        "layer_pruning", ["experiment.pairs=[0]", "experiment.baselines=false"], test_zoo, tmp_path
    )
    out = run_experiment(cfg)
    assert list(out["layers"]) == ["0"]
    # raw transfer (docs/method.md §5) by default, folded transfer reported beside it
    assert set(out["layers"]["0"]["methods"]) == {"sae_match", "sae_match_folded_transfer"}
    assert out["transfer"] == "raw"


GUIDE = REPO / "docs" / "EXPERIMENTS_GUIDE.md"


def _guide_files() -> dict[str, str]:
    """The guide's fenced yaml/python blocks, by the file name on their first comment line."""
    import re

    out = {}
    for block in re.findall(r"```(?:yaml|python)\n(.*?)```", GUIDE.read_text(), re.S):
        first, _, body = block.partition("\n")
        out[first.lstrip("# ").strip()] = body
    return out


def test_the_guide_toy_experiment(test_zoo, tmp_path):
    """Add the guide's toy experiment exactly as written: two files, no registration."""
    import numpy as np
    from experiment_helpers import context, run, run_dir_of

    from saematch import load_matching
    from saematch_experiments.harness.registry import default_options

    files = _guide_files()
    assert set(files) == {
        "conf/experiment/toy_fixed_points.yaml",
        "experiments/toy_fixed_points.py",
    }
    written = [REPO / rel for rel in files]
    assert not any(p.exists() for p in written), "a real experiment took the toy's name"
    try:
        for path, text in zip(written, files.values(), strict=True):
            path.write_text(text)
        assert "toy_fixed_points" in names()
        assert default_options("toy_fixed_points", scale=2.0).scale == 2.0
        cfg = compose_cfg("toy_fixed_points", ["experiment.scale=2"], test_zoo, tmp_path)
        res = run(cfg)
        ctx = context(cfg)
        for t, m in ctx.matchings().items():
            want = float(np.mean(np.asarray(m.perm) == np.arange(len(m.perm))))
            assert res["layers"][str(t)]["fixed_points"] == pytest.approx(want)
        out = run_dir_of(cfg)
        saved = json.loads((out / "results.json").read_text())
        assert saved["status"] == "ok" and saved["results"]["sae_set"]["name"]
        prov = saved["results"]["provenance"]
        assert prov["saematch"] and prov["torch"] and "git_commit" in prov
        if (REPO / ".git").exists():  # a checkout (not an sdist): the commit is known
            assert len(prov["git_commit"]) == 40
        theta = [r["theta_mean"] for r in saved["tables"]["toy_fixed_points"]]
        want = [2 * float(ctx.saes[t].threshold.double().mean()) for t in ctx.next_layer]
        assert theta == pytest.approx(want)
        assert (out / "toy_fixed_points.png").is_file()
        first = ctx.layers[0]
        m = load_matching(out / "matchings" / f"sae_match_L{first}-L{ctx.next_layer[first]}")
        assert np.array_equal(m.perm, ctx.matchings()[first].perm) and m.confidence is not None
        with pytest.raises(ValueError, match="scael"):
            run_experiment(_compose(["experiment=toy_fixed_points", "+experiment.scael=1"]))
    finally:
        for p in written:
            p.unlink(missing_ok=True)


def test_an_option_without_a_yaml_default_is_named(tmp_path, monkeypatch):
    from dataclasses import make_dataclass

    from saematch_experiments import layer_pruning

    cls = make_dataclass(
        "Options",
        [
            ("pairs", "list[int] | None"),
            ("baselines", bool),
            ("unfolded", bool),
            ("transfer", str),
            ("other_transfer", bool),
            ("extra", int),
        ],
    )
    monkeypatch.setattr(layer_pruning, "Options", cls)
    with pytest.raises(ValueError, match="extra.*conf/experiment/layer_pruning.yaml"):
        run_experiment(_compose(["experiment=layer_pruning", f"paths.output_root={tmp_path}"]))
