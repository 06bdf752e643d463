"""Families: the wide SAE's features that split one feature of the narrow SAE.

With the pair similarity of the matching cost (docs/method.md §10; null.py)

    κ_ij = 1 − c_ij / (‖z_i‖² + ‖z'_j‖²)      (1: identical, 0: orthogonal)

each wide feature j gets the narrow feature it is most similar to, p(j) = argmax_i κ_ij. It
joins p(j)'s family when κ_p(j),j > κ*, the rotation null's threshold (the same κ* that decides
"shared", so a family member is as unlikely a chance match as a shared pair). Its confidence
is the margin over the runner-up parent, κ_p(j),j − max_{i ≠ p(j)} κ_ij (0: two narrow features
claim it equally). A family of two or more members is a split (or duplicated) feature; the
rectangular matching's partner of i is usually one of them.

One pass of float32 GEMMs in blocks of wide features (block × n_narrow at a time), each block
ranked by one compiled loop (κ in float64 from the float32 cost, each row's two best kept: no
float64 copies of the block), exact float64 costs of the two best parents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from saematch.matching.solvers.proof import exact_costs


@dataclass
class Families:
    """parent (F_wide,) int64: the narrow feature each wide feature belongs to, −1 = none;
    confidence (F_wide,) float32: κ margin over the runner-up (NaN where parent = −1);
    kappa (F_wide,) float32: κ to the best narrow feature; wide: "a" | "b"; kappa_star."""

    parent: np.ndarray
    confidence: np.ndarray
    kappa: np.ndarray
    wide: str
    kappa_star: float

    def sizes(self, n_narrow: int) -> np.ndarray:
        """(n_narrow,) members of each narrow feature's family."""
        ok = self.parent >= 0
        return np.bincount(self.parent[ok], minlength=n_narrow)

    def splits(self, n_narrow: int) -> int:
        """Narrow features with a family of two or more wide features."""
        return int((self.sizes(n_narrow) >= 2).sum())


def _exact(xa: np.ndarray, xb: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """c_ij of the pairs (i, j) in float64, pair by pair (no float64 copies of the rows)."""
    return exact_costs(xa, xb, np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64))


BLOCK = 1024  # wide features per GEMM block, when no budget says less
ROW_BYTES = 4  # bytes per (wide, narrow) entry of a block: its float32 GEMM (the ranking loop
# keeps two per row). The first version ranked in numpy: float64 c, den, κ, np.where's
# temporaries and argpartition's copy, 56 bytes an entry (7.1 GB a block at 131k: the stage
# ran at its budget's edge)


@nb.njit(cache=True)
def _best_two(c, wide_norm, narrow_norm, s0, best, second):
    """Rows s0.. of best / second: each block row's two largest κ = 1 − c / (‖z‖² + ‖z'‖²)
    (−1 where the denominator is 0), κ in float64 from the float32 cost c (block, n_n)."""
    for a in range(c.shape[0]):
        w = wide_norm[s0 + a]
        k1, k2, i1, i2 = -np.inf, -np.inf, -1, -1
        for i in range(c.shape[1]):
            den = w + narrow_norm[i]
            k = 1.0 - np.float64(c[a, i]) / den if den > 0 else -1.0
            if k > k2:
                if k > k1:
                    k2, i2 = k1, i1
                    k1, i1 = k, i
                else:
                    k2, i2 = k, i
        best[s0 + a], second[s0 + a] = i1, i2


def family_block(n_narrow: int, work_bytes: int | None) -> int:
    """Wide features per block so a block's ROW_BYTES · block · n_narrow fit work_bytes
    (BLOCK without a budget); MemoryError when not even 16 rows fit."""
    if work_bytes is None:
        return BLOCK
    block = int(work_bytes // (ROW_BYTES * max(n_narrow, 1)))
    if block < 16:
        raise MemoryError(
            f"compare: families need {ROW_BYTES * 16 * n_narrow / 1e9:.2f} GB for a block of 16 "
            f"wide features against {n_narrow} narrow ones, more than the "
            f"{work_bytes / 1e9:.2f} GB left; raise matching.max_memory"
        )
    return min(BLOCK, block)


def families(
    xa: np.ndarray,
    xb: np.ndarray,
    kappa_star: float,
    block: int | None = None,
    work_bytes: int | None = None,
) -> Families:
    """Families of the wider of xa (side a) and xb (side b), cost.py's augmented features.

    kappa_star: the null's κ* (compare.shared_features). Equal widths: b is the "wide" side.
    block: wide features per GEMM block; None: as many as work_bytes allow (family_block).
    """
    D = xa.shape[1] - 2
    r, s = xa[:, D].astype(np.float64), xb[:, D + 1].astype(np.float64)
    wide = "a" if len(xa) > len(xb) else "b"
    xw, xn = (xa, xb) if wide == "a" else (xb, xa)
    nw_norm, nn_norm = (r, s) if wide == "a" else (s, r)
    n_w = len(xw)
    block = block or family_block(len(xn), work_bytes)
    best = np.full(n_w, -1, dtype=np.int64)
    second = np.full(n_w, -1, dtype=np.int64)
    xnt = xn.T
    out = np.empty((min(block, n_w), len(xn)), dtype=np.result_type(xw, xn))
    for s0 in range(0, n_w, block):
        c = out[: min(block, n_w - s0)]
        np.matmul(xw[s0 : s0 + block], xnt, out=c)  # (blk, n_n): c is symmetric in a↔b
        _best_two(c, nw_norm, nn_norm, s0, best, second)
    # exact float64 similarities of the two candidates (the float32 GEMM only ranks them)
    idx = np.arange(n_w)

    def kappa_of(parent: np.ndarray) -> np.ndarray:
        ok = parent >= 0
        out = np.full(n_w, -1.0)
        if wide == "a":
            c = _exact(xa, xb, idx[ok], parent[ok])
        else:
            c = _exact(xa, xb, parent[ok], idx[ok])
        den = nw_norm[idx[ok]] + nn_norm[parent[ok]]
        out[ok] = np.where(den > 0, 1.0 - c / np.where(den > 0, den, 1.0), -1.0)
        return out

    k1, k2 = kappa_of(best), kappa_of(second)
    keep = k1 > kappa_star
    parent = np.where(keep, best, -1)
    conf = np.where(keep, k1 - np.where(second >= 0, k2, -1.0), np.nan)
    return Families(
        parent.astype(np.int64),
        conf.astype(np.float32),
        k1.astype(np.float32),
        wide,
        float(kappa_star),
    )
