"""The sparse certified solver: candidate edges, a sparse LAP, duals checked on every pair.

1. One blockwise GEMM pass keeps each row's and column's k cheapest pairs of a normalised
   cost c̃_ij = c_ij − λ(r_i + s_j) (λ = 1: −2 z_A·z_B, λ = 0: the MSE itself). Shifting a
   row or column by a constant changes no full assignment, so any λ is exact; it only picks
   which pairs become candidates. The identity's edges are added so a perfect matching exists.
2. A shortest-augmenting-path solver (sparse_lap.py, numba) solves the sparse problem and
   returns its LP duals (u, v); later rounds are warm-started from the previous solution.
3. Every pair outside the graph is checked with c̃_ij ≥ max(R̃_i, C̃_j) in O(n log n). Rows the
   bounds cannot clear get their exact costs (a GEMM of those rows only, kept for later
   rounds); their pairs with the lowest reduced costs join the graph and the loop repeats.
   No unproven result is returned.

Candidate costs are float32 GEMM values, so the certificate holds at the float32 rounding
bound tol = (D + 2)·ε·max‖x_a‖·max‖x_b‖ (rigorous for any summation order).
"""

from __future__ import annotations

import numpy as np

from saematch.matching.candidates import block_candidates, unproven_rows
from saematch.matching.certificate import Assignment
from saematch.matching.sparse_lap import build_csr, solve_sparse


class _ExactRows:
    """Exact c̃ rows computed on demand (float32) and kept, so each row costs one GEMM."""

    def __init__(self, xa: np.ndarray, xb: np.ndarray):
        self.xa, self.xbt = xa, xb.T
        self.slot = np.full(xa.shape[0], -1)
        self.store = np.empty((0, xb.shape[0]), dtype=np.float32)

    def get(self, rows: np.ndarray) -> np.ndarray:
        new = rows[self.slot[rows] < 0]
        if len(new):
            self.slot[new] = len(self.store) + np.arange(len(new))
            self.store = np.concatenate([self.store, self.xa[new] @ self.xbt])
        return self.store[self.slot[rows]]


def _tolerance(xa: np.ndarray, xb: np.ndarray) -> float:
    """Float32 rounding bound of any c = xa·xb: |fl(x·y) − x·y| ≤ K ε ‖x‖ ‖y‖."""
    na = np.sqrt(np.einsum("ij,ij->i", xa, xa, dtype=np.float64).max())
    nb = np.sqrt(np.einsum("ij,ij->i", xb, xb, dtype=np.float64).max())
    return float(xa.shape[1] * np.finfo(np.float32).eps * na * nb) + 1e-30


def _normalise(xa: np.ndarray, xb: np.ndarray, lam: float):
    """Copies of xa, xb whose product is c̃ = c − α_i − β_j, and (α, β) in float64."""
    D = xa.shape[1] - 2
    xa_n, xb_n = xa.copy(), xb.copy()
    xa_n[:, D] = xa[:, D] * np.float32(1 - lam)
    xb_n[:, D + 1] = xb[:, D + 1] * np.float32(1 - lam)
    alpha = xa[:, D].astype(np.float64) - xa_n[:, D]
    beta = xb[:, D + 1].astype(np.float64) - xb_n[:, D + 1]
    return xa_n, xb_n, alpha, beta


def sparse_certified_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    k: int = 128,
    lam: float = 1.0,
    block: int = 2048,
    extra: int = 256,
    max_rounds: int = 100,
    progress: bool = False,
) -> Assignment:
    """Optimal assignment of c = xa @ xb.T (augmented features, float32), with its duals."""
    n = xa.shape[0]
    xa_n, xb_n, alpha, beta = _normalise(xa, xb, lam)
    cand = block_candidates(xa_n, xb_n, k, block=block, progress=progress)
    tol = _tolerance(xa_n, xb_n)
    ident = np.arange(n)
    rows = np.concatenate([cand.rows, ident])
    cols = np.concatenate([cand.cols, ident])
    vals = np.concatenate([cand.vals, np.einsum("ij,ij->i", xa_n, xb_n)]).astype(np.float64)
    exact = _ExactRows(xa_n, xb_n)
    info = {"k": k, "lam": lam, "rounds": 0}
    state = None
    for _ in range(max_rounds):
        csr = build_csr(n, rows, cols, vals)
        state = solve_sparse(*csr, state)  # c̃ and c give the same assignment; warm rounds
        x, u, v = state.x.copy(), state.row_duals(*csr), state.v
        info["rounds"] += 1
        bad = unproven_rows(u, v, cand.row_bound, cand.col_bound, tol)
        ex = exact.get(bad)  # (|bad|, n) exact c̃ rows
        red = ex - u[bad, None] - v[None, :]  # reduced costs
        viol = (red < -tol).any(1)
        if not viol.any():
            break
        bad, red, ex = bad[viol], red[viol], ex[viol]
        m = min(extra, n - 1)
        top = np.argpartition(red, m, axis=1)[:, :m]  # each violated row's m best pairs
        ai, aj = np.repeat(bad, m), top.ravel()
        rows, cols = np.concatenate([rows, ai]), np.concatenate([cols, aj])
        vals = np.concatenate([vals, ex[np.repeat(np.arange(len(bad)), m), aj]])
    else:
        raise RuntimeError(f"sparse solver: no proof after {max_rounds} rounds; use solver='lapjv'")
    info.update(edges=len(csr[1]), exact_rows=int((exact.slot >= 0).sum()))
    return Assignment(x, u + alpha, v + beta, tol, info)  # duals of c = c̃ + α_i + β_j
