"""The pair pass on the bound's estimate: confidence, predecessors and successors of a matching.

Same quantities as confidence.py's float32 pass, then made exact. With the column-permuted
cost C'[i, k] = c_i,p(k) (p: the matching, unmatched rows completed in index order), an
estimate ĉ by the bound's GEMM (solvers/gemm.py, docs/method.md §13) and its rigorous error
radius e (c = xa·xb in exact arithmetic):

    |c_ik − ĉ_ik| ≤ e_ik = ‖δ_i‖ ‖b_k‖ + ‖σq_i‖ (‖δ'_k‖ + 8ε ‖σ'q'_k‖)     (int8, quantised.py)
    |c_ik − ĉ_ik| ≤ e_ik = γ_D (‖a_G1,i‖ ‖b_G1,k‖ + ‖a_G2,i‖ ‖b_G2,k‖) + η  (fp32, fp32.py)  (3)

One pass over all block pairs (C'[I, K], C'[K, I]) keeps, per row i, the `screen` swaps k
with the smallest estimated Δ̂_ik and the minimum of the rigorous lower bound Δ^L_ik (each
clamped cost bounded through (3)); per column its top_k + `screen` cheapest rows, per row its
2 + `screen` cheapest columns. Then every kept candidate is recomputed in float64 (exact dot
of the float32 features) and ranked exactly:

    conf_i = min( min_{k ∈ K_i} Δ_ik , drop_i )       (K_i: row i's screened swaps)   (4)
    conf_low_i = max(0, min(min_k Δ^L_ik, drop_i))     ≤ swap regret (1) ≤ conf_i

So conf_i is an exact swap (a feasible alternative breaking the pair): a proven upper bound
on the true regret and on (1), equal to (1) whenever (1)'s best swap is among the screened
ones (the int8 estimate's typical error is far below the spacing of the cheapest swaps;
bench_matching.py measures agreement with the float32 pass). conf_low brackets (1) from
below, rigorously. The dual regret (2) is bounded below through (3) the same way, so it
stays a proven lower bound on the true regret. Predecessors and successors are the exact
cheapest among the screened candidates.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch

from saematch.matching.beyond.confidence import PairAnalysis, complete, sorted_heaps
from saematch.matching.beyond.screen_kernels import exact_into, screen_block
from saematch.matching.budget import resolve_work, screen_bytes, too_big
from saematch.matching.solvers.fp32 import fp32_terms
from saematch.matching.solvers.gemm import bound_gemm, ieee_fp32
from saematch.matching.solvers.quantised import (
    EPS,
    SLACK,
    Norms,
    part_bounds,
    quantise_rows,
)

SCREEN = 4  # extra candidates per heap beyond what is reported
WORKERS = 2  # block-pair workers (GEMM in torch, scan in numba without the GIL)


def _quantise(x, bounds, pool):
    """int8 parts (n, width) of x's head, scales (n, P) and the head norms (‖δ‖, ‖σq‖, ‖z‖),
    row slices in the worker threads."""
    n = x.shape[0]
    parts = [np.empty((n, hi - lo), dtype=np.int8) for lo, hi in bounds]
    scale = np.empty((n, len(bounds)), dtype=np.float32)
    norms = Norms(n)
    edges = np.linspace(0, n, WORKERS + 1).astype(int)

    def one(r0, r1):
        quantise_rows(x, bounds, r0, [q[r0:r1] for q in parts], scale, norms)

    list(pool.map(one, edges[:-1], edges[1:]))
    return parts, scale, norms.get()


def exact_costs(xa, xb, rows, cols, pool) -> np.ndarray:
    """c for each (rows[t], cols[t]), exact float64 dots of the float32 features, threaded."""
    rows, cols = np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(cols, np.int64)
    out = np.empty(len(rows))
    edges = np.linspace(0, len(rows), WORKERS + 1).astype(int)
    list(
        pool.map(lambda lo, hi: exact_into(xa, xb, rows, cols, out, lo, hi), edges[:-1], edges[1:])
    )
    return out


class _Acc:
    """One worker's accumulators (merged at the end)."""

    def __init__(self, n: int, m: int, kp: int, ks: int, duals: bool):
        self.cv, self.ck = np.full((n, m), np.inf), np.full((n, m), -1, dtype=np.int64)
        self.low = np.full(n, np.inf)
        self.pv, self.pi = np.full((n, kp), np.inf), np.full((n, kp), -1, dtype=np.int64)
        self.sv, self.si = np.full((n, ks), np.inf), np.full((n, ks), -1, dtype=np.int64)
        self.lo_r = np.full(n if duals else 0, np.inf)
        self.lo_c = np.full(n if duals else 0, np.inf)


