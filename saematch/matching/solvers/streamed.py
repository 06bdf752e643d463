"""The streamed certified solver: any width in bounded memory; nothing n×n is ever stored.

With L_ij ≤ c_ij the quantised bound of blocks.py, evaluated in row blocks:

1. Candidates (candidates.py, one pass): each row's and column's k smallest L, bounds R_i, C_j
   on every other pair, and each row's and column's two cheapest estimates.
2. Guess (guess.py's idea): clear mutual-best pairs kept; the rest (mostly partner-less
   features) solved by rest.py, on its dense float32 sub-cost while that fits the budget,
   else by a sparse LAP grown by pricing, nothing m × m stored (docs/method.md §13); its
   duals start v.
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

import numpy as np
import torch
from tqdm.auto import tqdm

from saematch.matching.budget import (
    EDGE_BYTES,
    dense_rest_bytes,
    proof_too_big,
    rest_reservoir,
    rest_too_big,
    sparse_rest_bytes,
)
from saematch.matching.certificate import Assignment
from saematch.matching.solvers.blocks import LowerBound
from saematch.matching.solvers.candidates import stream_candidates, unproven_rows
from saematch.matching.solvers.guess import clear_pairs
from saematch.matching.solvers.kernels import below_margin
from saematch.matching.solvers.proof import exact_costs, graph_duals
from saematch.matching.solvers.rest import RESERVOIR, dense_rest, sparse_rest
from saematch.matching.solvers.sparse_lap import LapState, build_csr, solve_sparse

log = logging.getLogger(__name__)
EPS = float(np.finfo(np.float32).eps)
UNLIMITED = 2**62  # proof_bytes when the caller sets no limit (tests, benchmarks)
REST_ROUTES = ("auto", "dense", "sparse")  # how the rest is solved (rest.py)


def rest_route(rest: str, m: int, K: int, rest_bytes: int, proof_bytes: int) -> str:
    """The route of a rest of m rows (rest.py), "dense" or "sparse", or a MemoryError when the
    route asked for does not fit: the dense sub-cost within rest_bytes; the sparse route's
    first graph within half of proof_bytes (it joins the proof's graph; its reservoir fits
    the scan temporaries, budget.rest_reservoir). auto: dense while it fits, else sparse."""
    if rest not in REST_ROUTES:
        raise ValueError(f"rest={rest!r}: choose one of {', '.join(REST_ROUTES)}")
    dense_need = dense_rest_bytes(m)
    if rest == "dense" or (rest == "auto" and dense_need <= rest_bytes):
        if dense_need > rest_bytes:
            raise rest_too_big(m, dense_need, rest_bytes, "dense (rest=dense)")
        return "dense"
    need = sparse_rest_bytes(m, K)
    if need > proof_bytes // 2:
        raise rest_too_big(m, need, proof_bytes // 2, "sparse")
    return "sparse"


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
    rest: str = "auto",
    rest_bytes: int = 0,
    proof_bytes: int = UNLIMITED,
    seed: int = 0,
    progress: bool = False,
    gemm: str | None = None,
) -> Assignment:
    """Optimal assignment of c = xa @ xb.T (float32 augmented features) with its duals.

    rest: how the rest is solved (rest_route: auto, dense, sparse); rest_bytes: what its dense
    float32 sub-cost may use (the sparse route's graph takes at most half of proof_bytes);
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
    log.info("streamed candidates: %.1f s; rest %d rows", times["candidates"], len(rest_r))
    # start duals: each column's cheapest estimate (the column reduction of dense solvers).
    # A kept pair then has u_i ≈ 0 and its column a v_j far below the rows without a partner
    # (v = s, the norms, left those rows violated against thousands of matched columns).
    v = cand.top2[2][:, 0].astype(np.float64)
    known = [(cand.rows, cand.cols, exact_costs(xa, xb, cand.rows, cand.cols))]
    route, rest_info = rest_route(rest, len(rest_r), rest_k, rest_bytes, proof_bytes), {}
    if len(rest_r) and route == "dense":
        xs, v[rest_c], rest_edges, rest_info = dense_rest(
            xa, xb, s, rest_r, rest_c, rest_k, tol, exact_tail > 0
        )
    elif len(rest_r):
        room = proof_bytes // 2 // EDGE_BYTES  # the other half: the proof's own suspects
        T = rest_reservoir(len(rest_r), n, 4 * block, RESERVOIR)
        xs, v[rest_c], rest_edges, rest_info = sparse_rest(
            xa, xb, r, s, rest_r, rest_c, rest_k, 4 * block, dev, seed, room, T
        )
    if len(rest_r):
        x[rest_r] = rest_c[xs]
        known.append(rest_edges)
    x_guess = x[rest_r].copy()
    times["guess"], t0 = time.perf_counter() - t0, time.perf_counter()
    log.info("streamed guess: %.1f s (%s rest) %s", times["guess"], route, rest_info)
    # the proof's graph grows by at most proof_bytes (what the budget left for the rest's
    # dense sub-cost, freed by now), less the rest's graph beyond the 2·rest_k·m edges that
    # budget.streamed_bytes counted
    extra = len(known[-1][0]) - 2 * rest_k * len(rest_r) if len(rest_r) else 0
    room = max(proof_bytes - max(extra, 0) * EDGE_BYTES, 0) // EDGE_BYTES
    max_edges = sum(len(e[0]) for e in known) + 2 * n + room
    x, v, info = _prove_graph(
        lb, xa, xb, x, v, cand, known, tol, scale, block, max_rounds, progress, suspect_cap,
        max_edges,
    )  # fmt: skip
    times["proof"] = time.perf_counter() - t0
    u = exact_costs(xa, xb, np.arange(n), x) - v[x]
    info.update(k=k, block=block, device=str(dev), rest=len(rest_r), rest_route=route)
    info.update({f"rest_{key}": val for key, val in rest_info.items()})
    if len(rest_r):  # how good the rest's guess was: its rows already on their optimum
        info["rest_guess_optimal"] = round(float(np.mean(x[rest_r] == x_guess)), 4)
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
    # the first LAP starts from the guess and its duals (warm: only rows on violated pairs of
    # E move), not from scratch: a cold solve of E redoes the rest's shortest paths over n rows
    y = np.empty(n, dtype=np.int64)
    y[x] = np.arange(n)
    state = LapState(x.astype(np.int64), y, v.astype(np.float64))
    while True:
        info["rounds"] += 1
        if info["rounds"] > max_rounds:
            raise RuntimeError(f"streamed solver: no proof after {max_rounds} rounds")
        keys, first = np.unique(er * n + ec, return_index=True)
        er, ec, ev = keys // n, keys % n, ev[first]
        csr = build_csr(n, er, ec, ev)
        state = solve_sparse(*csr, state)  # the optimum of E ⊇ the guess
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
        log.info("streamed proof round %d: %d rows to scan, %d exact costs", info["rounds"],
                 len(bad), len(er))  # fmt: skip
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
