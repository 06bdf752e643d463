"""Scoring SAEs and matchings against the planted truth (docs/method.md §9).

Representation: SAE feature j of layer t represents true feature i when i = argmax_k cos(W_dec[j],
u_k(t)) and that cosine is ≥ 0.9 (REPRESENT_COS). Folding rescales rows, so it does not change it.

    sae_recovery(t)  = #{i : some j represents i} / N_t
    accuracy(t → t+k) = #{j ∈ S : rep_{t+k}(perm[j]) ∈ desc(rep_t(j))} / |S|,
    S = {j : rep_t(j) = i ≠ none and some descendant of i at t+k is represented}

desc(i) is i's set of descendants k layers on (for k = 1 its successors; a split's two children
both count). A feature whose true feature has no represented descendant is outside S: it can
never be counted correct, and it does not count against the matching either. When several SAE
features represent one true feature (duplicates), a bijection can pair at most as many of them
correctly as there are latents representing its descendants: `ceiling` is that best share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

REPRESENT_COS = 0.9


def represented(W_dec: Tensor, directions: Tensor, min_cos: float = REPRESENT_COS) -> Tensor:
    """(F,) index of the true feature each SAE feature represents, −1 for none.

    W_dec (F, d) decoder rows (any scale), directions (N, d) unit rows.
    """
    dec = W_dec.float()
    dec = dec / dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = dec @ directions.float().T  # (F, N)
    best, idx = cos.max(dim=1)
    return torch.where(best >= min_cos, idx, torch.full_like(idx, -1))


def sae_recovery(W_dec: Tensor, directions: Tensor, min_cos: float = REPRESENT_COS) -> float:
    """Share of true features that some SAE feature represents."""
    rep = represented(W_dec, directions, min_cos)
    n = directions.shape[0]
    return len(set(rep[rep >= 0].tolist())) / n if n else 0.0


@dataclass(frozen=True)
class Accuracy:
    """Matching accuracy and its support |S| (SAE features with a representable answer)."""

    accuracy: float  # nan when the support is empty
    support: int
    correct: int
    attainable: int = -1  # most any bijection can get right (duplicate latents share a partner)

    @property
    def ceiling(self) -> float:
        """attainable / support: the accuracy of the best bijection (nan without support)."""
        return self.attainable / self.support if self.support else float("nan")

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "support": self.support,
            "correct": self.correct,
            "ceiling": self.ceiling,
        }


def matching_accuracy(
    perm: Sequence[int] | Tensor,
    rep_a: Tensor,
    rep_b: Tensor,
    truth: Sequence[set[int]],
) -> Accuracy:
    """Accuracy of `perm` (perm[j] = partner in B of SAE feature j of A) against `truth`.

    rep_a (F_A,), rep_b (F_B,) from `represented`; truth[i] = descendants in B's layer of true
    feature i of A's layer (saematch.planted.world.descendants).
    """
    perm = torch.as_tensor(perm).long()
    if len(perm) != len(rep_a):
        raise ValueError(f"perm has {len(perm)} entries but SAE A has {len(rep_a)} features")
    count_b = Counter(rep_b[rep_b >= 0].tolist())  # true feature -> latents of B representing it
    support = correct = 0
    per_true: Counter = Counter()  # true feature of A -> latents of A in the support
    for j, i in enumerate(rep_a.tolist()):
        if i < 0 or not any(c in count_b for c in truth[i]):
            continue
        support += 1
        per_true[i] += 1
        correct += int(rep_b[perm[j]].item() in truth[i])
    # descendant sets of different true features are disjoint, so the best bijection gets
    # min(#latents of i in A, #latents of i's descendants in B) right for each i
    attainable = sum(min(n, sum(count_b[c] for c in truth[i])) for i, n in per_true.items())
    acc = correct / support if support else float("nan")
    return Accuracy(acc, support, correct, attainable)
