"""Exact assignment from an int8 cost: rigorous error bounds, exact costs only where needed.

c_ij = xa_i · xb_j = r_i + s_j + g_ij with g_ij = z_A,i · (−2 z_B,j) (augmented features,
cost.py). The head of each row (all dims but the trailing `exact_tail`, e.g. mode "both"'s
b_enc) is quantised per part (`head_splits`: decoder and encoder get their own scale):
a = σ q + δ with q int8 and σ = max|a| / 127 per row and part. One int8 GEMM (int32 sums,
exact; about 2x a bfloat16 GEMM on CPUs with AVX512-VNNI) gives the estimate ĝ, stored as
16-bit fixed point rounded down (int8_cost.py; workers pipeline the GEMM and the scaling).

Bound. a·b − σq·σ'q' = δ·b + σq·δ' exactly, so with Cauchy–Schwarz over the whole head

    g_ij ≥ stored_ij − ‖δ_i‖ ‖b_j‖ − ‖σq_i‖ (‖δ'_j‖ + 8ε ‖σ'q'_j‖) − 8ε Σ_t |tail_it| max|tail'_t|

(the 8ε terms: float32 scaling and tail rounding). The norms are exact float64 sums of the
actual residuals, so the bound is rigorous, if loose (about 100x the typical error).
1. Guess: clear mutual best pairs of ĉ kept (runners-up worse by `margin`); the rest, mostly
   partner-less features, solved by lapjvr on its float32 cost.
2. Proof: label-correcting column duals over all n² pairs (as dense_cg.py); a pair is scanned
   with its lower bound and, only when that bound would lower v_j, with its exact cost (float64
   dot of the float32 features, the cost scipy's reference sees). Every pair then satisfies
   u_i + v_j ≤ c_ij with equality on the guess: it is optimal (LP duality).
   A negative cycle met on the way (the guess was not optimal) is cancelled in place and the
   proof goes on. No proof within the scan budget -> a wider margin; then None (the caller
   falls back to the float32 solver).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from saematch.matching.dense_cg import (
    _all_pending,
    _label_duals,
    _pop_pending,
    _push_pending,
    clear_pairs,
    solve_rest,
)
from saematch.matching.int8_cost import EPS, SLACK, int8_cost, int8_gemm_available


@nb.njit(cache=True, fastmath=True)
def _exact(xa, xb, i, j):
    """c_ij = xa[i] · xb[j] accumulated in float64 (deterministic for a given pair)."""
    acc = 0.0
    for k in range(xa.shape[1]):
        acc += np.float64(xa[i, k]) * np.float64(xb[j, k])
    return acc


@nb.njit(cache=True)
def _bound_duals(bound, xa, xb, s, x, y, v, tol, max_scans, parent, max_cycles):
    """Label-correcting duals over all pairs: lower bounds first, exact costs on demand.

    bound = (G16, gmin, step, E1, F1, E2, F2, rowc, colc):
    c_ij ≥ gmin_i + G16_ij step_i − E1_i F1_j − E2_i F2_j + rowc_i + colc_j (module doc).
    Columns are scanned smallest v_j + s_j first: s is a potential, ideally near-feasible
    duals (the start v), which keeps most reduced edge weights ≥ 0 and rescans rare.
    parent_j = the column whose row last lowered v_j (−1: none). A cycle in that graph is a
    negative cycle (the label-correcting fact): x is not optimal. Every 64 scans such
    cycles are cancelled in place (x, y move to a cheaper assignment) and their columns
    rescanned; the final duals prove the final x whatever path led to it.
    Returns (row scans, exact costs computed, cycles cancelled); scans = −1 when max_scans
    ran out, −2 after max_cycles cancellation rounds.
    """
    G16, gmin, step, E1, F1, E2, F2, rowc, colc = bound
    n = G16.shape[0]
    hk, hv, pend, size = _all_pending(v, s)
    stamp = np.zeros(n, dtype=np.int64)
    ring = np.empty(n, dtype=np.int64)
    every = 64  # cycle checks: O(n) each, against a scan of O(n); short-lived spirals
    scans, exact, cycles = 0, 0, 0
    while True:
        j0, size = _pop_pending(hk, hv, size, pend, v, s)
        if j0 < 0:
            break
        scans += 1
        if scans > max_scans:
            return -1, exact, cycles
        m = _cancel_cycles(parent, stamp, x, y, ring) if scans % every == 0 else 0
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
                size = _push_pending(hk, hv, size, pend, v, s, ring[t])
            if pend[j0]:  # j0 was on a cycle: it is scanned again with its new row
                continue
        i = y[j0]
        base = v[j0] - _exact(xa, xb, i, j0)
        k_i = base + rowc[i] + gmin[i] + tol
        e1, e2, d = E1[i], E2[i], step[i]
        for j in range(n):
            if G16[i, j] * d - e1 * F1[j] - e2 * F2[j] + k_i >= v[j] - colc[j]:
                continue
            if j == j0:
                continue
            exact += 1
            cand = base + _exact(xa, xb, i, j)
            if cand < v[j] - tol:
                v[j] = cand
                parent[j] = j0
                size = _push_pending(hk, hv, size, pend, v, s, j)
    return scans, exact, cycles


@nb.njit(cache=True)
def _cancel_cycles(parent, stamp, x, y, ring):
    """Cancel every cycle of the parent graph in x, y (in place; one O(n) walk, nothing to do
    when there is none); ring gets their columns.

    A cycle c_0, c_1 = parent[c_0], … is negative (label-correcting, exact costs): moving
    row y[c_{t+1}] to c_t along it lowers the assignment's cost. Returns the number of
    columns written to ring.
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


