"""Feature permutations between SAEs: compose, invert, apply, save (docs/method.md §3, Sec. 3.2)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from saematch.sae import JumpReLUSAE


class Permutation:
    """A bijection perm (F,): feature i of SAE A matches feature perm[i] of SAE B."""

    def __init__(self, perm) -> None:
        p = np.asarray(perm.detach().cpu() if isinstance(perm, torch.Tensor) else perm)
        if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
            raise ValueError(f"a permutation is a 1-D integer array, got {p.dtype} {p.shape}")
        n = len(p)
        if n and (p.min() < 0 or p.max() >= n):
            raise ValueError(f"permutation values must lie in [0, {n}), got [{p.min()}, {p.max()}]")
        counts = np.bincount(p, minlength=n) if n else np.zeros(0)
        if n and counts.max() != 1:
            j = int(np.argmax(counts))
            raise ValueError(f"not a bijection: target {j} is hit {counts[j]} times")
        self.perm = p.astype(np.int64)

    @classmethod
    def identity(cls, n: int) -> Permutation:
        """The identity on n features ("vanilla" matching)."""
        return cls(np.arange(n))

    def __len__(self) -> int:
        return len(self.perm)

    def __eq__(self, other) -> bool:
        return isinstance(other, Permutation) and np.array_equal(self.perm, other.perm)

    def __repr__(self) -> str:
        return f"Permutation(n={len(self)})"

    def _check_len(self, other: Permutation) -> None:
        if len(other) != len(self):
            raise ValueError(f"permutations differ in width: {len(self)} vs {len(other)}")

    def compose(self, other: Permutation) -> Permutation:
        """self: A -> B, other: B -> C; returns A -> C, perm_AC = perm_BC[perm_AB]."""
        self._check_len(other)
        return Permutation(other.perm[self.perm])

    def inverse(self) -> Permutation:
        """B -> A: inv[perm[i]] = i."""
        inv = np.empty_like(self.perm)
        inv[self.perm] = np.arange(len(self))
        return Permutation(inv)

    def apply_to_activations(self, f_a):
        """f_A (..., F) -> f̂_B (..., F) with f̂_B[..., perm[i]] = f_A[..., i] (numpy or torch)."""
        if f_a.shape[-1] != len(self):
            raise ValueError(f"activations have {f_a.shape[-1]} features, permutation {len(self)}")
        if isinstance(f_a, torch.Tensor):
            out = torch.empty_like(f_a)
            out[..., torch.as_tensor(self.perm, device=f_a.device)] = f_a
            return out
        out = np.empty_like(f_a)
        out[..., self.perm] = f_a
        return out

    def apply_to_sae(self, sae: JumpReLUSAE) -> JumpReLUSAE:
        """A's SAE with features reordered into B's order (new feature perm[i] = old i)."""
        return sae.permute_features(self.perm)

    def save(self, path: str | Path) -> None:
        """Write as .npy (int64, no pickle)."""
        np.save(Path(path), self.perm, allow_pickle=False)

    @classmethod
    def load(cls, path: str | Path) -> Permutation:
        """Read a permutation written by save (validated as a bijection)."""
        return cls(np.load(Path(path), allow_pickle=False))


def compose_chain(perms: Sequence[Permutation]) -> Permutation:
    """perm_{s→t} from the adjacent permutations s→s+1, ..., t−1→t (Sec. 3.2)."""
    if not perms:
        raise ValueError("compose_chain needs at least one permutation")
    out = perms[0]
    for p in perms[1:]:
        out = out.compose(p)
    return out


def feature_path(perms: Sequence[Permutation], i: int) -> list[int]:
    """The path of feature i: [i, perm_1[i], perm_2[perm_1[i]], ...] through the layers."""
    path = [int(i)]
    for p in perms:
        path.append(int(p.perm[path[-1]]))
    return path
