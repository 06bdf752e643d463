"""The quantised bound: an int8 estimate of every cost and a rigorous lower bound under it.

For augmented features (cost.py) c_ij = r_i + s_j + g_ij, g_ij = z_A,i · (−2 z_B,j). The head of
each row (all dims but a trailing exact tail, e.g. mode "both"'s b_enc) is quantised per part
(decoder and encoder get their own scale): a = σ q + δ, q int8, σ = max|a| / 127 per row and
part. One int8 GEMM per row block and part (int32 sums, exact) gives
ĝ_ij = Σ_parts σ_i σ'_j (q_i · q'_j) + tail_i · tail'_j in float32, stored per row as 16-bit
fixed point rounded down: gmin_i + G16_ij · step_i ≤ ĝ_ij. Each row's and column's two
cheapest ĉ = ĝ + r + s are kept on the way.

Bound. a·b − σq·σ'q' = δ·b + σq·δ' exactly, so with Cauchy–Schwarz over the whole head

    g_ij ≥ stored_ij − ‖δ_i‖ ‖b_j‖ − ‖σq_i‖ (‖δ'_j‖ + 8ε ‖σ'q'_j‖) − 8ε Σ_t |tail_it| max|tail'_t|

(the 8ε terms: float32 scaling and tail rounding). The norms are exact float64 sums of the
actual residuals, so the bound is rigorous, if loose (about 100x the typical error).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np
import torch

from saematch.matching.solvers.gemm import int8_gemm_available

EPS = float(np.finfo(np.float32).eps)
LEVELS = 65535.0  # ĝ is stored per row as 16-bit fixed point, rounded down
SLACK = 1 + 1e-9  # on float64 norms
MAX_WORKERS = 8  # int8 cost: one row-block worker per torch thread, at most this many


@nb.njit(cache=True, nogil=True)
def _quantise(z, q, scale, dsq, qsq, zsq):
    """Per row: σ = max|z| / 127, q = round(z / σ) (int8); adds ‖δ‖², ‖σq‖², ‖z‖² (float64)."""
    for i in range(z.shape[0]):
        m = 0.0
        for k in range(z.shape[1]):
            m = max(m, abs(np.float64(z[i, k])))
        s = np.float32(m / 127.0) if m > 0 else np.float32(1.0)
        inv = 1.0 / np.float64(s)
        for k in range(z.shape[1]):
            x = np.float64(z[i, k])
            t = min(127.0, max(-127.0, np.rint(x * inv)))
            q[i, k] = np.int8(t)
            deq = t * np.float64(s)  # exact in float64
            dsq[i] += (x - deq) ** 2
            qsq[i] += deq * deq
            zsq[i] += x * x
        scale[i] = s


@nb.njit(cache=True)
def keep2(val, idx, r, c, j):
    """Insert (c, j) into row r's two smallest (val[r, 0] ≤ val[r, 1])."""
    if c < val[r, 1]:
        if c < val[r, 0]:
            val[r, 1], idx[r, 1] = val[r, 0], idx[r, 0]
            val[r, 0], idx[r, 0] = c, j
        else:
            val[r, 1], idx[r, 1] = c, j


@nb.njit(cache=True, nogil=True, fastmath=True)
def _row_estimate(ints, a, i, sa, sb, ta, tb, buf):
    """buf = float32 ĝ_i· from the parts' int32 products; returns its (min, max).

    fastmath (vectorised): reordering or fusing the few float32 roundings stays inside the
    8ε term of the bound.
    """
    n = buf.shape[0]
    for j in range(n):
        buf[j] = np.float32(np.float32(ints[0, a, j]) * sa[i, 0]) * sb[j, 0]
    for p in range(1, ints.shape[0]):
        for j in range(n):
            buf[j] += np.float32(np.float32(ints[p, a, j]) * sa[i, p]) * sb[j, p]
    for k in range(ta.shape[1]):
        for j in range(n):
            buf[j] += ta[i, k] * tb[j, k]
    lo, hi = buf[0], buf[0]
    for j in range(n):
        lo, hi = min(lo, buf[j]), max(hi, buf[j])
    return lo, hi


@nb.njit(cache=True, nogil=True)
def _row_store(buf, lo, inv, out):
    """out_j = ⌊(buf_j − lo)·inv⌋ (uint16, saturating): strict float64, never rounded up."""
    for j in range(buf.shape[0]):
        out[j] = np.uint16(min(LEVELS, np.floor((np.float64(buf[j]) - lo) * inv)))


