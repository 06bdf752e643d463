"""scripts/make_findings.py and its data scripts: docs/findings.md comes from result files, the
numbers it prints are the files' numbers, and a second run with nothing changed is a no-op."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _load(name: str):
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def data(test_planted, tmp_path_factory):
    out = tmp_path_factory.mktemp("findings-data")
    cache = str(Path(test_planted.root).parent.parent)
    common = ["--seeds", "0", "--size", "test", "--out", str(out), "--cache-dir", cache]
    assert _load("ground_truth_seeds").main([*common, "--scales", "0.1", "1", "100"]) == 0
    assert _load("pruning_accuracy").main([*common, "--tokens", "1024"]) == 0
    return out


def test_findings_print_the_files_numbers(data, tmp_path):
    mf = _load("make_findings")
    io = _load("findings_io")
    out = tmp_path / "findings.md"
    assert mf.main(["--data", str(data), "--out", str(out)]) == 0
    text = out.read_text()
    acc = io.read_csv(data / "ground_truth_seeds.csv")
    fb = [r for r in acc if r["variant"] == "folded_both"]
    pooled = sum(r["correct"] for r in fb) / sum(r["support"] for r in fb)
    assert f"| folded_both | {pooled:.3f} [{pooled:.3f}, {pooled:.3f}] (n=1)" in text
    # one seed backs no verdict, and the page says so
    assert "too few seeds (1 < 3)" in text and "**Verdict: holds" not in text
    # the scale control: folded decoder / encoder do not move, and the page shows it
    scale = io.read_csv(data / "scale_control.csv")
    for v in ("folded_decoder", "folded_encoder"):
        assert len({r["correct"] for r in scale if r["variant"] == v and r["pair"] == "0-1"}) == 1
    assert "folded_decoder 0.000, folded_encoder 0.000" in text
    # the header records the commit and the command of each result file
    assert "ground_truth_seeds.py --seeds 0" in text and "pruning_accuracy.py" in text


def test_data_scripts_skip_what_is_up_to_date(data, capsys):
    before = (data / "ground_truth_seeds.csv").stat().st_mtime_ns
    cache = None
    for line in (data / "ground_truth_seeds.json").read_text().splitlines():
        if '"root"' in line:
            cache = str(Path(line.split('"root": "')[1].rstrip('",')).parent.parent)
    args = ["--seeds", "0", "--size", "test", "--out", str(data), "--cache-dir", cache]
    assert _load("ground_truth_seeds").main([*args, "--scales", "0.1", "1", "100"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (data / "ground_truth_seeds.csv").stat().st_mtime_ns == before


def test_findings_refuse_missing_data(tmp_path):
    mf = _load("make_findings")
    with pytest.raises(SystemExit, match="missing"):
        mf.main(["--data", str(tmp_path), "--out", str(tmp_path / "f.md")])


def test_collect_run_takes_only_finished_runs_it_knows(tmp_path):
    import json

    mf = _load("make_findings")
    run_dir = tmp_path / "2026-01-01_00-00-00_abc"
    run_dir.mkdir()
    doc = {"status": "ok", "config": {"experiment": {"name": "paths"}}, "results": {}}
    (run_dir / "results.json").write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="beyond_bijection"):
        mf.collect_run(run_dir, tmp_path / "data")
    doc["config"]["experiment"]["name"] = "layer_pruning"
    (run_dir / "results.json").write_text(json.dumps(doc))
    (run_dir / "layer_pruning.csv").write_text("layer,method\n")
    out = mf.collect_run(run_dir, tmp_path / "data")
    assert (out / "layer_pruning.csv").exists() and (
        out / "run.txt"
    ).read_text().strip() == run_dir.name
    doc["status"] = "failed"
    (run_dir / "results.json").write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="finished"):
        mf.collect_run(run_dir, tmp_path / "data2")
