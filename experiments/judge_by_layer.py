"""LLM-judge labels of matched features, layer by layer, folded vs unfolded (Fig. 4, Fig. 7 left).

`n_paths` features of the first layer (seeded, among those with a description) are followed
through the adjacent matchings; each step t -> t+1 asks the judge whether the description of
feature i at t and of perm_t[i] at t+1 are 1 DIFFERENT / 2 MAYBE / 3 SAME. Per layer and variant:
label counts, unparseable answers, skipped (missing/dead) descriptions, mean score (GPTScore).

Judge failures: chat judges cache every answer as it arrives. If calls still fail after the
judge's retries, the run records the answered pairs (status "partial" in results.json, with a
message saying how to resume) and then re-raises the JudgeCallError, so the command exits
non-zero; rerunning the same command resumes with only the missing pairs.
Choosing and asking the pairs is saematch.judge.labelling; the judge's part of results.json
is saematch_experiments.support.judging (both shared with mse_by_label and persistence_judge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saematch import plotting
from saematch.judge.labelling import Labels, judge_items, sample_described, skip_reason
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.judging import judged

VARIANTS = ("folded", "unfolded", "vanilla")  # vanilla: identity permutation


@dataclass
class Options:
    n_paths: int  # paths followed from the first layer (paper: 100)
    variants: list[str]  # any of folded, unfolded, vanilla (identity)
    seed: int  # choice of the start features
    exclude_dead: bool  # treat the zoo's "never active" description as missing


# -- the experiment ------------------------------------------------------------------------
@dataclass
class Step:
    """One step of a path: `feature` at `layer` -> `next_feature` at `next_layer`."""

    variant: str  # folded | unfolded | vanilla
    path: int
    layer: int
    next_layer: int
    feature: int
    next_feature: int
    skip: str | None  # why it is not judged: missing | dead; None: judged
    label: int | str | None = None  # 1 DIFFERENT .. 3 SAME; None unparseable; "pending"
    raw: str | None = None  # the judge's answer
    desc_a: str | None = None
    desc_b: str | None = None


@dataclass
class LayerRow:
    """The labels of one variant's steps layer -> next_layer (its columns: Labels')."""

    variant: str
    layer: int
    next_layer: int
    labels: Labels


def path_steps(ctx: Context, perms: dict[str, dict], starts: list[int], exclude_dead: bool):
    """One Step per (variant, path, step t -> t+1), with both descriptions and a skip reason."""
    descs = {L: ctx.descriptions(L) for L in ctx.layers}
    steps = []
    for variant, ps in perms.items():
        for k, i in enumerate(starts):
            for t, u in ctx.next_layer.items():
                j = int(ps[t][i])
                a, b = descs[t].get(i), descs[u].get(j)
                skip = skip_reason(a, b, exclude_dead)
                steps.append(Step(variant, k, t, u, i, j, skip, desc_a=a, desc_b=b))
                i = j
    return steps


def plot(rows: list[LayerRow], variants: list[str]):
    """Stacked SAME/MAYBE/DIFFERENT bars per layer, one panel per variant, plus mean score.

    Steps not judged (description missing or dead, answer unparseable or pending) are the grey
    top of each bar, so every bar is as tall as the number of paths.
    """
    fig, axes = plotting.new_figure(1, len(variants) + 1, panel_size=(4.2, 3.3), squeeze=False)
    top = max(r.labels.n_steps for r in rows) if rows else 1
    for ax, v in zip(axes[0], variants, strict=False):
        sel = [r for r in rows if r.variant == v]
        xs, bottom = [r.layer for r in sel], np.zeros(len(sel))
        for name in ("DIFFERENT", "MAYBE", "SAME"):
            h = np.array([getattr(r.labels, name.lower()) for r in sel], dtype=float)
            ax.bar(xs, h, bottom=bottom, color=plotting.method_color(name), label=name)
            bottom += h
        rest = np.array([r.labels.n_steps for r in sel], dtype=float) - bottom
        grey = {"color": "none", "edgecolor": plotting.GREY, "hatch": "//", "linewidth": 0.5}
        ax.bar(xs, rest, bottom=bottom, label="not judged", **grey)
        ax.set_xticks(xs)
        ax.set_ylim(0, top * 1.3)  # room for the legend
        plotting.label_axes(ax, x="layer_pair", y="count", title=plotting.method_label(v))
        ax.legend(ncols=2, loc="upper center")
    ax = axes[0][-1]
    for v in variants:
        sel = [r for r in rows if r.variant == v]
        plotting.line_per_layer(
            ax, [r.layer for r in sel], [r.labels.gpt_score for r in sel], method=v
        )
    ax.set_ylim(0.9, 3.1)
    plotting.label_axes(ax, x="layer_pair", y="judge_score", title="Mean judge score")
    return fig


def variant_perms(ctx: Context, variants: list[str], width: int) -> dict[str, dict]:
    """{variant: {t: perm (F,)}}: folded / unfolded matching, or the identity (vanilla)."""
    if not variants or any(v not in VARIANTS for v in variants):
        raise ValueError(f"variants must be a non-empty subset of {VARIANTS}, got {variants}")
    identity = {t: np.arange(width) for t in ctx.next_layer}
    return {v: identity if v == "vanilla" else ctx.perms(fold=v == "folded") for v in variants}


def run(opts: Options, ctx: Context) -> Results:
    """Judge labels along n_paths feature paths, per layer, for each matching variant."""
    variants, width = list(opts.variants), ctx.saes[ctx.layers[0]].width
    perms = variant_perms(ctx, variants, width)
    first = ctx.descriptions(ctx.layers[0])
    starts = sample_described(first, width, opts.n_paths, opts.seed, opts.exclude_dead)
    steps = path_steps(ctx, perms, starts, opts.exclude_dead)
    error = judge_items(ctx.judge, steps)
    rows = [
        LayerRow(v, t, u, Labels.of([s for s in steps if (s.variant, s.layer) == (v, t)]))
        for v in variants
        for t, u in ctx.next_layer.items()
    ]
    res = Results(metrics=rows, headline=rows)
    res.table("judge_by_layer", rows)
    res.table("judge_pairs", steps)
    res.figures["judge_by_layer"] = plot(rows, variants)
    overall = {v: Labels.of([s for s in steps if s.variant == v]) for v in variants}
    res.summary = {
        "n_paths": len(starts),
        "n_paths_requested": opts.n_paths,
        "start_layer": ctx.layers[0],
        "start_features": starts,
        "variants": variants,
        "overall": {v: labels.as_summary() for v, labels in overall.items()},
        "layers": {
            str(t): {r.variant: r.labels.as_summary() for r in rows if r.layer == t}
            for t in ctx.next_layer
        },
    }
    return judged(ctx, res, error)
