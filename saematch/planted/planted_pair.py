"""A synthetic SAE pair with known fates: features persist, die, split in two, or are born.

Data-free stand-in for the planted world (docs/method.md §9) at the level of weights, for validating
partial matching, confidence and split detection. Layer t (SAE A) has n unit directions u_i
and thresholds θ_i; each feature independently

* dies (probability `died`): no successor in B;
* splits (probability `split`): two children u_i ± tan(φ) w_i (w_i ⊥ u_i random), each with
  direction noise, so cos(child, parent) ≈ cos φ;
* persists otherwise: one child u_i + noise·ξ (ξ a random unit vector), renormalised.

B's remaining slots are born features (fresh random directions). B's features are shuffled.
Encoders are the decoder direction plus 0.3 random (as in synthetic.py), scaled by 2θ;
b_enc = −θ·U(0, ½); children jitter θ by ~10 %.
"""

from __future__ import annotations

import numpy as np
import torch

from saematch.sae import JumpReLUSAE


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _sae(dirs, theta, frac, rng, name) -> JumpReLUSAE:
    n, d = dirs.shape
    enc = _unit(dirs + 0.3 * _unit(rng.standard_normal((n, d)))) * 2.0 * theta[:, None]
    return JumpReLUSAE(
        W_enc=torch.from_numpy(np.ascontiguousarray(enc.T, dtype=np.float32)),
        b_enc=torch.from_numpy((-0.5 * theta * frac).astype(np.float32)),
        W_dec=torch.from_numpy(dirs.astype(np.float32)),
        b_dec=torch.zeros(d),
        threshold=torch.from_numpy(theta.astype(np.float32)),
        name=name,
    )


def planted_pair(
    d_model: int = 128,
    width: int = 1024,
    died: float = 0.2,
    split: float = 0.05,
    noise: float = 0.5,
    angle_deg: float = 20.0,
    seed: int = 0,
) -> tuple[JumpReLUSAE, JumpReLUSAE, np.ndarray]:
    """(A, B, successors (width, 2) int64): B's children of each A feature, −1 = none."""
    if not 0 <= split <= died < 1:
        raise ValueError(f"need 0 ≤ split ≤ died < 1 (B keeps A's width), got {split}, {died}")
    rng = np.random.default_rng(seed)
    n, d = width, d_model
    u = _unit(rng.standard_normal((n, d)))
    theta = np.exp(rng.normal(-1.0, 0.6, n))
    frac = rng.random(n)
    fate = rng.random(n)
    dies, splits = fate < died, (fate >= died) & (fate < died + split)
    dirs, th, fr, parent = [], [], [], []

    def child(i, direction):
        dirs.append(_unit(direction[None] + noise * _unit(rng.standard_normal((1, d)))))
        th.append(theta[i] * np.exp(rng.normal(0, 0.1)))
        fr.append(np.clip(frac[i] + 0.05 * noise * rng.standard_normal(), 0, 1))
        parent.append(i)

    for i in np.flatnonzero(~dies):
        if splits[i]:
            w = rng.standard_normal(d)
            w -= (w @ u[i]) * u[i]
            w = np.tan(np.radians(angle_deg)) * w / np.linalg.norm(w)
            child(i, u[i] + w)
            child(i, u[i] - w)
        else:
            child(i, u[i])
    n_born = n - len(parent)
    dirs_b = np.concatenate([np.concatenate(dirs), _unit(rng.standard_normal((n_born, d)))])
    theta_b = np.concatenate([np.asarray(th), np.exp(rng.normal(-1.0, 0.6, n_born))])
    frac_b = np.concatenate([np.asarray(fr), rng.random(n_born)])
    parent_b = np.concatenate([np.asarray(parent, dtype=np.int64), np.full(n_born, -1)])
    order = rng.permutation(n)  # B's feature j is built feature order[j]
    a = _sae(u, theta, frac, rng, f"planted-A-{seed}")
    b = _sae(dirs_b[order], theta_b[order], frac_b[order], rng, f"planted-B-{seed}")
    successors = np.full((n, 2), -1, dtype=np.int64)
    for j, p in enumerate(parent_b[order]):
        if p >= 0:
            successors[p, 1 if successors[p, 0] >= 0 else 0] = j
    return a, b, successors
