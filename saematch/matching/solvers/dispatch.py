"""The dispatcher: one call, `assign(xa, xb, solver)`, for every solver on augmented features.

* scipy, lapjv — the dense solvers (dense.py): the whole n×n cost in memory.
* auto — exact and fast, never a float64 n×n matrix: the stored certified solver
  (stored.py: 16-bit estimate, guess, proof by duals) while its estimate fits
  `max_dense_bytes` and the budget; else, or if it finds no proof, the streamed certified
  solver (streamed.py: row blocks of the same bound, sparse candidates, proof in rounds).

Every solver returns an Assignment (certificate.py): the permutation and LP duals proving it
optimal. `plan` picks the path from the byte estimates of budget.py before anything is
allocated.

The same three as objects (`AutoSolver(k=32)`, `LapjvSolver()`, `ScipySolver()`): what
`match(solver=...)` takes besides a name, and what conf/matching/solver/*.yaml build. A solver
object's `key()` is its name when every option is at its default (so match-cache keys stay
those of the plain names), else `name(option=value, ...)`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from saematch.matching.budget import (
    MAX_STORED_BYTES,
    dense_bytes,
    gpu_too_big,
    resolve_work,
    stored_bytes,
    streamed_bytes,
    streamed_gpu_bytes,
    streamed_split,
    too_big,
)
from saematch.matching.certificate import Assignment
from saematch.matching.solvers.dense import solve_lapjv, solve_scipy
from saematch.matching.solvers.gemm import bound_gemm as resolve_bound_gemm
from saematch.matching.solvers.stored import quantised_certified_assign
from saematch.matching.solvers.streamed import REST_ROUTES, streamed_certified_assign

SOLVERS = ("auto", "lapjv", "scipy")
DENSE_BELOW = 64  # auto: plain lapjvs below this width
STREAMED_OPTIONS = ("k", "rest_k", "margin", "max_rounds", "suspect_cap", "seed", "rest")
DEVICES = ("auto", "cpu", "cuda")
MIN_BLOCK, MAX_BLOCK = 16, 256  # streamed row blocks


def resolve_device(device: str) -> str:
    """auto -> cuda when torch sees a GPU, else cpu. Raises ValueError on anything else."""
    if device not in DEVICES:
        raise ValueError(f"unknown matching device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("matching.device=cuda but torch sees no GPU; use device=auto or cpu")
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def free_gpu_bytes() -> int:
    """GPU memory free for the solver: the device's free memory and what torch's caching
    allocator holds unused (reusable by this process)."""
    free, _ = torch.cuda.mem_get_info()
    return int(free + torch.cuda.memory_reserved() - torch.cuda.memory_allocated())


def plan(
    n: int,
    D: int,
    solver: str,
    work_bytes: int,
    device: str = "cpu",
    dense_below=None,
    gpu_bytes: int | None = None,
    gemm: str = "int8",
    pad: int = 0,
) -> tuple[str, int | None]:
    """(path, streamed row block) for n features of length D within `work_bytes` of working
    memory (features excluded) and, on a GPU, `gpu_bytes` of its memory (None: not checked)
    with the bound's `gemm` (int8 | fp32: the copies it keeps there); `pad` padding rows or
    columns (budget.stored_bytes); MemoryError, before anything is allocated, when no path
    fits. path: dense | stored | streamed."""
    dense_below = DENSE_BELOW if dense_below is None else dense_below
    if solver in ("scipy", "lapjv") or n < dense_below:
        need = dense_bytes(n, solver)
        if need > work_bytes:
            raise too_big(n, D, need, work_bytes, f"the dense {solver} solver")
        return "dense", None
    fits = stored_bytes(n, pad) <= work_bytes and stored_bytes(n) <= MAX_STORED_BYTES
    if device == "cpu" and fits:
        return "stored", None
    block = MAX_BLOCK
    while block > MIN_BLOCK and streamed_bytes(n, D, block) > work_bytes:
        block //= 2
    need = streamed_bytes(n, D, block)
    if need > work_bytes:
        raise too_big(n, D, need, work_bytes, f"the streamed solver in row blocks of {block}")
    if device == "cuda" and gpu_bytes is not None:  # the bound's copies and blocks live there
        while block > MIN_BLOCK and streamed_gpu_bytes(n, D, block, gemm=gemm) > gpu_bytes:
            block //= 2
        need = streamed_gpu_bytes(n, D, block, gemm=gemm)
        if need > gpu_bytes:
            raise gpu_too_big(n, D, need, gpu_bytes, block)
    return "streamed", block


def check_solver(solver) -> None:
    """Raise ValueError unless solver is a known name or a Solver object."""
    get_solver(solver)


def assign(
    xa: np.ndarray,
    xb: np.ndarray,
    solver: str = "auto",
    progress: bool = False,
    dense_below: int = DENSE_BELOW,
    max_dense_bytes: int = MAX_STORED_BYTES,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    work_bytes: int | None = None,
    device: str = "cpu",
    bound_gemm: str | None = None,
    pad_rows: int = 0,
    pad_cols: int = 0,
    **streamed_options,
) -> Assignment:
    """Optimal assignment of c = xa @ xb.T with the named solver, with its duals.

    auto: the stored certified solver while its estimate fits max_dense_bytes and work_bytes
    (working memory; None: the default budget, budget.py), on the CPU (the last `exact_tail`
    dims of z are kept exact, e.g. mode "both"'s b_enc; `head_splits` are where its parts of
    different scale start, e.g. the encoder's); else the streamed one on `device`, in row
    blocks that fit work_bytes. streamed_options (STREAMED_OPTIONS) go to the latter.
    bound_gemm: the certified solvers' bound GEMM, auto | int8 | fp32 (gemm.py; None: what
    gemm.use_bound_gemm set, default auto); the same optimum either way.
    pad_rows / pad_cols: how many trailing rows of xa / xb are padding costing 0 against
    everything (compare/rect.py); the stored solver's guess reads clear pairs without them.
    """
    check_solver(solver)
    unknown = set(streamed_options) - set(STREAMED_OPTIONS)
    if unknown:
        raise TypeError(f"assign: unknown options {sorted(unknown)}; known: {STREAMED_OPTIONS}")
    n, D = xa.shape[0], xa.shape[1] - 2
    device = resolve_device(device)
    work = resolve_work(work_bytes)
    gpu = free_gpu_bytes() if device == "cuda" else None
    gpu_gemm = resolve_bound_gemm(bound_gemm, device) if gpu is not None else "int8"  # int8
    pad = max(pad_rows, pad_cols)
    path, block = plan(n, D, solver, work, device, dense_below, gpu, gpu_gemm, pad)
    if solver == "scipy":
        return solve_scipy(xa, xb, progress)
    if path == "dense":
        return solve_lapjv(xa, xb, progress)
    xa, xb = xa.astype(np.float32, copy=False), xb.astype(np.float32, copy=False)
    gemm = resolve_bound_gemm(bound_gemm, device)  # a GPU's auto: int8 (gemm.py)
    if path == "stored" and stored_bytes(n) <= max_dense_bytes:
        res = quantised_certified_assign(
            xa, xb, exact_tail, head_splits, gemm=gemm, work_bytes=work,
            pad_rows=pad_rows, pad_cols=pad_cols,
        )  # fmt: skip
        if res is not None:
            res.info = {"method": "stored-certified", **res.info}
            return res
    if path != "streamed":  # the stored path did not run or found no proof
        block = plan(n, D, solver, work, "cuda", dense_below)[1]  # "cuda": never stored (CPU)
    proof_bytes, rest_bytes = streamed_split(n, D, block, work)
    res = streamed_certified_assign(
        xa, xb, exact_tail, head_splits, block=block, device=device, progress=progress,
        rest_bytes=rest_bytes, proof_bytes=proof_bytes, gemm=gemm, **streamed_options,
    )  # fmt: skip
    res.info = {"method": "streamed-certified", **res.info}
    return res


@dataclasses.dataclass(frozen=True)
class Solver:
    """A LAP solver on augmented features (a name of SOLVERS and its options).

    Options left at None take the library's defaults (this module, streamed.py), so configs
    never repeat them. `solver(xa, xb, ...)` is `assign(xa, xb, solver.name, ...)`.
    """

    name: ClassVar[str] = ""
    dtype: ClassVar[type] = np.float32  # the augmented features' dtype it solves on

    def options(self) -> dict:
        """The options set to something else than the library default (None)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    def key(self) -> str:
        """The name, then the options set: what Matching.solver and the match cache record."""
        opts = self.options()
        return self.name + (f"({', '.join(f'{k}={v}' for k, v in opts.items())})" * bool(opts))

    def plan(self, n: int, D: int, work_bytes: int, device: str = "cpu"):
        """plan() of this solver: (path, row block), or MemoryError when nothing fits."""
        gpu, gemm = None, "int8"
        if device == "cuda" and torch.cuda.is_available():
            gpu, gemm = free_gpu_bytes(), resolve_bound_gemm(None, device)
        return plan(
            n, D, self.name, work_bytes, device, self.options().get("dense_below"), gpu, gemm
        )

    def __call__(
        self,
        xa: np.ndarray,  # (n, D + 2) augmented features of A (cost.py)
        xb: np.ndarray,  # (n, D + 2) of B
        *,
        progress: bool = False,
        exact_tail: int = 0,
        head_splits: tuple[int, ...] = (),
        work_bytes: int | None = None,
        device: str = "cpu",
        bound_gemm: str | None = None,
        pad_rows: int = 0,
        pad_cols: int = 0,
    ) -> Assignment:
        """The optimal assignment of c = xa @ xb.T with its duals: assign() with this solver."""
        how = {"exact_tail": exact_tail, "head_splits": head_splits, "work_bytes": work_bytes}
        how.update(bound_gemm=bound_gemm, pad_rows=pad_rows, pad_cols=pad_cols)
        return assign(xa, xb, self.name, progress, device=device, **how, **self.options())


