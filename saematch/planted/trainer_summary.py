"""Tables of the trainer comparison (scripts/compare_trainers.py) and the λ calibration
(scripts/calibrate_lambda.py) from their CSVs; importable by report writers.

`recipe_summary(rows)`: per (recipe, metric) the mean over seeds of each seed's value, where a
seed's value is the mean over layers for per-layer metrics (the pooled value for layer "all"),
with the standard deviation, min and max over seeds and the number of seeds.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def load_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a CSV, with every field that parses as a number turned into a float."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k, v in r.items():
            with contextlib.suppress(TypeError, ValueError):
                r[k] = float(v)
    return rows


def recipe_summary(rows: Sequence[dict]) -> dict[tuple[str, str], dict]:
    """{(recipe, metric): {mean, sd, min, max, n, per_layer_min, per_layer_max}} (module doc)."""
    per_seed: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        per_seed[(r["recipe"], r["metric"], r["seed"])].append(float(r["value"]))
    out: dict[tuple[str, str], dict] = {}
    grouped: dict[tuple, list[list[float]]] = defaultdict(list)
    for (recipe, metric, _), vals in per_seed.items():
        grouped[(recipe, metric)].append(vals)
    for key, seeds in grouped.items():
        means = [float(np.nanmean(v)) for v in seeds]
        flat = [x for v in seeds for x in v]
        out[key] = {
            "mean": float(np.mean(means)),
            "sd": float(np.std(means, ddof=1)) if len(means) > 1 else float("nan"),
            "min": float(np.min(means)),
            "max": float(np.max(means)),
            "n": len(means),
            "per_layer_min": float(np.nanmin(flat)),
            "per_layer_max": float(np.nanmax(flat)),
        }
    return out


def recipe_table(summary: dict, metrics: Sequence[tuple[str, str]]) -> str:
    """A markdown table: one row per (metric, description), one column per recipe, each cell
    mean ± sd over seeds [range of per-layer values] (n seeds)."""
    recipes = sorted({k[0] for k in summary})
    lines = ["| metric | " + " | ".join(recipes) + " |", "|---|" + "---|" * len(recipes)]
    for metric, desc in metrics:
        cells = []
        for rc in recipes:
            s = summary.get((rc, metric))
            cells.append(
                "—"
                if s is None
                else f"{s['mean']:.3f} ± {s['sd']:.3f} "
                f"[{s['per_layer_min']:.3f}, {s['per_layer_max']:.3f}] ({s['n']})"
            )
        lines.append(f"| {desc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_table(rows: Sequence[dict]) -> str:
    """A markdown table of a λ calibration: per (size, λ, settings) the mean over layers of the
    held-out L0, EV, dead share and recovery (with the worst layer's recovery)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        key = (r["size"], r["lambda"], r["steps"], r["lr"], r["bandwidth"], r["lr_decay"])
        groups[key].append(r)
    lines = [
        "| size | λ | steps | lr | ε | lr decay | L0 (target) | EV | dead "
        "| recovery (worst layer) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (size, lam, steps, lr, eps, decay), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        lines.append(
            f"| {size} | {lam:g} | {steps:g} | {lr:g} | {eps} | {decay} | "
            f"{np.mean([r['l0'] for r in rs]):.2f} ({rs[0]['l0_target']:g}) | "
            f"{np.mean([r['explained_variance'] for r in rs]):.3f} | "
            f"{np.mean([r['dead_frac'] for r in rs]):.2f} | "
            f"{np.mean([r['sae_recovery'] for r in rs]):.3f} "
            f"({min(r['sae_recovery'] for r in rs):.3f}) |"
        )
    return "\n".join(lines)
