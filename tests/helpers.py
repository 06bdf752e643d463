"""Factories for small test SAEs."""

from __future__ import annotations

import torch

from saematch.sae import JumpReLUSAE


def random_sae(
    d_model: int = 16, width: int = 32, seed: int = 0, theta_range=(0.05, 2.0), dtype=torch.float32
) -> JumpReLUSAE:
    """A random JumpReLU SAE with positive thresholds spread over theta_range."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = theta_range
    return JumpReLUSAE(
        W_enc=torch.randn(d_model, width, generator=g, dtype=dtype) / d_model**0.5,
        b_enc=torch.randn(width, generator=g, dtype=dtype) * 0.1,
        W_dec=torch.randn(width, d_model, generator=g, dtype=dtype) / d_model**0.5,
        b_dec=torch.randn(d_model, generator=g, dtype=dtype) * 0.1,
        threshold=lo + (hi - lo) * torch.rand(width, generator=g, dtype=dtype),
        name=f"random-{seed}",
    )
