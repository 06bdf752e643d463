"""Feature persistence judged by the LLM judge (Fig. 8, Sec. 5.4): exact LAP vs composition.

From each start layer s, `n_features` features (seeded, among those with a description) are
mapped to every later layer L twice: by the exact matching s -> L (one LAP on the two SAEs,
cfg.matching's mode/fold/solver) and by the composition of the adjacent permutations
(perm_AC = perm_BC[perm_AB], Sec. 3.2). The judge labels (description of i at s, description
of its image at L); the mean score (1 DIFFERENT .. 3 SAME) is plotted against L − s, a line per
start layer and method. At distance 1 both methods are the same LAP. The permutations come from
`experiments.persistence` (the data-based version of this figure). Judge failures are handled
as in `judge_by_layer`: partial results are recorded, then the JudgeCallError is re-raised.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.common import Results
from experiments.context import Context, plain
from experiments.judge_by_layer import (
    judge_pairs,
    judged,
    sample_described,
    skip_reason,
    summarize,
    table_row,
)
from experiments.persistence import PERM_KINDS, agreement, composed_perms, exact_perms
from saematch import plotting

LINESTYLES = {"exact": "-", "composition": "--"}


@dataclass
class Options:
    # Start layers s (each in the SAE set, not the last). The paper (Gemma 2 2B) uses
    # [10, 12, 20]; the tiny zoo has 6 layers, so the default starts early (as `persistence`).
    start_layers: list[int]
    max_distance: int | None  # only targets with L − s ≤ this; null = up to the last layer
    n_features: int  # features judged per start layer
    seed: int  # choice of the features
    exclude_dead: bool  # treat the zoo's "never active" description as missing


def targets_of(layers: list[int], start: int, max_distance: int | None) -> list[int]:
    """The later layers L of the set with L − start ≤ max_distance (all when None)."""
    if start not in layers[:-1]:
        raise ValueError(f"start layer {start} must be one of {layers[:-1]} (a later layer exists)")
    return [L for L in layers if start < L and (max_distance is None or L - start <= max_distance)]


def plot(rows: list[dict], starts: list[int]):
    """Mean judge score vs distance (a line per start layer and method); exact = composed share."""
    fig, (ax, ax_ag) = plotting.new_figure(1, 2, panel_size=(4.6, 3.4))
    for k, s in enumerate(starts):
        color = plotting.PALETTE[k % len(plotting.PALETTE)]
        for m in PERM_KINDS:
            sel = [r for r in rows if r["start_layer"] == s and r["method"] == m]
            xs, ys = [r["distance"] for r in sel], [r["gpt_score"] for r in sel]
            label = f"from layer {s}, {plotting.method_label(m)}"
            plotting.line_per_layer(ax, xs, ys, label, color=color, linestyle=LINESTYLES[m])
        sel = [r for r in rows if r["start_layer"] == s and r["method"] == "exact"]
        xs, ys = [r["distance"] for r in sel], [r["agreement"] for r in sel]
        plotting.line_per_layer(ax_ag, xs, ys, f"from layer {s}", color=color)
    ax.set_ylim(0.9, 3.1)
    plotting.label_axes(ax, x="distance (layers, L − s)", y="judge_score", title="Persistence")
    ax_ag.set_ylim(-0.02, 1.02)
    plotting.label_axes(
        ax_ag,
        x="distance (layers, L − s)",
        y="fraction of features, exact = composition",
        title="Exact vs composed",
    )
    return fig


def build_items(ctx: Context, opts) -> tuple[list[dict], dict]:
    """One item per (start, target, method, feature) with its descriptions and skip reason."""
    layers = ctx.layers
    adjacent = ctx.perms()
    items, agree = [], {}
    for s in opts.start_layers:
        targets = targets_of(layers, s, opts.max_distance)
        perms = {
            "exact": exact_perms(ctx, s, targets),
            "composition": composed_perms(layers, adjacent, s),
        }
        src = ctx.descriptions(s)
        width = len(adjacent[layers[0]])
        feats = sample_described(src, width, opts.n_features, opts.seed, opts.exclude_dead)
        for L in targets:
            dst = ctx.descriptions(L)
            agree[(s, L)] = agreement(perms["exact"][L], perms["composition"][L])
            for m in PERM_KINDS:
                for i in feats:
                    j = int(perms[m][L][i])
                    a, b = src.get(i), dst.get(j)
                    items.append(
                        dict(
                            start_layer=s,
                            layer=L,
                            method=m,
                            feature=i,
                            image=j,
                            desc_a=a,
                            desc_b=b,
                            skip=skip_reason(a, b, opts.exclude_dead),
                        )
                    )
    return items, agree


def run(opts: Options, ctx: Context) -> Results:
    """Judge score of features from each start layer vs their images at later layers."""
    items, agree = build_items(ctx, opts)
    todo = [it for it in items if it["skip"] is None]
    answers, error = judge_pairs(ctx.judge, [(it["desc_a"], it["desc_b"]) for it in todo])
    for it, r in zip(todo, answers, strict=True):
        it["label"], it["raw"] = ("pending", None) if r is None else (r.label, r.raw)
    rows, per_start = [], {}
    for (s, L), ag in agree.items():
        for m in PERM_KINDS:
            sel = [
                it for it in items if (it["start_layer"], it["layer"], it["method"]) == (s, L, m)
            ]
            summ = summarize(
                [it["label"] for it in sel if it["skip"] is None],
                [it["skip"] for it in sel if it["skip"] is not None],
            )
            summ["agreement"] = ag
            per_start.setdefault(str(s), {}).setdefault(m, {})[str(L)] = summ
            rows.append(table_row(summ, start_layer=s, layer=L, distance=L - s, method=m))
    res = Results(metrics=rows, headline=rows)
    res.table("persistence_judge", rows)
    cols = (
        "start_layer",
        "layer",
        "method",
        "feature",
        "image",
        "skip",
        "label",
        "raw",
        "desc_a",
        "desc_b",
    )
    res.table("persistence_judge_pairs", [{k: it.get(k) for k in cols} for it in items])
    res.figures["persistence_judge"] = plot(rows, list(opts.start_layers))
    res.summary = {"start_layers": per_start, "matching": plain(ctx.cfg.matching)}
    return judged(ctx, res, error)
