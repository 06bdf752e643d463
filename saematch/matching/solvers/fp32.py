"""The float32 bound (docs/method.md §13): ĝ = fl32(a·b) by one float32 GEMM, and its error.

For augmented features (cost.py) c_ij = r_i + s_j + g_ij, g_ij = a_i · b_j over all h = D dims
of z (head and exact tail alike: float32 has no per-part scale to choose). A float32 dot of h
terms in ANY order of summation (blocked BLAS, FMA) satisfies (Higham, Accuracy and Stability
of Numerical Algorithms, 2nd ed., Thm 3.1 / eq. 3.5)

    |fl(a·b) − a·b| ≤ γ_h Σ_t |a_t||b_t|,      γ_h = h u / (1 − h u),  u = 2^-24,

and Σ_t |a_t||b_t| ≤ ‖a_G1‖‖b_G1‖ + ‖a_G2‖‖b_G2‖ (Cauchy–Schwarz on each group: G1 the first
part of the head, G2 the rest of it and the tail; mode both: decoder | encoder + b_enc, so parts
of very different scale are not mixed). That fills the int8 bound's two rank-one terms:

    c_ij ≥ ĝ_ij + r_i + s_j − E1_i F1_j − E2_i F2_j − η_i − η'_j                          (L)

E1 = γ_h ‖a_G1‖, F1 = ‖b_G1‖, E2 = γ_h ‖a_G2‖, F2 = ‖b_G2‖: float64 norms rounded up; η_i =
2^-125 (‖a_i‖₁ + 2h), η'_j = 2^-125 ‖b_j‖₁ cover underflow even with flush-to-zero (each of
the 2h operations and each flushed input loses at most 2^-126 times the other factor). At
d 2304 (h = 4608, mode both) γ_h = 2.7e-4 of ‖a‖‖b‖: ~30× tighter than the int8 bound.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np
import torch

from saematch.matching.solvers.gemm import cpu_fp32_lib, fp32_mm, ieee_fp32
from saematch.matching.solvers.quantised import (
    MAX_WORKERS,
    SLACK,
    merge_top2,
    part_bounds,
    store_row,
)

U32 = 2.0**-24  # unit roundoff of float32
TINY = 2.0**-125  # twice float32's smallest normal: an underflowed operation's loss, ×(1 + γ)


def gamma(h: int) -> float:
    """γ_h = h u / (1 − h u) for float32 (u = 2^-24), rounded up; ValueError past h u ≥ 1/2."""
    if h * U32 >= 0.5:
        raise ValueError(f"the float32 bound needs fewer than 2^23 dims per dot, got {h}")
    return math.nextafter(h * U32 / (1 - h * U32), math.inf) * SLACK


def groups(D: int, h: int, splits: tuple[int, ...]) -> list[tuple[int, int]]:
    """The two column ranges of (L): the first part of the head, then everything after it."""
    cut = part_bounds(h, splits)[0][1] if h > 0 else 0
    return [(0, cut), (cut, D)]


def row_norms(x: np.ndarray, lo: int, hi: int, rows: int = 4096) -> tuple[np.ndarray, ...]:
    """(‖x_i[lo:hi]‖₂, ‖x_i[lo:hi]‖₁) per row, float64 sums of the float32 entries, rounded up
    (relative error ≤ (hi − lo) 2^-53 ≪ SLACK − 1); in row blocks (float64 copies ≤ 75 MB)."""
    n = x.shape[0]
    l2, l1 = np.zeros(n), np.zeros(n)
    for r0 in range(0, n, rows):
        z = x[r0 : r0 + rows, lo:hi].astype(np.float64)
        l2[r0 : r0 + rows] = np.sqrt(np.einsum("ij,ij->i", z, z))
        l1[r0 : r0 + rows] = np.abs(z).sum(1)
    return l2 * SLACK, l1 * SLACK


def dot_margins(xa: np.ndarray, xb: np.ndarray):
    """A sound float32 rounding margin for every dot x_i · y_j of augmented features (cost.py:
    z in the first D columns, the two norm slots after it), for passes that scan the float32
    products against a threshold (beyond/partial.py's candidates, compare/rect.py's
    violators): |fl32(x_i · y_j) − x_i · y_j| ≤ g (hx_i hy_j + tx_i · ty_j) + ex_i + ey_j.

    The z part by Cauchy–Schwarz (hx, hy: ‖z‖₂, rounded up), the two norm slots exactly
    (tx, ty: (n, 2) float64 |slots|; a bound by ‖x‖‖y‖ would let a slot's 1 swamp features of
    small norm), g = 2 γ_{D+2} (×2: the products' rounding too), underflow as in (L) (ex, ey).
    Returns (g, hx, hy, tx, ty, ex, ey)."""
    D2 = xa.shape[1]
    D = D2 - 2
    (hx, lx), (hy, ly) = row_norms(xa, 0, D, 1024), row_norms(xb, 0, D, 1024)
    tx, ty = np.abs(xa[:, D:].astype(np.float64)), np.abs(xb[:, D:].astype(np.float64))
    ex = TINY * (lx + tx.sum(1) + 2 * D2) * SLACK
    ey = TINY * (ly + ty.sum(1)) * SLACK
    return 2.0 * gamma(D2), hx, hy, tx, ty, ex, ey


def fp32_terms(xa: np.ndarray, xb: np.ndarray, exact_tail: int, head_splits: tuple[int, ...]):
    """(E1, F1, E2, F2, η, η') of (L), each (n,) float64, all rounded up."""
    D = xa.shape[1] - 2
    g = gamma(D)
    (lo1, hi1), (lo2, hi2) = groups(D, D - exact_tail, head_splits)
    a1, la1 = row_norms(xa, lo1, hi1)
    a2, la2 = row_norms(xa, lo2, hi2)
    b1, lb1 = row_norms(xb, lo1, hi1)
    b2, lb2 = row_norms(xb, lo2, hi2)
    eta_a = TINY * (la1 + la2 + 2 * D) * SLACK
    eta_b = TINY * (lb1 + lb2) * SLACK
    return a1 * g * SLACK, b1, a2 * g * SLACK, b2, eta_a, eta_b


@nb.njit(cache=True, nogil=True)
def _store_block(est, row0, r, s, G16, gmin, step, rv, ri, cv, ci):
    """Rows row0.. of ĝ (est: (m, n) float32) stored as 16-bit fixed point, rounded down, and
    folded into the top-2 of ĉ = ĝ + r + s (quantised.store_row)."""
    for a in range(est.shape[0]):
        buf = est[a]
        lo, hi = buf[0], buf[0]
        for j in range(buf.shape[0]):
            lo, hi = min(lo, buf[j]), max(hi, buf[j])
        store_row(buf, row0 + a, lo, hi, r, s, G16, gmin, step, rv, ri, cv, ci)


def fp32_cost(xa: np.ndarray, xb: np.ndarray, block: int):
    """ĝ = fl32(a·b) (n, n) as 16-bit fixed point (G16, gmin, step) and the top-2 of ĉ.

    Row blocks of one float32 GEMM each. With torch's GEMM: one worker per torch thread (one
    thread each), so while one stores its block another's GEMM runs (as quantised.int8_cost).
    With numpy's (gemm.cpu_fp32_lib, faster on some CPUs): one worker, the GEMM on all of
    BLAS's threads (the store is a few % of the GEMM's time: 3.6 ns an entry against 138
    for its 384-row block's GEMM at d 2304, one thread each, measured beside another job).
    The GEMM reads the features in place (strided views: no copy of either side)."""
    n, D = xa.shape[0], xa.shape[1] - 2
    workers = max(1, min(MAX_WORKERS, torch.get_num_threads()))
    if cpu_fp32_lib() == "numpy":
        workers = 1
    block = min(block, n)
    za = torch.from_numpy(np.ascontiguousarray(xa))[:, :D]  # (n, D) view, row stride D + 2
    bt = torch.from_numpy(np.ascontiguousarray(xb))[:, :D].T  # (D, n) view
    G16 = np.empty((n, n), dtype=np.uint16)
    gmin, step = np.empty(n), np.empty(n)
    rv = np.full((n, 2), np.inf, dtype=np.float32)
    ri = np.zeros((n, 2), dtype=np.int64)
    cols = [(rv.copy(), ri.copy()) for _ in range(workers)]  # per-worker column top-2
    ra, rb = np.ascontiguousarray(xa[:, D]), np.ascontiguousarray(xb[:, D + 1])

    def work(w: int) -> None:
        out = torch.empty((block, n), dtype=torch.float32)
        cv, ci = cols[w]
        for s0 in range(w * block, n, workers * block):
            m = min(block, n - s0)
            fp32_mm(za[s0 : s0 + m], bt, out=out[:m])
            _store_block(out[:m].numpy(), s0, ra, rb, G16, gmin, step, rv, ri, cv, ci)

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))
    try:
        with ieee_fp32(), ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers)))
    finally:
        torch.set_num_threads(threads)
    cv, ci = merge_top2(cols)
    return (G16, gmin, step), (rv, ri, cv, ci)


def fp32_bound(xa, xb, exact_tail: int = 0, head_splits: tuple[int, ...] = (), block=128):
    """quantised_bound's (bound, top2) through the float32 GEMM: bound = (G16, gmin, step, E1,
    F1, E2, F2, rowc, colc) with c_ij ≥ gmin_i + G16_ij step_i − E1_i F1_j − E2_i F2_j + rowc_i
    + colc_j (L; rowc = r − η, colc = s − η').

    Row blocks of 3·block: the memory of int8's three int32 part blocks, and a GEMM of 384
    rows ran ~1.4× faster per multiply-add than one of 128 (AVX2, d 2304, 4k)."""
    D = xa.shape[1] - 2
    G, top2 = fp32_cost(xa, xb, 3 * block)
    E1, F1, E2, F2, eta_a, eta_b = fp32_terms(xa, xb, exact_tail, head_splits)
    rowc = xa[:, D].astype(np.float64) - eta_a
    colc = xb[:, D + 1].astype(np.float64) - eta_b
    return (*G, E1, F1, E2, F2, rowc, colc), top2
