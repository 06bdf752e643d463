"""The judge's part of results.json: which judge labelled the pairs, and a judge failure.

Shared by the judge-based experiments (judge_by_layer, mse_by_label, persistence_judge).
"""

from __future__ import annotations

from saematch.judge import JudgeCallError
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.harness.targets import short_name

PROXY_JUDGES = {
    "lexical": "word-overlap (Jaccard) proxy, NOT the paper's LLM judge (GPT-4o mini, App. C)",
    "embedding": "sentence-embedding cosine proxy, NOT the paper's LLM judge (App. C)",
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
