"""The rest of the streamed guess: the rows and columns without a clear partner, solved.

The streamed solver (streamed.py) keeps clear mutual-best pairs and hands the rest, m rows
and m columns (about a fifth of n on synthetic pairs), to one of two routes
(docs/method.md §13, "The rest without its dense sub-cost"):

* `dense_rest`: lapx on the rest's whole float32 sub-cost (4·m² bytes: 11 GB at n = 262k);
* `sparse_rest`: no m × m matrix. A sparse LAP (sparse_lap.py) on a graph of exact costs that
  grows by *pricing* (column generation): with the graph's duals (u, v), every pair whose
  reduced cost c_ij − u_i − v_j is negative could lower the rest's cost, so it joins the
  graph and the LAP is re-solved, warm. Pricing reads a reservoir first, each row's T
  smallest float32 reduced costs at its last pass (m × T), and passes again (m × m float32
  GEMM in row blocks, nothing kept) only over the rows whose reservoir can no longer vouch
  that nothing outside it is below the margin (`_Pricer.unproven`). It stops when no row
  needs a pass (the rest's optimum, the dense LAP's) or after `max_passes` (the proof checks
  every pair anyway). Measured on synthetic_pair(2304, n) at 8k–32k (docs/benchmarks.md):
  every rest row on its optimum, as the dense route, after 2–4 passes and 6–14 warm LAPs;
  the rest's 64 cheapest pairs per row alone put 63 % of the rows on it at 4k.

Both return the rest's assignment, start duals v for its columns (the largest ≤ s_j, the
column norm, that the rest's graph allows: the proof only lowers v) and the pairs whose
exact cost they computed, for the proof's graph.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from saematch.matching.solvers.candidates import ColumnTopK
from saematch.matching.solvers.gemm import fp32_mm
from saematch.matching.solvers.guess import solve_rest, sub_cost
from saematch.matching.solvers.proof import exact_costs, graph_duals, label_duals
from saematch.matching.solvers.sparse_lap import (
    merge_sorted,
    not_in,
    solve_sparse,
    sorted_csr,
    unique_keys,
)

EPS = float(np.finfo(np.float32).eps)
RESERVOIR = 512  # T: each rest row's smallest float32 reduced costs kept between passes;
# at 16k (3.3k rest rows) T = 256 / 512 / 1024 passed over 2.75 / 1.81 / 1.73 × the rows
MAX_PASSES = 8  # passes over the rest's rows not proven by their reservoir (module doc)
MAX_ROUNDS = 1000  # warm LAPs; each adds at least one pair (measured: 6-18)


def dense_rest(xa, xb, s, rows, cols, K: int, tol: float, offset_tail: bool):
    """The rest's optimum on its whole float32 sub-cost (guess.py's dense LAP), start duals
    v for its columns, and its graph for the proof: the assigned pairs and each rest row's and
    column's K cheapest, at exact cost.

    Measured at 8k (d 2304): the sparse rest guess on 64 pairs per row (no pricing) left 961
    of its 1662 rows on another partner than the optimum, and the proof needed 6 rounds of
    row scans to move them; the clear pairs never changed."""
    m = len(rows)
    sub = sub_cost(xa, xb, rows, cols)
    shift = sub.min(axis=0)
    sub -= shift  # same optimum, faster to solve; duals shift back by the same amount
    xs = solve_rest(sub, offset_tail)
    ys = np.empty(m, dtype=np.int64)
    ys[xs] = np.arange(m)
    vs = s[cols] - shift
    v = s[cols].copy()
    if label_duals(sub, s[cols] + shift, xs, ys, vs, tol, 50 * m) >= 0:
        v = vs + shift
    K = max(1, min(K, m))
    t = torch.from_numpy(sub)
    ri = torch.topk(t, K, dim=1, largest=False).indices.numpy()
    ci = torch.cat(  # columns in slices: no transposed copy of the whole sub-cost
        [
            torch.topk(t[:, c0 : c0 + 2048].T.contiguous(), K, dim=1, largest=False).indices
            for c0 in range(0, m, 2048)
        ]
    ).numpy()
    del t, sub
    er = np.concatenate([np.repeat(np.arange(m), K), ci.ravel(), np.arange(m)])
    ec = np.concatenate([ri.ravel(), np.repeat(np.arange(m), K), xs])
    keys = unique_keys(er * m + ec)
    er, ec = rows[keys // m], cols[keys % m]
    return xs, v, (er, ec, exact_costs(xa, xb, er, ec)), {}


class _Pricer:
    """Passes over rows of the rest's float32 sub-cost in row blocks (nothing m × m kept) and
    the reservoir they leave: each row's T smallest keys c_ij − u_i − v_j with the float32
    cost of each pair, and what bounds every pair left out (`unproven`)."""

    def __init__(self, xa, xb, rows, cols, T: int, block: int, dev):
        self.xa, self.rows, self.block, self.dev = xa, rows, block, dev
        self.xbt = torch.as_tensor(xb[cols], device=dev).T  # (D + 2, m); budget: n/3 rows
        m = len(rows)
        self.T = max(1, min(T, m))
        self.idx = np.empty((m, self.T), dtype=np.int64)  # (m, T) columns of the reservoir
        self.cost = np.empty((m, self.T), dtype=np.float32)  # (m, T) their float32 c_ij
        # a pair left out of row i's reservoir had a key ≥ theta_i at pass which[i], whose
        # duals were u_pass[i] and v_pass[which[i]]
        self.theta = np.full(m, np.inf, dtype=np.float32)
        self.u_pass = np.zeros(m)
        self.which = np.zeros(m, dtype=np.int64)
        self.v_pass: list[np.ndarray] = []

    def run(self, u, v, todo=None, pool: ColumnTopK | None = None) -> None:
        """One pass over the rows todo (all when None): each one's T smallest
        c_ij − u_i − v_j (float32) into the reservoir; pool (first pass) gets each column's
        smallest keys too."""
        todo = np.arange(len(self.rows)) if todo is None else todo
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.dev)  # noqa: E731
        ut, vt = f32(u[todo]), f32(v)
        self.v_pass.append(v.copy())
        self.u_pass[todo], self.which[todo] = u[todo], len(self.v_pass) - 1
        for b0 in range(0, len(todo), self.block):
            rs = todo[b0 : b0 + self.block]
            sub = fp32_mm(torch.as_tensor(self.xa[self.rows[rs]], device=self.dev), self.xbt)
            key = sub - ut[b0 : b0 + len(rs), None] - vt[None, :]
            if pool is not None:
                pool.add(key, rs)
            vals, idx = torch.topk(key, self.T, dim=1, largest=False)
            self.idx[rs] = idx.cpu().numpy()
            self.cost[rs] = torch.gather(sub, 1, idx).cpu().numpy()
            if sub.shape[1] > self.T:
                self.theta[rs] = vals[:, -1].cpu().numpy()

    def unproven(self, u, v, margin: float) -> np.ndarray:
        """Rows that may have a pair outside their reservoir with c_ij − u_i − v_j < margin:
        since their pass, that key moved by (u_pass_i − u_i) + (v_pass_j − v_j), at least
        (u_pass_i − u_i) + min_j (v_pass_j − v_j)."""
        shift = np.array([np.min(vp - v) for vp in self.v_pass])
        low = self.theta + (self.u_pass - u) + shift[self.which]
        return np.flatnonzero(low < margin)

    def suspects(self, u, v, margin: float, keys, cap: int):
        """(a, j): reservoir pairs not in the graph (keys: its sorted a·m + j) whose float32
        reduced cost is below margin, at most cap per row, the smallest first."""
        m = len(self.rows)
        red = self.cost - u[:, None].astype(np.float32) - v[self.idx].astype(np.float32)
        a, t = np.nonzero(red < margin)
        j, red = self.idx[a, t], red[a, t]
        new = not_in(keys, a * m + j)
        a, j, red = a[new], j[new], red[new]
        order = np.lexsort((red, a))
        a, j = a[order], j[order]
        keep = np.arange(len(a)) - np.searchsorted(a, a, side="left") < cap
        return a[keep], j[keep]


def completing_pairs(m: int, keys: np.ndarray, seed: int, pool: np.ndarray | None = None):
    """Keys a·m + j of pairs that give the graph `keys` (sorted a·m + j) a perfect matching:
    none when it has one. Else a maximum matching (Hopcroft–Karp, scipy) of the graph and, for
    the rows it leaves alone, their pool pairs (pool (m, T): each row's columns in the
    reservoir) gives the pairs the graph lacks; rows still alone take left-over columns in
    random order. The LAP on a graph without a perfect matching fails only after a full
    shortest-path search from every row it cannot place (17 s of the rest's 112 s at 65k,
    measured); reservoir pairs rather than random ones cut the rest from 173 to 160 s there
    (one thread, loaded machine; docs/benchmarks.md). Transient: ~17 bytes a pool pair of the
    lone rows, below the pass temporaries (12 bytes × block × m) it follows."""
    match = _max_matching(m, keys // m, keys % m)
    lone = np.flatnonzero(match < 0)
    if not len(lone):
        return lone
    new = lone[:0]
    if pool is not None:
        r = np.concatenate([keys // m, np.repeat(lone, pool.shape[1])])
        match = _max_matching(m, r, np.concatenate([keys % m, pool[lone].ravel()]))
        has = np.flatnonzero(match >= 0)
        new = has * m + match[has]
        new = new[not_in(keys, new)]
        lone = np.flatnonzero(match < 0)
    used = np.zeros(m, dtype=bool)
    used[match[match >= 0]] = True
    left_over = np.random.default_rng(seed).permutation(np.flatnonzero(~used))
    return np.concatenate([new, lone * m + left_over])


def _max_matching(m: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(m,) the column of each row in a maximum matching of the pairs, −1 for none."""
    graph = csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(m, m))
    return maximum_bipartite_matching(graph, perm_type="column")


