"""Partial matching, exact: every feature may stay unmatched at a reject cost (LAP with reject).

Objective, over one-to-one partial matchings M between A (n_A features) and B (n_B):

    min_M  Σ_{(i,j)∈M} c_ij  +  Σ_{i unmatched} τ_i  +  Σ_{j unmatched} τ'_j             (P)

with c the mode's folded cost (cost.py, norm terms included: c_ij = r_i + s_j − 2 z_i·z'_j)
and the relative reject costs τ_i = ρ r_i, τ'_j = ρ s_j (r, s the squared feature norms).
Equivalences (n_A = n_B):

* (P) = the bijection on the clamped cost min(c_ij, τ_i + τ'_j), dropping clamped pairs.
* Restriction lemma: an optimal M only uses pairs with c_ij < τ_i + τ'_j (dropping any other
  pair does not raise the total). So (P) is exactly a maximum-weight matching on the sparse
  graph E = {(i, j): c_ij < τ_i + τ'_j} with weights τ_i + τ'_j − c_ij > 0.
  c_ij < ρ (r_i + s_j)  ⇔  κ_ij := 2 z_i·z'_j / (r_i + s_j) > 1 − ρ: a pair is worth keeping
  only when its similarity κ beats 1 − ρ (κ = 1: identical; 0: orthogonal).

Proof of optimality: E is found from a rigorous lower bound of every c_ij, so no pair with
c_ij < τ_i + τ'_j is missed: the int8 quantised bound of the bijection's solver (quantised.py,
one int8 GEMM) while its 16-bit estimate fits the memory budget and the int8 backend is chosen
(solvers/gemm.py), else one blockwise float32
GEMM with the rounding margin γ_D ‖x_i‖ ‖y_j‖ (Higham's bound, any summation order). Each
candidate's cost is recomputed in float64 and the sparse problem is solved exactly (scipy's
LAPJVsp on the standard reject-padded square graph).

Memory (work_bytes): each route's working memory is estimated before it allocates
(budget.py: bound_bytes, partial_pass_bytes, dense_clamped_bytes); the int8 route runs only
where it fits, the float32 pass shrinks its row block to fit, and a budget no route fits is a
MemoryError first.
"""

from __future__ import annotations

import lap
import numba as nb
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from saematch.matching.budget import (
    MAX_EDGES_PER_ROW,
    MAX_STORED_BYTES,
    bound_bytes,
    dense_clamped_bytes,
    estimate_bytes,
    partial_pass_bytes,
    resolve_work,
    too_big,
)
from saematch.matching.solvers.fp32 import dot_margins
from saematch.matching.solvers.gemm import bound_gemm
from saematch.matching.solvers.proof import dense_duals
from saematch.matching.solvers.quantised import MAX_WORKERS, quantised_bound


def pass_block(
    n: int, D: int, work_bytes: int, block: int = 2048, n_cols: int | None = None
) -> int:
    """The float32 pass's row block that fits work_bytes (n rows, n_cols columns, default n);
    MemoryError if not even 16 rows do."""
    need = lambda blk: partial_pass_bytes(n, blk, n_cols)  # noqa: E731
    while block > 16 and need(block) > work_bytes:
        block //= 2
    if need(block) > work_bytes:
        raise too_big(n, D, need(block), work_bytes, "partial matching (float32 pass)")
    return block


class DenseGraphError(Exception):
    """More candidate pairs than the sparse route handles well: solve the clamped cost densely."""


def squared_norms(xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r (n_A,), s (n_B,)) float64: ‖z_A,i‖², ‖z_B,j‖² stored in the augmented features."""
    D = xa.shape[1] - 2
    return xa[:, D].astype(np.float64), xb[:, D + 1].astype(np.float64)


@nb.njit(cache=True)
def _scan_block(C, row0, ta, tb, hx, hy, tx, ty, ex, ey, gamma, out_r, out_c, count):
    """Append (i, j) with C_ij < τ_i + τ'_j + its float32 error bound (candidate_pairs)."""
    for a in range(C.shape[0]):
        i = row0 + a
        for j in range(C.shape[1]):
            err = gamma * (hx[i] * hy[j] + tx[i, 0] * ty[j, 0] + tx[i, 1] * ty[j, 1])
            if C[a, j] < ta[i] + tb[j] + err + ex[i] + ey[j]:
                if count >= out_r.shape[0]:
                    return -1  # buffer full: the caller grows it and rescans the block
                out_r[count], out_c[count] = i, j
                count += 1
    return count