def _merge_heaps(vals, idx, width):
    """Per row, the `width` smallest over several (n, w) heaps, ascending."""
    v, i = np.concatenate(vals, axis=1), np.concatenate(idx, axis=1)
    i, v = sorted_heaps(v, i)
    return i[:, :width], v[:, :width]


def _exact_rank(xa, xb, rows, cols, keep, by_row: bool, pool):
    """Exact costs of the candidate pairs (rows, cols: (n, w), −1 = none); the `keep`
    cheapest per line, ascending: (indices (n, keep), costs float32)."""
    ok = (rows >= 0) & (cols >= 0)
    cost = np.full(rows.shape, np.inf)
    cost[ok] = exact_costs(xa, xb, rows[ok], cols[ok], pool)
    other = cols if by_row else rows
    o = np.argsort(cost, axis=1, kind="stable")[:, :keep]
    return np.take_along_axis(other, o, 1), np.take_along_axis(cost, o, 1).astype(np.float32)


def screened_analysis(
    xa: np.ndarray,
    xb: np.ndarray,
    perm: np.ndarray,
    tau: tuple[np.ndarray, np.ndarray] | None = None,
    top_k: int = 5,
    duals: tuple[np.ndarray, np.ndarray] | None = None,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    block: int = 2048,
    screen: int = SCREEN,
    gemm: str | None = None,
) -> tuple[PairAnalysis, np.ndarray, dict]:
    """(4) with predecessors and successors, and conf_low (module doc); as pair_analysis.
    gemm: the estimate's GEMM, int8 | fp32 (None: solvers/gemm.py's choice)."""
    fp32 = bound_gemm(gemm) == "fp32"
    with ThreadPoolExecutor(WORKERS) as pool, ieee_fp32():
        return _screened(xa, xb, perm, tau, top_k, duals, exact_tail, head_splits, block,
                         screen, pool, fp32)  # fmt: skip


def _int8_sides(xa, xb, pf, exact_tail, head_splits, pool):
    """The int8 screen's inputs: int8 parts of A and of B in matched order (torch), scales σ,
    σ' (n, P), exact tails, r, s' and the radius terms E1, F1, E2, F2 of (3)."""
    D = xa.shape[1] - 2
    h = D - exact_tail
    bounds = part_bounds(h, head_splits)
    qa, sa, (da, na_q, _) = _quantise(xa, bounds, pool)
    qb, sb, (db, nb_q, zb) = _quantise(xb, bounds, pool)
    qbp = [q[pf] for q in qb]  # B's rows in matched order: C'[i, k] = c_i,p(k)
    E1, E2 = da * SLACK, na_q * SLACK
    F1, F2 = zb[pf] * SLACK, (db[pf] + 8 * EPS * nb_q[pf]) * SLACK
    tla, tlb = np.ascontiguousarray(xa[:, h:D]), np.ascontiguousarray(xb[pf, h:D])
    r, sp = xa[:, D].astype(np.float64), xb[pf, D + 1].astype(np.float64)
    tq = [[torch.from_numpy(q) for q in side] for side in (qa, qbp)]
    return tq, None, sa, sb[pf], tla, tlb, r, sp, (E1, F1, E2, F2)


