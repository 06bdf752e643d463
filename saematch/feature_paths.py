"""Feature paths across layers (paper Sec. 3.2): composed adjacent permutations.

A feature i of layer s is followed through the adjacent matchings s -> s+1 -> ... by
composition, perm_AC = perm_BC[perm_AB]; the exact matching s -> L (one LAP between the two
SAEs) is the reference a composition is compared with (`agreement`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from saematch.matching import Permutation, feature_path

SELECT = ("first", "most_active", "random_active")


def perm_array(perm) -> np.ndarray:
    """A permutation (array, list or Permutation-like with .perm) as an int64 array (F,)."""
    return np.asarray(getattr(perm, "perm", perm), dtype=np.int64).reshape(-1)


def composed_perms(layers: list[int], adjacent: Mapping, start: int) -> dict[int, np.ndarray]:
    """{L: perm start -> L (F,)} for every layer L after `start`: perm_AC = perm_BC[perm_AB].

    layers: the set's layers in order; adjacent[t] maps t -> the next layer (Sec. 3.2).
    """
    if start not in layers:
        raise ValueError(f"start layer {start} is not in the SAE set's layers {layers}")
    if sorted(adjacent) != layers[:-1]:
        raise ValueError(f"{len(layers)} layers need adjacent perms from {layers[:-1]}")
    cur, out = None, {}
    for k in range(layers.index(start), len(layers) - 1):
        step = Permutation(perm_array(adjacent[layers[k]]))
        cur = step if cur is None else cur.compose(step)
        out[layers[k + 1]] = cur.perm
    return out


def layer_path(
    layers: list[int], adjacent: Mapping, start: int, feature: int, end: int | None = None
) -> list[tuple[int, int]]:
    """Path of one feature (Sec. 3.2): [(start, feature), (L, its image at L), ...] up to end."""
    k0 = layers.index(start)
    k1 = len(layers) - 1 if end is None else layers.index(end)
    perms = [Permutation(perm_array(adjacent[t])) for t in layers[k0:k1]]
    return list(zip(layers[k0 : k1 + 1], feature_path(perms, feature), strict=True))


def agreement(p, q) -> float:
    """Fraction of features i with p[i] == q[i]."""
    p, q = perm_array(p), perm_array(q)
    return float(np.mean(p == q))


def select_features(freq: np.ndarray, n: int, how: str, seed: int) -> list[int]:
    """N start features from their activation frequencies freq (F,): the first N, the N most
    active, or N seeded random active ones (`how`, one of SELECT)."""
    if how == "first":
        return list(range(min(n, freq.size)))
    alive = np.flatnonzero(freq > 0)
    if alive.size == 0:
        raise ValueError("no feature of the start layer fires on the batch; use select=first")
    if how == "most_active":
        order = alive[np.argsort(-freq[alive], kind="stable")]
        return [int(i) for i in order[:n]]
    if how == "random_active":
        rng = np.random.default_rng(seed)
        return sorted(int(i) for i in rng.choice(alive, size=min(n, alive.size), replace=False))
    raise ValueError(f"select must be one of {SELECT}, got {how!r}")
