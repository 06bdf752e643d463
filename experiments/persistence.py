"""Feature persistence without the judge (Fig. 8, Sec. 3.2 and 5.4): exact LAP vs composition.

From each start layer s and every later layer L of the set: the exact matching s -> L
(one LAP on the two SAEs) and the composition of the adjacent permutations
(perm_AC = perm_BC[perm_AB]). Reported against the distance L − s: their agreement (fraction
of features sent to the same target), the pair MSE of each on folded weights, and the
matching score of each between layers s and L on ctx.batch.

The path helpers are saematch.feature_paths; the judge-based `persistence_judge` experiment
shares them and the exact matchings (saematch_experiments.support.perms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from saematch import plotting
from saematch.feature_paths import agreement, composed_perms
from saematch.metrics import MatchingScoreAccumulator, active
from saematch.pair_mse import folded_mse
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.perms import PERM_KINDS, exact_perms


@dataclass
class Options:
    # Start layers s (each must be in the SAE set). The paper (Gemma 2 2B, 26 layers) uses
    # [10, 12, 20]; the tiny zoo has 6 layers, so the default starts early.
    start_layers: list[int]
    max_distance: int | None  # only targets with L − s ≤ this; null = up to the last layer
    matching_score: bool  # needs one LM pass over ctx.batch


def score_between(ctx: Context, start: int, perms: dict[int, dict[str, np.ndarray]]) -> dict:
    """Matching score start -> L for each {L: {kind: perm}}, in one pass over ctx.batch."""
    by = {L: s.to(ctx.act_device) for L, s in ctx.saes.items()}
    need = [start, *perms]
    acc = {(L, k): MatchingScoreAccumulator(p) for L, d in perms.items() for k, p in d.items()}
    for rows in ctx.activation_rows(need):
        a = active(by[start], rows[0])
        for i, L in enumerate(perms, start=1):
            b = active(by[L], rows[i])
            for k in perms[L]:
                acc[(L, k)].update(a, b)
    return {L: {k: acc[(L, k)].result()[0] for k in d} for L, d in perms.items()}


@dataclass
class PersistenceRow:
    """Start layer s -> layer L: exact LAP vs composition of adjacent matchings."""

    start_layer: int
    layer: int
    distance: int
    agreement: float  # fraction of features with exact[i] == composition[i]
    mse_exact: float  # mean pair MSE on folded weights (matching mode's cost)
    mse_composition: float
    matching_score_exact: float | None  # None without experiment.matching_score
    matching_score_composition: float | None

    def entry(self) -> dict:
        """The results.json entry: everything but start_layer (and unset scores)."""
        d = {k: v for k, v in asdict(self).items() if k != "start_layer"}
        return {k: v for k, v in d.items() if not (k.startswith("matching_score") and v is None)}


def check_starts(starts: list[int], layers: list[int]) -> list[int]:
    """The start layers, each a layer of the set with a later layer; ValueError otherwise."""
    bad = [s for s in starts if s not in layers[:-1]]
    if bad or not starts:
        raise ValueError(
            f"start_layers {starts}: each must be a layer of the SAE set with a later layer;"
            f" the set has layers {layers}. Set experiment.start_layers=[...]"
        )
    return list(starts)


def plot(table: list[PersistenceRow], starts: list[int], show_score: bool):
    """One column per start layer: agreement, MSE and matching score against the target layer."""
    metrics = ["agreement", "mse"] + (["matching_score"] if show_score else [])
    fig, axes = plotting.new_figure(
        len(metrics), len(starts), panel_size=(3.8, 2.8), squeeze=False, sharex=True, sharey="row"
    )
    targets = sorted({r.layer for r in table})
    for c, s in enumerate(starts):
        rows = [asdict(r) for r in table if r.start_layer == s]
        xs = [r["layer"] for r in rows]
        ax = axes[0][c]
        plotting.line_per_layer(ax, xs, [r["agreement"] for r in rows], color="black")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"from layer {s}")
        for r_i, name in enumerate(metrics[1:], start=1):
            for kind in PERM_KINDS:
                ys = [r[f"{name}_{kind}"] for r in rows]
                plotting.line_per_layer(axes[r_i][c], xs, ys, method=kind)
        for r_i, name in enumerate(metrics):
            last = r_i == len(metrics) - 1
            plotting.label_axes(
                axes[r_i][c],
                x="layer" if last else None,
                y=name if c == 0 else None,
                legend=c == 0 and r_i == 1,
            )
    axes[0][0].set_ylabel("agreement: exact = composed\n(fraction of features)")
    axes[1][0].set_ylabel("mean pair MSE (folded)")
    axes[0][0].set_xticks(targets)
    axes[0][0].set_xlim(min(targets) - 0.5, max(targets) + 0.5)
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Exact vs composed matchings from each start layer to every later layer."""
    mode, layers, by = plain(ctx.cfg.matching.mode), ctx.layers, ctx.saes
    starts = check_starts(opts.start_layers, layers)
    adjacent = ctx.perms()
    table, summary = [], {"mode": mode, "fold": bool(ctx.cfg.matching.fold), "layers": {}}
    for s in starts:
        comp = composed_perms(layers, adjacent, s)
        if opts.max_distance is not None:
            comp = {L: p for L, p in comp.items() if L - s <= opts.max_distance}
        exact = exact_perms(ctx, s, list(comp))
        perms = {L: {"exact": exact[L], "composition": comp[L]} for L in comp}
        scores = score_between(ctx, s, perms) if opts.matching_score else {}
        rows = []
        for L, d in perms.items():
            mse = [float(folded_mse(by[s], by[L], d[k], mode).mean()) for k in PERM_KINDS]
            sc = [scores[L][k] if scores else None for k in PERM_KINDS]
            rows.append(PersistenceRow(s, L, L - s, agreement(*d.values()), *mse, *sc))
        table += rows
        summary["layers"][str(s)] = {str(r.layer): r.entry() for r in rows}
    res = Results(summary=summary, metrics=table, headline=table)
    res.table("persistence", table)
    res.figures["persistence"] = plot(table, starts, opts.matching_score)
    return res
