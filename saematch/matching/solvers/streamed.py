"""The streamed certified solver: any width in bounded memory; nothing n×n is ever stored.

With L_ij ≤ c_ij the quantised bound of blocks.py, evaluated in row blocks:

1. Candidates (candidates.py, one pass): each row's and column's k smallest L, bounds R_i, C_j
   on every other pair, and each row's and column's two cheapest estimates.
2. Guess (guess.py's idea, sparse): clear mutual-best pairs kept; the rest (mostly
   partner-less features) solved by the sparse LAP (sparse_lap.py) on each rest row's and
   column's K cheapest pairs of its float32 sub-cost (streamed too); its duals start v.
3. Proof by duals, in rounds over a graph E of every pair whose exact cost is known
   (candidates, the rest's graph, every suspect checked so far): x is made optimal on E
   (sparse LAP), v lowered to duals on E (proof.py's label-correcting, one column at a time),
   then the rows that max(R_i, C_j) does not prove are scanned in row blocks: pairs with
   L_ij − u_i − v_j below a small margin get exact costs; the nearly tight or violated ones
   join E (E stays small). No violation: done, and
   c_ij − u_i − v_j ≥ −tol for every pair. At 2k–4k (d_model 2304): 2 rounds, 0.3–0.4 row
   scans per row.
"""

from __future__ import annotations

import logging
import time

import numba as nb
import numpy as np
import torch
from tqdm.auto import tqdm

from saematch.matching.budget import EDGE_BYTES, proof_too_big
from saematch.matching.certificate import Assignment
from saematch.matching.solvers.blocks import LowerBound
from saematch.matching.solvers.candidates import ColumnTopK, stream_candidates, unproven_rows
from saematch.matching.solvers.guess import clear_pairs, solve_rest, sub_cost
from saematch.matching.solvers.kernels import below_margin
from saematch.matching.solvers.proof import exact_cost, graph_duals, label_duals
from saematch.matching.solvers.sparse_lap import build_csr, solve_sparse, unique_keys

log = logging.getLogger(__name__)
EPS = float(np.finfo(np.float32).eps)
UNLIMITED = 2**62  # proof_bytes when the caller sets no limit (tests, benchmarks)
DENSE_REST_SLACK = 1.25  # the rest's float32 sub-cost and column slices (lapjvs copies nothing)


@nb.njit(cache=True, parallel=True)
def exact_costs(xa, xb, rows, cols):
    """c_ij = xa[i] · xb[j] in float64 for each (rows[t], cols[t]), in parallel."""
    out = np.empty(rows.shape[0])
    for t in nb.prange(rows.shape[0]):
        out[t] = exact_cost(xa, xb, rows[t], cols[t])
    return out


def _rest_guess(xa, xb, r, s, rows, cols, K: int, block: int, dev, seed: int):
    """Optimum of the rest (rows × cols) on its K cheapest float32 pairs per row and column
    in the g frame (plus a random matching, so one exists), and start duals v for its columns.

    The g frame, c_ij − r_i − s_j: at 2k (20 % partner-less) the optimal pairs of the rest
    rank 11th in their row (median; 90 %: 53rd) there, but 173rd of 377 by c itself."""
    m = len(rows)
    K = max(1, min(K, m - 1)) if m > 1 else 1
    xbt = torch.as_tensor(xb[cols], device=dev).T
    rt = torch.as_tensor(r[rows], dtype=torch.float32, device=dev)
    st = torch.as_tensor(s[cols], dtype=torch.float32, device=dev)
    tops, pool = [], ColumnTopK(m, K)
    for r0 in range(0, m, block):
        sub = torch.as_tensor(xa[rows[r0 : r0 + block]], device=dev) @ xbt  # (b, m) float32
        sub.sub_(rt[r0 : r0 + block, None]).sub_(st[None, :])
        vals, idx = torch.topk(sub, min(K, m), dim=1, largest=False)
        tops.append((np.repeat(np.arange(r0, r0 + len(sub)), idx.shape[1]), idx.cpu().numpy()))
        pool.add(sub, r0)
    cr, cc, _ = pool.result()
    perm = np.random.default_rng(seed).permutation(m)
    er = np.concatenate([t[0] for t in tops] + [cr, np.arange(m)])
    ec = np.concatenate([t[1].ravel() for t in tops] + [cc, perm])
    keys = unique_keys(er * m + ec)
    er, ec = keys // m, keys % m
    ev = exact_costs(xa, xb, rows[er], cols[ec])
    csr = build_csr(m, er, ec, ev)
    state = solve_sparse(*csr)
    v = s[cols].copy()  # 0 in the g frame; lowered as little as the rest's edges need
    if graph_duals(*csr, state.x, state.y, v, v.copy(), 0.0, 50 * m + 100) < 0:
        v = s[cols].copy()
    return state.x, v, (rows[er], cols[ec], ev)


