"""The pair pass on the int8 estimate: confidence, predecessors and successors of a matching.

Same quantities as confidence.py's float32 pass, at the cost of an int8 GEMM instead of a
float32 one (≈ 4× the throughput on VNNI CPUs). With the column-permuted cost C'[i, k] =
c_i,p(k) (p: the matching, unmatched rows completed in index order), quantised.py's int8
estimate ĉ and its rigorous error radius e (c = xa·xb in exact arithmetic):

    |c_ik − ĉ_ik| ≤ e_ik = ‖δ_i‖ ‖b_k‖ + ‖σq_i‖ (‖δ'_k‖ + 8ε ‖σ'q'_k‖)                 (3)

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

import numpy as np
import torch

from saematch.matching.beyond.confidence import PairAnalysis, complete, pair_analysis, sorted_heaps
from saematch.matching.beyond.screen_kernels import exact_into, screen_block
from saematch.matching.budget import confidence_pass_bytes, resolve_work, screen_bytes, too_big
from saematch.matching.solvers.gemm import bound_gemm
from saematch.matching.solvers.quantised import (
    EPS,
    SLACK,
    Norms,
    part_bounds,
    quantise_rows,
)

SCREEN = 4  # extra candidates per heap beyond what is reported
WORKERS = 2  # block-pair workers (int8 GEMM in torch, scan in numba without the GIL)


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
) -> tuple[PairAnalysis, np.ndarray, dict]:
    """(4) with predecessors and successors, and conf_low (module doc); as pair_analysis."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return _screened(xa, xb, perm, tau, top_k, duals, exact_tail, head_splits, block,
                         screen, pool)  # fmt: skip


def _screened(xa, xb, perm, tau, top_k, duals, exact_tail, head_splits, block, screen, pool):
    t0 = time.perf_counter()
    n, D = xa.shape[0], xa.shape[1] - 2
    if xb.shape[0] != n:
        raise ValueError(f"pair analysis needs equal widths, got {n} and {xb.shape[0]}")
    k = max(1, min(int(top_k), n))
    pf = complete(np.asarray(perm, dtype=np.int64), n)
    h = D - exact_tail
    bounds = part_bounds(h, head_splits)
    qa, sa, (da, na_q, _) = _quantise(xa, bounds, pool)
    qb, sb, (db, nb_q, zb) = _quantise(xb, bounds, pool)
    qbp = [q[pf] for q in qb]  # B's rows in matched order: C'[i, k] = c_i,p(k)
    sb = sb[pf]
    E1, E2 = da * SLACK, na_q * SLACK
    F1, F2 = zb[pf] * SLACK, (db[pf] + 8 * EPS * nb_q[pf]) * SLACK
    tla, tlb = np.ascontiguousarray(xa[:, h:D]), np.ascontiguousarray(xb[pf, h:D])
    r, sp = xa[:, D].astype(np.float64), xb[pf, D + 1].astype(np.float64)
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
    tq = [[torch.from_numpy(q) for q in side] for side in (qa, qbp)]

    def ints(rows, cols, swap=False):  # (P, |rows|, |cols|) int32: the parts' products
        pairs = zip(*tq, strict=True)
        if swap:  # C'[cols, rows]ᵀ = xb'[rows] · xa[cols]ᵀ, laid out like C'[rows, cols]
            return np.stack([torch._int_mm(b[rows], a[cols].T).numpy() for a, b in pairs])
        return np.stack([torch._int_mm(a[rows], b[cols].T).numpy() for a, b in pairs])

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
    info = {"quantise_seconds": t1 - t0, "pass_seconds": t2 - t1, "exact_seconds": t3 - t2}
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
    """The int8 screen where the int8 backend is chosen (solvers/gemm.py: torch has a fast int8
    GEMM), else confidence.py's float32 pass.

    work_bytes: bytes it may allocate (None: the default budget, budget.py); the block
    shrinks to fit, and a budget that fits no block of 64 rows is a MemoryError before the
    pass.
    """
    n, D = xa.shape
    screen_ok = bound_gemm() == "int8"  # else the float32 GEMM pass: no slower where int8 is

    def need(block: int) -> int:
        if screen_ok:
            return screen_bytes(n, D, block, WORKERS, SCREEN)
        return confidence_pass_bytes(n, D, block)

    work = resolve_work(work_bytes)
    block = 2048
    while block > 64 and need(block) > work:
        block //= 2
    if need(block) > work:
        raise too_big(n, D, need(block), work, "the confidence pass")
    if not screen_ok:
        pa = pair_analysis(xa, xb, perm, tau, top_k, duals, block)
        return pa, {"analysis": "float32-pass", "block": block}
    pa, low, info = screened_analysis(
        xa, xb, perm, tau, top_k, duals, exact_tail, head_splits, block
    )
    info["block"] = block
    ok = np.isfinite(low) & (pa.confidence > 0)
    info["confidence_low_median_ratio"] = (
        float(np.median(low[ok] / pa.confidence[ok])) if ok.any() else float("nan")
    )
    return pa, {"analysis": "int8-screen", "screen": SCREEN, **info}
