"""PW-MCC and the share of pairs above a cosine: the literature's dictionary-agreement numbers.

For unit directions â_i (SAE A) and b̂_j (SAE B) of one part (decoder rows or encoder columns):

    PW-MCC = (1 / n_n) max_σ Σ_i |cos(â_i, b̂_σ(i))|          σ one-to-one, n_n = min(n_A, n_B)

(the optimal one-to-one matching on absolute cosine, Hungarian; Song et al.), and
share_above(0.7) = the share of those matched pairs with |cos| > 0.7 (Paulo & Belrose 2025).
Folding rescales rows and columns, so neither depends on it. A dead feature (zero vector) has
cosine 0 with everything.

Exact |cos| matching needs the dense n_A × n_B cosine (scipy's rectangular
linear_sum_assignment); past `dense_limit` entries the signed cosine is matched instead by the
certified solver on the squared distance ‖â − b̂‖² = 2 − 2 cos (rect.py), which is the same
matching whenever no pair's best partner is anti-aligned; `method` says which ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from saematch.matching.solvers.proof import exact_costs
from saematch.sae import JumpReLUSAE

PARTS = ("decoder", "encoder")
DENSE_LIMIT = 16 * 2**20  # cosine entries (float64: 128 MiB) for the exact |cos| route (scipy)
UNIT_BLOCK = 8192  # rows normalised at a time (float64 copies of a whole side: 2.4 GB at 131k)
SHARE_COS = 0.7  # Paulo & Belrose's threshold for a shared latent


@torch.no_grad()
def unit_directions(sae: JumpReLUSAE, part: str) -> np.ndarray:
    """(F, d) float32 unit vectors: decoder rows or encoder columns (zero rows stay zero)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    w = (sae.W_dec if part == "decoder" else sae.W_enc.T).detach().cpu()
    out = np.empty(tuple(w.shape), dtype=np.float32)
    for r0 in range(0, len(out), UNIT_BLOCK):  # float64 in row blocks: no full copies
        blk = w[r0 : r0 + UNIT_BLOCK].to(torch.float64)
        n = blk.norm(dim=1, keepdim=True)
        out[r0 : r0 + UNIT_BLOCK] = (blk / torch.where(n > 0, n, torch.ones_like(n))).numpy()
    return out


@dataclass
class CosineMatching:
    """The optimal one-to-one matching on cosine of one part, from the narrow side.

    rows (n_n,) indices into A, cols (n_n,) into B, cos (n_n,) float64 signed cosine of each
    pair; method: "dense |cos|" (exact on |cos|) or "certified signed cos" (module doc).
    """

    part: str
    rows: np.ndarray
    cols: np.ndarray
    cos: np.ndarray
    method: str

    @property
    def pwmcc(self) -> float:
        """Mean |cos| over the matched pairs (PW-MCC)."""
        return float(np.abs(self.cos).mean()) if len(self.cos) else float("nan")

    def share_above(self, threshold: float = SHARE_COS) -> float:
        """Share of matched pairs with |cos| > threshold."""
        return float((np.abs(self.cos) > threshold).mean()) if len(self.cos) else float("nan")


def cosine_matching(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    part: str = "decoder",
    dense_limit: int = DENSE_LIMIT,
    solver="auto",
    max_memory: int | None = None,
) -> CosineMatching:
    """The |cos|-optimal one-to-one matching of a's and b's `part` directions (module doc)."""
    ua, ub = unit_directions(a, part), unit_directions(b, part)
    if len(ua) * len(ub) <= dense_limit:
        cos = ua.astype(np.float64) @ ub.astype(np.float64).T  # (n_A, n_B)
        rows, cols = linear_sum_assignment(-np.abs(cos))  # rectangular: min(n_A, n_B) pairs
        return CosineMatching(part, rows, cols, cos[rows, cols], "dense |cos|")
    from saematch.compare.rect import rect_assign

    def aug(u: np.ndarray, side: str) -> np.ndarray:  # ‖â − b̂‖² = 2 − 2 cos, as cost.py
        sq = np.empty(len(u), dtype=np.float32)
        for r0 in range(0, len(u), UNIT_BLOCK):  # float64 sums, a row block at a time
            blk = u[r0 : r0 + UNIT_BLOCK].astype(np.float64)
            sq[r0 : r0 + UNIT_BLOCK] = np.einsum("ij,ij->i", blk, blk)
        one = np.ones(len(u), dtype=np.float32)
        if side == "a":
            return np.column_stack([u, sq, one])
        return np.column_stack([-2.0 * u, one, sq])

    xa, xb = aug(ua, "a"), aug(ub, "b")
    sigma, _, _, _, info = rect_assign(xa, xb, solver, {"exact_tail": 0}, max_memory)
    narrow_is_a = info["narrow"] == "a"
    idx = np.arange(len(sigma))
    rows, cols = (idx, sigma) if narrow_is_a else (sigma, idx)
    order = np.argsort(rows)
    rows, cols = rows[order], cols[order]
    cos = exact_costs(ua, ub, rows.astype(np.int64), cols.astype(np.int64))
    return CosineMatching(part, rows, cols, cos, "certified signed cos")


def pair_cosines(a: JumpReLUSAE, b: JumpReLUSAE, perm: np.ndarray, part: str) -> np.ndarray:
    """(F_A,) float64 cos(a_i, b_perm[i]) of `part` for a given matching; NaN where perm = −1."""
    ua, ub = unit_directions(a, part), unit_directions(b, part)
    perm = np.asarray(perm)
    out = np.full(len(perm), np.nan)
    ok = perm >= 0
    rows = np.flatnonzero(ok)
    out[ok] = exact_costs(ua, ub, rows, perm[ok].astype(np.int64))  # float64, no row copies
    return out