def _bound_holds(G, E1, F1, E2, F2, rowc, colc, xa, xb, m: int = 512, seed: int = 0) -> bool:
    """Spot check of the bound on random pairs (and the diagonal): exact c ≥ lower bound.

    Guards against a backend that computes other than assumed; the proof relies on the bound.
    """
    G16, gmin, step = G
    n = G16.shape[0]
    g = np.random.default_rng(seed)
    i = np.concatenate([g.integers(0, n, m), np.arange(min(n, m))])
    j = np.concatenate([g.integers(0, n, m), np.arange(min(n, m))])
    c = np.einsum("ij,ij->i", xa[i].astype(np.float64), xb[j].astype(np.float64))
    lb = gmin[i] + G16[i, j] * step[i] - E1[i] * F1[j] - E2[i] * F2[j] + rowc[i] + colc[j]
    return bool(np.all(c >= lb))


SAFE_REST = 2048  # start at the wider margin while its dense rest has at most this many rows
MAX_CYCLE_ROUNDS = 200  # negative-cycle cancellation rounds within one proof


def _sub_cost(xa, xb, rows, cols, block: int = 2048) -> np.ndarray:
    """xa[rows] @ xb[cols].T (float32) in tiles: no full copy of either side's rows."""
    out = np.empty((len(rows), len(cols)), dtype=np.float32)
    for c0 in range(0, len(cols), block):
        xbt = xb[cols[c0 : c0 + block]].T
        for r0 in range(0, len(rows), block):
            np.matmul(xa[rows[r0 : r0 + block]], xbt, out=out[r0 : r0 + block, c0 : c0 + block])
    return out


