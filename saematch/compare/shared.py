"""What two SAEs share and what they do not: the partial matching with the rotation null.

Shared = kept by the exact partial matching with `unmatched="auto"` (docs/method.md §10: reject
cost τ_i = ρ‖z_i‖², ρ = 1 − κ* with κ* the (1 − α) quantile of the similarity a feature finds
with a randomly rotated copy of the other dictionary). A pair is kept only when it beats
rejecting both features, so a forced pair of the bijection is never counted as shared.

Different widths: the narrow SAE is padded with zero features (all weights 0, θ = 1). A zero
feature has reject cost 0 and costs ‖z'_j‖² ≥ ρ‖z'_j‖² against any j (ρ < 1), so it is never
kept: the padded partial matching is the rectangular partial matching, and the null samples
live features only (null.py), so the padding does not move κ*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from saematch.matching import Matching, match_beyond
from saematch.sae import JumpReLUSAE


def pad_sae(sae: JumpReLUSAE, width: int) -> JumpReLUSAE:
    """sae with zero features (weights 0, b_enc 0, θ = 1) appended up to `width`."""
    extra = width - sae.width
    if extra < 0:
        raise ValueError(f"pad_sae: {sae.name} has {sae.width} features > width {width}")
    if extra == 0:
        return sae
    dt = sae.dtype

    def grow(t: torch.Tensor, dim: int, value: float = 0.0) -> torch.Tensor:
        shape = list(t.shape)
        shape[dim] = extra
        pad = torch.full(shape, value, dtype=dt, device=t.device)
        return torch.cat([t, pad], dim=dim)

    return JumpReLUSAE(
        W_enc=grow(sae.W_enc, 1),
        b_enc=grow(sae.b_enc, 0),
        W_dec=grow(sae.W_dec, 0),
        b_dec=sae.b_dec.clone(),
        threshold=grow(sae.threshold, 0, 1.0),
        name=f"{sae.name}+{extra} zero features",
        meta=dict(sae.meta),
    )


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
    """The exact partial matching of a and b (any widths) at ρ = 1 − κ* of the rotation null."""
    n = max(a.width, b.width)
    pa, pb = pad_sae(a, n), pad_sae(b, n)
    m = match_beyond(
        pa, pb, mode=mode, fold=fold, unmatched="auto", confidence=False, top_k=0,
        splits=False, null_alpha=null_alpha, seed=seed, max_memory=max_memory, device=device,
    )  # fmt: skip
    perm = np.asarray(m.perm[: a.width], dtype=np.int64).copy()
    perm[perm >= b.width] = -1  # never happens (module doc); kept so a pad is never a partner
    m.perm, m.pair_mse = perm, np.where(perm >= 0, m.pair_mse[: a.width], np.nan)
    m.pair_mse = m.pair_mse.astype(np.float32)
    kept_b = np.zeros(b.width, dtype=bool)
    kept_b[perm[perm >= 0]] = True
    m.info.update(unmatched_a=int((perm < 0).sum()), unmatched_b=int((~kept_b).sum()))
    kappa = float(m.info.get("kappa", m.info.get("null", {}).get("kappa", float("nan"))))
    return Shared(m, kappa, int((perm < 0).sum()), int((~kept_b).sum()))
