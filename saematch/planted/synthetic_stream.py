"""synthetic_pair's augmented features at any width, generated in row chunks (1M × 2304 fits).

`synthetic_features(d_model, width, mode, ...)` returns (xa, xb, planted): exactly
`augmented_features(A, mode, "a", fold=True)`, the same of B, and the planted perm of
`synthetic_pair(d_model, width, ...)` (same seed, same values bit for bit), without ever
holding the SAEs or any other n × d matrix than the two outputs.

How. synthetic_pair draws everything from one numpy Generator, in order: θ, A's directions,
their encoder noise, ..., B's direction noise, the fresh rows (its body lists the draws).
Normals come from a ziggurat with rejections, so where a later matrix starts in the stream is
only known by drawing the earlier ones. Pass 1 walks the stream once in chunks, keeping the
O(n) draws and the generator's state where each n × d matrix starts (values discarded);
pass 2 replays each matrix from its state, one row chunk at a time and the matrices in
parallel threads (numpy releases the GIL while it fills), and builds A's rows of the chunk
and B's rows perm[chunk] (scattered: B is a permuted copy of A). Costs: the draws twice
(about 4.4 n·d normals each time) and per chunk a few (chunk, d) float32 temporaries.

Memory: the two outputs, 2 · n · (D + 2) · 4 bytes (decoder at n = 2^20, d 2304: 19.3 GB),
plus O(n) arrays and the chunks in flight, each ≈ 12 · chunk · d · 4 bytes (0.45 GB at 4096
rows, d 2304; `threads` of them at once: 3.6 GB at 8).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from saematch.matching.cost import MODES, check_mode, feature_dim, norm_slots

F32 = np.float32


def _state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _at(state: dict) -> np.random.Generator:
    """A generator positioned at a saved state (the stream continues from there)."""
    g = np.random.default_rng()
    g.bit_generator.state = state
    return g


def _skip(rng: np.random.Generator, rows: int, d: int, chunk: int) -> None:
    """Advance rng past `rows` × d float32 normals, `chunk` rows at a time (values dropped)."""
    for r0 in range(0, rows, chunk):
        rng.standard_normal((min(chunk, rows - r0), d), dtype=F32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm, in place (synthetic._unit_rows' arithmetic)."""
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class _Plan:
    """Pass 1: the O(n) draws of synthetic_pair and where each n × d matrix starts."""

    def __init__(self, d: int, n: int, unmatched: float, noise: float, seed: int, chunk: int):
        rng = np.random.default_rng(seed)
        self.theta = np.exp(rng.normal(-1.0, 0.6, n)).astype(F32)
        self.dirs = _state(rng)  # A's directions (n, d)
        _skip(rng, n, d, chunk)
        self.enc_noise = _state(rng)  # A's encoder = dirs + 0.3 · unit rows (n, d)
        _skip(rng, n, d, chunk)
        rng.random(n)  # frac (b_enc only: not in the cost)
        self.norm_a = np.exp(rng.normal(0.0, 0.1, (n, 1))).astype(F32)
        rng.normal(0, 0.1, d)  # A's b_dec
        self.perm = rng.permutation(n)
        self.fresh = rng.random(n) < unmatched
        rng.standard_normal(n)  # frac_b jitter
        self.dirs_noise = _state(rng)  # B's directions = dirs + noise · unit rows (n, d)
        _skip(rng, n, d, chunk)
        self.enc_b_noise = _state(rng)  # B's encoder = enc_dirs + noise · unit rows (n, d)
        _skip(rng, n, d, chunk)
        jitter = np.exp(rng.normal(0, 0.1, n)).astype(F32)
        nf = int(self.fresh.sum())
        self.fresh_dirs = _state(rng)  # fresh B rows (nf, d), in the order of A's index
        _skip(rng, nf, d, chunk)
        self.fresh_enc = _state(rng)  # their encoder noise (nf, d)
        _skip(rng, nf, d, chunk)
        theta_b = np.empty_like(self.theta)
        theta_b[self.perm] = self.theta * jitter
        theta_b[self.perm[self.fresh]] = np.exp(rng.normal(-1.0, 0.6, nf)).astype(F32)
        rng.random(nf)  # frac of the fresh rows
        self.theta_b = theta_b  # indexed by B's row
        self.norm_b = np.exp(rng.normal(0.0, 0.1, (n, 1))).astype(F32)  # by B's row
        self.noise = noise


