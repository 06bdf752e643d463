"""scripts/make_figures.py: one file per paper figure number, index.html names figure and panel."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_figures.py"
spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
mf = importlib.util.module_from_spec(spec)
sys.modules["make_figures"] = mf  # dataclasses look their module up
spec.loader.exec_module(mf)

PAPER_NUMBERS = [1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 14, 15, 16, 17, 18]


def _fake_run(fail: set[str]):
    """A stand-in for run_one: a run folder with a small PNG per figure name and one CSV."""

    def run(name, out, overrides):
        run_dir = out / "runs" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        if name not in fail:
            for fig in mf.PAPER_FIGURES:
                for p in fig.panels:
                    if p.experiment == name:
                        f, ax = plt.subplots(figsize=(2, 1 + 0.1 * len(p.figure)))
                        ax.set_title(p.figure)
                        f.savefig(run_dir / f"{p.figure}.png", dpi=50)
                        plt.close(f)
            (run_dir / f"{name}.csv").write_text("layer,x\n0,1\n")
        return {
            "name": name,
            "returncode": int(name in fail),
            "seconds": 0.0,
            "run_dir": run_dir,
            "command": f"experiment={name}",
        }

    return run


def test_one_file_per_paper_figure(tmp_path):
    assert sorted(f.number for f in mf.PAPER_FIGURES) == PAPER_NUMBERS
    assert mf.main(["--out", str(tmp_path)], run=_fake_run(set())) == 0
    for n in PAPER_NUMBERS:
        png = tmp_path / f"fig{n:02d}.png"
        assert png.is_file() and (tmp_path / f"fig{n:02d}.pdf").is_file(), n
        fig = next(f for f in mf.PAPER_FIGURES if f.number == n)
        parts = [
            Image.open(tmp_path / "runs" / p.experiment / f"{p.figure}.png") for p in fig.panels
        ]
        assert Image.open(png).height == sum(im.height for im in parts)  # every panel, stacked
    assert not list(tmp_path.glob("fig??_*.png"))  # no per-experiment figure files
    index = (tmp_path / "index.html").read_text()
    for n in PAPER_NUMBERS:
        assert f"<h2>Fig. {n}</h2>" in index
    assert "right: matching score per layer pair" in index  # Fig. 7's panels are named
    assert "folded, unfolded, encode-decode current" in index  # Fig. 11 is its own file
    assert (tmp_path / "fig07_matching_score.csv").is_file()


def test_a_failed_run_is_reported_and_its_panels_missing(tmp_path):
    rc = mf.main(
        ["--out", str(tmp_path), "--only", "judge_by_layer,matching_score"],
        run=_fake_run({"matching_score"}),
    )
    assert rc == 1
    assert (tmp_path / "fig04.png").is_file() and (tmp_path / "fig07.png").is_file()
    assert not (tmp_path / "fig03.png").exists()
    index = (tmp_path / "index.html").read_text()
    assert "matching_score failed" in index and "<b>missing</b>" in index