@nb.njit(cache=True)
def _exact_sq_dist(xa, xb, rows, cols, D, out):
    """out_e = ‖z_A,rows_e − z_B,cols_e‖² in float64 (side b stores −2z)."""
    for e in range(rows.shape[0]):
        acc = 0.0
        for k in range(D):
            diff = np.float64(xa[rows[e], k]) + 0.5 * np.float64(xb[cols[e], k])
            acc += diff * diff
        out[e] = acc


@nb.njit(cache=True)
def _scan_bound(bound, ta, tb, out_r, out_c):
    """(i, j) whose lower bound (quantised.py) is below τ_i + τ'_j; −1 when out is full."""
    G16, gmin, step, E1, F1, E2, F2, rowc, colc = bound
    count = 0
    for i in range(G16.shape[0]):
        k_i = gmin[i] + rowc[i] - ta[i]
        for j in range(G16.shape[1]):
            if k_i + G16[i, j] * step[i] - E1[i] * F1[j] - E2[i] * F2[j] + colc[j] < tb[j]:
                if count >= out_r.shape[0]:
                    return -1
                out_r[count], out_c[count] = i, j
                count += 1
    return count


def _exact_below(xa, xb, rows, cols, ta, tb):
    """The pairs (rows, cols) with exact c_ij < τ_i + τ'_j, and their costs (float64)."""
    cost = np.empty(len(rows), dtype=np.float64)
    _exact_sq_dist(xa, xb, rows, cols, xa.shape[1] - 2, cost)
    keep = cost < ta[rows] + tb[cols]
    return rows[keep], cols[keep], cost[keep]


def bound_candidates(xa, xb, ta, tb, exact_tail: int = 0, head_splits: tuple[int, ...] = ()):
    """candidate_pairs through the int8 lower bound; None when it is unavailable."""
    res = quantised_bound(xa, xb, exact_tail, head_splits)
    if res is None:
        return None
    bound = res[0]
    cap, limit = 8 * xa.shape[0] + 1024, MAX_EDGES_PER_ROW * xa.shape[0]
    while True:
        buf_r, buf_c = np.empty(cap, np.int64), np.empty(cap, np.int64)
        cnt = _scan_bound(bound, ta, tb, buf_r, buf_c)
        if cnt >= 0:
            break
        if cap > limit:
            raise DenseGraphError
        cap = min(4 * cap, limit + 1)
    if cnt > limit:
        raise DenseGraphError
    return _exact_below(xa, xb, buf_r[:cnt], buf_c[:cnt], ta, tb)


