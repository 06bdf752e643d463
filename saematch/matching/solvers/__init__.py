"""The LAP solvers on augmented features: `assign(xa, xb, solver)` and the Solver objects.

    dispatch.py    assign(), plan(): which solver runs, within the memory budget
    dense.py       scipy / lapjv on the dense n×n cost
    stored.py      auto, n ≲ 32k: stored 16-bit estimate → guess → proof by duals
    streamed.py    auto, any n: the same bound in row blocks → candidates → proof in rounds
    gemm.py        which GEMM bounds the cost: int8 or float32 (auto: a timed probe)
    bound.py       the stored bound by that GEMM (stored)
    quantised.py   the int8 estimate and its rigorous lower bound (stored)
    fp32.py        the float32 estimate and its rigorous lower bound (Higham's γ_h)
    blocks.py      either bound per row block, on any torch device (streamed)
    kernels.py     numba kernels over a row block's products (streamed)
    candidates.py  sparse candidates in one streamed pass of the bound
    guess.py       clear mutual-best pairs kept, a dense LAP on the rest
    sparse_lap.py  sparse LAP with LP duals (shortest augmenting paths on CSR)
    proof.py       LP duals that certify an assignment optimal
    heap.py        the binary heaps of the sparse LAP and the proofs

Every solver returns an Assignment (certificate.py) whose duals prove it optimal.
"""

from saematch.matching.solvers.dispatch import (
    DEVICES,
    SOLVERS,
    STREAMED_OPTIONS,
    AutoSolver,
    LapjvSolver,
    ScipySolver,
    Solver,
    assign,
    check_solver,
    get_solver,
    plan,
    resolve_device,
)
from saematch.matching.solvers.gemm import BOUND_GEMMS, bound_gemm, use_bound_gemm

__all__ = [
    "BOUND_GEMMS",
    "DEVICES",
    "SOLVERS",
    "STREAMED_OPTIONS",
    "AutoSolver",
    "LapjvSolver",
    "ScipySolver",
    "Solver",
    "assign",
    "bound_gemm",
    "check_solver",
    "get_solver",
    "plan",
    "resolve_device",
    "use_bound_gemm",
]
