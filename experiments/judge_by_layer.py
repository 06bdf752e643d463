"""LLM-judge labels of matched features, layer by layer, folded vs unfolded (Fig. 4, Fig. 7 left).

`n_paths` features of the first layer (seeded, among those with a description) are followed
through the adjacent matchings; each step t -> t+1 asks the judge whether the description of
feature i at t and of perm_t[i] at t+1 are 1 DIFFERENT / 2 MAYBE / 3 SAME. Per layer and variant:
label counts, unparseable answers, skipped (missing/dead) descriptions, mean score (GPTScore).

Judge failures: chat judges cache every answer as it arrives. If calls still fail after the
judge's retries, the run records the answered pairs (status "partial" in results.json, with a
message saying how to resume) and then re-raises the JudgeCallError, so the command exits
non-zero; rerunning the same command resumes with only the missing pairs.
The helpers below (`sample_described`, `judge_pairs`, `summarize`, `judge_info`,
`judged`) are shared by `mse_by_label` and `persistence_judge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
def path_steps(ctx: Context, perms: dict[str, dict], starts: list[int], exclude_dead: bool):
    """One dict per (variant, path, step t -> t+1) with both descriptions and a skip reason."""
    descs = {L: ctx.descriptions(L) for L in ctx.layers}
    steps = []
    for variant, ps in perms.items():
        for k, i in enumerate(starts):
            for t, u in ctx.next_layer.items():
                j = int(ps[t][i])
                a, b = descs[t].get(i), descs[u].get(j)
                steps.append(
                    dict(
                        variant=variant,
                        path=k,
                        layer=t,
                        next_layer=u,
                        feature=i,
                        next_feature=j,
                        desc_a=a,
                        desc_b=b,
                        skip=skip_reason(a, b, exclude_dead),
                    )
                )
                i = j
    return steps


def summarize_steps(steps: list[dict]) -> dict:
    """`summarize` of a group of steps (labels of judged steps, reasons of skipped ones)."""
    return summarize(
        [s["label"] for s in steps if s["skip"] is None],
        [s["skip"] for s in steps if s["skip"] is not None],
    )


def table_row(summ: dict, **keys) -> dict:
    """A flat CSV row of a `summarize` dict."""
    counts = {k.lower(): c for k, c in summ["counts"].items()}
    return {**keys, **{k: v for k, v in summ.items() if k != "counts"}, **counts}


def plot(rows: list[dict], variants: list[str]):
    """Stacked SAME/MAYBE/DIFFERENT bars per layer, one panel per variant, plus mean score.

    Steps not judged (description missing or dead, answer unparseable or pending) are the grey
    top of each bar, so every bar is as tall as the number of paths.
    """
    fig, axes = plotting.new_figure(1, len(variants) + 1, panel_size=(4.2, 3.3), squeeze=False)
    top = max(r["n_steps"] for r in rows) if rows else 1
    for ax, v in zip(axes[0], variants, strict=False):
        sel = [r for r in rows if r["variant"] == v]
        xs, bottom = [r["layer"] for r in sel], np.zeros(len(sel))
        for name in ("DIFFERENT", "MAYBE", "SAME"):
            h = np.array([r[name.lower()] for r in sel], dtype=float)
            ax.bar(xs, h, bottom=bottom, color=plotting.method_color(name), label=name)
            bottom += h
        rest = np.array([r["n_steps"] for r in sel], dtype=float) - bottom
        ax.bar(
            xs,
            rest,
            bottom=bottom,
            color="none",
            edgecolor=plotting.GREY,
            hatch="//",
            linewidth=0.5,
            label="not judged",
        )
        ax.set_xticks(xs)
        ax.set_ylim(0, top * 1.3)  # room for the legend
        plotting.label_axes(ax, x="layer_pair", y="count", title=plotting.method_label(v))
        ax.legend(ncols=2, loc="upper center")
    ax = axes[0][-1]
    for v in variants:
        sel = [r for r in rows if r["variant"] == v]
        xs, ys = [r["layer"] for r in sel], [r["gpt_score"] for r in sel]
        plotting.line_per_layer(ax, xs, ys, method=v)
    ax.set_ylim(0.9, 3.1)
    plotting.label_axes(ax, x="layer_pair", y="judge_score", title="Mean judge score")
    return fig


PAIR_COLUMNS = (
    "variant",
    "path",
    "layer",
    "next_layer",
    "feature",
    "next_feature",
    "skip",
    "label",
    "raw",
    "desc_a",
    "desc_b",
)


def variant_perms(ctx: Context, variants: list[str], width: int) -> dict[str, dict]:
    """{variant: {t: perm (F,)}}: folded / unfolded matching, or the identity (vanilla)."""
    return {
        v: {t: np.arange(width) for t in ctx.next_layer}
        if v == "vanilla"
        else ctx.perms(fold=v == "folded")
        for v in variants
    }


def run(opts: Options, ctx: Context) -> Results:
    """Judge labels along n_paths feature paths, per layer, for each matching variant."""
    variants = list(opts.variants)
    if not variants or any(v not in VARIANTS for v in variants):
        raise ValueError(f"variants must be a non-empty subset of {VARIANTS}, got {variants}")
    width = ctx.saes[ctx.layers[0]].width
    perms = variant_perms(ctx, variants, width)
    first = ctx.descriptions(ctx.layers[0])
    starts = sample_described(first, width, opts.n_paths, opts.seed, opts.exclude_dead)
    steps = path_steps(ctx, perms, starts, opts.exclude_dead)
    todo = [s for s in steps if s["skip"] is None]
    answers, error = judge_pairs(ctx.judge, [(s["desc_a"], s["desc_b"]) for s in todo])
    for s, r in zip(todo, answers, strict=True):
        s["label"], s["raw"] = ("pending", None) if r is None else (r.label, r.raw)
    rows, per_layer = [], {}
    for v in variants:
        for t, nxt in ctx.next_layer.items():
            summ = summarize_steps([s for s in steps if s["variant"] == v and s["layer"] == t])
            per_layer.setdefault(str(t), {})[v] = summ
            rows.append(table_row(summ, variant=v, layer=t, next_layer=nxt))
    res = Results(metrics=rows, headline=rows)
    res.table("judge_by_layer", rows)
    res.table("judge_pairs", [{k: s.get(k) for k in PAIR_COLUMNS} for s in steps])
    res.figures["judge_by_layer"] = plot(rows, variants)
    res.summary = {
        "n_paths": len(starts),
        "n_paths_requested": opts.n_paths,
        "start_layer": ctx.layers[0],
        "start_features": starts,
        "variants": variants,
        "overall": {v: summarize_steps([s for s in steps if s["variant"] == v]) for v in variants},
        "layers": per_layer,
    }
    return judged(ctx, res, error)
