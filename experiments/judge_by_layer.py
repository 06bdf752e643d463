"""LLM-judge labels of matched features, layer by layer, folded vs unfolded (Fig. 4, Fig. 7 left).

`n_paths` features of the first layer (seeded, among those with a description) are followed
through the adjacent matchings; each step t -> t+1 asks the judge whether the description of
feature i at t and of perm_t[i] at t+1 are 1 DIFFERENT / 2 MAYBE / 3 SAME. Per layer and variant:
label counts, unparseable answers, skipped (missing/dead) descriptions, mean score (GPTScore).

Judge failures: chat judges cache every answer as it arrives. If calls still fail after the
judge's retries, the run records the answered pairs (status "partial" in results.json, with a
message saying how to resume) and then re-raises the JudgeCallError, so the command exits
non-zero; rerunning the same command resumes with only the missing pairs.
The helpers below (`sample_described`, `judge_pairs`, `summarize`, `Labels`, `judge_items`,
`judge_info`, `judged`) are shared by `mse_by_label` and `persistence_judge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from experiments.common import Results
from experiments.context import Context, plain
from experiments.targets import short_name
from saematch import plotting
from saematch.judge import (
    LABEL_NAMES,
    ChatJudge,
    JudgeCallError,
    JudgeResult,
    cache_key,
    format_user_message,
    parse_label,
)
from saematch.metrics import gpt_score, label_counts
from saematch.zoo.describe import NEVER_ACTIVE

PROXY_JUDGES = {
    "lexical": "word-overlap (Jaccard) proxy, NOT the paper's LLM judge (GPT-4o mini, App. C)",
    "embedding": "sentence-embedding cosine proxy, NOT the paper's LLM judge (App. C)",
}
VARIANTS = ("folded", "unfolded", "vanilla")  # vanilla: identity permutation


@dataclass
class Options:
    n_paths: int  # paths followed from the first layer (paper: 100)
    variants: list[str]  # any of folded, unfolded, vanilla (identity)
    seed: int  # choice of the start features
    exclude_dead: bool  # treat the zoo's "never active" description as missing


# -- shared helpers ------------------------------------------------------------------------
def usable(text: str | None, exclude_dead: bool) -> bool:
    """A description the judge may see: present, and not the zoo's dead-feature marker."""
    return text is not None and not (exclude_dead and text == NEVER_ACTIVE)


def skip_reason(a: str | None, b: str | None, exclude_dead: bool) -> str | None:
    """Why a pair is not judged: "missing" (no description), "dead", or None (judge it)."""
    if a is None or b is None:
        return "missing"
    return None if usable(a, exclude_dead) and usable(b, exclude_dead) else "dead"


def sample_described(src, width: int, n: int, seed: int, exclude_dead: bool) -> list[int]:
    """Up to n feature indices in [0, width) with a usable description, in seeded random order."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for i in rng.permutation(width).tolist():  # asks only as many as needed (API sources)
        if usable(src.get(i), exclude_dead):
            out.append(i)
            if len(out) == n:
                break
    return out


def judge_pairs(judge, pairs: Sequence[tuple[str, str]]):
    """Label every pair: (results, None), or after a JudgeCallError (partial results, error).

    In the partial case each entry is the cached answer of a chat judge or None (pending).
    """
    try:
        return judge.judge_many(pairs), None
    except JudgeCallError as err:
        if not isinstance(judge, ChatJudge):
            raise
        out: list[JudgeResult | None] = []
        for a, b in pairs:
            key = cache_key(judge.cache_model, judge.system_prompt, format_user_message(a, b))
            hit = judge.cache.get(key)
            out.append(
                None if hit is None else JudgeResult(parse_label(hit["raw"]), hit["raw"], True)
            )
        return out, err


def summarize(labels: Sequence, skipped: Sequence[str] = ()) -> dict:
    """Counts of one group of steps: labels (int 1-3, None unparseable, "pending") + skips.

    judged = counts + unparsed; n_steps = judged + pending + missing + dead.
    """
    answered = [x for x in labels if x != "pending"]
    counts = label_counts(answered)
    return {
        "n_steps": len(labels) + len(skipped),
        "judged": len(answered),
        "counts": {LABEL_NAMES[k]: v for k, v in counts.items()},
        "unparsed": len(answered) - sum(counts.values()),
        "pending": len(labels) - len(answered),
        "missing": sum(s == "missing" for s in skipped),
        "dead": sum(s == "dead" for s in skipped),
        "gpt_score": gpt_score(answered),
    }


@dataclass
class Labels:
    """`summarize` of a group of steps as columns: judged = same + maybe + different + unparsed,
    n_steps = judged + pending + missing + dead; gpt_score the mean label (None: no label)."""

    gpt_score: float | None
    same: int
    maybe: int
    different: int
    n_steps: int
    judged: int
    unparsed: int
    pending: int
    missing: int
    dead: int

    @classmethod
    def of(cls, items: Sequence) -> Labels:
        """The counts of `items` (anything with .skip and .label: Step, persistence's Item)."""
        s = summarize(
            [x.label for x in items if x.skip is None],
            [x.skip for x in items if x.skip is not None],
        )
        counts = {k.lower(): v for k, v in s.pop("counts").items()}
        return cls(**s, **counts)

    def as_summary(self) -> dict:
        """As `summarize` returns it (results.json): counts nested, DIFFERENT first."""
        d = asdict(self)
        return {**d, "counts": {name: d.pop(name.lower()) for name in LABEL_NAMES.values()}}


def judge_items(judge, items: Sequence):
    """Ask the judge about every item not skipped; fills item.label / item.raw ("pending",
    None for pairs a failing chat judge did not answer). Returns the JudgeCallError or None."""
    todo = [x for x in items if x.skip is None]
    answers, error = judge_pairs(judge, [(x.desc_a, x.desc_b) for x in todo])
    for x, r in zip(todo, answers, strict=True):
        x.label, x.raw = ("pending", None) if r is None else (r.label, r.raw)
    return error


def judge_info(ctx: Context) -> dict:
    """Which judge labelled the pairs, whether it is a proxy, and its counters."""
    j = plain(ctx.cfg.judge)
    kind = short_name(ctx.cfg.judge)
    return {
        "kind": kind,
        "target": j["_target_"],
        "model": j.get("model") or j.get("model_name_or_path"),
        "proxy": kind in PROXY_JUDGES,
        "note": PROXY_JUDGES.get(kind, "LLM judge with the paper's system prompt (App. C)"),
        "thresholds": j.get("thresholds") or None,
        "counters": ctx.judge.counters.as_dict(),
        "descriptions": ctx.cfg.descriptions._target_,
    }


def judged(ctx: Context, res: Results, error: JudgeCallError | None) -> Results:
    """Add the judge's info to res.summary; after a judge failure mark it partial (the
    skeleton records the answered pairs, then re-raises `error`)."""
    res.summary["judge"] = judge_info(ctx)
    res.summary["status"] = "ok" if error is None else "partial"
    if error is not None:
        res.summary["error"] = (
            f"the judge failed ({error}); the results above cover only the answered pairs. "
            "Rerun the same command to resume: answered pairs come from the judge cache."
        )
        res.error = error
    return res


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
