"""Per-pair confidence, top-k predecessors and best successors: one GEMM pass over all pairs.

Confidence of a matched pair (i, p(i)) = its **swap regret**: how much the total cost rises
under the best alternative that breaks the pair,

    conf_i = min( min_{k≠i} Δ_ik ,  τ_i + τ'_p(i) − c_i,p(i) )                            (1)
    Δ_ik   = c'_i,p(k) + c'_k,p(i) − c'_i,p(i) − c'_k,p(k)      (swap partners with pair k)

with c' = min(c, τ_i + τ'_j) the clamped cost of the partial problem (partial.py; c' = c and
no drop term for the bijection) and unmatched features paired with each other in index order
(a clamped pair). The true regret (re-optimising with the pair forbidden) is ≤ conf_i; with
LP duals (u, v) of the optimum it is also ≥ the **dual regret**

    conf_lo_i = min_{j≠p(i)} (c_ij − u_i − v_j) + min_{k≠i} (c_k,p(i) − u_k − v_p(i))        (2)

(a forbidden-pair optimum σ' has σ'(i) = j ≠ p(i) and some k ≠ i on p(i); its extra cost
is Σ of its reduced costs ≥ those two). (2) is computed when duals are given.

Pass: blocks C'[I, K] = C[I, p(K)] of the column-permuted cost, float32 GEMMs; each
unordered block pair once, so the work is one n² D GEMM. The same entries give each column's
k cheapest rows (predecessors: many-to-one, data-free) and each row's two cheapest columns.
Float32 throughout: values within float32 rounding of a tie are not meaningful (clipped at 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np


@dataclass
class PairAnalysis:
    """What one pass over all pairs yields (shapes: n features of A, n of B)."""

    confidence: np.ndarray  # (n,) float32 swap regret (1); NaN where unmatched
    swap_partner: np.ndarray  # (n,) int64, the k of the best swap; −1: the drop is best
    predecessors: np.ndarray  # (n, k) int64: B's j -> A's k cheapest rows, best first
    predecessor_cost: np.ndarray  # (n, k) float32
    successors: np.ndarray  # (n, 2) int64: A's i -> B's two cheapest columns
    successor_cost: np.ndarray  # (n, 2) float32
    confidence_lower: np.ndarray | None = None  # (n,) float32 dual regret (2), if duals given


@nb.njit(cache=True)
def offer(vals, idx, r, c, ident):
    """Keep the k smallest (c, ident) in the max-heap vals[r], idx[r] (root = the largest)."""
    k = vals.shape[1]
    if c >= vals[r, 0]:
        return
    vals[r, 0], idx[r, 0] = c, ident
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= k:
            break
        child = left
        if left + 1 < k and vals[r, left + 1] > vals[r, left]:
            child = left + 1
        if vals[r, pos] >= vals[r, child]:
            break
        vals[r, pos], vals[r, child] = vals[r, child], vals[r, pos]
        idx[r, pos], idx[r, child] = idx[r, child], idx[r, pos]
        pos = child


@nb.njit(cache=True)
def _pair_block(
    P, Q, i0, k0, same, pf, ta, tbp, dd, best, bestk, pv, pi, sv, si, u, vp, lo_r, lo_c
):
    """Fold the block pair P = C'[I, K], Q = C'[K, I] into every accumulator (module doc)."""
    use_duals = u.shape[0] > 0
    for a in range(P.shape[0]):
        i = i0 + a
        start = a + 1 if same else 0
        if same:  # the matched entry (i, p(i)) itself: a candidate predecessor and successor
            offer(pv, pi, pf[i], P[a, a], i)
            offer(sv, si, i, P[a, a], pf[i])
        for b in range(start, P.shape[1]):
            k = k0 + b
            x1, x2 = np.float64(P[a, b]), np.float64(Q[b, a])  # c_i,p(k), c_k,p(i)
            delta = min(x1, ta[i] + tbp[k]) + min(x2, ta[k] + tbp[i]) - dd[i] - dd[k]
            if delta < best[i]:
                best[i], bestk[i] = delta, k
            if delta < best[k]:
                best[k], bestk[k] = delta, i
            offer(pv, pi, pf[k], P[a, b], i)
            offer(pv, pi, pf[i], Q[b, a], k)
            offer(sv, si, i, P[a, b], pf[k])
            offer(sv, si, k, Q[b, a], pf[i])
            if use_duals:
                lo_r[i] = min(lo_r[i], x1 - u[i] - vp[k])  # row i, column p(k) ≠ p(i)
                lo_c[k] = min(lo_c[k], x1 - u[i] - vp[k])  # column p(k), row i ≠ k
                lo_r[k] = min(lo_r[k], x2 - u[k] - vp[i])
                lo_c[i] = min(lo_c[i], x2 - u[k] - vp[i])


def sorted_heaps(vals, idx):
    o = np.argsort(vals, axis=1, kind="stable")
    return np.take_along_axis(idx, o, 1), np.take_along_axis(vals, o, 1)


def complete(perm: np.ndarray, n_b: int) -> np.ndarray:
    """perm with its unmatched rows paired to the unmatched columns in index order."""
    full = perm.copy()
    free_cols = np.setdiff1d(np.arange(n_b), perm[perm >= 0])
    full[perm < 0] = free_cols
    return full


def pair_analysis(
    xa: np.ndarray,
    xb: np.ndarray,
    perm: np.ndarray,
    tau: tuple[np.ndarray, np.ndarray] | None = None,
    top_k: int = 5,
    duals: tuple[np.ndarray, np.ndarray] | None = None,
    block: int = 2048,
) -> PairAnalysis:
    """Confidence (1), optional dual regret (2), predecessors and successors of a matching.

    xa, xb: augmented features (cost.py), equal widths; perm (n,) with −1 = unmatched;
    tau = (τ (n,), τ' (n,)) of a partial matching, None for the bijection.
    """
    n = xa.shape[0]
    if xb.shape[0] != n:
        raise ValueError(f"pair_analysis needs equal widths, got {n} and {xb.shape[0]}")
    k = max(1, min(int(top_k), n))
    pf = complete(np.asarray(perm, dtype=np.int64), n)
    inf = np.full(n, np.inf)
    ta, tb = (inf, inf) if tau is None else (np.asarray(tau[0], float), np.asarray(tau[1], float))
    tbp = tb[pf]
    dd = np.empty(n)
    best = np.full(n, np.inf)
    bestk = np.full(n, -1, dtype=np.int64)
    pv, pi = np.full((n, k), np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)
    sv, si = np.full((n, 2), np.inf, dtype=np.float32), np.full((n, 2), -1, dtype=np.int64)
    if duals is None:
        u = vp = np.empty(0)
    else:
        u, vp = np.asarray(duals[0], float), np.asarray(duals[1], float)[pf]
    lo_r, lo_c = np.full(n, np.inf), np.full(n, np.inf)
    starts = list(range(0, n, block))
    diag = {}
    for s in starts:  # diagonal blocks first: they hold c'_i,p(i) for every i
        C = xa[s : s + block] @ xb[pf[s : s + block]].T  # (b, b) float32
        idx = np.arange(s, s + C.shape[0])
        dd[idx] = np.minimum(np.diag(C).astype(np.float64), ta[idx] + tbp[idx])
        diag[s] = C
    for s in starts:
        C = diag.pop(s)
        _pair_block(
            C, C, s, s, True, pf, ta, tbp, dd, best, bestk, pv, pi, sv, si, u, vp, lo_r, lo_c
        )
        for t in starts:
            if t <= s:
                continue
            P = xa[s : s + block] @ xb[pf[t : t + block]].T  # C'[I, K]
            Q = xa[t : t + block] @ xb[pf[s : s + block]].T  # C'[K, I]
            _pair_block(
                P, Q, s, t, False, pf, ta, tbp, dd, best, bestk, pv, pi, sv, si, u, vp, lo_r, lo_c
            )
    drop = ta + tbp - dd  # leave the pair unmatched (partial only; inf for the bijection)
    bestk[drop < best] = -1
    conf = np.maximum(np.minimum(best, drop), 0.0).astype(np.float32)
    matched = np.asarray(perm) >= 0
    conf[~matched] = np.nan
    preds, pcost = sorted_heaps(pv, pi)
    succ, scost = sorted_heaps(sv, si)
    lower = None
    if duals is not None:
        lower = np.maximum(lo_r + lo_c, 0.0).astype(np.float32)
        lower[~matched] = np.nan
    return PairAnalysis(conf, bestk, preds, pcost, succ, scost, lower)
