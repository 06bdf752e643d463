"""Regenerate every figure of the paper into one folder, named by paper number, with index.html.

    python scripts/make_figures.py --out figures/                     # the built-in zoo
    python scripts/make_figures.py --out figs/ --only mse_curves,paths -- model=gemma2_2b \
        saes=gemma_scope_paper data=openwebtext

Each experiment runs as its own `saematch` process (one failure doesn't stop the rest), into
<out>/runs/<experiment>/. Its figures and CSVs are copied to <out>/figNN_<experiment>_<name>.*
and listed in <out>/index.html with a caption and the settings that made them.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

# experiment -> (paper figure number, caption)
FIGURES: dict[str, tuple[str, str]] = {
    "folding_stats": (
        "01",
        "Fig. 1: hidden-state norm and mean θ per layer; norm change vs "
        "matched folded-decoder norm difference.",
    ),
    "mse_curves": (
        "03",
        "Fig. 3: MSE of W_enc, W_dec and b_enc per layer pair for vanilla, "
        "matched (unfolded) and folded+matched, all scored on folded weights.",
    ),
    "judge_by_layer": (
        "04",
        "Fig. 4 / 7 (left): judge labels SAME / MAYBE / DIFFERENT per layer, folded vs unfolded.",
    ),
    "match_examples": (
        "05",
        "Fig. 5: matched pairs sorted by folded decoder MSE, with descriptions.",
    ),
    "mse_by_label": ("06", "Fig. 6: folded decoder MSE of matched pairs by judge label."),
    "matching_score": (
        "07",
        "Fig. 7 (right): matching score per layer pair, folded vs unfolded vs vanilla.",
    ),
    "persistence": (
        "08",
        "Fig. 8 (data): exact LAP vs composed permutations from start "
        "layers: agreement, MSE and matching score vs distance.",
    ),
    "persistence_judge": (
        "08",
        "Fig. 8 (judge): judge score vs distance, exact LAP vs composition.",
    ),
    "layer_pruning": (
        "10",
        "Fig. 9-11, 13: ΔL and EV when pruning a block with SAE Match, and the App. A baselines.",
    ),
    "matching_modes": ("12", "Fig. 12: encoder-only, decoder-only and both on one layer pair."),
    "sparsity_sweep": ("14", "Fig. 14-15: ΔL and EV vs SAE l0; the l0-matched SAE set."),
    "quantile_ablation": ("16", "Fig. 16-17: ΔL and EV vs matched-pair MSE quantile q (eq. 6)."),
    "paths": ("18", "Fig. 18-19: example feature paths across layers."),
    "ground_truth": (
        "20",
        "Ground truth (planted world, SPEC §9): SAE recovery per layer, matching accuracy of "
        "every mode × fold and vanilla per layer pair, composition vs exact LAP over distance.",
    ),
    "folding_sweep": (
        "21",
        "Hypothesis 2 with ground truth: matching accuracy folded vs unfolded over drift δ × "
        "scale spread σ_g (planted test-size sets, joblib multirun; scripts/folding_sweep.py).",
    ),
}
SCRIPTS = {"folding_sweep": Path(__file__).with_name("folding_sweep.py")}  # not a saematch run


def run_one(name: str, out: Path, overrides: list[str]) -> dict:
    """Run one experiment as a subprocess into out/runs/<name>; returns a status record."""
    run_dir = out / "runs" / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    exe = Path(sys.executable).parent / "saematch"
    cmd = [str(exe), f"experiment={name}", f"hydra.run.dir={run_dir}", *overrides]
    if name in SCRIPTS:
        cmd = [sys.executable, str(SCRIPTS[name]), "--out", str(run_dir)]
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


def collect(rec: dict, out: Path) -> list[dict]:
    """Copy a run's figures and CSVs to out/ under paper-numbered names."""
    num, caption = FIGURES[rec["name"]]
    items = []
    for png in sorted(rec["run_dir"].glob("*.png")):
        stem = f"fig{num}_{rec['name']}" + ("" if png.stem == rec["name"] else f"_{png.stem}")
        for ext in (".png", ".pdf", ".csv"):
            src = png.with_suffix(ext)
            if src.is_file():
                shutil.copy2(src, out / f"{stem}{ext}")
        items.append({"file": f"{stem}.png", "caption": caption, "figure": png.stem})
    for csv in sorted(rec["run_dir"].glob("*.csv")):
        if not csv.with_suffix(".png").is_file():
            shutil.copy2(csv, out / f"fig{num}_{rec['name']}_{csv.stem}.csv")
    return items


def settings_of(run_dir: Path) -> str:
    """The settings that made a run: model, SAE set, matching and data from its results.json."""
    path = run_dir / "results.json"
    if not path.is_file():
        return "no results.json"
    cfg = json.loads(path.read_text()).get("config", {})
    keys = ("model", "saes", "matching", "data", "judge", "experiment")
    return json.dumps({k: cfg.get(k) for k in keys}, indent=1, default=str)


def write_index(out: Path, records: list[dict], items: dict[str, list[dict]]) -> Path:
    """index.html: every figure with its caption and settings, failures listed."""
    parts = [
        "<!doctype html><meta charset=utf-8><title>saematch figures</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:6px;"
        "font-size:11px;max-height:180px;overflow:auto}</style>",
        "<h1>SAE Match: regenerated figures</h1>",
    ]
    for rec in sorted(records, key=lambda r: FIGURES[r["name"]][0]):
        num, caption = FIGURES[rec["name"]]
        parts.append(f"<h2>Fig. {int(num)} — {html.escape(rec['name'])}</h2>")
        parts.append(f"<p>{html.escape(caption)}</p>")
        if rec["returncode"] != 0:
            parts.append(f"<p><b>failed</b>: see runs/{html.escape(rec['name'])}.log</p>")
        for it in items.get(rec["name"], []):
            parts.append(
                f"<figure><img src='{html.escape(it['file'])}'>"
                f"<figcaption>{html.escape(it['file'])}</figcaption></figure>"
            )
        parts.append(
            f"<details><summary>settings ({rec['seconds']:.0f} s)</summary><pre>"
            f"{html.escape(rec['command'])}\n{html.escape(settings_of(rec['run_dir']))}"
            "</pre></details>"
        )
    index = out / "index.html"
    index.write_text("\n".join(parts))
    return index


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the experiments, collect the figures; exit 1 if any failed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for figures and index.html")
    ap.add_argument("--only", default="", help="comma-separated experiments (default: all)")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        ap.error(f"unknown experiments {unknown}; choose from {', '.join(FIGURES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    records = [run_one(n, args.out, args.overrides) for n in names]
    items = {r["name"]: collect(r, args.out) for r in records}
    index = write_index(args.out, records, items)
    failed = [r["name"] for r in records if r["returncode"] != 0]
    print(f"[make_figures] wrote {index}; {len(records) - len(failed)} ok, failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
