"""Metrics of docs/method.md §5: explained variance, matching score, quantile ablation, judge
scores.

Masks select the tokens that count: pass `TokenBatch.metric_mask` so BOS and padding never
enter a metric. Activations are "active" when strictly positive (JumpReLU output > 0, which
folding does not change since θ > 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from saematch.sae import JumpReLUSAE

JUDGE_LABELS = (1, 2, 3)  # 1 DIFFERENT, 2 MAYBE, 3 SAME (App. C)


def _rows(x: Tensor, mask: Tensor | None) -> Tensor:
    """x (..., d) -> (n, d): flatten the token dims and keep rows where mask (...) is True."""
    x = torch.as_tensor(x)
    flat = x.reshape(-1, x.shape[-1])
    if mask is None:
        return flat
    mask = torch.as_tensor(mask, device=x.device).to(torch.bool)
    if tuple(mask.shape) != tuple(x.shape[:-1]):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)} but activations have token dims "
            f"{tuple(x.shape[:-1])}; the mask must cover every token (e.g. TokenBatch.metric_mask)."
        )
    return flat[mask.reshape(-1)]


def explained_variance(x_hat: Tensor, x: Tensor, mask: Tensor | None = None) -> float:
    """Fraction of x's variance that x_hat explains, over the (masked) tokens.

    EV = 1 − Σ_n ‖x̂_n − x_n‖² / Σ_n ‖x_n − μ‖²,  μ = mean_n x_n (per dimension);
    x, x_hat (..., d), mask (...) bool. Computed in float64. 1 for x̂ = x, 0 for x̂ = μ.
    """
    x_hat, x = torch.as_tensor(x_hat), torch.as_tensor(x)
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat has shape {tuple(x_hat.shape)} but x has {tuple(x.shape)}")
    xs = _rows(x, mask).double()  # (n, d)
    xh = _rows(x_hat.to(x.device), mask).double()
    if xs.shape[0] == 0:
        raise ValueError("no tokens selected: the mask is all False")
    resid = (xh - xs).pow(2).sum()
    total = (xs - xs.mean(0)).pow(2).sum()
    if total == 0:
        raise ValueError("x has zero variance over the selected tokens; EV is undefined")
    return float(1.0 - resid / total)


def active(sae: JumpReLUSAE, x: Tensor) -> Tensor:
    """Bool (n, F): which features of `sae` fire on the rows x (n, d) (f > 0, fold-invariant)."""
    with torch.inference_mode():
        return sae.encode(x.to(sae.dtype)) > 0


class MatchingScoreAccumulator:
    """Streaming matching score (Fig. 7): feed token chunks with .update, read .result().

    For perm[i] = j (feature i of SAE A ↔ feature j of SAE B), counts per feature i
    both_i = #tokens(f_A,i > 0 ∧ f_B,perm[i] > 0) and act_i = #tokens(f_A,i > 0).
    """

    def __init__(self, perm) -> None:
        self.perm = torch.as_tensor(np.asarray(perm), dtype=torch.long)  # (F,)
        if self.perm.ndim != 1:
            raise ValueError(f"perm must be 1-D (F,), got shape {tuple(self.perm.shape)}")
        F = self.perm.numel()
        self.both = torch.zeros(F, dtype=torch.long)  # (F,)
        self.active = torch.zeros(F, dtype=torch.long)  # (F,)

    def update(self, f_a: Tensor, f_b: Tensor, mask: Tensor | None = None) -> None:
        """Add tokens: f_a, f_b (..., F) activations of SAE A and B, mask (...) bool."""
        f_a, f_b = torch.as_tensor(f_a), torch.as_tensor(f_b)
        F = self.perm.numel()
        if f_a.shape[-1] != F or f_b.shape != f_a.shape:
            raise ValueError(
                f"f_a {tuple(f_a.shape)} and f_b {tuple(f_b.shape)} must have equal shapes "
                f"ending in F = {F} (the length of perm)"
            )
        a = _rows(f_a, mask) > 0  # (n, F)
        b = (
            _rows(f_b.to(f_a.device), mask)[:, self.perm.to(f_a.device)] > 0
        )  # b[:, i] = B's perm[i]
        self.both += (a & b).sum(0).cpu()
        self.active += a.sum(0).cpu()

    def result(self) -> tuple[float, np.ndarray]:
        """(Σ_i both_i / Σ_i act_i, per-feature both_i / act_i with NaN where act_i = 0)."""
        both, act = self.both.numpy(), self.active.numpy()
        total = int(act.sum())
        score = float(both.sum() / total) if total else math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(act > 0, both / np.maximum(act, 1), np.nan)
        return score, per


def matching_score(
    f_a: Tensor, f_b: Tensor, perm, mask: Tensor | None = None
) -> tuple[float, np.ndarray]:
    """Matching score Σ_i #(f_A,i > 0 ∧ f_B,perm[i] > 0) / Σ_i #(f_A,i > 0) over masked tokens.

    f_a, f_b (..., F); returns (score, per-feature ratio (F,), NaN for never-active features).
    For token sets too big for memory use MatchingScoreAccumulator.
    """
    acc = MatchingScoreAccumulator(perm)
    acc.update(f_a, f_b, mask)
    return acc.result()


def below_quantile(pair_mse, q: float) -> np.ndarray:
    """Bool (F,): the ⌊q·F⌋ matched pairs of smallest MSE ("below quantile q"), ties by index.

    q = 0 selects none and q = 1 selects all; rank-based so the count is exact.
    """
    mse = np.asarray(pair_mse, dtype=np.float64).reshape(-1)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be in [0, 1], got {q}")
    if np.isnan(mse).any():
        raise ValueError(f"pair_mse has NaN at index {int(np.isnan(mse).argmax())}")
    k = math.floor(q * mse.size + 1e-9)
    out = np.zeros(mse.size, dtype=bool)
    out[np.argsort(mse, kind="stable")[:k]] = True
    return out


def quantile_mix_decode(
    f_prev: Tensor, perm, pair_mse, sae_prev: JumpReLUSAE, sae_cur: JumpReLUSAE, q: float
) -> Tensor:
    """Quantile ablation (App. B): ĥ = W_dec^(t−1) f⁺_q + W_dec^(t) P f⁻_q + b_dec^(t).

    f_prev (..., F): features of SAE t−1 (original index i, from sae_prev.encode).
    perm (F,): t−1 → t, feature i goes to slot perm[i] of SAE t.
    pair_mse (F,): MSE of pair (i, perm[i]), indexed by the SAE t−1 feature i.
    f⁻_q = features with pair_mse below quantile q (see below_quantile), decoded by
    W_dec^(t) row perm[i]; f⁺_q = the rest, decoded by W_dec^(t−1) row i. Pass the SAEs in
    the form the matching used (folded for fold=true). q = 1 gives sae_cur.decode(P f),
    q = 0 gives f @ W_dec^(t−1) + b_dec^(t). Returns (..., d_model).
    """
    f = torch.as_tensor(f_prev).to(sae_cur.dtype)
    perm_t = torch.as_tensor(np.asarray(perm), dtype=torch.long, device=f.device)
    F = sae_prev.width
    if f.shape[-1] != F or perm_t.shape != (F,) or sae_cur.width != F:
        raise ValueError(
            f"f_prev (..., {f.shape[-1]}), perm {tuple(perm_t.shape)}, sae_prev width {F} and "
            f"sae_cur width {sae_cur.width} must all agree"
        )
    low = torch.as_tensor(below_quantile(pair_mse, q), device=f.device)  # (F,)
    if low.numel() != F:
        raise ValueError(f"pair_mse has {low.numel()} entries, expected F = {F}")
    f_minus = f * low  # (..., F) decoded in layer t's basis
    f_plus = f * ~low  # (..., F) decoded with the previous decoder
    W_cur_aligned = sae_cur.W_dec[perm_t]  # (F, d): row i is W_dec^(t)[perm[i]], i.e. uses P f
    return f_plus @ sae_prev.W_dec + f_minus @ W_cur_aligned + sae_cur.b_dec  # eq. 6


def _label(x) -> int | None:
    """A judge label 1/2/3 from an int or a digit string; None when unparseable."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, str):
        x = x.strip()
        if not x.isdigit():
            return None
    try:
        v = int(x)
    except (TypeError, ValueError):
        return None
    if isinstance(x, float) and x != v:
        return None
    return v if v in JUDGE_LABELS else None


