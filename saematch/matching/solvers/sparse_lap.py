"""Sparse linear assignment with LP duals: shortest augmenting paths (Dijkstra) on CSR, numba.

Invariant (the Hungarian / Jonker-Volgenant one): column potentials v and, for every assigned
row i, u_i = c_iσ(i) − v_σ(i) with c_ij − u_i − v_j ≥ 0 on all of row i's edges. Each free
row is joined by a shortest augmenting path in reduced costs; the columns the search
finalised move by v_j −= d* − d_j, which keeps the invariant. When every row is assigned,
(u, v) is a dual certificate: u_i + v_j ≤ c_ij on every edge, equality on the matching.

Warm start: after edges are added, each column j on a new edge with c_ij − u_i − v_j < 0 is
lowered to v_j = min(c_ij − u_i) (restoring c − u − v ≥ 0 for every assigned row) and its row
is freed; the freed rows are re-augmented, everything else (assignment and v) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from saematch.matching.solvers.heap import heap_pop, heap_push


@dataclass
class LapState:
    """A sparse solution: x (n,) row -> column, y (n,) column -> row, v (n,) column duals."""

    x: np.ndarray  # (n,) int64, -1 = free
    y: np.ndarray  # (n,) int64, -1 = free
    v: np.ndarray  # (n,) float64

    def row_duals(self, indptr, indices, cost) -> np.ndarray:
        """u (n,) float64: u_i = c_iσ(i) − v_σ(i)."""
        return _row_duals(indptr, indices, cost, self.x, self.v)


@nb.njit(cache=True)
def _edge_cost(indptr, indices, cost, i, j):
    for e in range(indptr[i], indptr[i + 1]):
        if indices[e] == j:
            return cost[e]
    return np.inf


@nb.njit(cache=True)
def _row_duals(indptr, indices, cost, x, v):
    n = len(x)
    u = np.empty(n)
    for i in range(n):
        u[i] = _edge_cost(indptr, indices, cost, i, x[i]) - v[x[i]]
    return u


@nb.njit(cache=True)
def _row_reduction(indptr, indices, cost, x, y, v, mc):
    """Jonker-Volgenant's augmenting row reduction, twice over the free rows (in place): a
    free row takes its cheapest column j1 in reduced cost c_ij − v_j and lowers v_j1 by the
    gap to its second cheapest, evicting j1's row, which tries again at once. Every assigned
    row keeps a cheapest column (the invariant): lowering v_j1 only raises the reduced costs
    of other rows' pairs with j1. Few rows are left for the shortest paths (measured on the
    sparse rest's first graph, 3.3k rows, 390k pairs: see docs/method.md §13)."""
    n = len(x)
    free = np.empty(n, dtype=np.int64)
    nf = 0
    for i in range(n):
        if x[i] < 0:
            free[nf] = i
            nf += 1
    for _ in range(2):
        k, left, steps = 0, 0, 0
        while k < nf:
            i = free[k]
            k += 1
            steps += 1
            u1, u2, j1, j2, c1, c2 = np.inf, np.inf, -1, -1, 0.0, 0.0
            for e in range(indptr[i], indptr[i + 1]):
                r = cost[e] - v[indices[e]]
                if r < u2:
                    if r < u1:
                        u2, j2, c2 = u1, j1, c1
                        u1, j1, c1 = r, indices[e], cost[e]
                    else:
                        u2, j2, c2 = r, indices[e], cost[e]
            if j1 < 0:
                free[left] = i
                left += 1
                continue
            i0 = y[j1]
            lowered = u1 < u2 and u2 < np.inf
            if lowered:
                v[j1] -= u2 - u1
            elif i0 >= 0 and j2 >= 0:  # a tie: take the second, free if it is
                j1, c1, i0 = j2, c2, y[j2]
            if i0 >= 0:
                x[i0] = -1
                if lowered and steps < 4 * n:  # it may take another column at once
                    k -= 1
                    free[k] = i0
                else:
                    free[left] = i0
                    left += 1
            x[i], y[j1], mc[i] = j1, i, c1
        nf = left
        if nf == 0:
            break