def candidate_pairs(
    xa: np.ndarray, xb: np.ndarray, ta: np.ndarray, tb: np.ndarray, block: int = 2048
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair with c_ij < τ_i + τ'_j, and its exact cost: (rows, cols, cost float64).

    One float32 GEMM pass in row blocks (no n×n array). Its error is bounded as in the
    float32 bound of the bijection (solvers/fp32.py's dot_margins, Higham): |fl(x·y) − x·y|
    ≤ γ (‖x_z‖‖y_z‖ + |x_D||y_D| + |x_D+1||y_D+1|) + underflow, the norm columns exactly (a
    bound by ‖x‖‖y‖ would let the columns' 1s swamp features of small norm: at ‖z‖² ~ 1e-3
    most pairs passed it). So no pair with c_ij < τ_i + τ'_j is missed.
    """
    n = xa.shape[0]
    gamma, hx, hy, tx, ty, ex, ey = dot_margins(xa, xb)
    xbt = xb.T
    parts, total, limit = [], 0, MAX_EDGES_PER_ROW * n
    for s in range(0, n, block):
        C = xa[s : s + block] @ xbt  # (b, n_B) float32
        cap = min(4 * block + 1024, limit - total + 1)
        while True:  # a buffer never outgrows the edges left under the limit (+1 to see it)
            buf_r, buf_c = np.empty(cap, np.int64), np.empty(cap, np.int64)
            cnt = _scan_block(C, s, ta, tb, hx, hy, tx, ty, ex, ey, gamma, buf_r, buf_c, 0)
            if cnt >= 0 or cap > limit - total:
                break
            cap = min(4 * cap, limit - total + 1)
        if cnt < 0 or total + cnt > limit:
            raise DenseGraphError  # the caller leaves its except block first: this frame dies
        # keep the exact candidates only (the margin's extra pairs are dropped block by block)
        found = _exact_below(xa, xb, buf_r[:cnt], buf_c[:cnt], ta, tb)
        parts.append(found)
        total += len(found[0])
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def solve_with_reject(
    rows: np.ndarray, cols: np.ndarray, cost: np.ndarray, ta: np.ndarray, tb: np.ndarray
) -> np.ndarray:
    """Optimal partial matching on the edges (rows, cols): perm (n_A,) with −1 = unmatched.

    Square graph on the R rows and K columns that have edges: rows R ∪ K', columns K ∪ R'
    (primes: reject dummies). Edges (i, j): c_ij − τ_i − τ'_j; (i, i'): 0 (i unmatched);
    (j', j): 0 (j unmatched); (j', i') for every edge (i, j): 0 (dummies pair up when i, j
    are matched). Every perfect matching has |R| + |K| edges, so a constant shift keeps the
    optimum and makes all weights positive (scipy needs no explicit zeros).
    """
    n_a = len(ta)
    perm = np.full(n_a, -1, dtype=np.int64)
    if len(rows) == 0:
        return perm
    R, ri = np.unique(rows, return_inverse=True)
    K, ki = np.unique(cols, return_inverse=True)
    nr, nk = len(R), len(K)
    w = cost - ta[rows] - tb[cols]  # < 0
    shift = 1.0 - float(w.min())  # all weights ≥ 1 after the shift
    e = len(rows)
    r_idx = np.concatenate([ri, np.arange(nr), nr + np.arange(nk), nr + ki])
    c_idx = np.concatenate([ki, nk + np.arange(nr), np.arange(nk), nk + ri])
    vals = np.concatenate([w, np.zeros(nr), np.zeros(nk), np.zeros(e)]) + shift
    size = nr + nk
    graph = csr_matrix((vals, (r_idx, c_idx)), shape=(size, size))
    r_sol, c_sol = min_weight_full_bipartite_matching(graph)
    real = (r_sol < nr) & (c_sol < nk)
    perm[R[r_sol[real]]] = K[c_sol[real]]
    return perm


def dense_reject_assign(xa, xb, ta, tb, block: int, work_bytes: int) -> tuple[np.ndarray, dict]:
    """perm (−1 = unmatched) from the bijection on the clamped float32 cost min(c, τ_i + τ'_j).

    lapx lapjvs on the dense clamped cost, proven by LP duals on that cost (proof.py); pairs
    at the clamp (exact float64 cost ≥ τ_i + τ'_j) are dropped. MemoryError before the n×n
    cost when it does not fit work_bytes.
    """
    n_a, n = xa.shape[0], xb.shape[0]  # n_a ≤ n: a's missing rows are pure rejection
    need = dense_clamped_bytes(n)
    if need > work_bytes:
        raise too_big(
            n,
            xa.shape[1] - 2,
            need,
            work_bytes,
            f"partial matching (dense clamped cost: more than {MAX_EDGES_PER_ROW} pairs per "
            "feature beat rejection; a smaller reject cost ρ keeps the graph sparse)",
        )
    C = np.empty((n, n), dtype=np.float32)
    tb32 = tb.astype(np.float32)
    for s0 in range(0, n_a, block):
        blk = C[s0 : min(s0 + block, n_a)]
        np.matmul(xa[s0 : s0 + block], xb.T, out=blk)
        np.minimum(blk, ta[s0 : s0 + block, None].astype(np.float32) + tb32[None, :], out=blk)
    C[n_a:] = tb32[None, :]  # a row with nothing to match: column j rejected, at τ'_j
    x = np.asarray(lap.lapjvs(C, extend_cost=False, return_cost=False, jvx_like=False)[0])
    x = x.astype(np.int64)
    proven = dense_duals(C, x) is not None
    if not proven:
        # lapjvs works in float32 and can stop a rounding step short of the optimum (seen on
        # a clamped cost with many ties: 3e-8 above it); scipy's float64 solve on the
        # column-reduced cost (scipy is ~40x slower without it) is exact, and the duals
        # then prove it on C itself
        C64 = C.astype(np.float64)
        C64 -= C64.min(axis=0, keepdims=True)
        x = linear_sum_assignment(C64)[1].astype(np.int64)
        del C64
        proven = dense_duals(C, x) is not None
    del C
    x = x[:n_a]
    cost = np.empty(n_a, dtype=np.float64)
    _exact_sq_dist(xa, xb, np.arange(n_a), x, xa.shape[1] - 2, cost)
    return np.where(cost < ta + tb[x], x, -1), {"dense_proven": proven}


def partial_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    rho: float,
    block: int = 2048,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    quantised: bool = True,
    work_bytes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Exact optimum of (P) with τ = ρ r, τ' = ρ s; returns (perm with −1, pair cost, info).

    pair cost is c_i,perm[i] (float64 → float32) and NaN where i is unmatched. exact_tail,
    head_splits: as for the bijection's int8 bound (mode "both": 1, (d_model,)).
    work_bytes: bytes this may allocate beyond the features (None: the default budget,
    budget.py); MemoryError naming the route before anything large is allocated when none
    fits.
    """
    if not np.isfinite(rho) or rho < 0:
        raise ValueError(f"the relative reject cost must be a finite number ≥ 0, got {rho}")
    n, D = xa.shape[0], xa.shape[1] - 2
    if xb.shape[1] != xa.shape[1] or n > len(xb):
        raise ValueError(
            f"partial_assign: features {xa.shape} and {xb.shape}: same length, and side a "
            "no wider than side b (swap the two sides)"
        )
    work = resolve_work(work_bytes)
    block = pass_block(n, D, work, block, len(xb))
    fits = bound_bytes(n, D, MAX_WORKERS) <= work and n == len(xb)  # the int8 bound: square
    r, s = squared_norms(xa, xb)
    ta, tb = rho * r, rho * s
    extra: dict = {}
    dense = False
    try:
        found = None
        # the float32 backend (gemm.py): the float32 pass below is that bound already, with
        # nothing n×n stored
        stored = fits and estimate_bytes(len(xa), len(xb)) <= MAX_STORED_BYTES
        if quantised and stored and bound_gemm() == "int8":
            found = bound_candidates(xa, xb, ta, tb, exact_tail, head_splits)
        method = "int8-bound" if found is not None else "float32-pass"
        rows, cols, cost = found if found is not None else candidate_pairs(xa, xb, ta, tb, block)
        perm = solve_with_reject(rows, cols, cost, ta, tb)
    except DenseGraphError:  # most pairs beat rejection: the clamped bijection, densely
        dense = True  # solved below, once the pass's frames (its buffers) are released
    if dense:
        method = "dense-clamped"
        perm, extra = dense_reject_assign(xa, xb, ta, tb, block, work)
        rows = np.flatnonzero(perm >= 0)
        cols = perm[rows]
        cost = np.empty(len(rows), dtype=np.float64)
        _exact_sq_dist(xa, xb, rows, cols, xa.shape[1] - 2, cost)
    pair = np.full(len(perm), np.nan, dtype=np.float64)
    matched = np.flatnonzero(perm >= 0)
    keys = rows * len(tb) + cols  # the edges' costs, looked up by (row, column)
    order = np.argsort(keys)
    pair[matched] = cost[order[np.searchsorted(keys[order], matched * len(tb) + perm[matched])]]
    b_matched = np.zeros(len(tb), dtype=bool)
    b_matched[perm[matched]] = True
    total = float(pair[matched].sum() + ta[perm < 0].sum() + tb[~b_matched].sum())
    info = {
        "rho": float(rho),
        "kappa": 1.0 - float(rho),
        "edges": int(len(rows)),
        "candidates": method,
        **extra,
        "block": block,
        "unmatched_a": int((perm < 0).sum()),
        "unmatched_b": int((~b_matched).sum()),
        "objective": total,
        "proof": "LP duals of the clamped cost"
        if method == "dense-clamped"
        else "restriction lemma + exact sparse LAP",
        "proven": bool(extra.get("dense_proven", True)),
    }
    return perm, pair.astype(np.float32), info