def label_counts(labels: Iterable) -> dict[int, int]:
    """Counts of judge labels {1: DIFFERENT, 2: MAYBE, 3: SAME}; None/unparseable are ignored."""
    counts = dict.fromkeys(JUDGE_LABELS, 0)
    for x in labels:
        v = _label(x)
        if v is not None:
            counts[v] += 1
    return counts


def gpt_score(labels: Iterable) -> float:
    """GPTScore: mean of the valid labels (1–3), ignoring None/unparseable; NaN if none."""
    counts = label_counts(labels)
    n = sum(counts.values())
    return sum(k * c for k, c in counts.items()) / n if n else math.nan


def quantiles(values, qs) -> np.ndarray:
    """Quantiles qs of values, ignoring NaN (linear interpolation, as np.nanquantile)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return np.nanquantile(v, np.asarray(qs, dtype=np.float64))


def describe(values) -> dict[str, float]:
    """Summary of values ignoring NaN: n, mean, std, min, q25, median, q75, max."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {
            "n": 0,
            **dict.fromkeys(("mean", "std", "min", "q25", "median", "q75", "max"), math.nan),
        }
    q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(q[0]),
        "q25": float(q[1]),
        "median": float(q[2]),
        "q75": float(q[3]),
        "max": float(q[4]),
    }
