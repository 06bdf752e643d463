"""Sparse candidates in one streamed pass of the quantised bound (blocks.py).

For every row block, on the bound L ≤ c in the g frame (L − r_i − s_j, which ranks
candidates well for squared distances of varied norm):

* each row's k smallest (R_i = the (k+1)-th) and each column's k smallest (C_j = its (k+1)-th,
  kept by a shrinking threshold over the blocks). Every pair that is neither has
  c_ij ≥ r_i + s_j + max(R_i, C_j);
* each row's and column's two smallest estimates ĉ (L plus the bound's width, c frame): what
  the guess starts from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import torch
from tqdm.auto import tqdm

from saematch.matching.solvers.kernels import fold_block, merge_rows
from saematch.matching.solvers.quantised import fold_top2_block
from saematch.matching.solvers.sparse_lap import unique_keys

NUMBA_TOP2 = True  # on the CPU, numba: the fused kernel (kernels.py), else the top-2 pass
HOST_COLUMN_POOL = True  # CPU blocks: ColumnTopK's host pool (numba filter); False: the device's


@dataclass
class Candidates:
    """Candidate edges (unique), the g-frame bounds of all other pairs, and the c-frame top-2."""

    rows: np.ndarray  # (m,) int64
    cols: np.ndarray  # (m,) int64
    row_bound: np.ndarray  # (n,) float32, R_i (g frame)
    col_bound: np.ndarray  # (n,) float32, C_j (g frame)
    top2: tuple  # (rv, ri, cv, ci): (n, 2) smallest estimates ĉ per row / column, best first


@nb.njit(cache=True, nogil=True)
def _at_most(low, tau):
    """(rows, cols, values) of the entries with low_aj ≤ τ_j, row-major order."""
    count = 0
    for a in range(low.shape[0]):
        for j in range(low.shape[1]):
            if low[a, j] <= tau[j]:
                count += 1
    r = np.empty(count, dtype=np.int64)
    c = np.empty(count, dtype=np.int64)
    v = np.empty(count, dtype=np.float32)
    t = 0
    for a in range(low.shape[0]):
        for j in range(low.shape[1]):
            if low[a, j] <= tau[j]:
                r[t], c[t], v[t] = a, j, low[a, j]
                t += 1
    return r, c, v


class ColumnTopK:
    """Each column's k + 1 smallest values over row blocks: a threshold τ_j that only shrinks
    (the first block's (k+1)-th value, then the pool's), and a pool pruned to k + 1 per column.
    Values skipped or pruned are ≥ the final τ_j.

    Blocks on a GPU (the first one decides) go to a DeviceColumnTopK instead, same result,
    nothing on the host (HOST_COLUMN_POOL = False sends CPU blocks there too: tests)."""

    def __init__(self, n: int, k: int):
        self.n, self.k1 = n, k + 1
        self.tau = None
        self.r, self.c, self.v, self.size = [], [], [], 0
        self.on_device = None  # a DeviceColumnTopK once blocks come from a GPU

    def add(self, low: torch.Tensor, row0) -> None:
        """Fold a block (b, n); row0: its first row index, or the rows' indices (b,)."""
        first = self.tau is None and self.on_device is None
        if first and (low.device.type != "cpu" or not HOST_COLUMN_POOL):
            self.on_device = DeviceColumnTopK(self.n, self.k1 - 1, low.device)
        if self.on_device is not None:
            self.on_device.add(low, row0)
            return
        if self.tau is None:
            kk = min(self.k1, low.shape[0])
            lt = low.T.contiguous()  # topk along dim 0 is ~10x slower on the CPU
            self.tau = torch.topk(lt, kk, dim=1, largest=False).values[:, -1].cpu().numpy()
            if kk < self.k1:
                self.tau[:] = np.inf
        if low.device.type == "cpu":  # one numba pass instead of compare, nonzero, gather
            bi_np, bj_np, vals = _at_most(low.numpy(), self.tau)
        else:
            bi, bj = torch.nonzero(low <= torch.from_numpy(self.tau).to(low.device), as_tuple=True)
            bi_np, bj_np, vals = bi.cpu().numpy(), bj.cpu().numpy(), low[bi, bj].cpu().numpy()
        self.r.append(bi_np + row0 if np.isscalar(row0) else np.asarray(row0)[bi_np])
        self.c.append(bj_np)
        self.v.append(vals)
        self.size += len(bi_np)
        if self.size > 4 * self.k1 * self.n:
            self._prune()

    def _prune(self) -> None:
        r, c, v = (np.concatenate(x) for x in (self.r, self.c, self.v))
        order = np.lexsort((v, c))
        r, c, v = r[order], c[order], v[order]
        rank = np.arange(len(c)) - np.searchsorted(c, c, side="left")
        kth = rank == self.k1 - 1
        self.tau[c[kth]] = np.minimum(self.tau[c[kth]], v[kth])
        keep = rank < self.k1
        self.r, self.c, self.v, self.size = [r[keep]], [c[keep]], [v[keep]], int(keep.sum())

    def result(self):
        """(rows, cols) of each column's k smallest and C (n,), the (k+1)-th (−inf if none)."""
        if self.on_device is not None:
            return self.on_device.result()
        self._prune()
        r, c, v = self.r[0], self.c[0], self.v[0]
        rank = np.arange(len(c)) - np.searchsorted(c, c, side="left")
        bound = np.full(self.n, -np.inf, dtype=np.float32)
        kth = rank == self.k1 - 1
        bound[c[kth]] = v[kth]
        keep = rank < self.k1 - 1
        return r[keep], c[keep], bound


