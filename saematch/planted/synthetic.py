"""Synthetic SAE pairs with a planted matching (benchmarks and tests; no data needed)."""

from __future__ import annotations

import numpy as np
import torch

from saematch.sae import JumpReLUSAE


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic_pair(
    d_model: int = 64,
    width: int = 256,
    unmatched: float = 0.2,
    noise: float = 0.5,
    seed: int = 0,
) -> tuple[JumpReLUSAE, JumpReLUSAE, np.ndarray]:
    """SAEs A, B and the planted perm (A's i -> B's perm[i]); perm[i] = -1 where i has no partner.

    A has unit decoder directions, log-normal θ (so folded decoder rows vary in norm), an
    encoder close to its decoder and folded b_enc in [−0.5, 0]. B is a permuted copy with
    direction noise of relative size `noise`, θ jittered by ~10 % and b_enc by 0.1·noise,
    except a share `unmatched` of B's features is fresh.
    """
    rng = np.random.default_rng(seed)
    n, d = width, d_model
    theta = np.exp(rng.normal(-1.0, 0.6, n)).astype(np.float32)
    dirs = _unit_rows(rng, n, d)
    enc_dirs = dirs + 0.3 * _unit_rows(rng, n, d)

    def sae(dirs, enc_dirs, theta, frac, name):
        norm = np.exp(rng.normal(0.0, 0.1, (n, 1))).astype(np.float32)
        enc = enc_dirs / np.linalg.norm(enc_dirs, axis=1, keepdims=True) * 2.0 * theta[:, None]
        return JumpReLUSAE(
            W_enc=torch.from_numpy(np.ascontiguousarray(enc.T)),
            b_enc=torch.from_numpy((-0.5 * theta * frac).astype(np.float32)),
            W_dec=torch.from_numpy(dirs * norm),
            b_dec=torch.from_numpy(rng.normal(0, 0.1, d).astype(np.float32)),
            threshold=torch.from_numpy(theta),
            name=name,
        )

    frac = rng.random(n)  # folded b_enc = −frac / 2
    a = sae(dirs, enc_dirs, theta, frac, f"synthetic-A-{seed}")
    perm = rng.permutation(n)
    fresh = rng.random(n) < unmatched
    dirs_b, enc_b = np.empty_like(dirs), np.empty_like(enc_dirs)
    theta_b, frac_b = np.empty_like(theta), np.empty_like(frac)
    frac_b[perm] = np.clip(frac + 0.1 * noise * rng.standard_normal(n), 0, 1)
    dirs_b[perm] = dirs + noise * _unit_rows(rng, n, d)
    enc_b[perm] = enc_dirs + noise * _unit_rows(rng, n, d)
    theta_b[perm] = theta * np.exp(rng.normal(0, 0.1, n)).astype(np.float32)
    nf = int(fresh.sum())
    dirs_b[perm[fresh]] = _unit_rows(rng, nf, d)
    enc_b[perm[fresh]] = dirs_b[perm[fresh]] + 0.3 * _unit_rows(rng, nf, d)
    theta_b[perm[fresh]] = np.exp(rng.normal(-1.0, 0.6, nf)).astype(np.float32)
    frac_b[perm[fresh]] = rng.random(nf)
    dirs_b /= np.linalg.norm(dirs_b, axis=1, keepdims=True)
    b = sae(dirs_b, enc_b, theta_b, frac_b, f"synthetic-B-{seed}")
    planted = np.where(fresh, -1, perm).astype(np.int64)
    return a, b, planted
