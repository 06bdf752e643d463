"""Exact assignment from a bfloat16 cost: rigorous error bounds, exact costs only where needed.

The z·z part of c_ij = r_i + s_j − 2 z_A,i·z_B,j is built by one bfloat16 GEMM (about 2x
faster than float32 on CPUs with AVX512-BF16); trailing `exact_tail` dims of z (the b_enc
term of mode "both") are added exactly. Rounding bounds |ĉ_ij − c_ij| ≤ e_ij with
e_ij = κ ‖h_A,i‖ ‖h_B,j‖ + 4 ε32 (|r_i| + |s_j| + |ĝ_ij|), h the bfloat16 part of z and
κ = 3·2⁻⁸ + K·2⁻²³ (inputs and output rounded to bfloat16, K-term float32 accumulation).
1. Guess: clear mutual best pairs of ĉ; the rest solved by lapjvs on its float32 sub-cost.
2. Proof: label-correcting column duals (as dense_cg.py) where a pair is scanned with its lower
   bound ĉ_ij − e_ij and, only when that bound would lower v_j, with its exact cost (float64
   dot of the float32 features, the cost scipy's reference sees). Every pair satisfies
   u_i + v_j ≤ c_ij (exact, or via the bound) with equality on σ: σ is optimal (LP duality).
   No proof within the scan budget -> None (the caller falls back to the float32 dense solver).
"""

from __future__ import annotations

import lap
import numba as nb
import numpy as np
import torch

from saematch.matching.dense_cg import _block_topk, _label_duals
from saematch.matching.sparse_lap import _heap_pop, _heap_push


@nb.njit(cache=True, fastmath=True)
def _exact(xa, xb, i, j):
    """c_ij = xa[i] · xb[j] accumulated in float64 (deterministic for a given pair)."""
    acc = 0.0
    for k in range(xa.shape[1]):
        acc += np.float64(xa[i, k]) * np.float64(xb[j, k])
    return acc


@nb.njit(cache=True)
def _bound_duals(G, E, F, rowc, colc, xa, xb, s, x, y, v, tol, max_scans):
    """Label-correcting duals over all pairs: lower bounds first, exact costs on demand.

    c_ij ≥ G_ij − E_i F_j + rowc_i + colc_j (the rounding bound, see module doc). A pair gets
    its exact cost only when that bound would lower v_j. Returns (row scans, exact costs
    computed); scans < 0 when max_scans ran out.
    """
    n = G.shape[0]
    cap = 4 * n
    hk = np.empty(cap)
    hv = np.empty(cap, dtype=np.int64)
    pend = np.ones(n, dtype=np.bool_)
    size, scans, exact = 0, 0, 0
    for j in range(n):
        size = _heap_push(hk, hv, size, v[j] + s[j], j)
    while size > 0:
        key, j0, size = _heap_pop(hk, hv, size)
        if not pend[j0] or key > v[j0] + s[j0]:
            continue
        pend[j0] = False
        scans += 1
        if scans > max_scans:
            return -1, exact
        i = y[j0]
        base = v[j0] - _exact(xa, xb, i, j0)
        k_i = base + rowc[i] + tol
        e_i = E[i]
        for j in range(n):
            if np.float64(G[i, j]) - e_i * F[j] + k_i >= v[j] - colc[j] or j == j0:
                continue
            exact += 1
            cand = base + _exact(xa, xb, i, j)
            if cand < v[j] - tol:
                v[j] = cand
                pend[j] = True
                if size == cap:
                    size = 0
                    for t in range(n):
                        if pend[t]:
                            size = _heap_push(hk, hv, size, v[t] + s[t], t)
                else:
                    size = _heap_push(hk, hv, size, cand + s[j], j)
    return scans, exact


def _bf16_cost(xa, xb, exact_tail: int, block: int) -> np.ndarray:
    """ĝ (n, n) float32: bfloat16 GEMM of the head of z plus the exact tail (r + s not added)."""
    n, D = xa.shape[0], xa.shape[1] - 2
    h = D - exact_tail
    out = np.empty((n, xb.shape[0]), dtype=np.float32)
    tb = torch.from_numpy(xb[:, :h]).bfloat16()  # strided view in, contiguous bfloat16 out
    ot = torch.from_numpy(out)
    tail_b = torch.from_numpy(xb[:, h:D]).T  # (t, n): the exact tail, added per block
    for s0 in range(0, n, block):
        ta = torch.from_numpy(xa[s0 : s0 + block, :h]).bfloat16()
        ot[s0 : s0 + block].copy_(ta @ tb.T)  # bfloat16 product, widened to float32
        if exact_tail:  # (block, n) temporary only, never a second n×n array
            ot[s0 : s0 + block] += torch.from_numpy(xa[s0 : s0 + block, h:D]) @ tail_b
    return out


def _bound_holds(G, E, F, rowc, colc, xa, xb, m: int = 512, seed: int = 0) -> bool:
    """Spot check of the rounding bound on random pairs: c ≥ lb and ĉ within half its width.

    Guards against a backend that rounds more than assumed (e.g. bfloat16 accumulation);
    the proof itself relies on the bound.
    """
    n = G.shape[0]
    g = np.random.default_rng(seed)
    i, j = g.integers(0, n, m), g.integers(0, n, m)
    c = np.einsum("ij,ij->i", xa[i].astype(np.float64), xb[j].astype(np.float64))
    lb = G[i, j].astype(np.float64) - E[i] * F[j] + rowc[i] + colc[j]
    est = G[i, j].astype(np.float64) + xa[i, -2] + xb[j, -1]
    return bool(((c >= lb) & (np.abs(est - c) <= 0.5 * (est - lb))).all())


