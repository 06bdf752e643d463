"""Controls for verdicts about the paper on the planted world (docs/method.md §9).

- `rescale_units`: the SAE a trainer returns when every activation is multiplied by c. A
  trainer that normalises each layer's activations learns the same map in new units: W_enc and
  W_dec unchanged, b_enc, θ and b_dec times c. Folded decoder / encoder matching must not move
  under it (their costs scale by c² and 1/c² as a whole); a cost that adds the two can.
- `truth_permutation`: the best bijection the truth allows (it scores the `ceiling` of
  saematch.planted.metrics.matching_accuracy), a reference no data-free method can beat.
- `corrupt_permutation`: a permutation with a chosen share of its latents re-paired at random,
  so a downstream score (pruning EV) can be read against matching accuracy with the SAEs fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from saematch.sae import JumpReLUSAE


def rescale_units(sae: JumpReLUSAE, c: float) -> JumpReLUSAE:
    """The SAE for activations x' = c·x: b_enc, θ, b_dec times c, W_enc, W_dec unchanged.

    It is the same map in new units: rescale_units(sae, c)(c·x) = c·sae(x), and its codes are
    c times the old ones (pre = x' W_enc + c b_enc = c·pre).
    """
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"activation scale c={c!r}: need a finite c > 0")
    return JumpReLUSAE(
        W_enc=sae.W_enc.clone(),
        b_enc=sae.b_enc * c,
        W_dec=sae.W_dec.clone(),
        b_dec=sae.b_dec * c,
        threshold=sae.threshold * c,
        name=sae.name,
        meta=dict(sae.meta or {}),
    )


def truth_permutation(
    rep_a: Tensor, rep_b: Tensor, truth: Sequence[set[int]], tiebreak: np.ndarray | None = None
) -> np.ndarray:
    """(F_A,) the permutation pairing as many latents with a true descendant as any can.

    rep_a, rep_b: `represented` of both SAEs (−1: none); truth[i]: descendants of true feature i
    in B's layer. Solved as a LAP with cost 1 for a wrong pair and 0 for a right one, plus
    tiebreak (F_A, F_B) (e.g. the matching cost) scaled to [0, 1/(F+1)]: it only chooses among
    pairings that are equally right, so latents outside the truth's support (unrepresented, or
    with no represented successor) get partners as the cost would give them, not at random.
    """
    ra, rb = np.asarray(rep_a), np.asarray(rep_b)
    if ra.shape != rb.shape:
        raise ValueError(f"truth_permutation needs equal widths, got {ra.shape} and {rb.shape}")
    right = np.zeros((len(ra), len(rb)), dtype=bool)  # (F_A, F_B)
    for j, i in enumerate(ra.tolist()):
        if i >= 0 and truth[i]:
            right[j] = np.isin(rb, list(truth[i]))
    cost = (~right).astype(np.float64)
    if tiebreak is not None:
        tb = np.asarray(tiebreak, dtype=np.float64)
        if tb.shape != cost.shape or not np.isfinite(tb).all():
            raise ValueError(f"tiebreak must be finite with shape {cost.shape}, got {tb.shape}")
        span = tb.max() - tb.min()
        if span > 0:  # Σ of F terms < 1: never outweighs one more right pair
            cost += (tb - tb.min()) / span / (len(ra) + 1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(ra), dtype=np.int64)
    perm[rows] = cols
    return perm


def corrupt_permutation(perm: Sequence[int], share: float, seed: int) -> np.ndarray:
    """perm with round(share·F) latents, chosen at random, re-paired by a random derangement of
    their partners (share 0: perm itself; 1: every latent moved)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share={share!r}: need 0 ≤ share ≤ 1")
    out = np.asarray(perm, dtype=np.int64).copy()
    rng = np.random.default_rng(seed)
    k = int(round(share * len(out)))
    if k < 2:
        return out
    idx = rng.choice(len(out), size=k, replace=False)
    shift = np.roll(np.arange(k), 1)  # a cycle: every chosen latent gets another's partner
    out[idx] = out[idx[shift]]
    return out
