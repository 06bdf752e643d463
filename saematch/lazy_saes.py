"""LazySAEs: a {layer: SAE} mapping that loads on access and holds only what fits a byte budget.

A full-size SAE set does not fit in memory at once: 26 Gemma Scope 16k SAEs are 7.9 GB in
float32 (W_enc + W_dec = 2 · 16384 · 2304 · 4 B = 302 MB each), and a folded copy of each
doubles it. The experiments walk a set pair by pair (t, t+1), so holding the most recently used
SAEs up to a budget (at least two, one pair) costs the same loads as holding all of them.

    saes = LazySAEs(range(26), lambda L: sae_set.load(L), max_bytes=2**30)
    folded = mapped(saes, lambda s: s.fold())     # folds on access, held under the same budget
    ms = match_layers(LayerSequence(saes, sorted(saes)))   # pair by pair, never all at once

With max_bytes=None everything loaded stays (a plain cache, as a dict would hold it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from saematch.sae import TENSOR_NAMES, JumpReLUSAE

MIN_HELD = 2  # one adjacent pair is always held, whatever the budget


def sae_bytes(sae: JumpReLUSAE) -> int:
    """Bytes of the SAE's five tensors (W_enc, W_dec dominate: 2 · d_model · F · itemsize)."""
    return sum(getattr(sae, n).nbytes for n in TENSOR_NAMES)


class LazySAEs(Mapping):
    """{layer: SAE} over `layers`, each built by `load(layer)` on first access and kept while the
    held SAEs fit `max_bytes` (least recently used dropped first; at least MIN_HELD kept).

    A layer dropped and asked for again is loaded again: a new object with the same content.
    """

    def __init__(
        self,
        layers: Iterable[int],
        load: Callable[[int], JumpReLUSAE],
        max_bytes: int | None = None,
    ) -> None:
        self._layers = [int(L) for L in layers]
        self._load = load
        self.max_bytes = max_bytes
        self._held: OrderedDict[int, JumpReLUSAE] = OrderedDict()
        self.loads = 0  # how many times `load` ran (a measure of re-reads)

    def __getitem__(self, layer: int) -> JumpReLUSAE:
        if layer not in self._layers:
            raise KeyError(f"layer {layer} is not in this SAE set; it has {self._layers}")
        if layer in self._held:
            self._held.move_to_end(layer)
            return self._held[layer]
        sae = self._load(layer)
        self.loads += 1
        self._held[layer] = sae
        self._evict()
        return sae

    def _evict(self) -> None:
        """Drop the least recently used SAEs while the held ones exceed max_bytes."""
        if self.max_bytes is None:
            return
        while len(self._held) > MIN_HELD and self.held_bytes > self.max_bytes:
            self._held.popitem(last=False)

    @property
    def held_bytes(self) -> int:
        """Bytes of the SAEs held now."""
        return sum(sae_bytes(s) for s in self._held.values())

    def __iter__(self) -> Iterator[int]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __contains__(self, layer: object) -> bool:
        return layer in self._layers

    def __repr__(self) -> str:
        held = list(self._held)
        return f"LazySAEs(layers={self._layers}, held={held}, max_bytes={self.max_bytes})"


def mapped(saes: Mapping, fn: Callable[[JumpReLUSAE], JumpReLUSAE]) -> Mapping:
    """{L: fn(saes[L])}, computed on access: lazily, under saes' budget, for a LazySAEs; for a
    plain dict (everything already in memory) a dict, as `{L: fn(s) for L, s in saes.items()}`."""
    if isinstance(saes, LazySAEs):
        return LazySAEs(list(saes), lambda L: fn(saes[L]), max_bytes=saes.max_bytes)
    return {L: fn(s) for L, s in saes.items()}


class LayerSequence(Sequence):
    """saes[layers[i]] by position i, loaded on access: what match_layers walks pair by pair."""

    def __init__(self, saes: Mapping, layers: Sequence[int]) -> None:
        self._saes, self._layers = saes, list(layers)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LayerSequence(self._saes, self._layers[i])
        return self._saes[self._layers[i]]

    def __len__(self) -> int:
        return len(self._layers)