def _features(dec, enc, th, d: int, mode: str, side: str) -> np.ndarray:
    """augmented_features(fold=True) of rows with decoder rows `dec` and encoder columns `enc`
    (both (c, d)), thresholds th (c,): the same torch operations, so the same roundings."""
    D = feature_dim(d, mode)
    out = torch.empty((len(th), D + 2), dtype=torch.float32)
    tht = torch.from_numpy(th)
    scale = 1.0 / np.sqrt(d)
    col = 0
    if mode in ("decoder", "both"):
        torch.mul(torch.from_numpy(dec) * tht[:, None], scale, out=out[:, col : col + d])
        col += d
    if mode in ("encoder", "both"):
        torch.mul(torch.from_numpy(enc) / tht[:, None], scale, out=out[:, col : col + d])
    return norm_slots(out, D, side)  # cost.py's layout, the same float64 norms


def synthetic_features(
    d_model: int = 64,
    width: int = 256,
    mode: str = "decoder",
    unmatched: float = 0.2,
    noise: float = 0.5,
    seed: int = 0,
    chunk: int = 4096,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xa, xb, planted): the folded augmented features (n, D + 2) float32 of
    synthetic_pair(d_model, width, unmatched, noise, seed)'s A and B for `mode` (bias_weight 0)
    and its planted perm, equal to them bit for bit, generated `chunk` rows at a time (module
    doc); `threads` chunks are built at once (None: the CPU count, at most 8), while the
    matrices' streams are replayed in parallel."""
    check_mode(mode, MODES)
    n, d = width, d_model
    if n < 1 or d < 1 or chunk < 1:
        raise ValueError(f"synthetic_features: width, d_model and chunk must be ≥ 1 ({n}, {d})")
    threads = threads or min(8, os.cpu_count() or 1)
    plan = _Plan(d, n, unmatched, noise, seed, chunk)
    D = feature_dim(d, mode)
    xa, xb = np.empty((n, D + 2), F32), np.empty((n, D + 2), F32)
    gens = {
        k: _at(getattr(plan, k))
        for k in ("dirs", "enc_noise", "dirs_noise", "enc_b_noise", "fresh_dirs", "fresh_enc")
    }
    # draws: the matrices' streams in parallel, chunks in order; each chunk's arithmetic in a
    # second pool (chunks write disjoint rows of xa and of xb), at most `threads` in flight
    threads = max(1, threads)
    with ThreadPoolExecutor(6) as drawing, ThreadPoolExecutor(threads) as building:
        busy = []
        for r0 in range(0, n, chunk):
            r1 = min(n, r0 + chunk)
            nf = int(plan.fresh[r0:r1].sum())
            sizes = {k: r1 - r0 for k in ("dirs", "enc_noise", "dirs_noise", "enc_b_noise")}
            sizes |= {"fresh_dirs": nf, "fresh_enc": nf}
            draw = lambda k, sizes=sizes: gens[k].standard_normal((sizes[k], d), dtype=F32)  # noqa: E731
            draws = dict(zip(sizes, drawing.map(draw, sizes), strict=True))
            busy.append(building.submit(_chunk, plan, draws, r0, r1, d, mode, xa, xb))
            while len(busy) > threads:
                busy.pop(0).result()
        for job in busy:
            job.result()
    return xa, xb, np.where(plan.fresh, -1, plan.perm).astype(np.int64)


def _chunk(plan: _Plan, w: dict, r0: int, r1: int, d: int, mode: str, xa, xb) -> None:
    """A's rows r0:r1 and B's rows perm[r0:r1] from this chunk's draws `w` (synthetic_pair's
    arithmetic, row for row)."""
    dirs = _unit(w["dirs"])
    enc_dirs = dirs + 0.3 * _unit(w["enc_noise"])
    theta = plan.theta[r0:r1]
    enc_a = enc_dirs / np.linalg.norm(enc_dirs, axis=1, keepdims=True) * 2.0 * theta[:, None]
    xa[r0:r1] = _features(dirs * plan.norm_a[r0:r1], enc_a, theta, d, mode, "a")
    # B's rows perm[r0:r1]: a noisy copy, or (fresh) new directions
    fr = plan.fresh[r0:r1]
    dirs_b = dirs + plan.noise * _unit(w["dirs_noise"])
    enc_b = enc_dirs + plan.noise * _unit(w["enc_b_noise"])
    dirs_b[fr] = _unit(w["fresh_dirs"])
    enc_b[fr] = dirs_b[fr] + 0.3 * _unit(w["fresh_enc"])
    dirs_b /= np.linalg.norm(dirs_b, axis=1, keepdims=True)
    rows_b = plan.perm[r0:r1]
    th_b = plan.theta_b[rows_b]
    enc_b = enc_b / np.linalg.norm(enc_b, axis=1, keepdims=True) * 2.0 * th_b[:, None]
    xb[rows_b] = _features(dirs_b * plan.norm_b[rows_b], enc_b, th_b, d, mode, "b")
