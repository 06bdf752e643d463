"""Tables, verdicts and the figure of the folding sweep (scripts/folding_sweep.py) from its CSV.

Importable by report writers (scripts/make_findings.py): `load_rows(path)`, `summarise(rows)`,
`verdict(diffs)`, `markdown_table(summary, ...)`, `plot_sweep(rows)`.

A row is one (size, cell = (drift, growth_spread, growth), seed, sae, mode) with pooled matching
accuracy `folded`, `unfolded` and diff = folded − unfolded. Per (size, cell, sae, mode) the
summary holds n seeds, the means, the mean diff, its standard deviation and range, and a
verdict: "helps" when every seed's diff > 0 and the mean ≥ MIN_EFFECT, "hurts" when every seed's
diff < 0 and the mean ≤ −MIN_EFFECT, "no clear effect" otherwise, "too few seeds" below MIN_SEEDS.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

MIN_SEEDS = 3
MIN_EFFECT = 0.01  # accuracy points (1 %): smaller mean effects count as none
KEY = ("size", "drift", "growth_spread", "growth", "sae", "mode")
FLOATS = ("drift", "growth_spread", "growth", "folded", "unfolded", "diff", "ceiling")


def _cell(s: dict) -> tuple:
    return (s["drift"], s["growth_spread"], s["growth"])


def load_rows(path: str | os.PathLike) -> list[dict]:
    """The sweep's CSV rows, numbers parsed (the columns in FLOATS, seed as int)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [_parse(r) for r in rows]


def _parse(r: dict) -> dict:
    out = dict(r)
    for k in FLOATS:
        if k in out and out[k] not in ("", None):
            out[k] = float(out[k])
    if "seed" in out:
        out["seed"] = int(out["seed"])
    return out


def verdict(diffs: Sequence[float]) -> str:
    """helps / hurts / no clear effect / too few seeds (module docstring)."""
    d = np.asarray([x for x in diffs if np.isfinite(x)], float)
    if len(d) < MIN_SEEDS:
        return "too few seeds"
    if (d > 0).all() and d.mean() >= MIN_EFFECT:
        return "helps"
    if (d < 0).all() and d.mean() <= -MIN_EFFECT:
        return "hurts"
    return "no clear effect"


