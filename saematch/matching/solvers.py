"""Linear-assignment solvers on augmented features (cost c = xa @ xb.T, see cost.py).

* scipy — dense reference: float64 cost, column-reduced, scipy linear_sum_assignment.
* lapjv — dense float32 cost, lapx `lapjvs` (fastest dense solver on this machine).
* auto  — exact and fast. While its 16-bit n×n estimate fits `max_dense_bytes`: an int8
  cost with rigorous error bounds and exact costs on demand, proven by LP duals over all n²
  pairs (int8_cg.py). Else, or if that finds no proof, while the float32 cost fits: build it
  once (blockwise, no float64 copy), keep clear mutual-best pairs, solve the rest densely
  with lapjvs, and prove the whole assignment optimal the same way (dense_cg.py; falls back
  to lapjvs on the full cost if the proof fails). Above that, the sparse candidate solver
  with a bound-based proof (auto.py), whose memory grows as n·k.
"""

from __future__ import annotations

import lap
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from saematch.matching.auto import auto_assign
from saematch.matching.dense_cg import dense_certified_assign
from saematch.matching.int8_cg import int8_certified_assign

SOLVERS = ("auto", "lapjv", "scipy")
DENSE_BELOW = 64  # auto: plain lapjvs below this width
MAX_DENSE_BYTES = 2 * 1024**3  # auto: n×n arrays up to 2 GiB (int8 n ≈ 32k, float32 n ≈ 23k)


def check_solver(solver: str) -> None:
    """Raise ValueError unless solver is known."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}.")


def dense_cost(xa: np.ndarray, xb: np.ndarray, block: int = 2048, progress: bool = False):
    """The (n, n) cost xa @ xb.T in xa's dtype, built in row blocks (no temporary copy)."""
    n = xa.shape[0]
    out = np.empty((n, xb.shape[0]), dtype=xa.dtype)
    for s in tqdm(range(0, n, block), desc="cost", disable=not progress, leave=False):
        np.matmul(xa[s : s + block], xb.T, out=out[s : s + block])
    return out


def solve_scipy(xa: np.ndarray, xb: np.ndarray, progress: bool = False) -> np.ndarray:
    """Reference: float64 dense cost, minus each column's minimum, linear_sum_assignment.

    Column reduction keeps the optimum and avoids scipy's 40x slowdown on rows of varied
    norm (MEASURED.md).
    """
    cost = dense_cost(xa.astype(np.float64), xb.astype(np.float64), progress=progress)
    cost -= cost.min(axis=0, keepdims=True)
    rows, cols = linear_sum_assignment(cost)
    x = np.empty(len(rows), dtype=np.int64)
    x[rows] = cols
    return x


def solve_lapjv(xa: np.ndarray, xb: np.ndarray, progress: bool = False) -> np.ndarray:
    """Dense float32 cost solved by lapx `lapjvs` (Jonker-Volgenant, float32 kernel)."""
    cost = dense_cost(
        xa.astype(np.float32, copy=False), xb.astype(np.float32, copy=False), progress=progress
    )
    x, _ = lap.lapjvs(cost, extend_cost=False, return_cost=False, jvx_like=False)
    return np.asarray(x, dtype=np.int64)


def assign(
    xa: np.ndarray,
    xb: np.ndarray,
    solver: str = "auto",
    progress: bool = False,
    dense_below: int = DENSE_BELOW,
    max_dense_bytes: int = MAX_DENSE_BYTES,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    quantised: bool = True,
    **auto_kw,
) -> tuple[np.ndarray, dict]:
    """Optimal x (n,) for c = xa @ xb.T with the named solver; returns (x, details).

    auto, dense range: first the int8 cost with error bounds (int8_cg.py; the last
    `exact_tail` dims of z are kept exact, e.g. mode "both"'s b_enc; `head_splits` are where
    its parts of different scale start, e.g. the encoder's), then the float32 one.
    """
    check_solver(solver)
    n = xa.shape[0]
    if solver == "scipy":
        return solve_scipy(xa, xb, progress), {"method": "scipy"}
    if solver == "lapjv" or n < dense_below:
        return solve_lapjv(xa, xb, progress), {"method": "lapjvs"}
    xa, xb = xa.astype(np.float32, copy=False), xb.astype(np.float32, copy=False)
    if quantised and not auto_kw and n * n * 2 <= max_dense_bytes:  # a 16-bit estimate
        res = int8_certified_assign(xa, xb, exact_tail, head_splits)
        if res is not None:
            return res[0], {"method": "int8-certified", **res[1]}
    if n * n * 4 <= max_dense_bytes:  # the float32 cost
        x, info = dense_certified_assign(xa, xb, progress=progress, **auto_kw)
        return x, {"method": "dense-certified", **info}
    x, info = auto_assign(xa, xb, progress=progress, **auto_kw)
    return x, {"method": "sparse-certified", **info}
