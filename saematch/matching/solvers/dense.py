"""The dense solvers: the whole n×n cost in memory, solved by scipy or lapx.

* scipy — reference: float64 cost, column-reduced, scipy linear_sum_assignment.
* lapjv — float32 cost, lapx `lapjvs` (the fastest dense solver on this machine).

Both return an Assignment (certificate.py) whose LP duals are computed on their dense cost
(proof.py): a dense solver's answer that its own cost does not prove optimal is an error.
"""

from __future__ import annotations

import lap
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from saematch.matching.certificate import Assignment
from saematch.matching.solvers.proof import dense_duals


def dense_cost(xa: np.ndarray, xb: np.ndarray, block: int = 2048, progress: bool = False):
    """The (n, n) cost xa @ xb.T in xa's dtype, built in row blocks (no temporary copy)."""
    n = xa.shape[0]
    out = np.empty((n, xb.shape[0]), dtype=xa.dtype)
    for s in tqdm(range(0, n, block), desc="cost", disable=not progress, leave=False):
        np.matmul(xa[s : s + block], xb.T, out=out[s : s + block])
    return out


def _with_duals(cost: np.ndarray, x: np.ndarray, tol: float, info: dict) -> Assignment:
    duals = dense_duals(cost, x, tol)
    if duals is None:  # a dense solver's answer that its own cost does not prove optimal
        raise RuntimeError(f"{info['method']}: the assignment is not optimal on its cost")
    u, v, t = duals
    return Assignment(x, u, v, t, info)


def solve_scipy(xa: np.ndarray, xb: np.ndarray, progress: bool = False) -> Assignment:
    """Reference: float64 dense cost, minus each column's minimum, linear_sum_assignment.

    Column reduction keeps the optimum and avoids scipy's 40x slowdown on rows of varied
    norm (MEASURED.md). Duals are those of the unreduced cost.
    """
    cost = dense_cost(xa.astype(np.float64), xb.astype(np.float64), progress=progress)
    shift = cost.min(axis=0)
    cost -= shift
    rows, cols = linear_sum_assignment(cost)
    x = np.empty(len(rows), dtype=np.int64)
    x[rows] = cols
    a = _with_duals(cost, x, 0.0, {"method": "scipy"})
    a.v += shift
    return a


def solve_lapjv(xa: np.ndarray, xb: np.ndarray, progress: bool = False) -> Assignment:
    """Dense float32 cost solved by lapx `lapjvs` (Jonker-Volgenant, float32 kernel).

    Its duals hold for the float32 cost; against exact costs at the float32 rounding bound.
    """
    xa, xb = xa.astype(np.float32, copy=False), xb.astype(np.float32, copy=False)
    cost = dense_cost(xa, xb, progress=progress)
    x, _ = lap.lapjvs(cost, extend_cost=False, return_cost=False, jvx_like=False)
    x = np.asarray(x, dtype=np.int64)
    na = np.sqrt(np.einsum("ij,ij->i", xa, xa, dtype=np.float64).max(initial=0.0))
    nb = np.sqrt(np.einsum("ij,ij->i", xb, xb, dtype=np.float64).max(initial=0.0))
    tol = float(xa.shape[1] * np.finfo(np.float32).eps * na * nb)
    return _with_duals(cost, x, tol, {"method": "lapjvs"})
