"""JumpReLU SAE training (Rajamanoharan et al. 2024, "Jumping Ahead"), all SAEs batched as one.

M = n_layers × n_sparsities SAEs train together as one batched model (torch.bmm), so two cores
stay busy. Inputs are normalised by one scalar per layer; the scale is folded back into the saved
weights in Gemma Scope's convention (features and θ in input units: b_enc · s, θ · s, b_dec · s;
W_enc, W_dec as trained), so saved SAEs act on raw resid_post. Two recipes (`RECIPES`):

* `controller` (this project's): per-dimension RMS 1 (s_l = sqrt(E‖x‖² / d_model)); the L0
  coefficient λ of each SAE is steered towards its target L0 (log λ moves by η · (L0 − target) /
  target per step, clamped to [LOG_LAMBDA_MIN, LOG_LAMBDA_MAX]), θ is moved directly with the L0
  error, and idle features are revived. Sparsity names are target L0s.
* `published` (Jumping Ahead as the Gemma Scope report describes it, train_published.py): mean
  squared norm 1 (s_l = sqrt(E‖x‖²)), zero biases, θ₀ = 0.001, ε = 0.001, Adam β₁ = 0, one FIXED
  λ per SAE warmed up linearly from 0, no controller and no revival. Sparsity is what λ gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from saematch.sae import JumpReLUSAE
from saematch.zoo.progress import Progress
from saematch.zoo.train_published import BANDWIDTH as PUBLISHED_BANDWIDTH
from saematch.zoo.train_published import THETA_INIT as PUBLISHED_THETA_INIT
from saematch.zoo.train_published import train_published

# Bump when a change to this file changes the SAEs it trains: zoo and planted caches record it
# (manifest "code_version") and rebuild their SAEs when it differs.
TRAINER_VERSION = 3  # 3: the `published` recipe; metrics gain l0_coeff_at_bound
RECIPES = ("controller", "published")
CONTROLLER_BANDWIDTH = 0.05  # ε of the controller recipe (per-dimension RMS 1 units)
DEAD_AFTER = 20  # steps without firing before a feature counts as dead in training
REVIVE_COEFF = 0.05
LAMBDA_CTRL = 0.05  # log λ step per unit relative L0 error
THETA_CTRL = 0.03  # log θ step per unit relative L0 error
REVIVE_STEP = 0.1  # log θ step down per step for a feature idle > DEAD_AFTER steps
THETA_LR_MULT = 1.0  # 5.0 made L0 overshoot and EV collapse in 100-step runs
# λ ∈ [1.2e-4, 4]: the controller cannot run away (it reached 52 on the zoo with the θ controller
# off, 531 on the planted world); healthy planted runs settle at λ 0.6–1.7, so 4 never binds there
LOG_LAMBDA_MIN, LOG_LAMBDA_MAX = -9.0, 1.386
# share of steps during which θ follows the L0 error directly. Measured on the planted test world
# (3000 steps, lr 1e-2): switching it off after 20 % let λ run to 4–531, EV fell to 0.72–0.92 and
# recovery to 0.75–0.99; kept on throughout: λ 0.6–1.7, EV 0.91–0.93, recovery 0.96–1.00
THETA_CTRL_UNTIL = 1.0


def _rectangle(u: Tensor) -> Tensor:
    """Rectangle kernel K(u) = 1[|u| < 1/2]."""
    return (u.abs() < 0.5).to(u.dtype)


class _JumpReLUL0(torch.autograd.Function):
    """f = z · H(z − θ) and L0 = Σ_F H(z − θ), with the paper's straight-through gradients.

    ∂f/∂z = H(z − θ); ∂f/∂θ := −(θ/ε) K((z − θ)/ε); ∂L0/∂z = 0; ∂L0/∂θ := −(1/ε) K((z − θ)/ε).
    z (M, B, F), θ (M, 1, F) -> f (M, B, F), l0 (M, B).
    """

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor, eps: float):
        mask = z > theta
        ctx.save_for_backward(z, theta, mask)
        ctx.eps = eps
        return z * mask, mask.sum(-1, dtype=z.dtype)

    @staticmethod
    def backward(ctx, g_f: Tensor, g_l0: Tensor):
        z, theta, mask = ctx.saved_tensors
        near = _rectangle((z - theta) / ctx.eps)
        g_theta = (near * (theta * g_f + g_l0[..., None])).sum(1, keepdim=True) * (-1 / ctx.eps)
        return g_f * mask, g_theta, None


@dataclass
class SAEBatchResult:
    """Trained SAEs (raw-activation units) and their held-out metrics, indexed [layer][level]."""

    saes: list[list[JumpReLUSAE]]
    metrics: list[list[dict]]


def _lr(step: int, n: int, lr: float) -> float:
    """5 % linear warmup, then cosine decay to 10 %."""
    warm = max(1, n // 20)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, n - warm)
    return lr * (0.1 + 0.45 * (1 + torch.cos(torch.tensor(torch.pi * t)).item()))


def train_saes(
    acts: Tensor,
    heldout: Tensor,
    l0_targets: list[int],
    width: int,
    *,
    steps: int,
    batch: int,
    lr: float,
    bandwidth: float | None,
    seed: int,
    progress: Progress,
    recipe: str = "controller",
    l0_coeff: float | Sequence[float] | None = None,
    lambda_warmup: float = 0.1,
    lr_decay: bool = True,
) -> SAEBatchResult:
    """Train one JumpReLU SAE per (layer, sparsity level) on acts (L, N, d); score on heldout
    (L, H, d). Loss per SAE (normalised units): ‖x − x̂‖² + λ ‖f‖₀, θ = exp(log θ), W_dec rows
    unit norm. bandwidth None = the recipe's ε (0.05 controller, 0.001 published).

    recipe "controller": l0_targets are target L0s that λ and θ are steered to.
    recipe "published": l0_targets only count the SAEs per layer (one per entry); every SAE gets
    the fixed λ = l0_coeff (warmed up over `lambda_warmup` of the steps) and no controller;
    `lr_decay` adds the cosine lr decay (train_published.py says why).
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown SAE training recipe {recipe!r}; choose one of {RECIPES}")
    L, N, d = acts.shape
    S, F = len(l0_targets), width
    M = L * S  # SAE m = l * S + s

    def expand(x: Tensor) -> Tensor:  # (L, B, d) -> (M, B, d)
        return x.unsqueeze(1).expand(L, S, *x.shape[1:]).reshape(M, *x.shape[1:])

    if recipe == "published":
        lams = [l0_coeff] * S if isinstance(l0_coeff, (int, float)) else list(l0_coeff or [])
        if len(lams) != S or not all(lam > 0 for lam in lams):
            raise ValueError(
                f"recipe 'published' needs a fixed sparsity coefficient l0_coeff > 0 (one number, "
                f"or one per sparsity level: {S}), got {l0_coeff!r}; planted presets carry a "
                "calibrated default"
            )
        lam = torch.tensor(lams, dtype=torch.float32).repeat(L)  # (M,)
        scale = acts.pow(2).sum(-1).mean(-1).sqrt()  # (L,): E‖x/s‖² = 1
        eps = PUBLISHED_BANDWIDTH if bandwidth is None else bandwidth
        W_enc, b_enc, W_dec, b_dec, log_theta = train_published(
            acts / scale[:, None, None], expand, width=F, steps=steps, batch=batch, lr=lr,
            l0_coeff=lam, lambda_warmup=lambda_warmup, bandwidth=eps,
            theta_init=PUBLISHED_THETA_INIT, lr_decay=lr_decay, seed=seed, progress=progress,
            jumprelu=_JumpReLUL0.apply,
        )  # fmt: skip
        log_lam = lam.log()
        bound = torch.zeros(M)  # a fixed λ has no bound to sit at
        return _finish(W_enc, b_enc, W_dec, b_dec, log_theta, log_lam, bound, scale, heldout, S)
    bandwidth = CONTROLLER_BANDWIDTH if bandwidth is None else bandwidth
    g = torch.Generator().manual_seed(seed)
    scale = acts.pow(2).sum(-1).mean(-1).div(d).sqrt()  # (L,) per-layer RMS
    xs = acts / scale[:, None, None]
    target = torch.tensor(l0_targets, dtype=torch.float32).repeat(L)  # (M,)

    # init: unit decoder rows, W_enc = W_dec.T, b_dec = data mean, b_enc centres the input
    W_dec = torch.randn(M, F, d, generator=g)
    W_dec /= W_dec.norm(dim=-1, keepdim=True)
    W_enc = W_dec.transpose(1, 2).clone()
    b_dec = expand(xs.mean(1, keepdim=True)).squeeze(1).clone()  # (M, d)
    b_enc = -torch.bmm(b_dec[:, None], W_enc).squeeze(1)  # (M, F)
    # θ starts at the per-feature quantile that leaves each SAE at its target L0
    probe = expand(xs[:, torch.randperm(N, generator=g)[: min(N, 4 * batch)]])
    with torch.no_grad():
        pre = torch.baddbmm(b_enc[:, None], probe, W_enc)  # (M, P, F)
        q = (1 - target / F)[:, None].expand(M, F)
        theta0 = torch.stack([torch.quantile(pre[m], q[m, 0], dim=0) for m in range(M)])  # (M, F)
        del pre
    log_theta = theta0.clamp_min(1e-2).log()
    params = [W_enc, b_enc, W_dec, b_dec, log_theta]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(
        [{"params": params[:4], "scale": 1.0}, {"params": [log_theta], "scale": THETA_LR_MULT}],
        lr=lr,
        betas=(0.9, 0.999),
    )
    log_lam = torch.full((M,), -2.0)
    idle = torch.zeros(M, F)  # steps since each feature last fired
    # share of the last 20 % of steps each SAE's λ spent at its ceiling or floor
    at_bound, tail = torch.zeros(M), max(1, steps // 5)
    order = torch.cat([torch.randperm(N, generator=g) for _ in range(steps * batch // N + 1)])
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, lr) * group["scale"]
        x = expand(xs[:, order[step * batch : (step + 1) * batch]])  # (M, B, d)
        pre = torch.baddbmm(b_enc[:, None], x, W_enc)  # (M, B, F)
        theta = log_theta.exp()[:, None]  # (M, 1, F)
        f, l0 = _JumpReLUL0.apply(pre, theta, bandwidth)  # (M, B, F), (M, B)
        x_hat = torch.baddbmm(b_dec[:, None], f, W_dec)  # (M, B, d)
        rec = (x_hat - x).pow(2).sum(-1).mean(-1)  # (M,)
        l0 = l0.mean(-1)  # (M,)
        # dead-feature revival: features idle for DEAD_AFTER steps get a hinge pulling their
        # pre-activations up towards θ (no other gradient reaches a feature that never fires)
        loss = (rec + log_lam.exp() * l0).sum()
        if bool((idle > DEAD_AFTER).any()):  # most steps have no dead feature: skip the pass
            dead = (idle > DEAD_AFTER).float()[:, None]  # (M, 1, F)
            revive = (torch.relu(theta.detach() - pre) * dead).sum(-1).mean(-1)  # (M,)
            loss = loss + REVIVE_COEFF * revive.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=-1, keepdim=True)
            err = ((l0 - target) / target).clamp(-1, 1)  # (M,)
            log_lam.add_(LAMBDA_CTRL * err).clamp_(LOG_LAMBDA_MIN, LOG_LAMBDA_MAX)
            if step >= steps - tail:
                at_bound += ((log_lam >= LOG_LAMBDA_MAX) | (log_lam <= LOG_LAMBDA_MIN)).float()
            # direct L0 control: θ of every feature moves with the L0 error (Adam's steps on θ
            # are ~lr, far too slow to follow λ in a few hundred steps), and features idle for
            # DEAD_AFTER steps get their θ lowered until they fire again
            if step < THETA_CTRL_UNTIL * steps:
                log_theta += THETA_CTRL * err[:, None]
            log_theta -= REVIVE_STEP * (idle > DEAD_AFTER).float()
            idle = torch.where((f > 0).any(1), 0.0, idle + 1)
        progress.step(
            "sae step", step + 1, steps, f"rec {rec.mean().item():.2f} l0 {l0.mean().item():.1f}"
        )
    bound = at_bound / tail
    return _finish(W_enc, b_enc, W_dec, b_dec, log_theta, log_lam, bound, scale, heldout, S)


@torch.no_grad()
def _finish(W_enc, b_enc, W_dec, b_dec, log_theta, log_lam, bound, scale, heldout, S):
    """Un-normalise the weights into JumpReLUSAEs (scale (L,): the input divisor of each layer)
    and score each on held-out activations; l0_coeff = final λ, l0_coeff_at_bound = share of the
    last 20 % of steps λ sat at a bound of the controller's clamp (0 for a fixed λ)."""
    L = len(scale)
    saes, metrics = [], []
    for l in range(L):
        row_s, row_m = [], []
        for s in range(S):
            m = l * S + s
            # Gemma Scope's convention: features (and θ) in input units, decoder rows as
            # trained. With x = s·x_n: pre = x W + s b = s·pre_n, x̂ = (s f_n) D + s c.
            sae = JumpReLUSAE(
                W_enc=W_enc[m].detach().clone(),
                b_enc=(b_enc[m] * scale[l]).detach().clone(),
                W_dec=W_dec[m].detach().clone(),
                b_dec=(b_dec[m] * scale[l]).detach().clone(),
                threshold=(log_theta[m].exp() * scale[l]).detach().clone(),
            )
            row_s.append(sae)
            row_m.append(
                {
                    **evaluate_sae(sae, heldout[l]),
                    "l0_coeff": float(log_lam[m].exp()),
                    "l0_coeff_at_bound": float(bound[m]),
                }
            )
        saes.append(row_s)
        metrics.append(row_m)
    return SAEBatchResult(saes, metrics)


@torch.no_grad()
def evaluate_sae(sae: JumpReLUSAE, x: Tensor, chunk: int = 8192) -> dict:
    """Held-out metrics on x (N, d): l0 (mean active features per token), explained variance
    EV = 1 − Σ‖x̂ − x‖² / Σ‖x − mean(x)‖² (docs/method.md §5), dead_frac (features never active)."""
    err, active, fired = 0.0, 0.0, torch.zeros(sae.width, dtype=torch.bool)
    for i in range(0, len(x), chunk):
        xb = x[i : i + chunk]
        f = sae.encode(xb)
        err += (sae.decode(f) - xb).pow(2).sum().item()
        on = f > 0
        active += on.sum().item()
        fired |= on.any(0)
    var = (x - x.mean(0)).pow(2).sum().item()
    return {
        "l0": active / len(x),
        "explained_variance": 1 - err / var,
        "dead_frac": 1 - fired.float().mean().item(),
    }