def _fp32_sides(xa, xb, pf, exact_tail, head_splits):
    """The same for the float32 estimate (fp32.py): both sides' z read in place (B's rows
    gathered into matched order per block: `order`) as one float32 part each (σ = σ' = 1,
    the tail inside the GEMM), r and s' lowered by the underflow terms η, η'."""
    n, D = xa.shape[0], xa.shape[1] - 2
    E1, F1, E2, F2, eta_a, eta_b = fp32_terms(xa, xb, exact_tail, head_splits)
    tq = [[torch.from_numpy(xa)[:, :D]], [torch.from_numpy(xb)[:, :D]]]
    one, none = np.ones((n, 1), dtype=np.float32), np.zeros((n, 0), dtype=np.float32)
    r = xa[:, D].astype(np.float64) - eta_a
    sp = xb[pf, D + 1].astype(np.float64) - eta_b[pf]
    return tq, torch.from_numpy(pf), one, one, none, none, r, sp, (E1, F1[pf], E2, F2[pf])


def _screened(xa, xb, perm, tau, top_k, duals, exact_tail, head_splits, block, screen, pool,
              fp32):  # fmt: skip
    t0 = time.perf_counter()
    n = xa.shape[0]
    if xb.shape[0] != n:
        raise ValueError(f"pair analysis needs equal widths, got {n} and {xb.shape[0]}")
    k = max(1, min(int(top_k), n))
    pf = complete(np.asarray(perm, dtype=np.int64), n)
    sides = _fp32_sides if fp32 else partial(_int8_sides, pool=pool)
    tq, order, sa, sb, tla, tlb, r, sp, radius = sides(xa, xb, pf, exact_tail, head_splits)
    E1, F1, E2, F2 = radius
    mm = torch.mm if fp32 else torch._int_mm
    inf = np.full(n, np.inf)
    ta, tb = (inf, inf) if tau is None else (np.asarray(tau[0], float), np.asarray(tau[1], float))
    tbp = tb[pf]
    raw = exact_costs(xa, xb, np.arange(n), pf, pool)  # c_i,p(i), float64
    dd = np.minimum(raw, ta + tbp)
    use = duals is not None
    u = np.asarray(duals[0], float) if use else np.empty(0)
    vp = np.asarray(duals[1], float)[pf] if use else np.empty(0)
    m, kp, ks = max(1, screen), k + screen, 2 + screen
    starts = list(range(0, n, block))
    jobs = [(s, t) for s in starts for t in starts if t >= s]
    accs = [_Acc(n, m, kp, ks, use) for _ in range(WORKERS)]

    def ints(rows, cols, swap=False):  # (P, |rows|, |cols|) int32 / float32: the products
        pairs = zip(*tq, strict=True)
        bsel = (lambda s: s) if order is None else (lambda s: order[s])  # noqa: E731
        if swap:  # C'[cols, rows]ᵀ = xb'[rows] · xa[cols]ᵀ, laid out like C'[rows, cols]
            return np.stack([mm(b[bsel(rows)], a[cols].T).numpy() for a, b in pairs])
        return np.stack([mm(a[rows], b[bsel(cols)].T).numpy() for a, b in pairs])

    def work(w: int) -> None:
        acc = accs[w]
        for s, t in jobs[w::WORKERS]:
            S, T = slice(s, s + block), slice(t, t + block)
            IP, IQ = ints(S, T), ints(S, T, swap=True)
            screen_block(IP, IQ, s, t, s == t, sa, sb, tla, tlb, r, sp, E1, F1, E2, F2, pf,
                          ta, tbp, dd, acc.cv, acc.ck, acc.low, acc.pv, acc.pi, acc.sv, acc.si,
                          u, vp, acc.lo_r, acc.lo_c)  # fmt: skip

    t1 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // WORKERS))
    try:
        list(pool.map(work, range(WORKERS)))
    finally:
        torch.set_num_threads(threads)
    t2 = time.perf_counter()
    ck, _ = _merge_heaps([a.cv for a in accs], [a.ck for a in accs], m)
    low = np.minimum.reduce([a.low for a in accs])
    pi, _ = _merge_heaps([a.pv for a in accs], [a.pi for a in accs], kp)
    si, _ = _merge_heaps([a.sv for a in accs], [a.si for a in accs], ks)
    # the matched entry (i, p(i)) itself: a candidate predecessor of p(i) and successor of i
    pi = np.concatenate([pi, np.full((n, 1), -1)], axis=1)
    pi[pf, -1] = np.arange(n)
    si = np.concatenate([si, pf[:, None]], axis=1)
    # exact (4): both entries of every screened swap, clamped, in float64
    rows_i = np.repeat(np.arange(n)[:, None], m, 1)
    okk = ck >= 0
    kk = np.where(okk, ck, 0)
    c1 = exact_costs(xa, xb, rows_i[okk], pf[kk[okk]], pool)  # c_i,p(k)
    c2 = exact_costs(xa, xb, kk[okk], pf[rows_i[okk]], pool)  # c_k,p(i)
    delta = np.full((n, m), np.inf)
    delta[okk] = (
        np.minimum(c1, ta[rows_i[okk]] + tbp[kk[okk]])
        + np.minimum(c2, ta[kk[okk]] + tbp[rows_i[okk]])
        - dd[rows_i[okk]]
        - dd[kk[okk]]
    )
    best_at = delta.argmin(1)
    best = delta[np.arange(n), best_at]
    bestk = np.where(np.isfinite(best), ck[np.arange(n), best_at], -1)
    drop = ta + tbp - dd
    bestk[drop < best] = -1
    conf = np.maximum(np.minimum(best, drop), 0.0).astype(np.float32)
    conf_low = np.maximum(np.minimum(low, drop), 0.0).astype(np.float32)
    matched = np.asarray(perm) >= 0
    conf[~matched] = conf_low[~matched] = np.nan
    cols_j = np.repeat(np.arange(n)[:, None], kp + 1, 1)
    preds, pcost = _exact_rank(xa, xb, pi, cols_j, k, False, pool)
    rows_s = np.repeat(np.arange(n)[:, None], ks + 1, 1)
    succ, scost = _exact_rank(xa, xb, rows_s, si, 2, True, pool)
    lower = None
    if use:
        lo_r = np.minimum.reduce([a.lo_r for a in accs])
        lower = np.maximum(lo_r + np.minimum.reduce([a.lo_c for a in accs]), 0.0)
        lower = lower.astype(np.float32)
        lower[~matched] = np.nan
    t3 = time.perf_counter()
    info = {"prepare_seconds": t1 - t0, "pass_seconds": t2 - t1, "exact_seconds": t3 - t2}
    return PairAnalysis(conf, bestk, preds, pcost, succ, scost, lower), conf_low, info