@nb.njit(cache=True, nogil=True, fastmath=True)
def fold_top2(buf, i, r, s, rv, ri, cv, ci):
    """Fold ĉ_i· = buf + r_i + s into row i's and the columns' two smallest (shared with
    candidates.py's CPU path)."""
    ri_ = r[i]
    for j in range(buf.shape[0]):
        c = buf[j] + ri_ + s[j]
        if c < rv[i, 1] or c < cv[j, 1]:
            keep2(rv, ri, i, c, j)
            keep2(cv, ci, j, c, i)


@nb.njit(cache=True, nogil=True)
def _scale_block(ints, row0, sa, sb, ta, tb, r, s, buf, G16, gmin, step, rv, ri, cv, ci):
    """Rows row0.. of ĝ from the parts' int32 products (P, m, n): float32 ĝ, then stored as
    16-bit fixed point per row, rounded down (gmin_i + G16_ij·step_i ≤ ĝ_ij); keeps the
    top-2 of ĉ = ĝ + r + s per row and column (cv, ci: this caller's own column arrays)."""
    for a in range(ints.shape[1]):
        i = row0 + a
        lo, hi = _row_estimate(ints, a, i, sa, sb, ta, tb, buf)
        store_row(buf, i, lo, hi, r, s, G16, gmin, step, rv, ri, cv, ci)


@nb.njit(cache=True, nogil=True)
def store_row(buf, i, lo, hi, r, s, G16, gmin, step, rv, ri, cv, ci):
    """Row i of the estimate (buf: float32 ĝ_i·, its min lo and max hi) stored as 16-bit fixed
    point rounded down (gmin_i + G16_ij·step_i ≤ ĝ_ij), and folded into the top-2 of ĉ."""
    d = max((np.float64(hi) - np.float64(lo)) / LEVELS, 1e-300)
    gmin[i], step[i] = lo, d
    _row_store(buf, np.float64(lo), (1.0 - 1e-12) / d, G16[i])
    fold_top2(buf, i, r, s, rv, ri, cv, ci)


class Norms:
    """Per-row float64 norms the bound needs: ‖δ‖, ‖σq‖ and ‖z‖ over the whole head."""

    def __init__(self, n: int):
        self.dsq, self.qsq, self.zsq = np.zeros(n), np.zeros(n), np.zeros(n)

    def get(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.sqrt(self.dsq), np.sqrt(self.qsq), np.sqrt(self.zsq)


def quantise_rows(z, bounds, r0: int, parts, scale, norms: Norms) -> None:
    """Quantise z's rows r0.. (as many as parts hold) into int8 parts, one σ per row and part."""
    r1 = r0 + len(parts[0])
    for p, (lo, hi) in enumerate(bounds):
        col = np.empty(r1 - r0, dtype=np.float32)
        _quantise(
            z[r0:r1, lo:hi], parts[p], col, norms.dsq[r0:r1], norms.qsq[r0:r1], norms.zsq[r0:r1]
        )
        scale[r0:r1, p] = col


def part_bounds(h: int, splits: tuple[int, ...]) -> list[tuple[int, int]]:
    edges = [0, *sorted(x for x in splits if 0 < x < h), h]
    return list(zip(edges[:-1], edges[1:], strict=True))


def int8_cost(xa, xb, h: int, splits: tuple[int, ...], block: int):
    """ĝ (n, n) as 16-bit fixed point (G16, gmin, step), both sides' norms, top-2 of ĉ.

    xb is quantised once; xa block by block. One worker per torch thread (one thread each)
    share the row blocks: while one scales its block, another's int8 GEMM runs, so no core
    idles.
    """
    n, D = xa.shape[0], xa.shape[1] - 2
    bounds = part_bounds(h, splits)
    workers = max(1, min(MAX_WORKERS, torch.get_num_threads()))
    block = min(block, n)
    na, nb_ = Norms(n), Norms(n)
    qb = [np.empty((n, hi - lo), dtype=np.int8) for lo, hi in bounds]
    sa, sb = (np.empty((n, len(bounds)), dtype=np.float32) for _ in range(2))
    edges = np.linspace(0, n, workers + 1).astype(int)  # side b in one slice per worker
    with ThreadPoolExecutor(workers) as pool:
        list(
            pool.map(
                lambda r: quantise_rows(xb, bounds, r[0], [q[r[0] : r[1]] for q in qb], sb, nb_),
                zip(edges[:-1], edges[1:], strict=True),
            )
        )
    G16 = np.empty((n, n), dtype=np.uint16)
    gmin, step = np.empty(n), np.empty(n)
    rv = np.full((n, 2), np.inf, dtype=np.float32)
    ri = np.zeros((n, 2), dtype=np.int64)
    cols = [(rv.copy(), ri.copy()) for _ in range(workers)]  # per-worker column top-2
    ta, tb = np.ascontiguousarray(xa[:, h:D]), np.ascontiguousarray(xb[:, h:D])
    ra, rb = np.ascontiguousarray(xa[:, D]), np.ascontiguousarray(xb[:, D + 1])
    tqb = [torch.from_numpy(q).T for q in qb]

    def work(w: int) -> None:
        ints = torch.empty((len(bounds), block, n), dtype=torch.int32)
        qa = [np.empty((block, hi - lo), dtype=np.int8) for lo, hi in bounds]
        buf = np.empty(n, dtype=np.float32)
        cv, ci = cols[w]
        for s0 in range(w * block, n, workers * block):
            m = min(block, n - s0)
            quantise_rows(xa, bounds, s0, [q[:m] for q in qa], sa, na)
            for p, q in enumerate(qa):
                torch._int_mm(torch.from_numpy(q[:m]), tqb[p], out=ints[p, :m])
            I = ints[:, :m].numpy()
            _scale_block(I, s0, sa, sb, ta, tb, ra, rb, buf, G16, gmin, step, rv, ri, cv, ci)

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers)))
    finally:
        torch.set_num_threads(threads)
    cv, ci = merge_top2(cols)
    return (G16, gmin, step), na.get(), nb_.get(), (rv, ri, cv, ci)


