"""Labelling matched feature pairs with a judge: which pairs to ask, asking, counting answers.

A pair (description of feature i at layer t, description of its partner at t+1) is judged
1 DIFFERENT / 2 MAYBE / 3 SAME (paper App. C); a pair with a missing or dead description is
skipped and counted as such. Chat judges cache every answer, so a run that fails part way
keeps its answered pairs (`judge_pairs`, `judge_items`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from saematch.judge.base import ChatJudge, JudgeCallError, JudgeResult
from saematch.judge.cache import cache_key
from saematch.judge.parse import parse_label
from saematch.judge.prompt import LABEL_NAMES, format_user_message
from saematch.metrics import gpt_score, label_counts
from saematch.zoo.describe import NEVER_ACTIVE


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