def _dense_rest_guess(xa, xb, s, rows, cols, K: int, tol: float, offset_tail: bool):
    """The rest's optimum on its whole float32 sub-cost (guess.py's dense LAP), start duals
    v for its columns, and its graph for E: the assigned pairs and each rest row's and
    column's K cheapest, at exact cost.

    Measured at 8k (d 2304): the sparse rest guess on 64 pairs per row left 961 of its 1662
    rows on another partner than the optimum, and the proof needed 6 rounds of row scans to
    move them; the clear pairs never changed."""
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
    return xs, v, (er, ec, exact_costs(xa, xb, er, ec))


def streamed_certified_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    *,
    k: int = 16,
    rest_k: int = 64,
    margin: float = 0.25,
    block: int = 256,
    device: str | torch.device = "cpu",
    max_rounds: int = 10_000,
    suspect_cap: int = 64,
    dense_rest_bytes: int = 0,
    proof_bytes: int = UNLIMITED,
    seed: int = 0,
    progress: bool = False,
    gemm: str | None = None,
) -> Assignment:
    """Optimal assignment of c = xa @ xb.T (float32 augmented features) with its duals.

    dense_rest_bytes: the rest is solved on its dense float32 sub-cost when that fits;
    proof_bytes: how far the proof's graph of exact costs may grow (budget.streamed_split),
    at EDGE_BYTES an edge; past it a MemoryError says to raise the budget. gemm: the bound's
    GEMM backend, auto | int8 | fp32 (None: gemm.bound_gemm's choice)."""
    n = xa.shape[0]
    k = max(1, min(k, n - 1))
    dev = torch.device(device)
    times, t0 = {}, time.perf_counter()
    lb = LowerBound(xa, xb, exact_tail, head_splits, dev, gemm)
    log.info("streamed bound: %s GEMM (%d features, %s)", lb.gemm, n, dev)
    if not lb.holds(xa, xb):
        raise RuntimeError(f"the {lb.gemm} lower bound failed its spot check on this backend")
    r, s = lb.r, lb.s
    scale = float(np.abs(r).max() + np.abs(s).max()) + 1e-30
    tol = 1e-10 * scale  # float64 dual arithmetic on exact costs
    times["bound"], t0 = time.perf_counter() - t0, time.perf_counter()
    cand = stream_candidates(lb, k, block, progress)
    times["candidates"], t0 = time.perf_counter() - t0, time.perf_counter()
    x, rest_r, rest_c = clear_pairs(*cand.top2, margin)
    # start duals: each column's cheapest estimate (the column reduction of dense solvers).
    # A kept pair then has u_i ≈ 0 and its column a v_j far below the rows without a partner
    # (v = s, the norms, left those rows violated against thousands of matched columns).
    v = cand.top2[2][:, 0].astype(np.float64)
    known = [(cand.rows, cand.cols, exact_costs(xa, xb, cand.rows, cand.cols))]
    dense = len(rest_r) and DENSE_REST_SLACK * 4 * len(rest_r) ** 2 <= dense_rest_bytes
    if dense:
        xs, v[rest_c], rest_edges = _dense_rest_guess(
            xa, xb, s, rest_r, rest_c, rest_k, tol, exact_tail > 0
        )
    elif len(rest_r):
        xs, v[rest_c], rest_edges = _rest_guess(
            xa, xb, r, s, rest_r, rest_c, rest_k, 4 * block, dev, seed
        )
    if len(rest_r):
        x[rest_r] = rest_c[xs]
        known.append(rest_edges)
    times["guess"], t0 = time.perf_counter() - t0, time.perf_counter()
    # the proof's graph grows by at most proof_bytes; the dispatcher gives it what the budget
    # left for the rest's dense sub-cost, freed by now
    room = max(proof_bytes, 0) // EDGE_BYTES
    max_edges = sum(len(e[0]) for e in known) + 2 * n + room
    x, v, info = _prove_graph(
        lb, xa, xb, x, v, cand, known, tol, scale, block, max_rounds, progress, suspect_cap,
        max_edges,
    )  # fmt: skip
    times["proof"] = time.perf_counter() - t0
    u = exact_costs(xa, xb, np.arange(n), x) - v[x]
    info.update(k=k, block=block, device=str(dev), rest=len(rest_r), rest_solved_dense=bool(dense))
    info["bound_gemm"] = lb.gemm
    info["seconds"] = {key: round(t, 2) for key, t in times.items()}
    log.debug("streamed solver: %s", info)
    return Assignment(x, u, v, tol, info)


