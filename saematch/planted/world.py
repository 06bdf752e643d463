"""The planted world's features and their fate across layers (docs/method.md §9): the truth, no
tokens.

Layer 0 has `n_features` true features: unit directions u_i(0) ∈ R^d (uniform on the sphere),
scales s_i(0) = exp(σ_s ζ_i), firing rates r_i ∝ rank^(−zipf) with Σ r_i = l0. Between layers
t → t+1 each feature independently

    dies      with probability p_die                          (no successor)
    splits    with probability p_split into two children,     u_c = normalise(u + δ_split ξ_c)
    persists  otherwise:                                       u' = normalise(u + δ ξ)

with ξ ~ N(0, I_d / d) (‖ξ‖ ≈ 1, so cos(u, u') ≈ 1/√(1 + δ²)), and every successor's scale is
s' = s · g · exp(σ_g η), η ~ N(0, 1) per successor. Then ⌊n_features · p_birth⌉ new features are
born (random direction, scale g^(t+1) exp(σ_s ζ)). A split child inherits half its parent's
rate, a persisting feature all of it; the born share layer 0's rate profile, scaled so the rates
sum to l0 again (the expected L0 per token stays l0). With p_birth = p_die − p_split (the default:
a split adds one feature, a death removes one) the feature count stays about constant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of the generator (docs/method.md §9); `asdict` goes into the manifest."""

    n_layers: int = 6
    d_model: int = 64
    n_features: int = 192  # true features at layer 0
    drift: float = 0.2  # δ: per-layer direction drift of a persisting feature
    growth: float = 1.2  # g: shared scale growth per layer
    growth_spread: float = 0.1  # σ_g: feature-specific log-scale change per layer
    scale_spread: float = 0.2  # σ_s: log-scale spread of features at birth
    p_die: float = 0.08
    p_split: float = 0.04
    p_birth: float | None = None  # None = p_die − p_split: the feature count stays constant
    split_angle: float = 0.8  # δ_split: each child is normalise(u + δ_split ξ)
    p_persist: float = 0.9  # P(successor active | parent active)
    l0: float = 6.0  # expected true features active per token
    zipf: float = 0.5  # firing rate of the k-th feature ∝ k^(−zipf)
    magnitude_sigma: float = 0.5  # a = exp(σ_a z): log-normal, heavy right tail
    magnitude_corr: float = 0.8  # ρ of log a between a feature and its active successor
    noise: float = 0.05  # Gaussian noise std, relative to the signal's per-dimension RMS

    def __post_init__(self) -> None:
        checks = {
            "n_layers": self.n_layers >= 2,
            "d_model": self.d_model >= 2,
            "n_features": self.n_features >= 1,
            "drift": self.drift >= 0,
            "growth": self.growth > 0,
            "growth_spread": self.growth_spread >= 0,
            "scale_spread": self.scale_spread >= 0,
            "p_die": 0 <= self.p_die <= 1,
            "p_split": 0 <= self.p_split <= 1 - self.p_die,
            "p_birth": self.p_birth is None or self.p_birth >= 0,
            "split_angle": self.split_angle >= 0,
            "p_persist": 0 <= self.p_persist <= 1,
            "l0": 0 < self.l0 < self.n_features,
            "zipf": self.zipf >= 0,
            "magnitude_sigma": self.magnitude_sigma >= 0,
            "magnitude_corr": -1 <= self.magnitude_corr <= 1,
            "noise": self.noise >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            vals = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(
                f"planted world: invalid {vals}; need n_layers ≥ 2, probabilities in [0, 1] with "
                "p_die + p_split ≤ 1, 0 < l0 < n_features and non-negative spreads"
            )

    @property
    def birth_rate(self) -> float:
        """Births per layer as a share of n_features."""
        return max(0.0, self.p_die - self.p_split) if self.p_birth is None else self.p_birth

    def to_dict(self) -> dict:
        """JSON-ready dict of every knob."""
        return asdict(self)


@dataclass
class World:
    """The truth of one planted world: per layer t, N_t features.

    directions[t] (N_t, d) unit rows; scales[t] (N_t,); rates[t] (N_t,) firing probabilities;
    parent[t] (N_t,) index of the feature at t−1 it descends from, −1 if born (all −1 at t=0);
    split[t] (N_t,) bool, True for a split child; successor[t] (N_t, 2) children at t+1, −1 = none
    (defined for t < n_layers − 1).
    """

    config: WorldConfig
    directions: list[Tensor]
    scales: list[Tensor]
    rates: list[Tensor]
    parent: list[Tensor]
    split: list[Tensor]
    successor: list[Tensor]

    @property
    def n_layers(self) -> int:
        return len(self.directions)

    @property
    def d_model(self) -> int:
        return self.directions[0].shape[1]


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def _successors(parent: Tensor, n_prev: int) -> Tensor:
    """(n_prev, 2) table of children per parent, −1 padded, from the children's parent index."""
    succ = torch.full((n_prev, 2), -1, dtype=torch.long)
    for c, p in enumerate(parent.tolist()):
        if p >= 0:
            slot = 0 if succ[p, 0] < 0 else 1
            succ[p, slot] = c
    return succ


def make_world(cfg: WorldConfig, seed: int) -> World:
    """Sample the features of every layer and their fate (deterministic in `seed`)."""
    g = torch.Generator().manual_seed(seed)
    d, n = cfg.d_model, cfg.n_features

    def noise_dir(k: int) -> Tensor:  # ξ ~ N(0, I/d), shape (k, d)
        return torch.randn(k, d, generator=g) / d**0.5

    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    base_rates = ranks.pow(-cfg.zipf)
    base_rates = (base_rates * cfg.l0 / base_rates.sum()).clamp(max=0.5).float()
    base_rates = base_rates[torch.randperm(n, generator=g)]  # no tie of rate to index
    dirs = [_unit(torch.randn(n, d, generator=g))]
    scales = [torch.exp(cfg.scale_spread * torch.randn(n, generator=g))]
    rates = [base_rates]
    parent = [torch.full((n,), -1, dtype=torch.long)]
    split = [torch.zeros(n, dtype=torch.bool)]
    successor = []
    n_birth = round(n * cfg.birth_rate)
    for t in range(1, cfg.n_layers):
        u, s, r = dirs[-1], scales[-1], rates[-1]
        m = len(u)
        fate = torch.rand(m, generator=g)
        dies, splits = fate < cfg.p_die, (fate >= cfg.p_die) & (fate < cfg.p_die + cfg.p_split)
        keep = (~dies & ~splits).nonzero().squeeze(1)
        sp = splits.nonzero().squeeze(1)
        par = torch.cat([keep, sp, sp])  # persisting, first children, second children
        angle = torch.cat(
            [torch.full((len(keep),), cfg.drift), torch.full((2 * len(sp),), cfg.split_angle)]
        )
        u_new = _unit(u[par] + angle[:, None] * noise_dir(len(par)))
        eta = torch.randn(len(par), generator=g)
        s_new = s[par] * cfg.growth * torch.exp(cfg.growth_spread * eta)
        r_new = r[par] * torch.cat([torch.ones(len(keep)), torch.full((2 * len(sp),), 0.5)])
        is_split = torch.cat([torch.zeros(len(keep)), torch.ones(2 * len(sp))]).bool()
        # births
        u_b = _unit(torch.randn(n_birth, d, generator=g))
        s_b = cfg.growth**t * torch.exp(cfg.scale_spread * torch.randn(n_birth, generator=g))
        r_b = base_rates[torch.randint(n, (n_birth,), generator=g)]
        # born rates refill what the dead took, so the expected L0 stays at l0
        refill = (cfg.l0 - r_new.sum()).clamp_min(0) / r_b.sum().clamp_min(1e-12)
        r_b = (r_b * refill).clamp(max=0.5)
        # shuffle so a feature's index says nothing about its fate
        order = torch.randperm(len(par) + n_birth, generator=g)
        par_all = torch.cat([par, torch.full((n_birth,), -1, dtype=torch.long)])[order]
        dirs.append(torch.cat([u_new, u_b])[order])
        scales.append(torch.cat([s_new, s_b])[order])
        rates.append(torch.cat([r_new, r_b])[order])
        parent.append(par_all)
        split.append(torch.cat([is_split, torch.zeros(n_birth, dtype=torch.bool)])[order])
        successor.append(_successors(par_all, m))
    return World(cfg, dirs, scales, rates, parent, split, successor)


def descendants(successor: list[Tensor], t: int, k: int) -> list[set[int]]:
    """For every true feature of layer t, the set of its descendants at layer t + k (k ≥ 1)."""
    if not (k >= 1 and t >= 0 and t + k <= len(successor)):
        raise ValueError(f"descendants: need k ≥ 1 and t + k ≤ {len(successor)}; got t={t}, k={k}")
    out = [{i} for i in range(len(successor[t]))]
    for step in range(t, t + k):
        succ = successor[step].tolist()
        out = [{c for i in cur for c in succ[i] if c >= 0} for cur in out]
    return out
