"""Oracle SAEs of a planted world: the true directions as weights, θ chosen by the caller.

For layer t with true directions u_i(t) (unit rows) and scales s_i(t):

    W_dec[i] = u_i(t),   W_enc[:, i] = u_i(t),   b_enc = 0,   b_dec = 0,
    θ_i = s_i(t)                       (theta="scale": θ carries each feature's true scale)
    θ_i = exp(mean_i log s_i(t))       (theta="layer": one θ per layer, the scales' geometric mean)

These are the controls of the folding sweep: with theta="scale" folding (eq. 4) gets the exact
per-feature scale it assumes; with theta="layer" folding multiplies every row of a layer by one
number, which leaves folded decoder and encoder LAPs equal to the unfolded ones (a bijection's
Σ‖θ_t u‖² and Σ‖θ_{t+1} u'‖² do not depend on the pairing). Layers have different feature
counts N_t; matching needs one width, so every layer is padded to `width` (default max_t N_t)
with random unit directions (cosine < 0.9 with every true feature, so they represent none and
stay outside the accuracy's support) and θ = the layer's geometric-mean scale.
"""

from __future__ import annotations

import torch

from saematch.planted.metrics import REPRESENT_COS, represented
from saematch.planted.world import World
from saematch.sae import JumpReLUSAE

THETA_KINDS = ("scale", "layer")


def _padding(n: int, directions: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """n random unit rows (n, d), each redrawn until its cosine with every true direction is
    below REPRESENT_COS (so it represents no true feature)."""
    d = directions.shape[1]
    rows = []
    while len(rows) < n:
        r = torch.randn(d, generator=g)
        r /= r.norm()
        if float((directions @ r).abs().max()) < REPRESENT_COS:
            rows.append(r)
    return torch.stack(rows) if rows else torch.empty(0, d)


def oracle_saes(
    world: World, theta: str = "scale", width: int | None = None, seed: int = 0
) -> list[JumpReLUSAE]:
    """One oracle SAE per layer of `world` (module docstring), each `width` wide."""
    if theta not in THETA_KINDS:
        raise ValueError(f"oracle θ {theta!r} unknown; choose one of {THETA_KINDS}")
    counts = [len(u) for u in world.directions]
    width = max(counts) if width is None else width
    if width < max(counts):
        raise ValueError(f"oracle width {width} < the largest layer's {max(counts)} features")
    g = torch.Generator().manual_seed(seed)
    saes = []
    for t, (u, s) in enumerate(zip(world.directions, world.scales, strict=True)):
        u, s = u.float(), s.float()
        layer_theta = s.log().mean().exp()
        W_dec = torch.cat([u, _padding(width - len(u), u, g)])  # (width, d)
        th = s if theta == "scale" else layer_theta.expand(len(u))
        th = torch.cat([th, layer_theta.expand(width - len(u))])
        sae = JumpReLUSAE(
            W_enc=W_dec.T.contiguous(),
            b_enc=torch.zeros(width),
            W_dec=W_dec.contiguous(),
            b_dec=torch.zeros(world.d_model),
            threshold=th.contiguous(),
            name=f"oracle-{theta}/layer_{t}",
            meta={"layer": t, "oracle": theta},
        )
        saes.append(sae)
    return saes


def with_true_scales(saes: list[JumpReLUSAE], world: World) -> list[JumpReLUSAE]:
    """Trained SAEs with θ of every latent that represents a true feature i replaced by
    c_t · s_i(t), c_t = median_j θ_j / s_rep(j) over the layer's represented latents (θ keeps its
    units); other latents keep their θ. Separates what the SAE's directions lose from what its
    thresholds lose: the weights are the trained ones, only θ is the truth's."""
    out = []
    for t, sae in enumerate(saes):
        rep = represented(sae.W_dec, world.directions[t])
        on = rep >= 0
        th = sae.threshold.clone()
        if bool(on.any()):
            s = world.scales[t].to(th.dtype)[rep[on]]
            th[on] = s * (th[on] / s).median()
        out.append(
            JumpReLUSAE(
                sae.W_enc,
                sae.b_enc,
                sae.W_dec,
                sae.b_dec,
                th,
                name=f"{sae.name}+true-theta",
                meta=dict(sae.meta),
            )  # fmt: skip
        )
    return out
