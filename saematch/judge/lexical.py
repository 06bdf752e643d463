"""Judge by word overlap: an offline, deterministic proxy, never the paper's LLM judge."""

from __future__ import annotations

import re
from collections.abc import Sequence

from saematch.judge.base import Judge, JudgeResult
from saematch.judge.embedding import check_thresholds, label_from_score
from saematch.judge.prompt import check_pair

# English function words plus the boilerplate of feature descriptions ("references to ...",
# and the "e.g." that every built-in zoo description carries).
_STOP = """a an and are as at be by for from in into is it its of on or that the their this to
with words word tokens token related references mentions various terms phrases text
context contexts specific particularly especially e g eg i ie"""  # "e.g." and "i.e." split

STOPWORDS = frozenset(_STOP.split())


def content_tokens(text: str) -> set[str]:
    """Lower-cased word tokens `[a-z0-9]+` of `text`, stopwords removed."""
    return {t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in STOPWORDS}


class LexicalJudge(Judge):
    """Jaccard overlap J = |A ∩ B| / |A ∪ B| of content words, mapped to 1/2/3.

    J >= t_same -> 3 SAME, J >= t_maybe -> 2 MAYBE, else 1 DIFFERENT. An offline proxy for
    tests and the no-network default, NOT the paper's judge (App. C uses GPT-4o mini). A
    description with no content word gives label None.
    """

    def __init__(self, thresholds: Sequence[float] = (0.15, 0.4)):
        super().__init__()
        self.thresholds = check_thresholds(thresholds)

    def judge(self, desc_a: str, desc_b: str) -> JudgeResult:
        """Label one pair by Jaccard overlap."""
        check_pair(desc_a, desc_b)
        a, b = content_tokens(desc_a), content_tokens(desc_b)
        self.counters.add(calls=1)
        if not a or not b:
            self.counters.add(unparsed=1)
            return JudgeResult(None, "jaccard=undefined (no content words)")
        j = len(a & b) / len(a | b)
        return JudgeResult(label_from_score(j, self.thresholds), f"jaccard={j:.4f}")
