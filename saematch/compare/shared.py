"""What two SAEs share and what they do not: the partial matching with the rotation null.

Shared = kept by the exact partial matching with `unmatched="auto"` (docs/method.md §10: reject
cost τ_i = ρ‖z_i‖², ρ = 1 − κ* with κ* the (1 − α) quantile of the similarity a feature finds
with a randomly rotated copy of the other dictionary). A pair is kept only when it beats
rejecting both features, so a forced pair of the bijection is never counted as shared.

Different widths: the partial matching is solved on the rectangular problem directly (the
narrow side's rows against every wide feature: one n_narrow × n_wide float32 pass, no
padding). It is what padding the narrow side with zero features would give: a zero feature
has reject cost 0 and costs ‖z'_j‖² ≥ ρ‖z'_j‖² against any j (ρ < 1), so it is never kept;
the padding cost W × W where this costs n × W. The null samples both sides' live features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saematch.matching import Matching
from saematch.matching.beyond.null import feature_parts, null_kappa
from saematch.matching.budget import Budget, features_bytes
from saematch.matching.cost import augmented_features, cost_layout, feature_dim
from saematch.matching.match import partial
from saematch.matching.options import MatchOptions
from saematch.sae import JumpReLUSAE


@dataclass
class Shared:
    """The partial matching of a and b (perm (F_A,) with −1 = no partner) and its null."""

    matching: Matching  # on the unpadded indices: perm (F_A,), pair_mse NaN where unmatched
    kappa: float  # κ* of the rotation null (pairs kept: similarity above it)
    unshared_a: int  # a's features with no partner
    unshared_b: int

    @property
    def shared(self) -> int:
        """Pairs kept."""
        return int((self.matching.perm >= 0).sum())


def shared_features(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str = "both",
    fold: bool = True,
    null_alpha: float = 0.05,
    seed: int = 0,
    max_memory=None,
    device: str = "auto",
) -> Shared:
    """The exact partial matching of a and b (any widths) at ρ = 1 − κ* of the rotation null.

    max_memory: what this may allocate beyond the two SAEs (the features first, then the
    candidate pass; budget.py). device: kept for the signature (the pass runs on the CPU).
    """
    del device
    opts = MatchOptions(mode=mode, fold=fold, unmatched="auto", null_alpha=null_alpha, seed=seed)
    flip = a.width > b.width  # the narrow side is the rows (partial_assign)
    rows, cols = (b, a) if flip else (a, b)
    D = feature_dim(a.d_model, mode)
    need = (features_bytes(rows.width, D) + features_bytes(cols.width, D)) // 2
    budget = Budget.resolve(max_memory, need, f"shared features {a.width} x {b.width}")
    xr = augmented_features(rows, mode, "a", np.float32, fold=fold)
    xc = augmented_features(cols, mode, "b", np.float32, fold=fold)
    null = null_kappa(xr, xc, feature_parts(a.d_model, mode), null_alpha, seed=seed)
    m = partial(xr, xc, null["rho"], opts, cost_layout(a.d_model, mode), budget.work)
    m.info["null"] = null
    perm_rows = np.asarray(m.perm, dtype=np.int64)
    pair_rows = np.asarray(m.pair_mse, dtype=np.float32)
    if flip:  # back to a's indices: a is the columns
        perm = np.full(a.width, -1, dtype=np.int64)
        pair = np.full(a.width, np.nan, dtype=np.float32)
        kept = np.flatnonzero(perm_rows >= 0)
        perm[perm_rows[kept]] = kept
        pair[perm_rows[kept]] = pair_rows[kept]
    else:
        perm, pair = perm_rows, pair_rows
    m.perm, m.pair_mse = perm, np.where(perm >= 0, pair, np.nan).astype(np.float32)
    kept_b = np.zeros(b.width, dtype=bool)
    kept_b[perm[perm >= 0]] = True
    m.info.update(unmatched_a=int((perm < 0).sum()), unmatched_b=int((~kept_b).sum()))
    return Shared(m, float(null["kappa"]), int((perm < 0).sum()), int((~kept_b).sum()))
