"""Judge by cosine similarity of sentence embeddings (a cheap proxy, not the paper's judge)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from saematch.judge.base import Judge, JudgeResult, Pair
from saematch.judge.prompt import DIFFERENT, MAYBE, SAME, check_pair

Encode = Callable[[list[str]], Any]  # texts -> (n, d) array


def label_from_score(score: float, thresholds: Sequence[float]) -> int:
    """score >= t_same -> 3 SAME; >= t_maybe -> 2 MAYBE; else 1 DIFFERENT."""
    t_maybe, t_same = thresholds
    return SAME if score >= t_same else MAYBE if score >= t_maybe else DIFFERENT


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, float]:
    """Validate (t_maybe, t_same) with t_maybe <= t_same."""
    if len(thresholds) != 2 or thresholds[0] > thresholds[1]:
        raise ValueError(
            f"thresholds must be (t_maybe, t_same) with t_maybe <= t_same, got {thresholds}"
        )
    return float(thresholds[0]), float(thresholds[1])


class EmbeddingJudge(Judge):
    """cos(e_a, e_b) of sentence embeddings, mapped to 1/2/3 by (t_maybe, t_same).

    Uses `sentence-transformers` (optional, imported lazily) unless an `encode` callable
    (texts -> (n, d) array) is given. The thresholds are uncalibrated defaults.
    """

    def __init__(
        self,
        model_name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2",
        thresholds: Sequence[float] = (0.5, 0.75),
        device: str = "cpu",
        encode: Encode | None = None,
    ):
        super().__init__()
        self.name, self.device = model_name_or_path, device
        self.thresholds = check_thresholds(thresholds)
        self._encode = encode

    def _encoder(self) -> Encode:
        if self._encode is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise ImportError(
                    "EmbeddingJudge needs sentence-transformers: `pip install "
                    "sentence-transformers`, or pass encode=<texts -> (n, d) array>"
                ) from e
            st = SentenceTransformer(self.name, device=self.device)
            self._encode = lambda texts: st.encode(texts, convert_to_numpy=True)
        return self._encode

    def judge(self, desc_a: str, desc_b: str) -> JudgeResult:
        """Label one pair by embedding cosine."""
        return self.judge_many([(desc_a, desc_b)])[0]

    def judge_many(self, pairs: Iterable[Pair]) -> list[JudgeResult]:
        """Embed each distinct text once, then label every pair."""
        pairs = list(pairs)
        for a, b in pairs:
            check_pair(a, b)
        texts = sorted({t for p in pairs for t in p})
        emb = np.asarray(self._encoder()(texts), dtype=np.float64)  # (n, d)
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        row = {t: i for i, t in enumerate(texts)}
        out = []
        for a, b in pairs:
            cos = float(emb[row[a]] @ emb[row[b]])
            out.append(JudgeResult(label_from_score(cos, self.thresholds), f"cosine={cos:.4f}"))
        self.counters.add(calls=len(pairs))
        return out
