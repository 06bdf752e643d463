"""match(a, b): the optimal feature permutation between two SAEs (paper eq. 3, SPEC §3)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from saematch.matching.budget import features_bytes, resolve_budget
from saematch.matching.cost import (
    augmented_features,
    check_bias_weight,
    check_mode,
    cost_layout,
    feature_dim,
    pair_cost_features,
)
from saematch.matching.permutation import Permutation
from saematch.matching.solvers import Solver, get_solver, resolve_device
from saematch.sae import JumpReLUSAE, check_compatible


@dataclass
class Matching:
    """Result of match(a, b): perm[i] = j pairs a's feature i with b's feature j.

    duals = (u, v), float64 (F,) each: LP potentials with c_ij − u_i − v_j ≥ −tol for every
    pair and = 0 (within tol) on the matching, c the mode's cost (SPEC §3) as the float64 dot
    of the float32 augmented features (cost.py); tol = info["tol"]. They prove the matching
    optimal (certificate.py); the reduced cost c_ij − u_i − v_j says how much worse any other
    partner is. None for matchings loaded from caches that did not store them.
    """

    perm: np.ndarray  # (F,) int64
    pair_mse: np.ndarray  # (F,) float32, cost of each chosen pair (SPEC §3)
    total_cost: float  # sum of pair_mse (float64)
    mode: str
    fold: bool
    solver: str
    seconds: float
    info: dict = field(default_factory=dict)  # solver details, cache status, tol
    duals: tuple[np.ndarray, np.ndarray] | None = None  # (u, v), see above
    # beyond the bijection (beyond.py): perm[i] = −1 leaves i unmatched, pair_mse is NaN there
    unmatched: float | str | None = None  # the setting: None (bijection), ρ, or "auto"
    proven: bool = True  # the optimum of its problem, proven (LP duals / exact sparse LAP)
    confidence: np.ndarray | None = None  # (F,) float32 swap regret (confidence.py eq. 1)
    confidence_lower: np.ndarray | None = None  # (F,) float32 dual regret (eq. 2), bijection
    predecessors: np.ndarray | None = None  # (F_B, k) int64, B's j -> A's k cheapest rows
    predecessor_cost: np.ndarray | None = None  # (F_B, k) float32
    split_children: np.ndarray | None = None  # (F, 2) int64, −1 = no split (splits.py)
    bias_weight: float = 0.0  # w of the optional b_enc term in mode both (0: the paper's cost)

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
    mode: str = "both",
    fold: bool = True,
    solver: str | Solver = "auto",
    progress: bool = False,
    max_memory: int | float | str | None = None,
    device: str = "auto",
    unmatched: float | str | None = None,
    confidence: bool = False,
    top_k: int = 0,
    splits: bool = False,
    bias_weight: float = 0.0,
) -> Matching:
    """Optimal bijection a -> b minimising Σ_i cost(i, perm[i]) (eq. 3), with its duals.

    cost = mean_d ΔW_dec² (decoder), mean_d ΔW_enc² (encoder), or their sum (both, the
    paper's default); on folded weights (eq. 4) when fold=True. bias_weight w > 0 adds
    w·(Δb_enc)² to mode both: a departure from the paper, off by default.
    solver: auto | lapjv | scipy, or a Solver object (solvers.py: AutoSolver(k=32), ...);
    Matching.solver records its key().
    max_memory: what the matching may allocate ("6GB", bytes; None: half the available
    memory, logged); a width that cannot fit raises MemoryError before allocating.
    device: auto | cpu | cuda, where solver=auto's cost blocks run (same certified result).
    Beyond the bijection (beyond.py): unmatched = None | ρ | "auto" leaves features
    unmatched at a reject cost; confidence, top_k predecessors and splits per pair.
    Bad input (NaN, mismatched shapes, θ that cannot be folded) is a ValueError before any
    work (check_inputs).
    """
    check_inputs(a, b, fold)
    if unmatched not in (None, "none") or confidence or top_k or splits:
        from saematch.matching.beyond import match_beyond

        return match_beyond(
            a, b, mode=mode, fold=fold, solver=solver, unmatched=unmatched,
            confidence=confidence, top_k=top_k, splits=splits, max_memory=max_memory,
            device=device, bias_weight=bias_weight,
        )  # fmt: skip
    check_mode(mode)
    bias_weight = check_bias_weight(bias_weight, mode)
    solver = get_solver(solver)
    dev = resolve_device(device)
    budget = resolve_budget(max_memory)
    t0 = time.perf_counter()
    dtype = solver.dtype
    D = feature_dim(a.d_model, mode, bias_weight)
    work = budget - features_bytes(a.width, D, np.dtype(dtype).itemsize)
    solver.plan(a.width, D, work, dev)  # MemoryError now, before the features exist
    # folded features straight from the weights: no folded copy of either SAE
    xa = augmented_features(a, mode, "a", dtype, fold=fold, bias_weight=bias_weight)
    xb = augmented_features(b, mode, "b", dtype, fold=fold, bias_weight=bias_weight)
    # "both": decoder and encoder parts get their own int8 scales; an optional b_enc term
    # (last dim of z) stays exact in the int8 cost
    layout = cost_layout(a.d_model, mode, bias_weight)
    res = solver(xa, xb, progress=progress, **layout, max_memory=work, device=dev)
    pair = pair_cost_features(xa, xb, res.perm)
    return Matching(
        perm=res.perm,
        pair_mse=pair,
        total_cost=float(pair.astype(np.float64).sum()),
        mode=mode,
        fold=bool(fold),
        solver=solver.key(),
        seconds=time.perf_counter() - t0,
        info={**res.info, "tol": res.tol},
        duals=(res.u, res.v),
        bias_weight=bias_weight,
    )
