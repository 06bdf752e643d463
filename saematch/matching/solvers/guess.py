"""The guess: clear mutual-best pairs kept as they are, a dense LAP on the rest.

Most features of an SAE pair have an obvious partner: j is i's cheapest column, i is j's
cheapest row, and both runners-up are clearly worse. Those pairs are kept; the rest (mostly
features without a partner) is a small dense problem, solved exactly on its float32 cost.
The guess is not trusted: proof.py proves it optimal (or repairs it) over all n² pairs.
"""

from __future__ import annotations

import lap
import numba as nb
import numpy as np

from saematch.matching.budget import dense_rest_bytes
from saematch.matching.solvers.proof import label_duals
from saematch.matching.solvers.quantised import keep2


def clear_pairs(rv, ri, cv, ci, margin: float):
    """Pairs kept without solving: j is i's best column, i is j's best row, and both
    runners-up are worse by more than `margin`·|c_ij| (rv, ri / cv, ci: each row's / column's
    two smallest costs and their indices, best first).

    Returns x (n,) with −1 on the rest, and the rest's rows and columns.
    """
    n = len(ri)
    j = ri[:, 0]
    gap = margin * np.abs(rv[:, 0]) + 1e-6 * np.abs(rv[:, 1])
    sure = (ci[j, 0] == np.arange(n)) & (rv[:, 1] - rv[:, 0] > gap) & (cv[j, 1] - cv[j, 0] > gap)
    x = np.where(sure, j, -1)
    taken = np.zeros(n, dtype=bool)
    taken[j[sure]] = True
    return x, np.flatnonzero(~sure), np.flatnonzero(~taken)


@nb.njit(cache=True)
def _real_top2(G16, gmin, step, r, s, n_rows, n_cols, rv, ri, cv, ci):
    for i in range(n_rows):
        g0, d, ri_ = gmin[i], step[i], r[i]
        for j in range(n_cols):
            c = g0 + G16[i, j] * d + ri_ + s[j]
            if c < rv[i, 1] or c < cv[j, 1]:
                keep2(rv, ri, i, c, j)
                keep2(cv, ci, j, c, i)


def real_top2(bound, r, s, pad_rows: int, pad_cols: int):
    """Each row's and column's two smallest estimates among the real features only, when the
    last pad_rows rows / pad_cols columns are padding that costs 0 against everything
    (compare/rect.py's dummies). The stored top-2 counts them: a dummy row is every column's
    cheapest, so no real pair would be "clear" and the whole padded problem would land in the
    dense rest (at 16,384 × 65,536 mode both: a 24k × 24k float32 rest, +2.3 GB past its budget).

    bound: stored_bound's (G16, gmin, step, ...): ĉ_ij ≈ gmin_i + G16_ij step_i + r_i + s_j.
    Padding rows and columns get equal values (never clear). Returns (rv, ri, cv, ci) of
    full size n, as clear_pairs reads them."""
    n = len(r)
    rv = np.full((n, 2), np.inf, dtype=np.float64)
    cv = np.full((n, 2), np.inf, dtype=np.float64)
    ri, ci = np.zeros((n, 2), dtype=np.int64), np.zeros((n, 2), dtype=np.int64)
    G16, gmin, step = bound[:3]
    r64, s64 = np.asarray(r, np.float64), np.asarray(s, np.float64)
    _real_top2(G16, gmin, step, r64, s64, n - pad_rows, n - pad_cols, rv, ri, cv, ci)
    rv[n - pad_rows :], cv[n - pad_cols :] = 0.0, 0.0
    return rv, ri, cv, ci


def solve_rest(sub: np.ndarray, offset_tail: bool = False) -> np.ndarray:
    """Column of each row in the optimum of a dense float32 sub-cost (square), by lapx on the
    cost as it is (no copy: peak RSS = the cost); the two kernels give the same optimum and
    differ in speed with the cost's structure (measured on the rests of synthetic matchings,
    d 2304, lapx 0.11.1):

    * `lapjvs` for decoder and encoder costs: decoder 3.3k rows (16k) 0.50 s vs lapjvr 0.85 s,
      6.6k (32k) 2.5 s vs 4.9 s, 13.2k (65k) 13.1 s vs 30.3 s; encoder 3.3k 0.31 s, a tie;
    * `lapjvr` when the cost has an exact offset tail (mode "both", the b_enc term,
      offset_tail=True): 3.9k rows (16k) 0.80 s vs lapjvs 1.6 s. Row reduction first does not
      change either kernel's time.
    """
    solve = lap.lapjvr if offset_tail else lap.lapjvs
    return np.asarray(solve(sub, extend_cost=False, return_cost=False)[1], dtype=np.int64)


def sub_cost(xa, xb, rows, cols, block: int = 2048) -> np.ndarray:
    """xa[rows] @ xb[cols].T (float32) in tiles: no full copy of either side's rows."""
    out = np.empty((len(rows), len(cols)), dtype=np.float32)
    for c0 in range(0, len(cols), block):
        xbt = xb[cols[c0 : c0 + block]].T
        for r0 in range(0, len(rows), block):
            np.matmul(xa[rows[r0 : r0 + block]], xbt, out=out[r0 : r0 + block, c0 : c0 + block])
    return out


def rest_fits(rows: int, room: int | None) -> bool:
    """Whether the guess's dense float32 rest of `rows` rows fits `room` bytes (counted as the
    streamed solver's dense rest: the same sub-cost, read in place)."""
    return room is None or dense_rest_bytes(rows) <= room


def guess(xa, xb, s, top2, margin: float, tol: float, offset_tail: bool = False, room=None):
    """Clear mutual best pairs of the estimate (top2 = rv, ri, cv, ci) kept, the rest solved on
    its float32 sub-cost.

    Returns x (n,), start column duals v (n,) for the proof (the rest's own duals; s, the
    column norms, elsewhere) and the size of the rest; x is None when the rest's dense
    sub-cost would not fit `room` bytes (None: not checked), nothing solved.
    """
    x, rows, cols = clear_pairs(*top2, margin)
    v = s.copy()
    if not rest_fits(len(rows), room):
        return None, v, len(rows)
    if len(rows):
        sub = sub_cost(xa, xb, rows, cols)
        shift = sub.min(axis=0)
        sub -= shift  # same optimum, faster to solve; duals shift back by the same amount
        xs = solve_rest(sub, offset_tail)
        x[rows] = cols[xs]
        ys = np.empty(len(rows), dtype=np.int64)
        ys[xs] = np.arange(len(rows))
        sc = s[cols] + shift  # keys v + s unchanged in the shifted frame
        vs = s[cols] - shift
        if label_duals(sub, sc, xs, ys, vs, tol, 50 * len(rows)) >= 0:
            v[cols] = vs + shift
    return x, v, len(rows)
