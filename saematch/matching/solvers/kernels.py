"""numba kernels over a row block's int32 products (blocks.LowerBound.products) on the CPU:
the bound L is computed in the float32 order of blocks.affine_bound (so the same L, bit for
bit) and used at once; nothing of the block's size is written.

* fold_block: the candidate pass (candidates.py), every row's and column's k + 1 smallest L
  (g frame) and two smallest estimates ĉ (c frame). At 32k (d 2304) the torch path spent 8 s
  beside its 7 s of int8 GEMM on topk, the column pool and the top-2 passes; this one 2.5 s.
* below_margin: the proof's scan (streamed.py), the pairs of each row with a reduced bound
  L_ij − u_i − v_j below a margin, at most `cap` per row (the smallest).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from saematch.matching.solvers.quantised import keep2


@nb.njit(cache=True, nogil=True, inline="always")
def _bound(acc, a, j, sa_, sb, rho_, kappa, e1_, f1, e2_, f2):
    """L_ij from its int32 product, in blocks.affine_bound's order of float32 roundings."""
    t = np.float32(acc[a, j]) * sa_ * sb[j] + rho_ + kappa[j]
    return t - e1_ * f1[j] - e2_ * f2[j]


@nb.njit(cache=True, nogil=True, inline="always")
def _insert(vals, idx, r, x, j):
    """Insert (x, j) into row r of the ascending (m, k + 1) lists if x < its last value."""
    k1 = vals.shape[1]
    if not x < vals[r, k1 - 1]:
        return
    t = k1 - 1
    while t > 0 and vals[r, t - 1] > x:
        vals[r, t], idx[r, t] = vals[r, t - 1], idx[r, t - 1]
        t -= 1
    vals[r, t], idx[r, t] = x, j


@nb.njit(cache=True, parallel=True)
def fold_block(acc, row0, sa, sb, rho, kappa, e1, f1, e2, f2, r, s, rkv, rki, rv, ri, tau, ckv,
               cki, cv, ci, chunk):  # fmt: skip
    """Fold the row block row0 .. row0 + b (its int32 products acc) into

    * each row's k + 1 smallest L, per thread (rkv, rki: (T, n, k + 1), ascending, inf at the
      start; merge_rows joins the T lists at the end) and two smallest ĉ = L + E1_i F1_j +
      E2_i F2_j + r_i + s_j (rv, ri: (T, n, 2));
    * each column's k + 1 smallest L (ckv, cki; tau_j = ckv[j, k], contiguous for the scan)
      and two smallest ĉ (cv, ci).

    Thread t takes the column chunks t, t + T, …: no two threads touch one column or one
    row list."""
    T, n, last = rkv.shape[0], acc.shape[1], rkv.shape[2] - 1
    for t in nb.prange(T):
        rk, rk_i, r2, r2_i = rkv[t], rki[t], rv[t], ri[t]
        for c0 in range(t, (n + chunk - 1) // chunk, T):
            j0, j1 = c0 * chunk, min(n, (c0 + 1) * chunk)
            for a in range(acc.shape[0]):
                i = row0 + a
                sa_, rho_, e1_, e2_, r_ = sa[i], rho[i], e1[i], e2[i], r[i]
                for j in range(j0, j1):
                    low = _bound(acc, a, j, sa_, sb, rho_, kappa, e1_, f1, e2_, f2)
                    if low < rk[i, last]:
                        _insert(rk, rk_i, i, low, j)
                    if low < tau[j]:
                        _insert(ckv, cki, j, low, i)
                        tau[j] = ckv[j, last]
                    c = low + e1_ * f1[j] + e2_ * f2[j] + r_ + s[j]
                    if c < r2[i, 1]:
                        keep2(r2, r2_i, i, c, j)
                    if c < cv[j, 1]:
                        keep2(cv, ci, j, c, i)


def merge_rows(vals: np.ndarray, idx: np.ndarray, keep: int):
    """The `keep` smallest per row of T per-thread lists (T, n, m), ascending."""
    T, n, m = vals.shape
    v = vals.transpose(1, 0, 2).reshape(n, T * m)
    j = idx.transpose(1, 0, 2).reshape(n, T * m)
    o = np.argsort(v, axis=1, kind="stable")[:, :keep]
    return np.take_along_axis(v, o, 1), np.take_along_axis(j, o, 1)


@nb.njit(cache=True, parallel=True)
def _count_below(acc, rows, sa, sb, rho, kappa, e1, f1, e2, f2, ug, vg, margin, count):
    for a in nb.prange(acc.shape[0]):
        i = rows[a]
        sa_, rho_, e1_, e2_, u_ = sa[i], rho[i], e1[i], e2[i], ug[a]
        c = 0
        for j in range(acc.shape[1]):
            red = _bound(acc, a, j, sa_, sb, rho_, kappa, e1_, f1, e2_, f2) - vg[j] - u_
            if red < margin:
                c += 1
        count[a] = c


@nb.njit(cache=True, parallel=True)
def _collect_below(acc, rows, sa, sb, rho, kappa, e1, f1, e2, f2, ug, vg, margin, off, cap,
                   cols, keep):  # fmt: skip
    for a in nb.prange(acc.shape[0]):
        i = rows[a]
        sa_, rho_, e1_, e2_, u_ = sa[i], rho[i], e1[i], e2[i], ug[a]
        lo, t = off[a], off[a]
        red = np.empty(off[a + 1] - lo, dtype=np.float32)
        for j in range(acc.shape[1]):
            w = _bound(acc, a, j, sa_, sb, rho_, kappa, e1_, f1, e2_, f2) - vg[j] - u_
            if w < margin:
                cols[t], red[t - lo] = j, w
                t += 1
        if t - lo > cap:  # keep the cap smallest
            keep[lo:t] = False
            for s in np.argsort(red)[:cap]:
                keep[lo + s] = True


def below_margin(acc, rows, bound, ug, vg, margin: float, cap: int):
    """(a, j, capped): the pairs (rows[a], j) with L − v_j − u_i < margin, where u_i − r_i = ug
    (b,) and v − s = vg (n,) are float32 (evaluated as (L − vg_j) − ug_a, like the torch path);
    a row with more than `cap` keeps its cap smallest and is marked capped."""
    b = acc.shape[0]
    count = np.empty(b, dtype=np.int64)
    _count_below(acc, rows, *bound, ug, vg, np.float32(margin), count)
    off = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(count, out=off[1:])
    cols, keep = np.empty(off[-1], dtype=np.int64), np.ones(off[-1], dtype=bool)
    _collect_below(acc, rows, *bound, ug, vg, np.float32(margin), off, cap, cols, keep)
    a = np.repeat(np.arange(b), count)
    return a[keep], cols[keep], count > cap
