"""The published JumpReLU recipe: Rajamanoharan et al. 2024 ("Jumping Ahead") as the Gemma Scope
report (Lieberum et al. 2024, Sec. 3) describes it, batched over M SAEs like train_sae.py.

Loss per SAE, on inputs scaled by one scalar per layer so that E‖x‖² = 1:

    L = ‖x − x̂‖² + λ(step) · Σ_j H(pre_j − θ_j),   pre = x W_enc + b_enc,   θ = exp(log θ)

Straight-through estimators with the rectangle kernel K(u) = 1[|u| < 1/2] and bandwidth ε:
∂f/∂θ := −(θ/ε) K((pre − θ)/ε), ∂L0/∂θ := −(1/ε) K((pre − θ)/ε), no L0 gradient into pre
(train_sae._JumpReLUL0). What the report fixes and we keep:
- λ is one fixed number per SAE, warmed up linearly from 0 over the first `lambda_warmup` share
  of steps; nothing steers λ or θ towards a target L0 (sparsity is whatever λ gives);
- θ₀ = 0.001 and ε = 0.001 in those units; b_enc = b_dec = 0; W_enc = W_dec.T at init with
  unit-norm random decoder rows, kept unit norm after every step and their gradient's
  component along the row removed before it;
- Adam with β₁ = 0, β₂ = 0.999; the learning rate warmed up from 0.1 × lr over the first steps.
What we change for scale (the report trains ~10⁵–10⁶ steps at batch 4096 and lr 7e-5; we train
10³ steps at batch 256): a larger lr (the config's), warm-ups as shares of the run rather than
1,000 / 10,000 steps, and a cosine decay of lr to 10 % over the run (`lr_decay`), which the
report does not use. No dead-latent resampling (the report uses none).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from saematch.zoo.progress import Progress

THETA_INIT = 1e-3  # θ₀ in units where E‖x‖² = 1 (the report's value)
BANDWIDTH = 1e-3  # ε in the same units (the report's value)
LR_WARMUP = 0.05  # share of steps over which lr rises from 0.1 × lr (cosine, as the report)


def published_lr(step: int, n: int, lr: float, decay: bool) -> float:
    """Cosine warm-up from 0.1·lr to lr over LR_WARMUP of the run, then constant (the report) or,
    with `decay`, cosine decay to 0.1·lr at the last step."""
    warm = max(1, round(LR_WARMUP * n))
    if step < warm:
        return lr * (0.1 + 0.45 * (1 - math.cos(math.pi * step / warm)))
    if not decay:
        return lr
    t = (step - warm) / max(1, n - warm)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * t)))


def lambda_at(step: int, n: int, lam, warmup: float):
    """λ(step) = λ · min(1, step / (warmup · n)): the linear warm-up from 0 (λ a number or (M,))."""
    warm = warmup * n
    return lam if warm <= 0 else lam * min(1.0, step / warm)


def train_published(
    xs: Tensor,
    expand,
    *,
    width: int,
    steps: int,
    batch: int,
    lr: float,
    l0_coeff: Tensor,
    lambda_warmup: float,
    bandwidth: float,
    theta_init: float,
    lr_decay: bool,
    seed: int,
    progress: Progress,
    jumprelu,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Train M = L × S SAEs on xs (L, N, d), already scaled to E‖x‖² = 1 per layer.

    l0_coeff (M,): the fixed λ of each SAE. `expand` maps (L, B, d) -> (M, B, d); `jumprelu` is
    train_sae._JumpReLUL0.apply. Returns the
    trained (W_enc (M, d, F), b_enc (M, F), W_dec (M, F, d), b_dec (M, d), log θ (M, F)).
    """
    L, N, d = xs.shape
    M = expand(xs[:, :1]).shape[0]
    F = width
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(M, F, d, generator=g)
    W_dec /= W_dec.norm(dim=-1, keepdim=True)
    W_enc = W_dec.transpose(1, 2).clone()
    b_enc = torch.zeros(M, F)
    b_dec = torch.zeros(M, d)
    log_theta = torch.full((M, F), math.log(theta_init))
    params = [W_enc, b_enc, W_dec, b_dec, log_theta]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr, betas=(0.0, 0.999))
    order = torch.cat([torch.randperm(N, generator=g) for _ in range(steps * batch // N + 1)])
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = published_lr(step, steps, lr, lr_decay)
        lam = lambda_at(step, steps, l0_coeff, lambda_warmup)
        x = expand(xs[:, order[step * batch : (step + 1) * batch]])  # (M, B, d)
        pre = torch.baddbmm(b_enc[:, None], x, W_enc)  # (M, B, F)
        f, l0 = jumprelu(pre, log_theta.exp()[:, None], bandwidth)  # (M, B, F), (M, B)
        x_hat = torch.baddbmm(b_dec[:, None], f, W_dec)  # (M, B, d)
        rec = (x_hat - x).pow(2).sum(-1).mean(-1)  # (M,)
        l0 = l0.mean(-1)  # (M,)
        loss = (rec + lam * l0).sum()  # lam (M,): one fixed λ per SAE
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():  # keep ‖W_dec row‖ = 1: drop the gradient along each row
            W_dec.grad -= (W_dec.grad * W_dec).sum(-1, keepdim=True) * W_dec
        opt.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=-1, keepdim=True)
        progress.step(
            "sae step", step + 1, steps, f"rec {rec.mean().item():.3f} l0 {l0.mean().item():.1f}"
        )
    return W_enc, b_enc, W_dec, b_dec, log_theta