def _prove_graph(
    lb, xa, xb, x, v, cand, known, tol, scale, block, max_rounds, progress, cap0, max_edges
):
    """The proof with exact costs kept: a graph E of known pairs (candidates, the rest's graph,
    the suspects checked so far). Each round: x optimal on E (sparse LAP), v lowered to duals
    on E (label-correcting, one column at a time), then the rows not yet proven are scanned;
    their nearly tight or violated suspects join E, at most as many per row as E's share of
    the memory budget (max_edges) leaves, the smallest first. A scanned row stays proven while
    u_i rises by less than the smallest slack of its pairs outside E, at most half the margin
    (v only falls). Ends when a scan finds no violation."""
    n = len(x)
    r, s = lb.r, lb.s
    er = np.concatenate([k_[0] for k_ in known] + [np.arange(n)])
    ec = np.concatenate([k_[1] for k_ in known] + [x])
    ev = np.concatenate([k_[2] for k_ in known] + [exact_costs(xa, xb, np.arange(n), x)])
    u_ok = np.full(n, -np.inf)
    info = {"rounds": 0, "scanned_rows": 0, "exact": len(ev), "cycles": 0, "capped_rows": 0}
    info["per_round"] = []
    state = None
    while True:
        info["rounds"] += 1
        if info["rounds"] > max_rounds:
            raise RuntimeError(f"streamed solver: no proof after {max_rounds} rounds")
        keys, first = np.unique(er * n + ec, return_index=True)
        er, ec, ev = keys // n, keys % n, ev[first]
        csr = build_csr(n, er, ec, ev)
        state = solve_sparse(*csr, state)  # first round: cold, the optimum of E ⊇ the guess
        x = state.x
        w = v.copy()
        if graph_duals(*csr, x, state.y, w, v.copy(), 0.0, 50 * n + 100) < 0:
            w = v.copy()
            if graph_duals(*csr, x, state.y, w, v.copy(), 1e-13 * scale, 50 * n + 100) < 0:
                raise RuntimeError("streamed solver: x is not optimal on its graph")
        v = w
        state.v[:] = v
        u = exact_costs(xa, xb, np.arange(n), x) - v[x]
        bad = unproven_rows(u - r, v - s, cand.row_bound, cand.col_bound, tol)
        bad = bad[u[bad] > u_ok[bad]]
        if not len(bad):
            break
        info["scanned_rows"] += len(bad)
        info["per_round"].append(len(bad))
        per_row = (max_edges - len(er)) // len(bad)  # E's room, shared by the scanned rows
        if per_row < 1:
            raise proof_too_big(n, len(er), len(bad))
        new_r, new_c, new_v, violated, margin = [], [], [], False, 0.0
        cap = cap0 << min(info["rounds"] - 1, 20)  # doubles each round: every suspect in time
        cut, slack = [], np.full(n, np.inf)
        for b0 in tqdm(range(0, len(bad), block), desc="proof", disable=not progress, leave=False):
            rs = bad[b0 : b0 + block]
            i, j, margin, capped = _suspects(lb, rs, u[rs], v, scale, cap)
            cut.append(capped)
            cij = exact_costs(xa, xb, i, j)
            info["exact"] += len(i)
            red = cij - u[i] - v[j]
            violated |= bool((red < -tol).any())
            near = np.flatnonzero(red < 0.5 * margin)  # the others stay proven (doc)
            keep = _smallest_per_row(i[near], red[near], per_row, slack)
            new_r.append(i[near[keep]]), new_c.append(j[near[keep]]), new_v.append(cij[near[keep]])
        cut = np.concatenate(cut)
        info["capped_rows"] += int(cut.sum())
        done = bad[~cut]  # rows whose every suspect was checked
        u_ok[done] = u[done] + np.minimum(0.5 * margin, slack[done]) - tol
        if not violated and not cut.any():
            break
        er, ec, ev = (
            np.concatenate([a_, *b_]) for a_, b_ in ((er, new_r), (ec, new_c), (ev, new_v))
        )
    return x.copy(), v, info