def merge_top2(parts):
    """Two smallest per row over several (val, idx) top-2 arrays."""
    val = np.concatenate([v for v, _ in parts], axis=1)
    idx = np.concatenate([i for _, i in parts], axis=1)
    o = np.argsort(val, axis=1, kind="stable")[:, :2]
    return np.take_along_axis(val, o, 1), np.take_along_axis(idx, o, 1)


def quantised_bound(xa, xb, exact_tail: int = 0, head_splits: tuple[int, ...] = (), block=128):
    """The stored bound of every pair of c = xa @ xb.T and the top-2 of the estimate.

    Returns (bound, top2) with bound = (G16, gmin, step, E1, F1, E2, F2, rowc, colc):
    c_ij ≥ gmin_i + G16_ij step_i − E1_i F1_j − E2_i F2_j + rowc_i + colc_j (module doc), and
    top2 = (rv, ri, cv, ci), each row's and column's two smallest estimates, best first.
    None when torch has no int8 GEMM or the bound fails its spot check.
    """
    if not int8_gemm_available():
        return None
    D = xa.shape[1] - 2
    h = D - exact_tail
    G, (da, qa, _), (db, qb, zb), top2 = int8_cost(xa, xb, h, head_splits, block)
    E1, F1 = da * SLACK, zb * SLACK  # ‖δ_i‖ ‖b_j‖
    E2, F2 = qa * SLACK, (db + 8 * EPS * qb) * SLACK  # ‖σq_i‖ (‖δ'_j‖ + 8ε ‖σ'q'_j‖)
    tmax = np.abs(xb[:, h:D]).max(0) if exact_tail else np.zeros(0, np.float32)
    rowc = xa[:, D].astype(np.float64) - 8 * EPS * (np.abs(xa[:, h:D]).astype(np.float64) @ tmax)
    colc = xb[:, D + 1].astype(np.float64)
    bound = (*G, E1, F1, E2, F2, rowc, colc)
    return (bound, top2) if bound_holds(bound, xa, xb) else None


def bound_holds(bound, xa, xb, m: int = 512, seed: int = 0) -> bool:
    """Spot check of the bound on random pairs (and the diagonal): exact c ≥ lower bound.

    Guards against a backend that computes other than assumed; the proof relies on the bound.
    """
    G16, gmin, step, E1, F1, E2, F2, rowc, colc = bound
    n = G16.shape[0]
    g = np.random.default_rng(seed)
    i = np.concatenate([g.integers(0, n, m), np.arange(min(n, m))])
    j = np.concatenate([g.integers(0, n, m), np.arange(min(n, m))])
    c = np.einsum("ij,ij->i", xa[i].astype(np.float64), xb[j].astype(np.float64))
    lb = gmin[i] + G16[i, j] * step[i] - E1[i] * F1[j] - E2[i] * F2[j] + rowc[i] + colc[j]
    return bool(np.all(c >= lb))


@nb.njit(cache=True, nogil=True)
def fold_top2_block(block, row0, r, s, rv, ri, cv, ci):
    """fold_top2 for every row of a (b, n) float32 block whose first row is row0."""
    for a in range(block.shape[0]):
        fold_top2(block[a], row0 + a, r, s, rv, ri, cv, ci)
