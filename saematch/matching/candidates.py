"""Sparse candidates: each row's and column's cheapest edges, and bounds on all the others.

One pass of GEMM blocks over the cost c = xa @ xb.T (never the full n×n matrix). It keeps

* every row's k cheapest columns, and R_i = the k-th smallest c_i· (exact, torch.topk);
* for every column j, every entry below a threshold τ_j (set from the first block, a random
  sample of rows, so that about k entries per column pass), pruned to the k cheapest when the
  pool grows; C_j = τ_j.

Lower bounds used by the optimality proof: a pair (i, j) that is not a candidate has
c_ij ≥ max(R_i, C_j).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm


@dataclass
class Candidates:
    """Sparse edges (sorted by row, then column, unique) and the non-candidate lower bounds."""

    rows: np.ndarray  # (m,) int64
    cols: np.ndarray  # (m,) int64
    vals: np.ndarray  # (m,) float32 cost c_ij
    row_bound: np.ndarray  # (n,) float32, R_i
    col_bound: np.ndarray  # (n,) float32, C_j


def _prune_columns(r: np.ndarray, c: np.ndarray, v: np.ndarray, tau: np.ndarray, k: int):
    """Keep each column's k cheapest pool entries; lower τ_j to the k-th value kept."""
    order = np.lexsort((v, c))
    r, c, v = r[order], c[order], v[order]
    start = np.searchsorted(c, c, side="left")
    rank = np.arange(len(c)) - start
    kth = rank == k - 1
    tau[c[kth]] = np.minimum(tau[c[kth]], v[kth])
    keep = rank < k
    return r[keep], c[keep], v[keep]


def block_candidates(
    xa: np.ndarray, xb: np.ndarray, k: int, block: int = 2048, seed: int = 0, progress: bool = False
) -> Candidates:
    """Row and column candidates of c = xa @ xb.T (xa, xb: (n, D+2) float32), k per row/column."""
    n = xa.shape[0]
    k = max(1, min(k, n))
    block = max(1, min(block, n))
    order = np.random.default_rng(seed).permutation(n)  # random blocks: the first one samples
    k0 = max(1, min(block, int(np.ceil(k * block / n))))
    tau = np.full(n, np.inf, dtype=np.float32)
    row_bound = np.empty(n, dtype=np.float32)
    parts_r, parts_c, parts_v = [], [], []  # row top-k
    pool_r, pool_c, pool_v, pool_size = [], [], [], 0
    xbt = xb.T
    for s in tqdm(range(0, n, block), desc="candidates", disable=not progress, leave=False):
        idx = order[s : s + block]
        cost = xa[idx] @ xbt  # (b, n) float32: c_ij
        ct = torch.from_numpy(cost)
        vals, cols = torch.topk(ct, k, dim=1, largest=False, sorted=False)
        row_bound[idx] = vals.max(1).values.numpy()
        parts_r.append(np.repeat(idx, k))
        parts_c.append(cols.numpy().ravel())
        parts_v.append(vals.numpy().ravel())
        if s == 0:
            kk = min(k0, len(idx))
            tau[:] = torch.kthvalue(ct, kk, dim=0).values.numpy()
        bi, bj = torch.nonzero(ct < torch.from_numpy(tau), as_tuple=True)
        bi, bj = bi.numpy(), bj.numpy()
        pool_r.append(idx[bi])
        pool_c.append(bj)
        pool_v.append(cost[bi, bj])
        pool_size += len(bi)
        if pool_size > 3 * k * n:
            r, c, v = _prune_columns(*map(np.concatenate, (pool_r, pool_c, pool_v)), tau, k)
            pool_r, pool_c, pool_v, pool_size = [r], [c], [v], len(r)
        del cost, ct
    rows = np.concatenate(parts_r + pool_r).astype(np.int64)
    cols = np.concatenate(parts_c + pool_c).astype(np.int64)
    vals = np.concatenate(parts_v + pool_v)
    keys, first = np.unique(rows * n + cols, return_index=True)
    return Candidates(keys // n, keys % n, vals[first], row_bound, tau)


def unproven_rows(
    u: np.ndarray, v: np.ndarray, row_bound: np.ndarray, col_bound: np.ndarray, tol: float
) -> np.ndarray:
    """Rows i for which some j may have c_ij − u_i − v_j < −tol, given c_ij ≥ max(R_i, C_j).

    O(n log n): sort columns by C_j; those with C_j ≤ R_i need v_j ≤ R_i − u_i (prefix max of
    v), the rest need C_j − v_j ≥ u_i (suffix min). Pairs inside the candidate graph satisfy
    the same test whenever (u, v) is feasible there, because their c_ij ≤ max(R_i, C_j).
    """
    order = np.argsort(col_bound, kind="stable")
    cb, vs = col_bound[order].astype(np.float64), v[order]
    pre_max = np.maximum.accumulate(vs)  # max v over the p cheapest-bound columns
    suf_min = np.minimum.accumulate((cb - vs)[::-1])[::-1]
    p = np.searchsorted(cb, row_bound.astype(np.float64), side="right")  # C_j ≤ R_i for j < p
    low_ok = (p == 0) | (pre_max[np.maximum(p - 1, 0)] <= row_bound - u + tol)
    high_ok = (p == len(cb)) | (suf_min[np.minimum(p, len(cb) - 1)] >= u - tol)
    return np.flatnonzero(~(low_ok & high_ok))
