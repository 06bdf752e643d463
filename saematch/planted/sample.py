"""Tokens of the planted world (docs/method.md §9): sparse true activations per layer, then x_t.

Layer 0: feature i is active with probability r_i, magnitude a = exp(σ_a z).
Layer t+1, feature c with parent p at t (persisting, or a split child taking weight w = 1/2):
  - if p is active, with probability p_persist the activation carries over ("via"): to c itself,
    or, for a split, to one of the two children chosen by a fair coin; its magnitude continues,
    log a_c = ρ log a_p + √(1 − ρ²) σ_a z;
  - otherwise c fires on its own with probability r_p w (1 − p_persist) / (1 − r_p), which keeps
    c's marginal rate at r_c = w r_p; a born feature fires with its own rate.

    x_t = Σ_i a_i(t) s_i(t) u_i(t) + ε,   ε ~ N(0, (noise · rms_t)² I),
    rms_t² = Σ_i r_i s_i² E[a²] / d   (E[a²] = exp(2σ_a²)): the signal's per-dimension RMS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from saematch.planted.world import World

CHUNK = 4096  # tokens generated per seeded chunk (memory: CHUNK × N_t per layer)


def signal_rms(world: World, t: int) -> float:
    """Expected per-dimension RMS of layer t's noiseless signal (the noise is relative to it)."""
    ea2 = math.exp(2 * world.config.magnitude_sigma**2)
    power = (world.rates[t] * world.scales[t].pow(2)).sum().item() * ea2
    return math.sqrt(power / world.d_model)


def sample_codes(world: World, n: int, g: torch.Generator) -> list[Tensor]:
    """True feature activations a_i(t) for n tokens: list over layers of (n, N_t) (0 = inactive)."""
    cfg = world.config
    sig, rho = cfg.magnitude_sigma, cfg.magnitude_corr
    rates = world.rates[0]
    active = torch.rand(n, len(rates), generator=g) < rates  # (n, N_0)
    log_a = sig * torch.randn(active.shape, generator=g)
    codes = [active * log_a.exp()]
    for t in range(1, world.n_layers):
        par, is_split = world.parent[t], world.split[t]
        has_par = par >= 0
        p = par.clamp(min=0)
        # slot of a split child among its parent's two children (0 or 1)
        slot = (world.successor[t - 1][p, 1] == torch.arange(len(par))).long()
        n_prev = active.shape[1]
        carry = torch.rand(n, n_prev, generator=g) < cfg.p_persist  # (n, N_{t−1})
        coin = torch.randint(0, 2, (n, n_prev), generator=g)
        par_on = active[:, p] & has_par  # (n, N_t)
        via = par_on & carry[:, p] & (~is_split | (coin[:, p] == slot))
        r_p = world.rates[t - 1][p]
        w = torch.where(is_split, 0.5, 1.0)
        own = torch.where(has_par, r_p * w * (1 - cfg.p_persist) / (1 - r_p), world.rates[t])
        fires = via | (~par_on & (torch.rand(n, len(par), generator=g) < own))
        z = torch.randn(n, len(par), generator=g)
        log_new = torch.where(via, rho * log_a[:, p] + math.sqrt(1 - rho**2) * sig * z, sig * z)
        active, log_a = fires, log_new
        codes.append(active * log_a.exp())
    return codes


def sample_activations(world: World, n: int, seed: int, chunk: int = CHUNK) -> Tensor:
    """x_t for n tokens of every layer: (L, n, d) float32, deterministic in (world, n, seed)."""
    return sample_with_codes(world, n, seed, chunk, keep_codes=False)[0]


def sample_with_codes(
    world: World, n: int, seed: int, chunk: int = CHUNK, keep_codes: bool = True
) -> tuple[Tensor, list[Tensor]]:
    """The tokens of sample_activations (identical for the same arguments) and, with keep_codes,
    their true activations: x (L, n, d) and codes[t] (n, N_t) (0 = inactive)."""
    L, d = world.n_layers, world.d_model
    out = torch.empty(L, n, d)
    codes: list[list[Tensor]] = [[] for _ in range(L)]
    noise = [world.config.noise * signal_rms(world, t) for t in range(L)]
    for c, start in enumerate(range(0, n, chunk)):
        g = torch.Generator().manual_seed(seed * 1_000_003 + c)
        b = min(chunk, n - start)
        for t, a in enumerate(sample_codes(world, b, g)):
            x = (a * world.scales[t]) @ world.directions[t]  # (b, d)
            out[t, start : start + b] = x + noise[t] * torch.randn(b, d, generator=g)
            if keep_codes:
                codes[t].append(a)
    return out, [torch.cat(c) for c in codes] if keep_codes else []
