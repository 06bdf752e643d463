"""Feature persistence judged by the LLM judge (Fig. 8, Sec. 5.4): exact LAP vs composition.

From each start layer s, `n_features` features (seeded, among those with a description) are
mapped to every later layer L twice: by the exact matching s -> L (one LAP on the two SAEs,
cfg.matching's mode/fold/solver) and by the composition of the adjacent permutations
(perm_AC = perm_BC[perm_AB], Sec. 3.2). The judge labels (description of i at s, description
of its image at L); the mean score (1 DIFFERENT .. 3 SAME) is plotted against L − s, a line per
start layer and method. At distance 1 both methods are the same LAP. The permutations are those
of `persistence` (the data-based version of this figure; support/perms.py). Judge failures are
handled as in `judge_by_layer`: partial results are recorded, then the JudgeCallError is re-raised.
"""

from __future__ import annotations

from dataclasses import dataclass

from saematch import plotting
from saematch.feature_paths import agreement, composed_perms
from saematch.judge.labelling import Labels, judge_items, sample_described, skip_reason
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.judging import judged
from saematch_experiments.support.perms import PERM_KINDS, exact_perms

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


@dataclass
class Item:
    """Feature `feature` of start layer s and its `image` at layer L under one method."""

    start_layer: int
    layer: int
    method: str  # exact | composition
    feature: int
    image: int
    skip: str | None  # why it is not judged: missing | dead; None: judged
    label: int | str | None = None  # 1 DIFFERENT .. 3 SAME; None unparseable; "pending"
    raw: str | None = None  # the judge's answer
    desc_a: str | None = None
    desc_b: str | None = None


@dataclass
class DistanceRow:
    """The labels of one start layer's features at layer L under one method."""

    start_layer: int
    layer: int
    distance: int  # L − start_layer
    method: str
    agreement: float  # share of the features whose exact and composed images agree
    labels: Labels


def targets_of(layers: list[int], start: int, max_distance: int | None) -> list[int]:
    """The later layers L of the set with L − start ≤ max_distance (all when None)."""
    if start not in layers[:-1]:
        raise ValueError(f"start layer {start} must be one of {layers[:-1]} (a later layer exists)")
    return [L for L in layers if start < L and (max_distance is None or L - start <= max_distance)]


def plot(rows: list[DistanceRow], starts: list[int]):
    """Mean judge score vs distance (a line per start layer and method); exact = composed share."""
    fig, (ax, ax_ag) = plotting.new_figure(1, 2, panel_size=(4.6, 3.4))
    for k, s in enumerate(starts):
        color = plotting.PALETTE[k % len(plotting.PALETTE)]
        for m in PERM_KINDS:
            sel = [r for r in rows if r.start_layer == s and r.method == m]
            xs, ys = [r.distance for r in sel], [r.labels.gpt_score for r in sel]
            label = f"from layer {s}, {plotting.method_label(m)}"
            plotting.line_per_layer(ax, xs, ys, label, color=color, linestyle=LINESTYLES[m])
        sel = [r for r in rows if r.start_layer == s and r.method == "exact"]
        xs, ys = [r.distance for r in sel], [r.agreement for r in sel]
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


def build_items(ctx: Context, opts: Options) -> tuple[list[Item], dict]:
    """One Item per (start, target, method, feature) with its descriptions and skip reason;
    and {(s, L): agreement of the exact and composed images}."""
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
                    skip = skip_reason(a, b, opts.exclude_dead)
                    items.append(Item(s, L, m, i, j, skip, desc_a=a, desc_b=b))
    return items, agree


def labels_of(items: list[Item], start: int, layer: int, method: str) -> Labels:
    """The Labels of the items of one (start layer, layer, method)."""
    return Labels.of(
        [x for x in items if (x.start_layer, x.layer, x.method) == (start, layer, method)]
    )


def run(opts: Options, ctx: Context) -> Results:
    """Judge score of features from each start layer vs their images at later layers."""
    items, agree = build_items(ctx, opts)
    error = judge_items(ctx.judge, items)
    rows = [
        DistanceRow(s, L, L - s, m, ag, labels_of(items, s, L, m))
        for (s, L), ag in agree.items()
        for m in PERM_KINDS
    ]
    res = Results(metrics=rows, headline=rows)
    res.table("persistence_judge", rows)
    res.table("persistence_judge_pairs", items)
    res.figures["persistence_judge"] = plot(rows, list(opts.start_layers))
    per_start = {}
    for r in rows:
        entry = {**r.labels.as_summary(), "agreement": r.agreement}
        per_start.setdefault(str(r.start_layer), {}).setdefault(r.method, {})[str(r.layer)] = entry
    res.summary = {"start_layers": per_start, "matching": plain(ctx.cfg.matching)}
    return judged(ctx, res, error)
