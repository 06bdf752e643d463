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

Proof of optimality: E is found by one blockwise float32 GEMM pass over all n_A·n_B pairs with
a rigorous rounding margin (γ_D ‖x_i‖ ‖y_j‖, Higham's bound for any summation order), so no
pair with c_ij < τ_i + τ'_j is missed; each candidate's cost is recomputed in float64 and the
sparse problem is solved exactly (scipy's LAPJVsp on the standard reject-padded square graph).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching


def squared_norms(xa: np.ndarray, xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r (n_A,), s (n_B,)) float64: ‖z_A,i‖², ‖z_B,j‖² stored in the augmented features."""
    D = xa.shape[1] - 2
    return xa[:, D].astype(np.float64), xb[:, D + 1].astype(np.float64)


@nb.njit(cache=True)
def _scan_block(C, row0, ta, tb, nx, ny, gamma, out_r, out_c, count):
    """Append (i, j) with C_ij < ta_i + tb_j + γ nx_i ny_j (the float32 rounding margin)."""
    for a in range(C.shape[0]):
        i = row0 + a
        for j in range(C.shape[1]):
            if C[a, j] < ta[i] + tb[j] + gamma * nx[i] * ny[j]:
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


def candidate_pairs(
    xa: np.ndarray, xb: np.ndarray, ta: np.ndarray, tb: np.ndarray, block: int = 2048
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair with c_ij < τ_i + τ'_j, and its exact cost: (rows, cols, cost float64).

    One float32 GEMM pass in row blocks (no n×n array); the margin γ_D ‖x_i‖‖y_j‖ with
    γ_D = D u / (1 − D u) bounds the float32 dot's error, so no such pair is missed.
    """
    n, D2 = xa.shape
    u = float(np.finfo(np.float32).eps) / 2
    gamma = 2.0 * D2 * u / (1 - D2 * u)  # ×2: the float32 products' rounding too
    nx = np.linalg.norm(xa.astype(np.float64), axis=1)
    ny = np.linalg.norm(xb.astype(np.float64), axis=1)
    xbt = xb.T
    parts_r, parts_c = [], []
    cap = 4 * block + 1024
    for s in range(0, n, block):
        C = xa[s : s + block] @ xbt  # (b, n_B) float32
        while True:
            buf_r, buf_c = np.empty(cap, np.int64), np.empty(cap, np.int64)
            cnt = _scan_block(C, s, ta, tb, nx, ny, gamma, buf_r, buf_c, 0)
            if cnt >= 0:
                break
            cap *= 4
        parts_r.append(buf_r[:cnt])
        parts_c.append(buf_c[:cnt])
    rows, cols = np.concatenate(parts_r), np.concatenate(parts_c)
    cost = np.empty(len(rows), dtype=np.float64)
    _exact_sq_dist(xa, xb, rows, cols, D2 - 2, cost)
    keep = cost < ta[rows] + tb[cols]
    return rows[keep], cols[keep], cost[keep]


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


def partial_assign(
    xa: np.ndarray, xb: np.ndarray, rho: float, block: int = 2048
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Exact optimum of (P) with τ = ρ r, τ' = ρ s; returns (perm with −1, pair cost, info).

    pair cost is c_i,perm[i] (float64 → float32) and NaN where i is unmatched.
    """
    if not np.isfinite(rho) or rho < 0:
        raise ValueError(f"the relative reject cost must be a finite number ≥ 0, got {rho}")
    r, s = squared_norms(xa, xb)
    ta, tb = rho * r, rho * s
    rows, cols, cost = candidate_pairs(xa, xb, ta, tb, block)
    perm = solve_with_reject(rows, cols, cost, ta, tb)
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
        "unmatched_a": int((perm < 0).sum()),
        "unmatched_b": int((~b_matched).sum()),
        "objective": total,
        "proof": "restriction lemma + exact sparse LAP",
    }
    return perm, pair.astype(np.float32), info