class DeviceColumnTopK:
    """ColumnTopK for blocks on a GPU, kept on the device: each column's k + 1 smallest
    values and their rows, merged block by block (one topk over the block's rows, one over
    the 2(k + 1) merged), so no block's entries travel to the host. Host memory: none; device:
    (n, k + 1) values and rows, three times while merging (1M wide, k 16: 0.6 GB).

    Why (estimated, not measured on a GPU): the host pool's prunes sort up to 4(k + 1)n
    entries (68M at 1M wide), about 7 times over a pass, and every block's entries under τ
    cross to the host."""

    def __init__(self, n: int, k: int, device):
        self.n, self.k1 = n, k + 1
        self.v = torch.full((n, self.k1), np.inf, dtype=torch.float32, device=device)
        self.r = torch.full((n, self.k1), -1, dtype=torch.int64, device=device)

    def add(self, low: torch.Tensor, row0) -> None:
        """Fold a block (b, n); row0: its first row index, or the rows' indices (b,)."""
        kk = min(self.k1, low.shape[0])
        vals, idx = torch.topk(low.T, kk, dim=1, largest=False, sorted=False)  # (n, kk)
        rows = idx + row0 if np.isscalar(row0) else torch.as_tensor(row0, device=low.device)[idx]
        v, o = torch.topk(torch.cat([self.v, vals], 1), self.k1, dim=1, largest=False)
        self.r = torch.gather(torch.cat([self.r, rows], 1), 1, o)
        self.v = v  # sorted: the k + 1 smallest, best first

    def result(self):
        """(rows, cols) of each column's k smallest and C (n,), the (k+1)-th (−inf if none),
        as ColumnTopK.result."""
        r, v = self.r.cpu().numpy(), self.v.cpu().numpy()
        bound = np.where(r[:, -1] >= 0, v[:, -1], -np.inf).astype(np.float32)
        real = r[:, :-1] >= 0
        cols = np.broadcast_to(np.arange(self.n)[:, None], real.shape)
        return r[:, :-1][real], cols[real], bound


def _top2_columns(low: torch.Tensor, row0: int, cv: torch.Tensor, ci: torch.Tensor) -> None:
    """Fold a block's two smallest per column into (cv, ci) (n, 2), best first, on low's
    device: no per-block host work of O(n) (the numpy merge this replaces took 0.40 s per
    block at 1M wide on the 2-core machine at load 8.5: 4,096 blocks)."""
    cols = torch.arange(low.shape[1], device=low.device)
    m1, a1 = low.min(0)
    low[a1, cols] = np.inf
    m2, a2 = low.min(0)
    vals = torch.cat([cv, m1[:, None], m2[:, None]], 1)  # (n, 4)
    idx = torch.cat([ci, a1[:, None] + row0, a2[:, None] + row0], 1)
    o = torch.argsort(vals, dim=1, stable=True)[:, :2]  # ties: the earlier entry first
    cv.copy_(torch.gather(vals, 1, o))
    ci.copy_(torch.gather(idx, 1, o))