def _guess(xa, xb, s, rv, ri, cv, ci, margin: float, tol: float):
    """Clear mutual best pairs of ĉ kept, the rest solved on its exact float64 sub-cost.

    Returns x (n,), start column duals v (n,) and the size of the rest.
    """
    n = len(s)
    ar = np.arange(n)
    j = ri[:, 0]
    gap = margin * np.abs(rv[:, 0]) + 1e-6 * np.abs(rv[:, 1])
    sure = (ci[j, 0] == ar) & (rv[:, 1] - rv[:, 0] > gap) & (cv[j, 1] - cv[j, 0] > gap)
    x = np.where(sure, j, -1)
    rows = np.flatnonzero(~sure)
    taken = np.zeros(n, dtype=bool)
    taken[j[sure]] = True
    cols = np.flatnonzero(~taken)
    v = s.copy()
    if len(rows):  # lapjvs on the rest's float32 sub-cost
        sub = xa[rows] @ xb[cols].T  # float32; the proof checks the guess on exact costs
        red = sub - sub.min(axis=0, keepdims=True)  # same optimum, faster to solve
        xs = lap.lapjvs(red, extend_cost=False, return_cost=False, jvx_like=False)[0]
        xs = np.asarray(xs, dtype=np.int64)
        del red
        x[rows] = cols[xs]
        ys = np.empty(len(rows), dtype=np.int64)
        ys[xs] = np.arange(len(rows))
        vs = s[cols].copy()
        if _label_duals(sub, s[cols], xs, ys, vs, tol, 50 * len(rows)) >= 0:
            v[cols] = vs
    return x, v, len(rows)


def bf16_certified_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    exact_tail: int = 0,
    margin: float = 1.0,
    block: int = 1024,
    max_scans: float = 3.0,
) -> tuple[np.ndarray, dict] | None:
    """Optimal x (n,) of c = xa @ xb.T from a bfloat16 cost and bounds; None when not proven."""
    n, D = xa.shape[0], xa.shape[1] - 2
    h = D - exact_tail
    Ch = _bf16_cost(xa, xb, exact_tail, block)
    kappa = 3 * 2.0**-8 + h * 2.0**-23
    ea = kappa * np.sqrt(np.einsum("ij,ij->i", xa[:, :h], xa[:, :h], dtype=np.float64))
    eb = np.sqrt(np.einsum("ij,ij->i", xb[:, :h], xb[:, :h], dtype=np.float64))
    # c_ij ≥ ĝ_ij − E_i F_j + rowc_i + colc_j: κ‖h_A‖‖h_B‖ (1 + 2 ε4/κ covers ε4|ĝ|) and
    # float32 rounding 4ε(r_i + s_j + |tail|) of the terms added to ĝ
    eps4 = 4 * float(np.finfo(np.float32).eps)
    E = ea * (1 + 2 * eps4 / kappa)
    tmax = np.abs(xb[:, h:D]).max(0) if exact_tail else np.zeros(0, np.float32)
    r64 = xa[:, D].astype(np.float64)
    s = xb[:, D + 1].astype(np.float64)
    rowc = r64 - eps4 * (np.abs(r64) + np.abs(xa[:, h:D]).astype(np.float64) @ tmax)
    colc = s - eps4 * np.abs(s)
    if not _bound_holds(Ch, E, eb, rowc, colc, xa, xb):
        return None
    k = 2
    rv = np.full((n, k), np.inf, dtype=np.float32)
    ri = np.zeros((n, k), dtype=np.int64)
    cv, ci = rv.copy(), ri.copy()
    ra32, sb32 = -xa[:, D], -xb[:, D + 1]  # _block_topk subtracts r_i + s_j: adds r + s
    _block_topk(Ch, 0, ra32, sb32, rv, ri, cv, ci)
    o = np.argsort(rv, axis=1)
    rv, ri = np.take_along_axis(rv, o, 1), np.take_along_axis(ri, o, 1)
    o = np.argsort(cv, axis=1)
    cv, ci = np.take_along_axis(cv, o, 1), np.take_along_axis(ci, o, 1)
    tol = 1e-10 * max(float(np.abs(rv[:, 0]).max()), 1e-30)
    info = {"proof": "duals-bf16", "tries": []}
    for mg in (margin, 4 * margin):  # a wider margin leaves more to the exact rest
        x, v, rest = _guess(xa, xb, s, rv, ri, cv, ci, mg, tol)
        y = np.empty(n, dtype=np.int64)
        y[x] = np.arange(n)
        scans, exact = _bound_duals(
            Ch, E, eb, rowc, colc, xa, xb, s, x, y, v, tol, int(max_scans * n) + n
        )
        info["tries"].append({"margin": mg, "dense_rest": rest, "scans": scans, "exact": exact})
        if scans >= 0:
            return x, info
    return None
