"""Sparse assignment, its LP duals, and the proof that it is optimal for the dense problem.

LP duality for the assignment problem: a perfect matching σ is optimal iff there are
potentials (u, v) with u_i + v_j ≤ c_ij for every pair and equality on σ. The sparse solver
(sparse_lap.py) returns (u, v) exact on its graph; here the inequality is verified on the
pairs outside it with the candidate lower bounds c_ij ≥ max(R_i, C_j).
"""

from __future__ import annotations

import numpy as np


def unproven_rows(
    u: np.ndarray, v: np.ndarray, row_bound: np.ndarray, col_bound: np.ndarray, tol: float
) -> np.ndarray:
    """Rows i for which some j may have c_ij − u_i − v_j < −tol, given c_ij ≥ max(R_i, C_j).

    O(n log n): sort columns by C_j; those with C_j ≤ R_i need v_j ≤ R_i − u_i (prefix max of
    v), the rest need C_j − v_j ≥ u_i (suffix min). Pairs inside the candidate graph satisfy
    the same test whenever (u, v) is feasible there, because their c_ij ≤ max(R_i, C_j).
    """
    order = np.argsort(col_bound, kind="stable")
    cb, vs = col_bound[order].astype(np.float64), v[order]
    pre_max = np.maximum.accumulate(vs)  # max v over the p cheapest-bound columns
    suf_min = np.minimum.accumulate((cb - vs)[::-1])[::-1]
    p = np.searchsorted(cb, row_bound.astype(np.float64), side="right")  # C_j ≤ R_i for j < p
    low_ok = (p == 0) | (pre_max[np.maximum(p - 1, 0)] <= row_bound - u + tol)
    high_ok = (p == len(cb)) | (suf_min[np.minimum(p, len(cb) - 1)] >= u - tol)
    return np.flatnonzero(~(low_ok & high_ok))
