"""Hypothesis 2 with ground truth: where does folding help? A δ × σ_g multirun on the planted set.

    python scripts/folding_sweep.py --out figures/folding_sweep [--size test] [--jobs 2]

Runs `saematch -m experiment=ground_truth saes.knobs.drift=… saes.knobs.growth_spread=…` with the
joblib launcher (one planted set per grid point, each cached), then plots matching accuracy of
folded vs unfolded matching (mean over layer pairs), one row of panels per matching mode, across
the grid: folding_sweep.png/.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

DRIFTS = (0.1, 0.3, 0.6)
SPREADS = (0.0, 0.3, 0.6)


def run_grid(out: Path, size: str, jobs: int, drifts, spreads) -> int:
    """The multirun itself (joblib launcher); returns its exit code."""
    exe = Path(sys.executable).parent / "saematch"
    cmd = [
        str(exe), "-m", "experiment=ground_truth", f"saes.size={size}", "logger=none",
        "experiment.variants=[folded_decoder,unfolded_decoder,folded_both,unfolded_both,"
        "folded_encoder,unfolded_encoder]",
        "experiment.composition_variant=folded_decoder",
        "experiment.print_summary=false",
        f"saes.knobs.drift={','.join(map(str, drifts))}",
        f"saes.knobs.growth_spread={','.join(map(str, spreads))}",
        "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", f"hydra.sweep.dir={out / 'runs'}",
    ]  # fmt: skip
    print("[folding_sweep]", " ".join(cmd[1:]), flush=True)
    return subprocess.run(cmd).returncode


MODES = ("decoder", "encoder", "both")


def collect(runs: Path, mode: str) -> list[dict]:
    """One row per finished grid point: drift, spread, folded / unfolded mean accuracy of `mode`
    (mean over layer pairs), and the worst layer's SAE recovery."""
    rows = []
    for path in sorted(runs.glob("*/results.json")):
        res = json.loads(path.read_text())
        if res.get("status") != "ok":
            continue
        knobs, r = res["config"]["saes"]["knobs"], res["results"]
        acc = {v: float(np.nanmean(list(r["accuracy"][v].values()))) for v in r["accuracy"]}
        rec = r["sae_recovery"]
        rows.append({
            "drift": knobs["drift"], "growth_spread": knobs["growth_spread"],
            "folded": acc[f"folded_{mode}"], "unfolded": acc[f"unfolded_{mode}"],
            "min_recovery": min(rec.values()),
        })  # fmt: skip
    return sorted(rows, key=lambda x: (x["drift"], x["growth_spread"]))


def plot(by_mode: dict[str, list[dict]]):
    """Per mode (one row of panels), heat maps over (δ, σ_g): folded, unfolded, and
    folded − unfolded accuracy."""
    from saematch import plotting

    fig, axes = plotting.new_figure(len(by_mode), 3, panel_size=(3.8, 3.2), squeeze=False)
    for row, (mode, rows) in zip(axes, by_mode.items(), strict=True):
        _plot_mode(row, rows, mode)
    return fig


def _plot_mode(axes, rows: list[dict], mode: str) -> None:
    ds = sorted({r["drift"] for r in rows})
    ss = sorted({r["growth_spread"] for r in rows})
    grid = {k: np.full((len(ds), len(ss)), np.nan) for k in ("folded", "unfolded")}
    for r in rows:
        for k in grid:
            grid[k][ds.index(r["drift"]), ss.index(r["growth_spread"])] = r[k]
    grid["folded − unfolded"] = grid["folded"] - grid["unfolded"]
    for ax, (name, z) in zip(axes, grid.items(), strict=True):
        diff = name.startswith("folded −")
        lim = max(0.05, float(np.nanmax(np.abs(z)))) if diff else 1.0
        im = ax.imshow(z, origin="lower", cmap="RdBu" if diff else "viridis",
                       vmin=-lim if diff else 0.0, vmax=lim, aspect="auto")  # fmt: skip
        ax.set_xticks(range(len(ss)), [f"{s:g}" for s in ss])
        ax.set_yticks(range(len(ds)), [f"{d:g}" for d in ds])
        for i in range(len(ds)):
            for j in range(len(ss)):
                ax.text(j, i, f"{z[i, j]:+.2f}" if diff else f"{z[i, j]:.2f}",
                        ha="center", va="center", fontsize=8)  # fmt: skip
        ax.set_xlabel("scale spread σ_g")
        ax.set_ylabel("drift δ")
        ax.set_title(f"{name} ({mode})")
        ax.figure.colorbar(im, ax=ax, shrink=0.8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", default="test", help="planted preset of every grid point")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--drifts", default=",".join(map(str, DRIFTS)))
    ap.add_argument("--spreads", default=",".join(map(str, SPREADS)))
    ap.add_argument("--plot-only", action="store_true", help="re-plot finished runs")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    code = 0
    if not args.plot_only:
        drifts = [float(x) for x in args.drifts.split(",")]
        spreads = [float(x) for x in args.spreads.split(",")]
        code = run_grid(args.out, args.size, args.jobs, drifts, spreads)
    by_mode = {m: collect(args.out / "runs", m) for m in MODES}
    rows = [{"mode": m, **r} for m, rs in by_mode.items() for r in rs]
    if not rows:
        print("[folding_sweep] no finished grid point", file=sys.stderr)
        return code or 1
    with open(args.out / "folding_sweep.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fig = plot(by_mode)
    fig.savefig(args.out / "folding_sweep.png", dpi=150, bbox_inches="tight")
    fig.savefig(args.out / "folding_sweep.pdf", bbox_inches="tight")
    for r in rows:
        print("[folding_sweep] {mode}: δ {drift:g} σ_g {growth_spread:g}: folded {folded:.3f} "
              "unfolded {unfolded:.3f} (min recovery {min_recovery:.2f})".format(**r))  # fmt: skip
    return code


if __name__ == "__main__":
    sys.exit(main())
