"""Proof by duals: LP potentials (u, v) that certify an assignment optimal.

LP duality for the assignment problem: a bijection σ is optimal iff there are potentials
(u, v) with

    u_i + v_j ≤ c_ij  for every pair (i, j),   u_i + v_σ(i) = c_iσ(i)  for every row i.

Then every bijection π costs Σ_i c_iπ(i) ≥ Σ_i u_i + Σ_j v_j = Σ_i c_iσ(i). Given σ, the column
duals are shortest-path distances: v_j ≤ v_σ(i) + c_ij − c_iσ(i) (an edge σ(i) → j), found by
label-correcting from a start v (lowered in place), and u_i = c_iσ(i) − v_σ(i). The scans
never end when σ is not optimal (a negative cycle): the kernels scan in heap order first, then
in round-robin sweeps, where a change in sweep n + 2 proves a negative cycle; a scan budget
bounds the time either way.

Two kernels: `label_duals` over a dense stored cost C; `bound_duals` over a lower bound of
every cost (quantised.py) that asks for the exact cost only when the bound would lower a v_j,
and cancels the negative cycles it meets. The duals are independent of how they were found:
certificate.py checks them.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from saematch.matching.solvers.heap import all_pending, pop_pending, push_pending

HEAP_SCANS = 4  # heap-ordered scans per column before the round-robin fallback (below)
SWEEP_SCANS = 100  # round-robin scans per column allowed after it (x n), at least


@nb.njit(cache=True)
def _scan_dense(C, y, v, tol, j0, pend):
    """Relax every edge σ(i) → j out of column j0 (i = y[j0]); mark lowered columns pending."""
    i = y[j0]
    base = v[j0] - np.float64(C[i, j0])
    lowered = False
    for j in range(C.shape[1]):
        cand = base + np.float64(C[i, j])
        if cand < v[j] - tol:
            v[j] = cand
            pend[j] = True
            lowered = True
    return lowered


@nb.njit(cache=True)
def label_duals(C, s, x, y, v, tol, max_scans):
    """Column duals of the assignment x: v_j ≤ v_σ(i) + c_ij − c_iσ(i) + tol for ALL pairs.

    C (n, n) dense; y the inverse of x; v (n,) float64 the start, lowered in place. Columns
    are scanned smallest v_j + s_j first: s a potential (near-feasible duals) keeps most
    edge weights ≥ 0, so most columns are scanned about once. With a poor s that order can
    rescan a column thousands of times (unfolded mode both on a trained zoo pair: 7,740 scans
    per column where round-robin needs 35), so after HEAP_SCANS·n scans it continues in
    round-robin sweeps (Bellman–Ford order), which end within n + 1 sweeps unless x is not
    optimal. Returns the number of row scans; −1 when the budget ran out, −2 when a
    negative cycle proves x not optimal.
    """
    n = C.shape[0]
    hk, hv, pend, size = all_pending(v, s)
    scans = 0
    while scans < min(max_scans, HEAP_SCANS * n + 64):
        j0, size = pop_pending(hk, hv, size, pend, v, s)
        if j0 < 0:
            return scans
        scans += 1
        i = y[j0]
        base = v[j0] - np.float64(C[i, j0])
        for j in range(n):
            cand = base + np.float64(C[i, j])
            if cand < v[j] - tol:
                v[j] = cand
                size = push_pending(hk, hv, size, pend, v, s, j)
    budget = scans + max(max_scans, SWEEP_SCANS * n)
    for _ in range(n + 2):  # sweeps: after k of them every path of ≤ k edges is relaxed
        changed = False
        for j0 in range(n):
            if pend[j0]:
                pend[j0] = False
                scans += 1
                if scans > budget:
                    return -1
                changed |= _scan_dense(C, y, v, tol, j0, pend)
        if not changed and not pend.any():
            return scans
    return -2


def dense_duals(C: np.ndarray, x: np.ndarray, tol: float = 0.0, max_scans: float = 50.0):
    """(u, v, tol) proving x optimal on the dense cost C, or None when x is not optimal.

    tol: at least 1e-10·max|c_iσ(i)| (float64 dual arithmetic). Starts from the column minima
    (the reduction every dense LAP solver begins with).
    """
    n = len(x)
    y = np.empty(n, dtype=np.int64)
    y[x] = np.arange(n)
    tol = max(tol, 1e-10 * max(float(np.abs(C[np.arange(n), x]).max(initial=0.0)), 1e-30))
    v = C.min(axis=0).astype(np.float64)
    if label_duals(C, v.copy(), x, y, v, tol, int(max_scans * n) + n) < 0:
        return None
    u = C[np.arange(n), x].astype(np.float64) - v[x]
    return u, v, tol


@nb.njit(cache=True, fastmath=True)
def exact_cost(xa, xb, i, j):
    """c_ij = xa[i] · xb[j] accumulated in float64 (deterministic for a given pair)."""
    acc = 0.0
    for k in range(xa.shape[1]):
        acc += np.float64(xa[i, k]) * np.float64(xb[j, k])
    return acc


@nb.njit(cache=True)
def exact_pair_costs(xa, xb, rows, cols):
    """exact_cost for each (rows[t], cols[t]) (float64)."""
    out = np.empty(rows.shape[0])
    for t in range(rows.shape[0]):
        out[t] = exact_cost(xa, xb, rows[t], cols[t])
    return out


@nb.njit(cache=True)
def bound_duals(bound, xa, xb, s, x, y, v, tol, max_scans, parent, max_cycles):
    """Label-correcting duals over all pairs: lower bounds first, exact costs on demand.

    bound = (G16, gmin, step, E1, F1, E2, F2, rowc, colc), the quantised lower bound
    c_ij ≥ gmin_i + G16_ij step_i − E1_i F1_j − E2_i F2_j + rowc_i + colc_j (quantised.py).
    A pair is scanned with its bound and, only when that would lower v_j, with its exact
    cost. parent_j = the column whose row last lowered v_j (−1: none); a cycle in that graph
    is a negative cycle: x is not optimal. Every 64 scans such cycles are cancelled in place
    (x, y move to a cheaper assignment) and their columns rescanned; the final duals prove
    the final x whatever path led to it.
    Returns (row scans, exact costs computed, cycles cancelled); scans = −1 when max_scans
    ran out, −2 after max_cycles cancellation rounds.
    """
    G16, gmin, step, E1, F1, E2, F2, rowc, colc = bound
    n = G16.shape[0]
    hk, hv, pend, size = all_pending(v, s)
    stamp = np.zeros(n, dtype=np.int64)
    ring = np.empty(n, dtype=np.int64)
    every = 64  # cycle checks: O(n) each, against a scan of O(n); short-lived spirals
    scans, exact, cycles = 0, 0, 0
    while True:
        j0, size = pop_pending(hk, hv, size, pend, v, s)
        if j0 < 0:
            break
        scans += 1
        if scans > max_scans:
            return -1, exact, cycles
        m = cancel_cycles(parent, stamp, x, y, ring) if scans % every == 0 else 0
        if m > 0:
            cycles += 1
            if cycles > max_cycles:
                return -2, exact, cycles
            stamp[:] = 0
            for t in range(m):
                stamp[ring[t]] = 1
            for q in range(n):  # parent edges through a moved row are stale
                if parent[q] >= 0 and stamp[parent[q]] == 1:
                    parent[q] = -1
            for t in range(m):  # their rows moved: scan them again
                parent[ring[t]] = -1
                size = push_pending(hk, hv, size, pend, v, s, ring[t])
            if pend[j0]:  # j0 was on a cycle: it is scanned again with its new row
                continue
        i = y[j0]
        base = v[j0] - exact_cost(xa, xb, i, j0)
        k_i = base + rowc[i] + gmin[i] + tol
        e1, e2, d = E1[i], E2[i], step[i]
        for j in range(n):
            if G16[i, j] * d - e1 * F1[j] - e2 * F2[j] + k_i >= v[j] - colc[j]:
                continue
            if j == j0:
                continue
            exact += 1
            cand = base + exact_cost(xa, xb, i, j)
            if cand < v[j] - tol:
                v[j] = cand
                parent[j] = j0
                size = push_pending(hk, hv, size, pend, v, s, j)
    return scans, exact, cycles


@nb.njit(cache=True)
def cancel_cycles(parent, stamp, x, y, ring):
    """Cancel every cycle of the parent graph in x, y (in place; one O(n) walk); ring gets
    their columns. Returns the number of columns written to ring.

    A cycle c_0, c_1 = parent[c_0], … is negative (label-correcting, exact costs): moving
    row y[c_{t+1}] to c_t along it lowers the assignment's cost.
    """
    n = parent.shape[0]
    stamp[:] = 0
    m = 0
    for j in range(n):
        k = j
        while k >= 0 and stamp[k] == 0:
            stamp[k] = j + 1
            k = parent[k]
        if k >= 0 and stamp[k] == j + 1:  # a new cycle through k
            start, c = m, k
            while True:
                ring[m] = c
                m += 1
                c = parent[c]
                if c == k:
                    break
            k, r0 = m - start, y[ring[start]]
            for t in range(k):  # row y[c_{t+1}] takes c_t (y[c_{t+1}] not yet overwritten)
                c = ring[start + t]
                r_next = r0 if t == k - 1 else y[ring[start + t + 1]]
                x[r_next] = c
                y[c] = r_next
    return m


@nb.njit(cache=True, parallel=True)
def exact_costs(xa, xb, rows, cols):
    """c_ij = xa[i] · xb[j] in float64 for each (rows[t], cols[t]), in parallel."""
    out = np.empty(rows.shape[0])
    for t in nb.prange(rows.shape[0]):
        out[t] = exact_cost(xa, xb, rows[t], cols[t])
    return out


def row_duals(xa: np.ndarray, xb: np.ndarray, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u_i = c_iσ(i) − v_σ(i) with exact costs (float64)."""
    return exact_pair_costs(xa, xb, np.arange(len(x)), x) - v[x]