def _duals(csr, x, y, start):
    """Column duals of x on the graph csr: the largest ≤ start that its edges allow; None when
    the label-correcting scan ran out of budget."""
    v = start.copy()
    if graph_duals(*csr, x, y, v, start.copy(), 0.0, 50 * len(v) + 100) < 0:
        return None
    return v


def sparse_rest(
    xa, xb, r, s, rows, cols, K: int, block: int, dev, seed: int, max_edges: int,
    reservoir: int = RESERVOIR, max_passes: int = MAX_PASSES,
):  # fmt: skip
    """The rest solved by pricing (module doc), within max_edges edges of exact cost.

    The first graph: each rest row's and column's K smallest g = c_ij − r_i − s_j (float32,
    where optimal pairs rank far better than by c itself: at 2k, 11th median, 90 %: 53rd,
    against 173rd of 377 by c); where it has no perfect matching, pairs that complete one join
    it (`completing_pairs`, counted in `info["fallback"]`) and the pricing replaces them.
    Then rounds of: warm sparse LAP, duals, up to K suspects per row from the reservoir (a
    new pass when it has none), their exact costs into the graph.

    Returns (xs (m,) rest column of each rest row, v (m,) start duals of the rest's columns,
    the graph's (rows, cols, exact costs) in the full index, info)."""
    m = len(rows)
    K = max(1, min(K, m - 1)) if m > 1 else 1
    pricer = _Pricer(xa, xb, rows, cols, reservoir, block, dev)
    pool = ColumnTopK(m, K)
    pricer.run(r[rows], s[cols], pool=pool)
    cr, cc, _ = pool.result()
    er = np.concatenate([np.repeat(np.arange(m), K), cr])
    ec = np.concatenate([pricer.idx[:, :K].ravel(), cc])
    keys = unique_keys(er * m + ec)  # ≤ 2K·m + m ≤ max_edges: streamed.py checked
    extra = completing_pairs(m, keys, seed, pricer.idx)  # pairs completing a perfect matching
    keys = unique_keys(np.concatenate([keys, extra])) if len(extra) else keys
    ev = exact_costs(xa, xb, rows[keys // m], cols[keys % m])  # in key order, as keys grow
    state = None
    info = {"passes": 1, "pass_rows": m, "rounds": 0, "fallback": len(extra), "capped": False}
    scale = float(np.abs(r).max() + np.abs(s).max()) + 1e-30
    start = s[cols].astype(np.float64)  # v start: 0 in the g frame
    while True:
        info["rounds"] += 1
        csr = sorted_csr(m, keys, ev)
        state = solve_sparse(*csr, state)  # warm: only rows on violated new pairs move
        v = _duals(csr, state.x, state.y, start)
        v = state.v.copy() if v is None else v
        u = state.row_duals(*csr) + state.v[state.x] - v[state.x]  # c_iσ(i) − v_σ(i)
        if info["capped"] or info["rounds"] >= MAX_ROUNDS:
            break
        # 64ε·(duals and costs' size): far above the error of the float32 reduced costs
        margin = 64 * EPS * (np.abs(u).max() + np.abs(v).max() + 2 * scale)
        a, j = pricer.suspects(u, v, margin, keys, K)
        if not len(a):
            todo = pricer.unproven(u, v, margin)
            if not len(todo) or info["passes"] >= max_passes:
                break  # no pair anywhere below the margin: the rest's optimum
            pricer.run(u, v, todo)
            info["passes"] += 1
            info["pass_rows"] += len(todo)
            a, j = pricer.suspects(u, v, margin, keys, K)
            if not len(a):
                break
        room = max_edges - len(keys)
        if len(a) > room:  # the budget's room is spent: the proof repairs the rest
            a, j, info["capped"] = a[:room], j[:room], True
        # suspects are new pairs, one per (a, j): the keys stay unique
        keys, ev = merge_sorted(keys, ev, a * m + j, exact_costs(xa, xb, rows[a], cols[j]))
    info["edges"] = len(ev)
    return state.x.copy(), v, (rows[keys // m], cols[keys % m], ev), info
