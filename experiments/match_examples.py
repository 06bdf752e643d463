"""Matched pairs of one layer pair sorted by folded decoder MSE, with descriptions (Fig. 5).

The lowest, middle and highest `n_examples` pairs of the matching t -> t+1 (cfg.matching;
the paper matches folded, pair 19 -> 20), each with both descriptions.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass

import numpy as np

from saematch import plotting
from saematch.feature_paths import perm_array
from saematch.metrics import describe
from saematch.pair_mse import folded_mse
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results

GROUPS = ("lowest", "middle", "highest")
GROUP_COLORS = {"lowest": "SAME", "middle": "MAYBE", "highest": "DIFFERENT"}  # colour keys


@dataclass
class Options:
    pair: int | None  # first layer t of the pair t -> t+1; null = the middle pair
    n_examples: int  # pairs per group (lowest, middle, highest MSE)


@dataclass
class Example:
    """One matched pair (feature_a at t, feature_b = perm[feature_a] at t+1)."""

    group: str  # lowest | middle | highest
    rank: int  # by folded decoder MSE, 0 = lowest
    quantile: float  # rank as a fraction: 0 lowest, 1 highest
    feature_a: int
    feature_b: int
    decoder_mse: float
    description_a: str | None
    description_b: str | None


def pick_examples(mse: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Indices (into mse) of the n lowest, n around the median and n highest values."""
    F = mse.size
    if not 1 <= 3 * n <= F:
        raise ValueError(f"n_examples={n}: need 1 ≤ 3·n ≤ {F} (the SAE width)")
    order = np.argsort(mse, kind="stable")
    mid = F // 2 - n // 2
    return {"lowest": order[:n], "middle": order[mid : mid + n], "highest": order[F - n :]}


def plot(mse: np.ndarray, examples: list[Example], t: int, u: int):
    """Top: distribution of folded decoder MSE with the examples marked. Bottom: their texts."""
    lines = []
    for n, e in enumerate(examples, start=1):
        head = f"{n}. [{e.group}, MSE {e.decoder_mse:.3g}] "
        body = (
            f"{t}/{e.feature_a}: {plotting.short_text(e.description_a, 400, 1)}  →  "
            f"{u}/{e.feature_b}: {plotting.short_text(e.description_b, 400, 1)}"
        )
        lines += textwrap.wrap(
            head + body, 120, max_lines=3, placeholder="…", subsequent_indent="    "
        )
    text_h = 0.16 * len(lines) + 0.2  # inches
    fig, (ax, ax_t) = plotting.new_figure(
        2, 1, panel_size=(9.0, 1.0), gridspec_kw={"height_ratios": [2.8, text_h]}
    )
    fig.set_size_inches(9.0, 2.8 + text_h)
    log = bool((mse > 0).all()) and mse.max() / mse.min() > 100
    bins = np.geomspace(mse.min(), mse.max(), 60) if log else 60
    ax.hist(mse, bins=bins, color=plotting.GREY, alpha=0.6)
    if log:
        ax.set_xscale("log")
    top = ax.get_ylim()[1]
    for n, e in enumerate(examples, start=1):
        c = plotting.method_color(GROUP_COLORS[e.group])
        ax.axvline(e.decoder_mse, color=c, linewidth=1.0)
        ax.text(
            e.decoder_mse,
            top * (0.95 - 0.09 * ((n - 1) % 3)),
            str(n),
            color=c,
            fontsize=7,
            ha="center",
            bbox={"fc": "white", "ec": c, "pad": 1},
        )
    plotting.label_axes(
        ax, x="decoder_mse", y="count", title=f"Matched pairs {t} → {u} by folded decoder MSE"
    )
    ax_t.axis("off")
    ax_t.text(
        0,
        1,
        "\n".join(lines),
        va="top",
        ha="left",
        fontsize=6.8,
        family="monospace",
        transform=ax_t.transAxes,
    )
    return fig


def markdown(examples: list[Example], t: int, u: int) -> str:
    """The examples as a Markdown table."""
    out = [
        f"# Matched pairs {t} → {u}, sorted by folded decoder MSE\n",
        "| group | rank | MSE | feature A | description A | feature B | description B |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in examples:
        da, db = (
            " ".join(str(x or "(none)").split()).replace("|", "\\|")
            for x in (e.description_a, e.description_b)
        )
        out.append(
            f"| {e.group} | {e.rank} | {e.decoder_mse:.4g} | {t}/{e.feature_a} | {da} "
            f"| {u}/{e.feature_b} | {db} |"
        )
    return "\n".join(out) + "\n"


def run(opts: Options, ctx: Context) -> Results:
    """Lowest / middle / highest folded-decoder-MSE pairs of one matching, with descriptions."""
    t = ctx.layers[(len(ctx.layers) - 1) // 2] if opts.pair is None else opts.pair
    if t not in ctx.next_layer:
        raise ValueError(f"pair={t}: must be a layer of the SAE set {ctx.layers} with a next layer")
    u = ctx.next_layer[t]
    perm = perm_array(ctx.matchings()[t].perm)
    mse = folded_mse(ctx.saes[t], ctx.saes[u], perm, "decoder").astype(np.float64)
    rank = np.empty(mse.size, dtype=np.int64)
    rank[np.argsort(mse, kind="stable")] = np.arange(mse.size)
    desc_a, desc_b = ctx.descriptions(t), ctx.descriptions(u)
    examples = [
        Example(
            g,
            int(rank[i]),
            float(rank[i] / max(mse.size - 1, 1)),
            int(i),
            int(perm[i]),
            float(mse[i]),
            desc_a.get(int(i)),
            desc_b.get(int(perm[i])),
        )
        for g, idx in pick_examples(mse, opts.n_examples).items()
        for i in idx
    ]
    all_pairs = [
        {
            "feature_a": i,
            "feature_b": int(perm[i]),
            "decoder_mse": float(mse[i]),
            "rank": int(rank[i]),
        }
        for i in range(mse.size)
    ]
    res = Results(texts={"match_examples.md": markdown(examples, t, u)})
    res.table("match_examples", examples, history=False)
    res.table("match_examples_all_pairs", all_pairs, history=False)
    res.figures["match_examples"] = plot(mse, examples, t, u)
    res.headline = [{"layer": t, "next_layer": u, **describe(mse)}]
    res.summary = {
        "pair": {"from": t, "to": u},
        "layers": {str(t): {"next_layer": u, "decoder_mse": describe(mse)}},
        "examples": [asdict(e) for e in examples],
    }
    return res
