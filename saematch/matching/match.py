"""match(a, b): the optimal feature permutation between two SAEs (paper eq. 3, SPEC §3)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from saematch.matching.cost import augmented_features, check_mode, pair_cost_features
from saematch.matching.permutation import Permutation
from saematch.matching.solvers import assign, check_solver
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

    @property
    def permutation(self) -> Permutation:
        """perm as a Permutation (compose, inverse, apply)."""
        return Permutation(self.perm)

    def settings(self) -> dict:
        """The settings that produced this matching (JSON-serialisable)."""
        return {"mode": self.mode, "fold": self.fold, "solver": self.solver}


def match(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str = "both",
    fold: bool = True,
    solver: str = "auto",
    progress: bool = False,
) -> Matching:
    """Optimal bijection a -> b minimising Σ_i cost(i, perm[i]) (eq. 3), with its duals.

    cost = mean_d ΔW_dec² (decoder), mean_d ΔW_enc² (encoder), or their sum + Δb_enc²
    (both); on folded weights (eq. 4) when fold=True. Solvers: auto | lapjv | scipy.
    """
    check_mode(mode)
    check_solver(solver)
    check_compatible(a, b)
    t0 = time.perf_counter()
    dtype = np.float64 if solver == "scipy" else np.float32
    # folded features straight from the weights: no folded copy of either SAE
    xa = augmented_features(a, mode, "a", dtype, fold=fold)
    xb = augmented_features(b, mode, "b", dtype, fold=fold)
    # "both": the b_enc term (last dim of z) stays exact in the int8 cost, and the decoder
    # and encoder parts get their own int8 scales
    both = mode == "both"
    res = assign(
        xa, xb, solver, progress=progress, exact_tail=int(both), head_splits=(a.d_model,) * both
    )
    pair = pair_cost_features(xa, xb, res.perm)
    return Matching(
        perm=res.perm,
        pair_mse=pair,
        total_cost=float(pair.astype(np.float64).sum()),
        mode=mode,
        fold=bool(fold),
        solver=solver,
        seconds=time.perf_counter() - t0,
        info={**res.info, "tol": res.tol},
        duals=(res.u, res.v),
    )