def summarise(rows: Sequence[dict]) -> list[dict]:
    """One dict per (size, drift, growth_spread, growth, sae, mode): n, folded, unfolded (means),
    diff (mean), diff_sd, diff_min, diff_max, ceiling (mean), verdict, seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in (_parse(r) for r in rows):
        groups[tuple(r[k] for k in KEY)].append(r)
    out = []
    for key, rs in groups.items():
        diffs = [r["diff"] for r in rs]
        out.append({
            **dict(zip(KEY, key, strict=True)), "n": len(rs),
            "folded": float(np.mean([r["folded"] for r in rs])),
            "unfolded": float(np.mean([r["unfolded"] for r in rs])),
            "diff": float(np.mean(diffs)),
            "diff_sd": float(np.std(diffs, ddof=1)) if len(rs) > 1 else float("nan"),
            "diff_min": float(np.min(diffs)), "diff_max": float(np.max(diffs)),
            "ceiling": float(np.mean([r["ceiling"] for r in rs])),
            "verdict": verdict(diffs), "seeds": sorted(r["seed"] for r in rs),
        })  # fmt: skip
    return sorted(out, key=lambda s: tuple(str(s[k]) for k in KEY))


def _cell_text(s: dict) -> str:
    return (
        f"{s['folded']:.3f} / {s['unfolded']:.3f}, {s['diff']:+.3f} ± {s['diff_sd']:.3f} "
        f"[{s['diff_min']:+.3f}, {s['diff_max']:+.3f}] ({s['n']}): **{s['verdict']}**"
    )


def markdown_table(summary: Sequence[dict], size: str, sae: str) -> str:
    """A markdown table of one size and SAE kind: a row per cell, per mode folded / unfolded /
    diff ± sd [min, max] (n) and the verdict."""
    sel = [s for s in summary if s["size"] == size and s["sae"] == sae]
    cells = sorted({(s["drift"], s["growth_spread"], s["growth"]) for s in sel})
    modes = [m for m in ("decoder", "encoder", "both") if any(s["mode"] == m for s in sel)]
    head = "| δ | σ_g | g | " + " | ".join(f"{m}: folded / unfolded, diff ± sd [min, max] (n)"
                                             for m in modes) + " |"  # fmt: skip
    lines = [head, "|" + "---|" * (3 + len(modes))]
    for c in cells:
        parts = []
        for m in modes:
            s = next((s for s in sel if (s["drift"], s["growth_spread"], s["growth"]) == c
                      and s["mode"] == m), None)  # fmt: skip
            parts.append("" if s is None else _cell_text(s))
        lines.append(f"| {c[0]:g} | {c[1]:g} | {c[2]:g} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def plot_sweep(rows: Sequence[dict]):
    """folded − unfolded accuracy (mean over seeds, bars = min..max) per mode (rows of panels)
    against δ, σ_g and g (the other knobs at the default), and at the interaction cells; one
    line per (size, SAE kind)."""
    from saematch import plotting

    summary = summarise(rows)
    base = {"drift": 0.2, "growth_spread": 0.1, "growth": 1.2}
    axes_names = ("drift", "growth_spread", "growth")
    modes = ("decoder", "encoder", "both")
    series = sorted({(s["size"], s["sae"]) for s in summary})
    fig, axes = plotting.new_figure(len(modes), 4, panel_size=(3.6, 2.8), squeeze=False)
    style = {"oracle_scale": "o-", "oracle_layer": "s:", "controller": "^-", "published": "v-"}
    for row, mode in zip(axes, modes, strict=True):
        for ax, axis in zip(row[:3], axes_names, strict=True):
            for size, sae in series:
                pts = sorted(
                    (s[axis], s) for s in summary
                    if s["size"] == size and s["sae"] == sae and s["mode"] == mode
                    and all(s[k] == base[k] for k in axes_names if k != axis)
                )  # fmt: skip
                if len(pts) < 2:
                    continue
                x = [p[0] for p in pts]
                y = np.array([p[1]["diff"] for p in pts])
                lo = y - np.array([p[1]["diff_min"] for p in pts])
                hi = np.array([p[1]["diff_max"] for p in pts]) - y
                alpha = 0.85 if size != "default" else 0.5
                ax.errorbar(x, y, yerr=[lo, hi], fmt=style.get(sae, "o-"), capsize=2,
                            label=f"{sae} ({size})", alpha=alpha)  # fmt: skip
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xlabel({"drift": "drift δ", "growth_spread": "scale spread σ_g",
                           "growth": "growth g"}[axis])  # fmt: skip
            ax.set_ylabel(f"{mode}: folded − unfolded")
        ax = row[3]
        inter = sorted({(s["drift"], s["growth_spread"], s["growth"]) for s in summary
                        if sum(s[k] != base[k] for k in axes_names) >= 2})  # fmt: skip
        for k, (size, sae) in enumerate(series):
            for i, c in enumerate(inter):
                s = next((s for s in summary if s["size"] == size and s["sae"] == sae
                          and s["mode"] == mode and _cell(s) == c), None)  # fmt: skip
                if s is None:
                    continue
                xi = i + (k - len(series) / 2) * 0.1
                ax.errorbar([xi], [s["diff"]], yerr=[[s["diff"] - s["diff_min"]],
                            [s["diff_max"] - s["diff"]]], fmt=style.get(sae, "o")[0],
                            color=f"C{k}", capsize=2)  # fmt: skip
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(len(inter)), [f"δ{c[0]:g} σ{c[1]:g} g{c[2]:.3g}" for c in inter],
                      fontsize=6, rotation=60, ha="right")  # fmt: skip
        ax.set_title("interaction cells", fontsize=9)
    labelled = [ax for row in axes for ax in row if ax.get_legend_handles_labels()[0]]
    if labelled:
        labelled[0].legend(fontsize=7)
    return fig
