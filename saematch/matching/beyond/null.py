"""The null model behind `unmatched=auto`: how similar is a feature to a dictionary by chance?

Similarity of a pair (scale-free, from the matching cost itself):

    κ_ij = 1 − c_ij / (r_i + s_j) = 2 z_i·z'_j / (‖z_i‖² + ‖z'_j‖²)   ∈ [−1, 1]

(1: identical vectors; 0: orthogonal; it also falls when the norms differ).

Null: B's dictionary with the same norms and the same shape (all its pairwise inner products)
but no relation to A: B rotated by a uniformly random orthogonal Q of R^d, the same Q for
every d-dimensional part (decoder and encoder, so a feature's encoder/decoder relation is
kept; b_enc, a scalar per feature, is not rotated). The null similarity of feature i is its
best chance similarity, max_j κ(z_i, Q z'_j); the same for B's features against a rotated A.
κ* = the (1 − α) quantile of these values over a random sample of both sides' live features:
under the null, a share α of features find a partner at least that similar.

`unmatched=auto` sets ρ = 1 − κ*, i.e. reject costs τ_i = (1 − κ*) ‖z_i‖²: a pair is kept
only when it is more similar than all but α of chance pairings (partial.py). α = 0.05.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

NULL_ALPHA = 0.05
NULL_SAMPLE = 1024  # features per side: the quantile's standard error is ~0.005 at α = 0.05


def feature_parts(d_model: int, mode: str) -> list[tuple[int, int]]:
    """The d_model-wide blocks of the feature vector z (rotated together by the null)."""
    return [(0, d_model)] if mode != "both" else [(0, d_model), (d_model, 2 * d_model)]


@lru_cache(maxsize=4)
def random_rotation(d: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal (d, d) float32 matrix (QR of a Gaussian, signs fixed).

    torch's QR: 1.9 s at d = 2304 where numpy's took 24 s on the shared 2-core machine;
    cached, so the layer pairs of one run share it.
    """
    g = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    return (q * torch.sign(torch.diagonal(r))).numpy().astype(np.float32)


def _rotated(x: np.ndarray, parts: list[tuple[int, int]], q: np.ndarray) -> np.ndarray:
    """Copy of augmented feature rows x with each part x[:, a:b] (width d) rotated by q."""
    out = x.copy()
    for a, b in parts:
        out[:, a:b] = x[:, a:b] @ q
    return out


def _best_kappa(
    x_side: np.ndarray, y_side: np.ndarray, r: np.ndarray, s: np.ndarray, chunk: int = 128
) -> np.ndarray:
    """max_j κ(x_i, y_j) for each row of x_side (augmented a-side rows, b-side columns).

    In row chunks: about 28 · chunk · n bytes at a time, whatever the sample size.
    """
    out = np.empty(len(x_side))
    for s0 in range(0, len(x_side), chunk):
        c = (x_side[s0 : s0 + chunk] @ y_side.T).astype(np.float64)  # (chunk, n) costs
        den = r[s0 : s0 + chunk, None] + s[None, :]
        kap = np.where(den > 0, 1.0 - c / np.where(den > 0, den, 1.0), -1.0)
        out[s0 : s0 + chunk] = kap.max(axis=1)
    return out


def null_kappa(
    xa: np.ndarray,
    xb: np.ndarray,
    parts: list[tuple[int, int]],
    alpha: float = NULL_ALPHA,
    sample: int = NULL_SAMPLE,
    seed: int = 0,
) -> dict:
    """κ* of the rotation null (module doc) and its sample; parts = the d-wide blocks of z.

    Cost: two (sample × n × D) GEMMs, a small share of the matching's n² D.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"the null quantile alpha must be in (0, 1), got {alpha}")
    d = parts[0][1] - parts[0][0]
    rng = np.random.default_rng(seed)
    q = random_rotation(d, seed)
    D = xa.shape[1] - 2
    r, s = xa[:, D].astype(np.float64), xb[:, D + 1].astype(np.float64)
    live_a, live_b = np.flatnonzero(r > 0), np.flatnonzero(s > 0)
    ia = rng.choice(live_a, min(sample, len(live_a)), replace=False)
    jb = rng.choice(live_b, min(sample, len(live_b)), replace=False)
    # κ(z_i, Q z'_j) = κ(Qᵀ z_i, z'_j): rotate the sampled rows, not the whole other side
    ka = _best_kappa(_rotated(xa[ia], parts, q.T), xb, r[ia], s)
    kb = _best_kappa(_rotated(xb[jb], parts, q.T), xa, s[jb], r)  # c is symmetric in a ↔ b
    # (the b-side vector [−2z', 1, s] times the a-side [z, r, 1] is the same c_ij)
    vals = np.concatenate([ka, kb])
    kappa = float(np.quantile(vals, 1 - alpha))
    return {
        "kappa": kappa,
        "rho": 1.0 - kappa,
        "alpha": alpha,
        "sample": int(len(vals)),
        "null_median": float(np.median(vals)),
        "seed": seed,
    }