@nb.njit(cache=True)
def _solve(indptr, indices, cost, x, y, v, cold):
    """Augment every free row (in place); returns the number of rows left unmatched."""
    n = len(x)
    mc = np.full(n, np.inf)  # c_iσ(i) of assigned rows
    if cold:
        v[:] = np.inf
        for e in range(len(indices)):  # column reduction: v_j = min_i c_ij
            v[indices[e]] = min(v[indices[e]], cost[e])
        for j in range(n):
            if v[j] == np.inf:
                v[j] = 0.0
    u = np.zeros(n)
    for i in range(n):
        if x[i] >= 0:
            mc[i] = _edge_cost(indptr, indices, cost, i, x[i])
            u[i] = mc[i] - v[x[i]]
    for i in range(n):  # lower v_j below every new edge it violates, and free its row
        if x[i] < 0:
            continue
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if cost[e] - u[i] - v[j] < 0.0:
                v[j] = cost[e] - u[i]
                if y[j] >= 0:
                    x[y[j]] = -1
                    y[j] = -1
    for i in range(n):  # greedy: a free row takes its best column when that column is free
        if x[i] >= 0:
            continue
        best, bj, bc = np.inf, -1, 0.0
        for e in range(indptr[i], indptr[i + 1]):
            r = cost[e] - v[indices[e]]
            if r < best:
                best, bj, bc = r, indices[e], cost[e]
        if bj >= 0 and y[bj] < 0:
            x[i], y[bj], mc[i] = bj, i, bc
    _row_reduction(indptr, indices, cost, x, y, v, mc)
    dist = np.full(n, np.inf)
    done = np.zeros(n, dtype=np.bool_)
    pred = np.empty(n, dtype=np.int64)
    pcost = np.empty(n)
    touched = np.empty(n, dtype=np.int64)
    final = np.empty(n, dtype=np.int64)
    hk = np.empty(len(indices) + 1)
    hv = np.empty(len(indices) + 1, dtype=np.int64)
    unmatched = 0
    for i0 in range(n):
        if x[i0] >= 0:
            continue
        u0 = np.inf
        for e in range(indptr[i0], indptr[i0 + 1]):
            u0 = min(u0, cost[e] - v[indices[e]])
        nt, nf, size, sink, dstar = 0, 0, 0, -1, 0.0
        for e in range(indptr[i0], indptr[i0 + 1]):
            j = indices[e]
            d = cost[e] - v[j] - u0
            if d < dist[j]:
                if dist[j] == np.inf:
                    touched[nt] = j
                    nt += 1
                dist[j], pred[j], pcost[j] = d, i0, cost[e]
                size = heap_push(hk, hv, size, d, j)
        while size > 0:
            d, j, size = heap_pop(hk, hv, size)
            if done[j] or d > dist[j]:
                continue
            done[j] = True
            final[nf] = j
            nf += 1
            if y[j] < 0:
                sink, dstar = j, d
                break
            i = y[j]
            ui = mc[i] - v[j]
            for e in range(indptr[i], indptr[i + 1]):
                j2 = indices[e]
                if done[j2]:
                    continue
                d2 = d + cost[e] - ui - v[j2]
                if d2 < dist[j2]:
                    if dist[j2] == np.inf:
                        touched[nt] = j2
                        nt += 1
                    dist[j2], pred[j2], pcost[j2] = d2, i, cost[e]
                    size = heap_push(hk, hv, size, d2, j2)
        if sink >= 0:
            for t in range(nf):
                j = final[t]
                v[j] -= dstar - dist[j]
            j = sink
            while True:
                i = pred[j]
                nxt = x[i]
                x[i], y[j], mc[i] = j, i, pcost[j]
                if i == i0:
                    break
                j = nxt
        else:
            unmatched += 1
        for t in range(nt):
            dist[touched[t]] = np.inf
            done[touched[t]] = False
    return unmatched


def unique_keys(keys: np.ndarray) -> np.ndarray:
    """np.unique(keys), sorted, by one sort: numpy 2.4's plain np.unique takes a hash path that
    is 16x slower on 2 M int64 keys (1.8 s against 0.11 s; with return_index it sorts)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def build_csr(n: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray):
    """(indptr (n+1,), indices (m,), cost (m,) float64) of the unique edges, sorted by row."""
    keys, first = np.unique(rows.astype(np.int64) * n + cols, return_index=True)
    r, c = keys // n, keys % n
    indptr = np.searchsorted(r, np.arange(n + 1)).astype(np.int64)
    return indptr, c.astype(np.int64), np.asarray(vals, dtype=np.float64)[first]


def sorted_csr(n: int, keys: np.ndarray, vals: np.ndarray):
    """build_csr of edges already unique and sorted by key row·n + column (vals in that
    order), without its sort: (indptr, indices, cost float64)."""
    indptr = np.searchsorted(keys, np.arange(n + 1, dtype=np.int64) * n).astype(np.int64)
    return indptr, keys % n, np.asarray(vals, dtype=np.float64)


def not_in(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Mask of the query keys absent from `keys` (sorted, not empty)."""
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[pos] != query


def merge_sorted(keys: np.ndarray, vals: np.ndarray, new: np.ndarray, new_vals: np.ndarray):
    """(keys, vals) with the new edges merged in, sorted by key (keys sorted and unique, new
    unique and not in keys): a stable argsort of two sorted runs is a merge (timsort)."""
    order = np.argsort(new, kind="stable")
    both = np.concatenate([keys, new[order]])
    order2 = np.argsort(both, kind="stable")
    return both[order2], np.concatenate([vals, new_vals[order]])[order2]


def solve_sparse(indptr, indices, cost, state: LapState | None = None) -> LapState:
    """Min-cost perfect matching on a CSR graph, warm-started from `state` (updated in place).

    Raises ValueError when the graph has no perfect matching.
    """
    n = len(indptr) - 1
    cold = state is None
    if cold:
        state = LapState(np.full(n, -1, np.int64), np.full(n, -1, np.int64), np.zeros(n))
    left = _solve(indptr, indices, cost, state.x, state.y, state.v, cold)
    if left:
        raise ValueError(
            f"sparse assignment: {left} rows found no augmenting path (no perfect matching); "
            "add edges so that a perfect matching exists"
        )
    return state
