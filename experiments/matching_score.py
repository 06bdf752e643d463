"""Matching score per adjacent layer pair (Fig. 7, right): folded vs unfolded vs vanilla.

One pass over the run's tokens (resid_post on ctx.batch, or the planted world's x_t): each SAE
encodes its layer,
and the active sets stream into one MatchingScoreAccumulator per (pair, method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saematch import plotting
from saematch.feature_paths import perm_array
from saematch.metrics import MatchingScoreAccumulator, active, describe
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results

METHODS = ("folded", "unfolded", "vanilla")


@dataclass
class Options:
    methods: list[str]  # subset of METHODS
    pairs: list[int] | None  # first layers t of the pairs t -> t+1; null = all
    per_feature: bool  # write matching_score_per_feature.csv (one row per feature)


def method_perms(ctx: Context, methods: list[str]) -> dict[str, dict[int, np.ndarray]]:
    """{method: {t: perm of t -> next}}; vanilla is the identity (docs/method.md §3)."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got {methods}")
    F = ctx.saes[ctx.layers[0]].width
    out = {}
    for m in methods:
        if m == "vanilla":
            out[m] = {t: np.arange(F, dtype=np.int64) for t in ctx.next_layer}
        else:
            out[m] = {t: perm_array(x.perm) for t, x in ctx.matchings(fold=m == "folded").items()}
    return out


@dataclass
class FeatureRow:
    """One feature i of layer t under one method: its partner and how often both fire."""

    layer: int
    method: str
    feature: int
    matched_feature: int
    n_active: int  # tokens where f_t,i > 0
    n_both: int  # tokens where f_t,i > 0 and f_t+1,perm[i] > 0
    score: float  # n_both / n_active (nan when never active)


def feature_rows(t: int, method: str, perm, acc, per) -> list[FeatureRow]:
    """The per-feature rows of one (pair, method) accumulator."""
    both, act = acc.both.numpy(), acc.active.numpy()
    return [
        FeatureRow(t, method, i, int(p), int(act[i]), int(both[i]), float(per[i]))
        for i, p in enumerate(perm)
    ]


def plot(rows: list[dict], per_feature: dict[str, np.ndarray], methods: list[str]):
    """Left: score per layer pair per method. Right: distribution of per-feature scores."""
    fig, (ax, ax_h) = plotting.new_figure(1, 2, panel_size=(5.0, 3.4))
    for m in methods:
        plotting.line_per_layer(ax, [r["layer"] for r in rows], [r[m] for r in rows], method=m)
    ax.set_ylim(0, 1.02)
    plotting.label_axes(ax, x="layer_pair", y="matching_score", title="Matching score")
    bins = np.linspace(0, 1, 21)
    for m in methods:
        v = per_feature[m][~np.isnan(per_feature[m])]
        ax_h.hist(
            v,
            bins=bins,
            histtype="step",
            linewidth=1.6,
            color=plotting.method_color(m),
            label=plotting.method_label(m),
        )
    ax_h.set_yscale("log")  # most features score 0; the tail is what differs
    plotting.label_axes(
        ax_h, x="matching_score", y="count", title="Per-feature score (all pairs, active features)"
    )
    ax_h.set_xlabel("per-feature matching score")
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Matching score of every adjacent pair for each method, plus per-feature values."""
    methods = list(opts.methods)
    perms = method_perms(ctx, methods)
    pairs = {t: u for t, u in ctx.next_layer.items() if opts.pairs is None or t in opts.pairs}
    if not pairs:
        raise ValueError(f"no adjacent pair starts at {opts.pairs}; layers: {ctx.layers}")
    need = sorted(set(pairs) | set(pairs.values()))
    pos = {L: i for i, L in enumerate(need)}
    saes = {L: ctx.saes[L].to(ctx.act_device) for L in need}
    acc = {(t, m): MatchingScoreAccumulator(perms[m][t]) for t in pairs for m in methods}
    n_tokens = 0
    for rows in ctx.activation_rows(need):
        n_tokens += rows.shape[1]
        act = {L: active(saes[L], rows[pos[L]]) for L in need}  # each layer encoded once
        for (t, _), a in acc.items():
            a.update(act[t], act[pairs[t]])
    table, feats, per_all = [], [], {m: [] for m in methods}
    summary = {"methods": methods, "n_tokens": n_tokens, "layers": {}}
    for t, u in pairs.items():
        row, entry = {"layer": t, "next_layer": u}, {"next_layer": u}
        for m in methods:
            a = acc[(t, m)]
            row[m], per = a.result()
            per_all[m].append(per)
            entry[m] = {
                "score": row[m],
                "per_feature": describe(per),
                "n_active_features": int((a.active > 0).sum()),
            }
            if opts.per_feature:
                feats += feature_rows(t, m, perms[m][t], a, per)
        table.append(row)
        summary["layers"][str(t)] = entry
    summary["mean_over_pairs"] = {m: float(np.mean([r[m] for r in table])) for m in methods}
    res = Results(summary=summary, metrics=table, headline=table)
    res.table("matching_score", table)
    if opts.per_feature:
        res.table("matching_score_per_feature", feats, history=False)
    per_all = {m: np.concatenate(v) for m, v in per_all.items()}
    res.figures["matching_score"] = plot(table, per_all, methods)
    return res