@nb.njit(cache=True)
def _scan_graph(indptr, indices, cost, y, v, tol, j0, pend):
    """_scan_dense on a CSR graph: relax the edges of row y[j0]."""
    i = y[j0]
    c0 = np.inf
    for e in range(indptr[i], indptr[i + 1]):
        if indices[e] == j0:
            c0 = cost[e]
    base = v[j0] - c0
    lowered = False
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        cand = base + cost[e]
        if cand < v[j] - tol:
            v[j] = cand
            pend[j] = True
            lowered = True
    return lowered


@nb.njit(cache=True)
def graph_duals(indptr, indices, cost, x, y, v, s, tol, max_scans):
    """label_duals on a sparse graph (CSR, each row's edges): v_j ≤ v_σ(i) + c_ij − c_iσ(i) + tol
    on every edge, v lowered in place from its start; keys v_j + s_j, then round-robin sweeps
    as in label_duals. Returns the number of row scans (−1: the budget ran out; −2: a negative
    cycle, x is not optimal on the graph)."""
    n = v.shape[0]
    hk, hv, pend, size = all_pending(v, s)
    scans = 0
    while scans < min(max_scans, HEAP_SCANS * n + 64):
        j0, size = pop_pending(hk, hv, size, pend, v, s)
        if j0 < 0:
            return scans
        scans += 1
        i = y[j0]
        c0 = np.inf
        for e in range(indptr[i], indptr[i + 1]):
            if indices[e] == j0:
                c0 = cost[e]
        base = v[j0] - c0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            cand = base + cost[e]
            if cand < v[j] - tol:
                v[j] = cand
                size = push_pending(hk, hv, size, pend, v, s, j)
    budget = scans + max(max_scans, SWEEP_SCANS * n)
    for _ in range(n + 2):
        changed = False
        for j0 in range(n):
            if pend[j0]:
                pend[j0] = False
                scans += 1
                if scans > budget:
                    return -1
                changed |= _scan_graph(indptr, indices, cost, y, v, tol, j0, pend)
        if not changed and not pend.any():
            return scans
    return -2