def _guess(xa, xb, s, rv, ri, cv, ci, margin: float, tol: float):
    """Clear mutual best pairs of ĉ kept, the rest solved on its float32 sub-cost.

    Returns x (n,), start column duals v (n,) and the size of the rest.
    """
    x, rows, cols = clear_pairs(rv, ri, cv, ci, margin)
    v = s.copy()
    if len(rows):  # LAP on the rest's float32 sub-cost; the proof checks it on exact costs
        sub = _sub_cost(xa, xb, rows, cols)
        shift = sub.min(axis=0)
        sub -= shift  # same optimum, faster to solve; duals shift back by the same amount
        xs = solve_rest(sub)
        x[rows] = cols[xs]
        ys = np.empty(len(rows), dtype=np.int64)
        ys[xs] = np.arange(len(rows))
        sc = s[cols] + shift  # keys v + s unchanged in the shifted frame
        vs = s[cols] - shift
        if _label_duals(sub, sc, xs, ys, vs, tol, 50 * len(rows)) >= 0:
            v[cols] = vs + shift
    return x, v, len(rows)


def int8_certified_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    margin: float = 0.25,
    block: int = 128,
    max_scans: float = 3.0,
) -> tuple[np.ndarray, dict] | None:
    """Optimal x (n,) of c = xa @ xb.T from an int8 cost and bounds; None when not proven.

    head_splits: column indices where the head changes scale (mode "both": d, between the
    decoder and the encoder part); each part gets its own int8 scale per row.
    """
    if not int8_gemm_available():
        return None
    n, D = xa.shape[0], xa.shape[1] - 2
    h = D - exact_tail
    G, (da, qa, _), (db, qb, zb), (rv, ri, cv, ci) = int8_cost(xa, xb, h, head_splits, block)
    E1, F1 = da * SLACK, zb * SLACK  # ‖δ_i‖ ‖b_j‖
    E2, F2 = qa * SLACK, (db + 8 * EPS * qb) * SLACK  # ‖σq_i‖ (‖δ'_j‖ + 8ε ‖σ'q'_j‖)
    tmax = np.abs(xb[:, h:D]).max(0) if exact_tail else np.zeros(0, np.float32)
    r = xa[:, D].astype(np.float64)
    s = xb[:, D + 1].astype(np.float64)
    rowc = r - 8 * EPS * (np.abs(xa[:, h:D]).astype(np.float64) @ tmax)
    colc = s
    if not _bound_holds(G, E1, F1, E2, F2, rowc, colc, xa, xb):
        return None
    bound = (*G, E1, F1, E2, F2, rowc, colc)
    tol = 1e-10 * max(float(np.abs(rv[:, 0]).max()), 1e-30)
    info = {"proof": "duals-int8", "tries": []}
    # The rest is mostly partner-less features whatever the margin; a wider margin only adds
    # easy rows to the dense LAP (0.25 -> 1.0: rest 3.9k -> 5k, +1.3 s at 16k). A kept pair
    # that the optimum breaks (seen at 4k, mode both, margin 0.25), or a float32 near-tie in
    # the rest's LAP, shows as a negative cycle in the proof's parent graph: the proof
    # cancels it and goes on; a wider margin only when that does not converge.
    # While the wider margin's rest is small its dense LAP is cheap: start there (4k, mode
    # both: 2.6 s -> 1.5 s, where 0.25 fails its first try).
    ladder = [margin, 4 * margin, 16 * margin]
    if len(clear_pairs(rv, ri, cv, ci, ladder[1])[1]) <= SAFE_REST:
        ladder = ladder[1:]
    for mg in ladder:
        x, v, rest = _guess(xa, xb, s, rv, ri, cv, ci, mg, tol)
        y = np.empty(n, dtype=np.int64)
        y[x] = np.arange(n)
        parent = np.full(n, -1, dtype=np.int64)
        # heap potential = the start duals: half the rescans and exact costs of keys v + s
        scans, exact, cycles = _bound_duals(
            bound, xa, xb, v.copy(), x, y, v, tol, int(max_scans * n) + n, parent, MAX_CYCLE_ROUNDS
        )
        info["tries"].append(
            {"margin": mg, "dense_rest": rest, "scans": scans, "exact": exact, "cycles": cycles}
        )
        if scans >= 0:
            return x, info
    return None
