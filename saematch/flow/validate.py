"""Check flow-graph edges against data: do linked features fire together?

For an edge (target feature i of res(t), source feature j of res(t−1) / mlp(t) / att(t)), the
Pearson correlation over the N non-BOS tokens of a corpus of the two features' activations

    ρ_ij = cov(f_i, g_j) / (σ(f_i) σ(g_j)),

against the same statistic for random (i, j) pairs of the same two SAEs. A pair in which either
feature never fires on the corpus has no correlation (NaN) and is counted, not averaged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from saematch.flow.graph import FlowLayer


@torch.no_grad()
def pair_correlations(a: Tensor, b: Tensor, ia: Tensor, ib: Tensor) -> Tensor:
    """ρ of columns a[:, ia[m]] and b[:, ib[m]] (a (N, F_a), b (N, F_b)) -> (m,); NaN if flat."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a has {a.shape[0]} tokens, b {b.shape[0]}: they must share tokens")
    x, y = a[:, ia].double(), b[:, ib].double()  # (N, m)
    x = x - x.mean(0)
    y = y - y.mean(0)
    den = (x.pow(2).sum(0) * y.pow(2).sum(0)).sqrt()
    rho = (x * y).sum(0) / den
    return torch.where(den > 0, rho, torch.full_like(rho, float("nan"))).float()


class CorrelationAccumulator:
    """Streaming Pearson ρ of m column pairs (x[:, k], y[:, k]) over chunks of tokens."""

    def __init__(self, m: int) -> None:
        self.n = 0
        z = torch.zeros(m, dtype=torch.float64)
        self.sx, self.sy, self.sxx, self.syy, self.sxy = (z.clone() for _ in range(5))

    def update(self, x: Tensor, y: Tensor) -> None:
        """Add tokens: x, y (n, m) activations of the pairs' two features."""
        x, y = x.double().cpu(), y.double().cpu()
        self.n += x.shape[0]
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.sxx += x.pow(2).sum(0)
        self.syy += y.pow(2).sum(0)
        self.sxy += (x * y).sum(0)

    def value(self) -> Tensor:
        """ρ (m,), NaN where either feature is constant (never fires) on the tokens seen."""
        n = max(self.n, 1)
        cov = self.sxy - self.sx * self.sy / n
        vx, vy = self.sxx - self.sx.pow(2) / n, self.syy - self.sy.pow(2) / n
        den = (vx.clamp_min(0) * vy.clamp_min(0)).sqrt()
        ok = den > 1e-12 * (1 + self.sxx.abs() + self.syy.abs())
        return torch.where(ok, cov / den.clamp_min(1e-300), torch.nan).float()


def sample_edges(
    fl: FlowLayer,
    source: str,
    n: int,
    generator: torch.Generator,
    threshold: float | None = None,
    alive: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Up to n (target, top-1 source) pairs of random targets whose top-1 is an edge
    (score ≥ threshold; None: any score). alive (F,) bool restricts the targets."""
    has = torch.ones_like(fl.origin, dtype=torch.bool)
    if threshold is not None:
        has &= fl.score[source][:, 0] >= threshold
    if alive is not None:
        has &= alive
    cand = torch.nonzero(has).flatten()
    pick = cand[torch.randperm(len(cand), generator=generator)[:n]]
    return pick, fl.index[source][pick, 0]


def random_pairs(
    n: int, n_target: int, n_source: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """n uniform random (target, source) feature pairs."""
    return (torch.randint(n_target, (n,), generator=generator),
            torch.randint(n_source, (n,), generator=generator))  # fmt: skip
