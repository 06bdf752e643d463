"""match(a, b): the optimal feature matching between two SAEs (paper eq. 3, docs/method.md §3).

    min over bijections σ of  Σ_i c(i, σ(i)),   c(i, j) = ‖z_A,i − z_B,j‖²

with z a feature's folded decoder row and encoder column (cost.py). match() reads as the
method, one call per step:

    options  → MatchOptions: every setting checked, every default from options.py
    budget   → Budget: max_memory resolved once; the solver's plan checked before any work
    fold     → cost: each side's augmented features, built once (cost.augmented_features)
    solve    → the permutation and its certificate, LP duals (solvers/; partial: beyond/)
    analyses → confidence, predecessors, splits of the solved matching (beyond/)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from saematch.matching.beyond.null import feature_parts, null_kappa
from saematch.matching.beyond.partial import partial_assign, pass_block, squared_norms
from saematch.matching.beyond.screen import analyse_pairs
from saematch.matching.beyond.splits import detect_splits
from saematch.matching.budget import Budget, features_bytes
from saematch.matching.cost import (
    augmented_features,
    cost_layout,
    feature_dim,
    pair_cost_features,
)
from saematch.matching.options import DEFAULTS, MatchOptions
from saematch.matching.permutation import Permutation
from saematch.matching.solvers import Solver, get_solver, resolve_device
from saematch.matching.solvers.gemm import bound_gemm as resolve_bound_gemm
from saematch.matching.solvers.gemm import use_bound_gemm
from saematch.sae import JumpReLUSAE, check_compatible


@dataclass
class Matching:
    """Result of match(a, b): perm[i] = j pairs a's feature i with b's feature j.

    duals = (u, v), float64 (F,) each: LP potentials with c_ij − u_i − v_j ≥ −tol for every
    pair and = 0 (within tol) on the matching, c the mode's cost (docs/method.md §3) as the float64
    dot of the float32 augmented features (cost.py); tol = info["tol"]. They prove the matching
    optimal (certificate.py); the reduced cost c_ij − u_i − v_j says how much worse any other
    partner is. None for matchings loaded from caches that did not store them.
    """

    perm: np.ndarray  # (F,) int64
    pair_mse: np.ndarray  # (F,) float32, cost of each chosen pair (docs/method.md §3)
    total_cost: float  # sum of pair_mse (float64)
    mode: str
    fold: bool
    solver: str
    seconds: float
    info: dict = field(default_factory=dict)  # solver details, cache status, tol
    duals: tuple[np.ndarray, np.ndarray] | None = None  # (u, v), see above
    # beyond the bijection (beyond/): perm[i] = −1 leaves i unmatched, pair_mse is NaN there
    unmatched: float | str | None = None  # the setting: None (bijection), ρ, or "auto"
    proven: bool = True  # the optimum of its problem, proven (LP duals / exact sparse LAP)
    confidence: np.ndarray | None = None  # (F,) float32 swap regret (beyond/confidence.py eq. 1)
    confidence_lower: np.ndarray | None = None  # (F,) float32 dual regret (eq. 2), bijection
    predecessors: np.ndarray | None = None  # (F_B, k) int64, B's j -> A's k cheapest rows
    predecessor_cost: np.ndarray | None = None  # (F_B, k) float32
    split_children: np.ndarray | None = None  # (F, 2) int64, −1 = no split (beyond/splits.py)
    bias_weight: float = 0.0  # w of the optional b_enc term in mode both (0: the paper's cost)
    # comparing two SAEs of any widths (saematch/compare): perm is then the exact rectangular
    # matching; shared_perm the partial one (−1 = no partner by the rotation null); families:
    # the wide side's (info["families"]["wide"]) features -> the narrow feature they split
    shared_perm: np.ndarray | None = None  # (F_A,) int64
    family_parent: np.ndarray | None = None  # (F_wide,) int64, −1 = in no family
    family_confidence: np.ndarray | None = None  # (F_wide,) float32 κ margin, NaN if none

    @property
    def is_partial(self) -> bool:
        """True when some feature is left unmatched (perm has −1)."""
        return bool((np.asarray(self.perm) < 0).any())

    @property
    def permutation(self) -> Permutation:
        """perm as a Permutation (compose, inverse, apply)."""
        if self.is_partial:
            raise ValueError(
                f"this matching leaves {int((self.perm < 0).sum())} features unmatched "
                "(unmatched != none), so it is not a permutation; use .perm (−1 = unmatched) "
                "or match with unmatched=None"
            )
        return Permutation(self.perm)

    def settings(self) -> dict:
        """The settings that produced this matching (JSON-serialisable)."""
        out = {"mode": self.mode, "fold": self.fold, "solver": self.solver}
        if self.bias_weight:
            out["bias_weight"] = self.bias_weight
        if self.unmatched is not None:
            out["unmatched"] = self.unmatched
        return out


def check_inputs(a: JumpReLUSAE, b: JumpReLUSAE, fold: bool) -> None:
    """What match() needs, checked before any work: each SAE consistent (shapes, dtypes) and
    finite, with fold=True every θ > 0 and no folded row overflowing float32 (θ like 1e-40 or
    1e30); both with the same d_model and width. ValueError naming the SAE and the fix."""
    for side, sae in (("a", a), ("b", b)):
        if not isinstance(sae, JumpReLUSAE):
            raise TypeError(f"match: {side} must be a JumpReLUSAE, got {type(sae).__name__}")
        try:
            sae.validate()
            if fold:
                sae.check_foldable()
        except ValueError as e:  # its message says the fix (e.g. fold=false for θ)
            raise ValueError(f"match: SAE {side} ({sae.name or 'unnamed'}): {e}") from None
    check_compatible(a, b)


def match(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str = DEFAULTS.mode,
    fold: bool = DEFAULTS.fold,
    solver: str | Solver = DEFAULTS.solver,
    unmatched: float | str | None = DEFAULTS.unmatched,
    confidence: bool = DEFAULTS.confidence,
    top_k: int = DEFAULTS.top_k,
    splits: bool = DEFAULTS.splits,
    bias_weight: float = DEFAULTS.bias_weight,
    null_alpha: float = DEFAULTS.null_alpha,
    seed: int = DEFAULTS.seed,
    max_memory: int | float | str | None = DEFAULTS.max_memory,
    device: str = DEFAULTS.device,
    bound_gemm: str = DEFAULTS.bound_gemm,
    progress: bool = False,
) -> Matching:
    """The optimal matching of a's features to b's (eq. 3), its certificate, and analyses.

    Minimises Σ_i c(i, perm[i]) over bijections perm (Matching.perm[i] = j pairs a's feature
    i with b's feature j), c(i, j) = mean_d ΔW_dec² (mode decoder), mean_d ΔW_enc² (encoder)
    or their sum (both, the paper's), on folded weights (eq. 4) when fold=True. bias_weight
    w > 0 adds w·(Δb_enc)² to mode both: a departure from the paper, off by default. The LP
    duals (u, v) returned with it prove it optimal (certificate.py).

    solver: auto | lapjv | scipy, or a Solver object (solvers/: AutoSolver(k=32), ...).
    unmatched = ρ ≥ 0 | "auto": the exact partial matching instead, a feature left unmatched
    (perm −1) at reject cost ρ‖z‖² (ρ from the rotation null for "auto", at null_alpha).
    confidence, top_k, splits: per-pair swap regret, each b feature's top_k cheapest
    predecessors, and splits (beyond/), computed after the solve from the same features.
    max_memory: what the call may allocate ("6GB", bytes; None: half the available memory,
    logged); a width that cannot fit raises MemoryError before allocating. device: auto |
    cpu | cuda, where solver=auto's cost blocks run (same certified result). bound_gemm:
    auto | int8 | fp32, the GEMM of solver=auto's bound and the pair screen (auto: int8 only
    where torch's int8 GEMM is measured faster, solvers/gemm.py; same certified result).
    Every default is options.DEFAULTS (the config's). Bad input is a ValueError before any
    work (MatchOptions, check_inputs).
    """
    opts = MatchOptions(
        mode=mode, fold=fold, bias_weight=bias_weight, solver=solver, unmatched=unmatched,
        confidence=confidence, top_k=top_k, splits=splits, null_alpha=null_alpha, seed=seed,
        max_memory=max_memory, device=device, bound_gemm=bound_gemm,
    )  # fmt: skip
    check_inputs(a, b, opts.fold)
    with use_bound_gemm(opts.bound_gemm):  # the solvers and the screen read it (gemm.py)
        return _match(a, b, opts, progress)


def _match(a: JumpReLUSAE, b: JumpReLUSAE, opts: MatchOptions, progress: bool) -> Matching:
    """match() after its options are checked (its docstring)."""
    solver = get_solver(opts.solver)
    dev = resolve_device(opts.device)
    t0 = time.perf_counter()

    # budget: resolved once; the features come out of it, the rest is the solver's
    n, D = a.width, feature_dim(a.d_model, opts.mode, opts.bias_weight)
    dtypes = feature_dtypes(opts, solver)
    feature_bytes = sum(features_bytes(n, D, np.dtype(t).itemsize) for t in dtypes)
    budget = Budget.resolve(opts.max_memory, feature_bytes, f"matching {n} features (length {D})")
    check_fits(opts, solver, n, D, budget, dev)  # MemoryError now, before the features exist

    # fold → cost: each side's augmented features [z, ‖z‖², 1] / [−2z, 1, ‖z‖²], built once
    # per dtype (float64 only for the scipy reference, whose analyses take float32)
    feats = {t: features(a, b, opts, t) for t in dtypes}
    xa, xb = feats[dtypes[0]]  # the solver's
    layout = cost_layout(a.d_model, opts.mode, opts.bias_weight)  # int8 scales per part

    # the rotation null: ρ for unmatched="auto", κ* for splits (float32 features)
    null = None
    if opts.needs_null:
        fa, fb = feats[np.float32]
        null = null_kappa(
            fa, fb, feature_parts(a.d_model, opts.mode), opts.null_alpha, seed=opts.seed
        )

    # solve, with the certificate: LP duals (bijection) or the exact partial optimum
    t1 = time.perf_counter()
    if opts.unmatched is None:
        res = solver(xa, xb, progress=progress, **layout, work_bytes=budget.work, device=dev)
        m = bijection(xa, xb, res, opts, solver)
    else:
        rho = null["rho"] if opts.unmatched == "auto" else float(opts.unmatched)
        m = partial(xa, xb, rho, opts, layout, budget.work)
    m.info["match_seconds"] = time.perf_counter() - t1
    if solver.name == "auto" or opts.analyses:  # which GEMM bounded the solve and the screen
        m.info["bound_gemm"] = resolve_bound_gemm()
    if null is not None:
        m.info["null"] = null

    # analyses of the solved matching, from the same features (beyond/)
    if opts.analyses:
        analyse(m, *feats[np.float32], opts, layout, budget.work, null)
    m.seconds = time.perf_counter() - t0
    return m


def match_beyond(a: JumpReLUSAE, b: JumpReLUSAE, **options) -> Matching:
    """match(a, b, **options): the name earlier code calls for matching beyond the bijection
    (unmatched, confidence, top_k, splits). Same function, same defaults."""
    return match(a, b, **options)


def check_fits(opts: MatchOptions, solver: Solver, n: int, D: int, budget: Budget, dev) -> None:
    """MemoryError, before anything large exists, when the solve cannot fit the budget: the
    solver's plan (bijection) or the partial matching's float32 pass, its cheapest route."""
    try:
        if opts.unmatched is None:
            solver.plan(n, D, budget.work, dev)
        else:
            pass_block(n, D, budget.work)
    except MemoryError as e:
        raise budget.explain(e) from None


def feature_dtypes(opts: MatchOptions, solver: Solver) -> list[type]:
    """The dtypes the call builds features in, the solver's first: float32, except the scipy
    reference's float64 for the bijection (and float32 besides when analyses need it)."""
    first = solver.dtype if opts.unmatched is None else np.float32
    extra = np.float32 != first and (opts.analyses or opts.needs_null)
    return [first, np.float32] if extra else [first]


def features(a: JumpReLUSAE, b: JumpReLUSAE, opts: MatchOptions, dtype) -> tuple:
    """(xa, xb), each (F, D + 2): both sides' augmented features (cost.py), folded when
    opts.fold, with xa @ xb.T = the cost matrix (never built here)."""
    kw = {"fold": opts.fold, "bias_weight": opts.bias_weight}
    return (
        augmented_features(a, opts.mode, "a", dtype, **kw),
        augmented_features(b, opts.mode, "b", dtype, **kw),
    )


def bijection(xa: np.ndarray, xb: np.ndarray, res, opts: MatchOptions, solver: Solver) -> Matching:
    """The Matching of a solver's Assignment: perm, each pair's cost, the duals."""
    pair = pair_cost_features(xa, xb, res.perm)
    return Matching(
        perm=res.perm,
        pair_mse=pair,
        total_cost=float(pair.astype(np.float64).sum()),
        mode=opts.mode,
        fold=opts.fold,
        solver=solver.key(),
        seconds=0.0,
        info={**res.info, "tol": res.tol},
        duals=(res.u, res.v),
        bias_weight=opts.bias_weight,
    )


def partial(xa, xb, rho: float, opts: MatchOptions, layout: dict, work_bytes: int) -> Matching:
    """The exact partial matching at reject costs ρ‖z‖² (beyond/partial.py) as a Matching."""
    perm, pair, info = partial_assign(xa, xb, rho, **layout, work_bytes=work_bytes)
    return Matching(
        perm=perm,
        pair_mse=pair,
        total_cost=info["objective"],
        mode=opts.mode,
        fold=opts.fold,
        solver="partial-exact",
        seconds=0.0,
        info={"method": "partial-exact", **info},
        unmatched=opts.unmatched,
        proven=info["proven"],
        bias_weight=opts.bias_weight,
    )


def analyse(m: Matching, xa, xb, opts: MatchOptions, layout: dict, work_bytes: int, null) -> None:
    """Confidence, predecessors and splits of m, set on m (float32 features xa, xb): one
    pass over all pairs (beyond/screen.py), in the memory the solver has freed."""
    t0 = time.perf_counter()
    r, s = squared_norms(xa, xb)
    tau = None if m.unmatched is None else (m.info["rho"] * r, m.info["rho"] * s)
    pa, info = analyse_pairs(
        xa, xb, m.perm, tau, max(opts.top_k, 1), m.duals, layout["exact_tail"],
        layout["head_splits"], work_bytes,
    )  # fmt: skip
    info["analysis_block"] = info.pop("block")  # "block" stays the solver's row block
    m.info.update(info)
    m.info["analysis_seconds"] = time.perf_counter() - t0
    if opts.confidence:
        m.confidence, m.confidence_lower = pa.confidence, pa.confidence_lower
    if opts.top_k > 0:
        m.predecessors, m.predecessor_cost = pa.predecessors, pa.predecessor_cost
    if opts.splits:
        kappa = m.info.get("kappa", null["kappa"])
        m.split_children = detect_splits(
            pa.successors, pa.successor_cost, pa.predecessors, r, s, kappa
        )
        m.info["split_kappa"] = kappa
        m.info["splits"] = int((m.split_children[:, 0] >= 0).sum())
