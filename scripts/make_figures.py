"""Regenerate every figure of the paper into one folder, named by paper number, with index.html.

    python scripts/make_figures.py --out figures/                     # the built-in zoo
    python scripts/make_figures.py --out figs/ --only mse_curves,paths -- model=gemma2_2b \
        saes=gemma_scope_paper data=openwebtext

Each experiment runs as its own `saematch` process (one failure doesn't stop the rest), into
<out>/runs/<experiment>/. Each paper figure becomes ONE file per format, <out>/figNN.png and
figNN.pdf (its panels stacked top to bottom), with the CSVs of its experiments beside it;
<out>/index.html says which paper figure and panel each file reproduces and how it was made.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Panel:
    experiment: str
    figure: str  # the run's figure name (<figure>.png)
    panel: str  # which part of the paper figure it reproduces


@dataclass(frozen=True)
class PaperFigure:
    number: int
    caption: str
    panels: tuple[Panel, ...]


# Every paper figure the experiments reproduce (Fig. 2 and 9 are schematics; Fig. 13 and 19
# are Fig. 11 and 18 for Llama 3.1 8B: rerun with model=llama31_8b saes=llama_scope_8x).
PAPER_FIGURES = (
    PaperFigure(
        1,
        "Hidden-state norms, θ and folded decoder norms; their changes per pair.",
        (
            Panel(
                "folding_stats",
                "folding_stats_norms",
                "left: hidden-state norm and mean θ per layer",
            ),
            Panel(
                "folding_stats",
                "folding_stats_norm_change",
                "right: hidden-norm change vs matched folded-decoder norm difference",
            ),
        ),
    ),
    PaperFigure(
        3,
        "MSE objective of vanilla, matched and folded+matched per layer pair.",
        (Panel("mse_curves", "mse_curves", "W_enc, W_dec and b_enc MSE (on folded weights)"),),
    ),
    PaperFigure(
        4,
        "Judge labels SAME / MAYBE / DIFFERENT split by layer.",
        (Panel("judge_by_layer", "judge_by_layer", "label counts per layer, folded vs unfolded"),),
    ),
    PaperFigure(
        5,
        "Matched pairs 19 → 20 (here: the middle pair) sorted by folded decoder MSE.",
        (Panel("match_examples", "match_examples", "lowest, middle and highest MSE examples"),),
    ),
    PaperFigure(
        6,
        "Folded decoder MSE of matched pairs grouped by the judge's label.",
        (Panel("mse_by_label", "mse_by_label", "MSE distribution per label, per layer pair"),),
    ),
    PaperFigure(
        7,
        "Judge evaluation across layers and the matching score per method.",
        (
            Panel("judge_by_layer", "judge_by_layer", "left: judge labels with folded matching"),
            Panel(
                "matching_score",
                "matching_score",
                "right: matching score per layer pair, folded / unfolded / vanilla",
            ),
        ),
    ),
    PaperFigure(
        8,
        "Persistence: features from start layers vs their images at later layers.",
        (
            Panel(
                "persistence_judge",
                "persistence_judge",
                "judge score vs distance, exact vs composed",
            ),
            Panel(
                "persistence",
                "persistence",
                "without the judge: agreement, MSE and matching score vs layer",
            ),
        ),
    ),
    PaperFigure(
        10,
        "Pruning each layer with matched features (SAE Match): ΔL and EV.",
        (Panel("layer_pruning", "layer_pruning_sae_match", "left ΔL, right EV, SAE Match only"),),
    ),
    PaperFigure(
        11,
        "Pruning: SAE Match folded and unfolded against the App. A baselines.",
        (
            Panel(
                "layer_pruning",
                "layer_pruning",
                "left ΔL, right EV: folded, unfolded, encode-decode current / previous, layer drop",
            ),
        ),
    ),
    PaperFigure(
        12,
        "Matching modes (encoder, decoder, both) on one layer pair.",
        (
            Panel(
                "matching_modes", "matching_modes", "MSE terms, ΔL, EV, matching score, agreement"
            ),
        ),
    ),
    PaperFigure(
        14,
        "ΔL and EV against the SAE sparsity (measured l0) on one pair.",
        (Panel("sparsity_sweep", "sparsity_sweep", "left ΔL, right EV vs l0"),),
    ),
    PaperFigure(
        15,
        "The l0-matched SAE set against the default set.",
        (Panel("sparsity_sweep", "l0_matched", "left: l0 per layer; right: pruning EV and ΔL"),),
    ),
    PaperFigure(
        16,
        "ΔL and EV for various MSE quantiles q (eq. 6).",
        (
            Panel(
                "quantile_ablation", "quantile_delta_loss", "left: ΔL vs q (mean ± sd over pairs)"
            ),
            Panel("quantile_ablation", "quantile_ev", "right: EV vs q (a line per layer pair)"),
        ),
    ),
    PaperFigure(
        17,
        "EV dynamics of each quantile, layer by layer.",
        (
            Panel(
                "quantile_ablation",
                "quantile_ablation_by_layer",
                "ΔL and EV per layer pair, a line per quantile q",
            ),
        ),
    ),
    PaperFigure(
        18,
        "Example feature paths across layers (composed matchings).",
        (
            Panel("paths", "paths", "paths of the start features, with descriptions"),
            Panel("paths", "paths_mse", "step pair MSE and activation frequency along each path"),
        ),
    ),
)
# Not in the paper: the planted world (docs/method.md §9), partial matching, flow, steering
EXTRA_FIGURES = (
    PaperFigure(
        20,
        "Ground truth (planted world, docs/method.md §9): SAE recovery, matching accuracy per "
        "mode × fold "
        "and pair, composition vs exact LAP over distance.",
        (Panel("ground_truth", "ground_truth", "recovery, accuracy, composition"),),
    ),
    PaperFigure(
        21,
        "Hypothesis 2 with ground truth: folded − unfolded matching accuracy per mode against "
        "drift δ, scale spread σ_g and growth g (incl. Gemma-like), mean and range over ≥ 3 "
        "seeds, for oracle SAEs (θ = true scales; one θ per layer) and SAEs of both training "
        "recipes (plotted from docs/data/folding_sweep.csv; scripts/folding_sweep.py reruns it).",
        (Panel("folding_sweep", "folding_sweep", "folded − unfolded per mode, with spread"),),
    ),
    PaperFigure(
        22,
        "Matching beyond the bijection: unmatched precision/recall, confidence AUROC and split "
        "detection on planted pairs; unmatched share per layer pair of the SAE set.",
        (
            Panel("beyond_bijection", "beyond_bijection_planted", "planted pairs, known fates"),
            Panel(
                "beyond_bijection",
                "beyond_bijection_unmatched_share",
                "unmatched share per layer pair (matching.unmatched=auto)",
            ),
        ),
    ),
    PaperFigure(
        23,
        "Feature flow across modules (data-free): origin shares per layer, and the graph's "
        "edges checked against activation correlations.",
        (
            Panel("flow", "flow_shares", "persisting / MLP / attention / unclear per layer"),
            Panel("flow", "flow_validation", "edge correlations vs random pairs, by source"),
        ),
    ),
    PaperFigure(
        24,
        "Steering along a SAE Match path vs a same-norm random direction.",
        (Panel("steering", "steering", "KL and log-prob change, path vs one layer vs random"),),
    ),
)
ALL_FIGURES = PAPER_FIGURES + EXTRA_FIGURES
# Figures made by a script of their own, not by `saematch experiment=<name>`
SCRIPTS = {"folding_sweep": Path(__file__).with_name("folding_sweep.py")}
# The sweep trains ~100 planted sets (hours on two cores): the figure is drawn from its CSV
SWEEP_CSV = Path(__file__).parent.parent / "docs" / "data" / "folding_sweep.csv"
SCRIPT_ARGS = {"folding_sweep": ["--plot-only", "--csv", str(SWEEP_CSV)]}
# Settings an experiment needs for its paper figures (Fig. 11: the unfolded matching too).
RUN_OVERRIDES = {"layer_pruning": ["experiment.unfolded=true"]}


def experiments() -> list[str]:
    """The experiments behind PAPER_FIGURES (then EXTRA_FIGURES), in figure order."""
    return list(dict.fromkeys(p.experiment for f in ALL_FIGURES for p in f.panels))


def run_one(name: str, out: Path, overrides: list[str]) -> dict:
    """Run one experiment as a subprocess into out/runs/<name>; returns a status record."""
    run_dir = out / "runs" / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    exe = Path(sys.executable).parent / "saematch"
    extra = RUN_OVERRIDES.get(name, [])
    cmd = [str(exe), f"experiment={name}", f"hydra.run.dir={run_dir}", *extra, *overrides]
    if name in SCRIPTS:  # its own multirun; the overrides of the paper runs do not apply
        cmd = [sys.executable, str(SCRIPTS[name]), "--out", str(run_dir),
               *SCRIPT_ARGS.get(name, [])]  # fmt: skip
    t0 = time.perf_counter()
    print(f"[make_figures] {name}: {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    rec = {
        "name": name,
        "returncode": proc.returncode,
        "seconds": time.perf_counter() - t0,
        "run_dir": run_dir,
        "command": " ".join(cmd[1:]),
    }
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "runs" / f"{name}.log").write_text(proc.stdout + proc.stderr)
    status = "ok" if proc.returncode == 0 else f"FAILED (see runs/{name}.log)"
    print(f"[make_figures] {name}: {status} in {rec['seconds']:.0f} s", flush=True)
    return rec


def stack(images: list[Path], png: Path, pdf: Path) -> None:
    """The panel images stacked top to bottom into one PNG and one (raster) PDF."""
    from PIL import Image

    ims = [Image.open(p).convert("RGB") for p in images]
    width = max(im.width for im in ims)
    out = Image.new("RGB", (width, sum(im.height for im in ims)), "white")
    y = 0
    for im in ims:
        out.paste(im, ((width - im.width) // 2, y))
        y += im.height
    out.save(png)
    out.save(pdf, resolution=150)


def collect(fig: PaperFigure, runs: dict[str, dict], out: Path) -> dict:
    """figNN.png/.pdf of one paper figure from its runs' panels, and the runs' CSVs beside it."""
    stem = f"fig{fig.number:02d}"
    found = [
        (p, runs[p.experiment]["run_dir"] / f"{p.figure}.png")
        for p in fig.panels
        if p.experiment in runs
    ]
    have = [(p, f) for p, f in found if f.is_file()]
    item = {
        "file": None,
        "panels": [p for p, _ in have],
        "missing": [p for p, f in found if not f.is_file()],
        "csv": [],
    }
    if have:
        stack([f for _, f in have], out / f"{stem}.png", out / f"{stem}.pdf")
        item["file"] = f"{stem}.png"
    for name in dict.fromkeys(p.experiment for p, _ in have):
        for csv in sorted(runs[name]["run_dir"].glob("*.csv")):
            shutil.copy2(csv, out / f"{stem}_{csv.name}")
            item["csv"].append(f"{stem}_{csv.name}")
    return item


def settings_of(run_dir: Path) -> str:
    """The settings that made a run: model, SAE set, matching and data from its results.json."""
    path = run_dir / "results.json"
    if not path.is_file():
        return "no results.json"
    cfg = json.loads(path.read_text()).get("config", {})
    keys = ("model", "saes", "matching", "data", "judge", "experiment")
    return json.dumps({k: cfg.get(k) for k in keys}, indent=1, default=str)


def write_index(out: Path, records: dict[str, dict], items: dict[int, dict]) -> Path:
    """index.html: per paper figure its file, the panels it reproduces, settings, failures."""
    e = html.escape
    parts = [
        "<!doctype html><meta charset=utf-8><title>saematch figures</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:6px;"
        "font-size:11px;max-height:180px;overflow:auto}</style>",
        "<h1>SAE Match: the paper's figures, regenerated</h1>",
    ]
    for fig in ALL_FIGURES:
        item = items.get(fig.number)
        if item is None:
            continue
        parts.append(f"<h2>Fig. {fig.number}</h2><p>{e(fig.caption)}</p><ul>")
        for p in fig.panels:
            state = "" if p in item["panels"] else " — <b>missing</b> (its run failed)"
            parts.append(
                f"<li>{e(p.panel)}: <code>{e(p.experiment)}/{e(p.figure)}</code>{state}</li>"
            )
        parts.append("</ul>")
        if item["file"]:
            parts.append(
                f"<figure><img src='{e(item['file'])}'><figcaption>{e(item['file'])} "
                f"(+ PDF); data: {e(', '.join(item['csv']))}</figcaption></figure>"
            )
        for name in dict.fromkeys(p.experiment for p in fig.panels):
            rec = records.get(name)
            if rec is None:
                continue
            if rec["returncode"] != 0:
                parts.append(f"<p><b>{e(name)} failed</b>: see runs/{e(name)}.log</p>")
            parts.append(
                f"<details><summary>{e(name)} settings ({rec['seconds']:.0f} s)</summary><pre>"
                f"{e(rec['command'])}\n{e(settings_of(rec['run_dir']))}</pre></details>"
            )
    index = out / "index.html"
    index.write_text("\n".join(parts))
    return index


def main(argv: list[str] | None = None, run=None) -> int:
    """Parse arguments, run the experiments, compose the figures; exit 1 if any run failed.

    `run(name, out, overrides) -> record` replaces run_one (tests)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for figures and index.html")
    ap.add_argument("--only", default="", help="comma-separated experiments (default: all)")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or experiments()
    unknown = [n for n in names if n not in experiments()]
    if unknown:
        ap.error(f"unknown experiments {unknown}; choose from {', '.join(experiments())}")
    args.out.mkdir(parents=True, exist_ok=True)
    records = {n: (run or run_one)(n, args.out, args.overrides) for n in names}
    items = {
        f.number: collect(f, records, args.out)
        for f in ALL_FIGURES
        if any(p.experiment in records for p in f.panels)
    }
    index = write_index(args.out, records, items)
    failed = [n for n, r in records.items() if r["returncode"] != 0]
    made = sorted(n for n, it in items.items() if it["file"])
    print(f"[make_figures] wrote {index}: Fig. {', '.join(map(str, made))}; failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
