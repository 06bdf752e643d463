"""The certified solver for widths whose 16-bit estimate fits in memory (n ≲ 32k at 2 GiB).

1. bound.py: an estimate of every cost, stored as 16 bits, and a rigorous lower bound
   c_ij ≥ L_ij under it, by the int8 (quantised.py) or float32 GEMM (fp32.py; gemm.py picks);
   each row's and column's two cheapest estimates.
2. guess.py: clear mutual-best pairs kept, the rest solved densely on its float32 cost.
3. proof.py: column duals by label-correcting over all n² pairs, each pair scanned with its
   bound and, only where the bound cannot decide, with its exact cost. Negative cycles met
   on the way (the guess was not optimal) are cancelled in place.
Returns an Assignment whose duals prove it optimal (certificate.py), or None: then the
dispatcher falls back to the streamed solver.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from saematch.matching.budget import estimate_bytes
from saematch.matching.certificate import Assignment
from saematch.matching.solvers.bound import stored_bound
from saematch.matching.solvers.guess import clear_pairs, guess, real_top2
from saematch.matching.solvers.proof import bound_duals, row_duals

log = logging.getLogger(__name__)

SAFE_REST = 2048  # start at the wider margin while its dense rest has at most this many rows
MAX_CYCLE_ROUNDS = 200  # negative-cycle cancellation rounds within one proof


def quantised_certified_assign(
    xa: np.ndarray,
    xb: np.ndarray,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    margin: float = 0.25,
    block: int = 128,
    max_scans: float = 3.0,
    gemm: str | None = None,
    work_bytes: int | None = None,
    pad_rows: int = 0,
    pad_cols: int = 0,
) -> Assignment | None:
    """Optimal assignment of c = xa @ xb.T (float32 augmented features) with its duals.

    exact_tail: trailing dims of z kept exact (mode "both": b_enc); head_splits: columns
    where the head changes scale (mode "both": d, between the decoder and encoder parts).
    gemm: the bound's GEMM backend, auto | int8 | fp32 (None: gemm.bound_gemm's choice).
    work_bytes: working memory (features excluded; None: not checked): None is returned,
    before the rest is built, when the estimate and the guess's dense rest would pass it (the
    dispatcher then runs the streamed solver, whose rest has a budget of its own).
    pad_rows / pad_cols: the last rows of xa / of xb are padding that costs 0 against
    everything (compare/rect.py): clear pairs are read among the real features (real_top2).
    """
    n, D = xa.shape[0], xa.shape[1] - 2
    t0 = time.perf_counter()
    res = stored_bound(xa, xb, exact_tail, head_splits, block, gemm)
    if res is None:
        return None
    bound, top2, backend = res
    s = xb[:, D + 1].astype(np.float64)
    tol = 1e-10 * max(float(np.abs(top2[0][:, 0]).max()), 1e-30)
    if pad_rows or pad_cols:
        top2 = real_top2(bound, xa[:, D], xb[:, D + 1], pad_rows, pad_cols)
    room = None if work_bytes is None else work_bytes - estimate_bytes(n, n) - 256 * n
    info = {"proof": f"duals-{backend}", "bound_gemm": backend, "tries": []}
    info["bound_seconds"] = round(time.perf_counter() - t0, 2)
    # The rest is mostly partner-less features whatever the margin; a wider margin only adds
    # easy rows to the dense LAP (0.25 -> 1.0: rest 3.9k -> 5k, +1.3 s at 16k). A kept pair
    # that the optimum breaks, or a float32 near-tie in the rest's LAP, shows as a negative
    # cycle in the proof: cancelled, and the proof goes on; a wider margin only when that
    # does not converge. While the wider margin's rest is small, start there.
    ladder = [margin, 4 * margin, 16 * margin]
    if len(clear_pairs(*top2, ladder[1])[1]) <= SAFE_REST:
        ladder = ladder[1:]
    for mg in ladder:
        t0 = time.perf_counter()
        x, v, rest = guess(xa, xb, s, top2, mg, tol, exact_tail > 0, room)
        t1 = time.perf_counter()
        if x is None:
            log.info("stored solver: a dense rest of %d rows does not fit the budget", rest)
            return None
        y = np.empty(n, dtype=np.int64)
        y[x] = np.arange(n)
        parent = np.full(n, -1, dtype=np.int64)
        # heap potential = the start duals: half the rescans and exact costs of keys v + s
        scans, exact, cycles = bound_duals(
            bound, xa, xb, v.copy(), x, y, v, tol, int(max_scans * n) + n, parent, MAX_CYCLE_ROUNDS
        )
        info["tries"].append(
            {"margin": mg, "dense_rest": rest, "scans": scans, "exact": exact, "cycles": cycles,
             "guess_seconds": round(t1 - t0, 2),
             "proof_seconds": round(time.perf_counter() - t1, 2)}
        )  # fmt: skip
        if scans >= 0:
            return Assignment(x, row_duals(xa, xb, x, v), v, tol, info)
    return None