def _smallest_per_row(i, red, per_row: int, slack) -> np.ndarray:
    """Mask of each row's `per_row` smallest reduced costs; slack[row] (n,) set to the
    smallest one left out (inf when none is)."""
    order = np.lexsort((red, i))
    i_s = i[order]
    rank = np.arange(len(i_s)) - np.searchsorted(i_s, i_s, side="left")
    keep = np.empty(len(i), dtype=bool)
    keep[order] = rank < per_row
    first_out = rank == per_row
    slack[i_s[first_out]] = red[order][first_out]
    return keep


def _suspects(lb, rows, u, v, scale, cap: int):
    """Pairs (i, j) of these rows with L_ij − u_i − v_j below a margin that is far above the
    float32 error of evaluating it (g frame, magnitudes ≲ max|ũ| + max|ṽ| + 2·scale), at most
    `cap` per row: the smallest. Returns (i, j, margin, capped (b,) bool: rows cut short).

    The cap keeps early rounds cheap: with the start duals a row without a partner can have
    thousands of suspects, while the final duals leave it about 50 (int8 bound, 8k, d 2304);
    the most violated pairs, once exact in the graph, move the duals the most."""
    dev = lb.device
    ug, vg = u - lb.r[rows], v - lb.s
    margin = max(1e-6 * scale, 64 * EPS * (np.abs(ug).max() + np.abs(vg).max() + 2 * scale))
    if lb.fused is not None:  # the CPU: one numba pass over the int32 products
        acc = lb.products(torch.as_tensor(rows))
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        a, j, capped = below_margin(acc, rows, lb.g_bound_args(), f32(ug), f32(vg), margin, cap)
        return rows[a], j, margin, capped
    low = lb.block(torch.as_tensor(rows, device=dev), norms=False)
    low.sub_(torch.as_tensor(vg, dtype=torch.float32, device=dev)[None, :])
    low.sub_(torch.as_tensor(ug, dtype=torch.float32, device=dev)[:, None])
    hit = low < margin
    capped = hit.sum(1) > cap
    if capped.any():
        big = torch.nonzero(capped, as_tuple=True)[0]
        worst = torch.topk(low[big], min(cap, low.shape[1]), dim=1, largest=False).indices
        hit[big] = False
        hit[big[:, None], worst] = low[big[:, None], worst] < margin
    bi, bj = torch.nonzero(hit, as_tuple=True)
    return rows[bi.cpu().numpy()], bj.cpu().numpy(), margin, capped.cpu().numpy()