def stream_candidates(lb, k: int, block: int, progress: bool = False) -> Candidates:
    """One pass of row blocks of the bound lb (blocks.LowerBound): see the module doc."""
    if NUMBA_TOP2 and lb.fused is not None:
        return _stream_candidates_fused(lb, k, block, progress)
    n = lb.n
    R = np.empty(n, dtype=np.float32)
    rc = np.empty((n, k), dtype=np.int64)
    rv, ri = np.full((n, 2), np.inf, dtype=np.float32), np.zeros((n, 2), dtype=np.int64)
    cv = torch.full((n, 2), np.inf, dtype=torch.float32, device=lb.device)  # column top-2
    ci = torch.zeros((n, 2), dtype=torch.int64, device=lb.device)
    numba_top2 = NUMBA_TOP2 and lb.device.type == "cpu"
    r32, s32 = lb.r.astype(np.float32), lb.s.astype(np.float32)
    cols = ColumnTopK(n, k)  # on the blocks' device
    rt, st = (torch.as_tensor(a, dtype=torch.float32, device=lb.device) for a in (lb.r, lb.s))
    for r0 in tqdm(range(0, n, block), desc="candidates", disable=not progress, leave=False):
        r1 = min(n, r0 + block)
        low = lb.block(slice(r0, r1), norms=False)  # the g frame
        vals, idx = torch.topk(low, k + 1, dim=1, largest=False, sorted=True)
        rc[r0:r1], R[r0:r1] = idx[:, :k].cpu().numpy(), vals[:, k].cpu().numpy()
        cols.add(low, r0)
        low.addr_(lb.E1[r0:r1], lb.F1).addr_(lb.E2[r0:r1], lb.F2)  # the bound's width back
        if numba_top2:  # ĉ = that + r_i + s_j, folded into the top-2 in one pass
            fold_top2_block(low.numpy(), r0, r32, s32, rv, ri, cv.numpy(), ci.numpy())
        else:
            low.add_(rt[r0:r1, None]).add_(st[None, :])  # the c frame: the estimate ĉ
            vals, idx = torch.topk(low, 2, dim=1, largest=False, sorted=True)
            rv[r0:r1], ri[r0:r1] = vals.cpu().numpy(), idx.cpu().numpy()
            _top2_columns(low, r0, cv, ci)
        del low
    cr, cc, C = cols.result()
    rows = np.concatenate([np.repeat(np.arange(n), k), cr])
    keys = unique_keys(rows * n + np.concatenate([rc.ravel(), cc]))
    return Candidates(keys // n, keys % n, R, C, (rv, ri, cv.cpu().numpy(), ci.cpu().numpy()))


def _stream_candidates_fused(lb, k: int, block: int, progress: bool) -> Candidates:
    """stream_candidates on the CPU's fused bound: the int32 products of each row block folded
    by kernels.py (exact k + 1 smallest per row and column; no torch pass)."""
    n, T = lb.n, nb.get_num_threads()
    r32, s32 = lb.r.astype(np.float32), lb.s.astype(np.float32)
    rkv, rv = np.full((T, n, k + 1), np.inf, np.float32), np.full((T, n, 2), np.inf, np.float32)
    rki, ri = np.zeros((T, n, k + 1), np.int64), np.zeros((T, n, 2), np.int64)
    ckv, cv = np.full((n, k + 1), np.inf, np.float32), np.full((n, 2), np.inf, np.float32)
    cki, ci = np.zeros((n, k + 1), np.int64), np.zeros((n, 2), np.int64)
    tau = np.full(n, np.inf, dtype=np.float32)
    bound = lb.g_bound_args()
    for r0 in tqdm(range(0, n, block), desc="candidates", disable=not progress, leave=False):
        acc = lb.products(slice(r0, min(n, r0 + block)))
        fold_block(acc, r0, *bound, r32, s32, rkv, rki, rv, ri, tau, ckv, cki, cv, ci, 2048)
    (kv, ki), top2_rows = merge_rows(rkv, rki, k + 1), merge_rows(rv, ri, 2)
    rows = np.concatenate([np.repeat(np.arange(n), k), cki[:, :k].ravel()])
    keys = unique_keys(rows * n + np.concatenate([ki[:, :k].ravel(), np.repeat(np.arange(n), k)]))
    return Candidates(keys // n, keys % n, kv[:, k].copy(), ckv[:, k].copy(), (*top2_rows, cv, ci))


def unproven_rows(u, v, row_bound, col_bound, tol: float) -> np.ndarray:
    """Rows i for which some j may have c_ij − u_i − v_j < −tol, given c_ij ≥ max(R_i, C_j)
    (all in one frame; valid for the pairs that are not candidates).

    O(n log n): sort columns by C_j; those with C_j ≤ R_i need v_j ≤ R_i − u_i (prefix max of
    v), the rest need C_j − v_j ≥ u_i (suffix min).
    """
    order = np.argsort(col_bound, kind="stable")
    cb, vs = col_bound[order].astype(np.float64), v[order]
    pre_max = np.maximum.accumulate(vs)
    suf_min = np.minimum.accumulate((cb - vs)[::-1])[::-1]
    p = np.searchsorted(cb, row_bound.astype(np.float64), side="right")  # C_j ≤ R_i for j < p
    low_ok = (p == 0) | (pre_max[np.maximum(p - 1, 0)] <= row_bound - u + tol)
    high_ok = (p == len(cb)) | (suf_min[np.minimum(p, len(cb) - 1)] >= u - tol)
    return np.flatnonzero(~(low_ok & high_ok))
