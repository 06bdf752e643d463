"""Sparse assignment, its LP duals, and the proof that it is optimal for the dense problem.

LP duality for the assignment problem: a perfect matching σ is optimal iff there are
potentials (u, v) with u_i + v_j ≤ c_ij for every pair and equality on σ. We get (u, v)
exactly for the sparse graph (shortest paths on the residual graph) and then verify the
inequality on the pairs outside it with the candidate lower bounds c_ij ≥ max(R_i, C_j).
"""

from __future__ import annotations

import lap
import numpy as np


def edge_positions(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each query key in the sorted `keys`, or -1 where it is not an edge."""
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1)
    return np.where(keys[pos] == query, pos, -1)


def sparse_assign(n: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Min-cost perfect matching x (n,) on a sparse graph sorted by (row, col) (LAPMOD).

    LAPMOD silently returns non-edges when the graph has no perfect matching (MEASURED.md);
    every returned pair is checked and a ValueError is raised instead.
    """
    ptr = np.searchsorted(rows, np.arange(n + 1))
    if np.any(np.diff(ptr) == 0):
        raise ValueError("sparse assignment: some row has no candidate edge")
    cc = vals.astype(np.float64)
    cc -= np.repeat(np.minimum.reduceat(cc, ptr[:-1]), np.diff(ptr))  # LAPMOD needs c ≥ 0
    x = np.asarray(lap.lapmod(n, cc, ptr, cols, return_cost=False)[0], dtype=np.int64)
    ok = (x >= 0) & (x < n)
    ok[ok] = edge_positions(rows * n + cols, np.flatnonzero(ok) * n + x[ok]) >= 0
    if not ok.all() or len(np.unique(x)) != n:
        raise ValueError("sparse assignment: the candidate graph has no perfect matching")
    return x


def potentials(
    n: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, x: np.ndarray, max_iter: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """LP duals (u, v) of the optimal sparse matching x: u_i + v_j ≤ c_ij on edges, = on x.

    v is the largest potential ≤ 0 with v_j ≤ v_σ(i) + c_ij − c_iσ(i) for every edge (i, j):
    shortest distances on the graph of columns σ(i) → j, found by Bellman-Ford sweeps.
    u_i = c_iσ(i) − v_σ(i). Raises ValueError if x is not optimal (a negative cycle).
    """
    c = vals.astype(np.float64)
    keys = rows * n + cols
    matched = c[edge_positions(keys, np.arange(n) * n + x)]  # (n,) c_iσ(i)
    src, w = x[rows], c - matched[rows]  # edge σ(i) -> cols
    keep = src != cols
    src, dst, w = src[keep], cols[keep], w[keep]
    order = np.argsort(dst, kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    starts = np.searchsorted(dst, np.arange(n))
    has_in = np.diff(np.append(starts, len(dst))) > 0
    seg = starts[has_in]
    v = np.zeros(n)
    for _ in range(max_iter or n + 1):
        relaxed = np.minimum.reduceat(v[src] + w, seg)  # best incoming path per column
        new = v.copy()
        new[has_in] = np.minimum(v[has_in], relaxed)
        if np.array_equal(new, v):
            return matched - v[x], v
        v = new
    raise ValueError("sparse assignment is not optimal: its residual graph has a negative cycle")


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