def analyse_pairs(
    xa: np.ndarray,
    xb: np.ndarray,
    perm: np.ndarray,
    tau: tuple[np.ndarray, np.ndarray] | None = None,
    top_k: int = 5,
    duals: tuple[np.ndarray, np.ndarray] | None = None,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    work_bytes: int | None = None,
) -> tuple[PairAnalysis, dict]:
    """The screen (module doc) on the estimate of the bound's GEMM (solvers/gemm.py: int8
    where torch's int8 GEMM is measured faster, else float32); the same exact swaps either way.

    work_bytes: bytes it may allocate (None: the default budget, budget.py); the block
    shrinks to fit, and a budget that fits no block of 64 rows is a MemoryError before the
    pass.
    """
    n, D = xa.shape
    gemm = bound_gemm()

    def need(block: int) -> int:
        return screen_bytes(n, D, block, WORKERS, SCREEN, fp32=gemm == "fp32")

    work = resolve_work(work_bytes)
    block = 2048
    while block > 64 and need(block) > work:
        block //= 2
    if need(block) > work:
        raise too_big(n, D, need(block), work, "the confidence pass")
    pa, low, info = screened_analysis(
        xa, xb, perm, tau, top_k, duals, exact_tail, head_splits, block, gemm=gemm
    )
    info["block"] = block
    ok = np.isfinite(low) & (pa.confidence > 0)
    info["confidence_low_median_ratio"] = (
        float(np.median(low[ok] / pa.confidence[ok])) if ok.any() else float("nan")
    )
    return pa, {"analysis": f"{gemm}-screen", "screen": SCREEN, **info}