@dataclasses.dataclass(frozen=True)
class ScipySolver(Solver):
    """Dense reference: float64 cost, scipy linear_sum_assignment (no options)."""

    name: ClassVar[str] = "scipy"
    dtype: ClassVar[type] = np.float64


@dataclasses.dataclass(frozen=True)
class LapjvSolver(Solver):
    """Dense float32 cost, lapx lapjvs (no options)."""

    name: ClassVar[str] = "lapjv"


@dataclasses.dataclass(frozen=True)
class AutoSolver(Solver):
    """Exact and fast (module doc): quantised certified, else streamed certified.

    dense_below: plain lapjvs below this width; max_dense_bytes: the stored 16-bit estimate
    up to this size; k, rest_k, margin, max_rounds, seed: the streamed solver's (streamed.py);
    rest: how the streamed solver solves the rest, "auto" (dense while its sub-cost fits the
    budget), "dense" or "sparse" (rest.py, docs/method.md §13). None: the library default.
    """

    name: ClassVar[str] = "auto"
    dense_below: int | None = None
    max_dense_bytes: int | None = None
    k: int | None = None
    rest_k: int | None = None
    margin: float | None = None
    max_rounds: int | None = None
    seed: int | None = None
    rest: str | None = None

    def __post_init__(self) -> None:
        for k, v in self.options().items():
            if k == "rest":
                if v not in REST_ROUTES:
                    raise ValueError(f"AutoSolver: rest={v!r} must be one of {REST_ROUTES}")
                continue
            low = 0 if k in ("max_dense_bytes", "seed", "margin") else 1
            if isinstance(v, bool) or not isinstance(v, int | float) or v < low:
                raise ValueError(f"AutoSolver: {k}={v!r} must be a number ≥ {low} (or None)")


SOLVER_TYPES: dict[str, type[Solver]] = {c.name: c for c in (AutoSolver, LapjvSolver, ScipySolver)}


def get_solver(solver: str | Solver) -> Solver:
    """A Solver object: `solver` itself, or the named solver with default options."""
    if isinstance(solver, Solver):
        return solver
    if isinstance(solver, str) and solver in SOLVER_TYPES:
        return SOLVER_TYPES[solver]()
    raise ValueError(
        f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)} "
        "(or pass a Solver object such as AutoSolver(k=32))."
    )
