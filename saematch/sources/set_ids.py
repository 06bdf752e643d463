"""The published SAE ids of docs/method.md §7's sets, as plain data (no hub queries).

Gemma Scope ids (which average_l0 exist per layer, what `canonical` points to) are a snapshot
of the sae-lens 6.54.12 registry (`pretrained_saes.yaml`, releases `gemma-scope-2b-pt-res` and
`gemma-scope-2b-pt-res-canonical`).
"""

from __future__ import annotations

from collections.abc import Iterable

from saematch.sources.llama_scope import llama_scope_folder

GEMMA2_2B_LAYERS = 26
LLAMA31_8B_LAYERS = 32

# Paper Table 1: average_l0 of the width-16k residual SAE at layers 0..25.
GEMMA_SCOPE_PAPER_L0 = (102, 108, 141, 59, 125, 68, 70, 69, 71, 73, 77, 80, 82,
                        83, 83, 78, 78, 77, 74, 73, 71, 70, 72, 75, 73, 116)  # fmt: skip
# What `layer_{L}/width_16k/canonical` resolves to in google/gemma-scope-2b-pt-res.
GEMMA_SCOPE_CANONICAL_L0 = (105, 102, 141, 59, 124, 68, 70, 69, 71, 73, 77, 80, 82,
                            84, 84, 78, 78, 77, 74, 73, 71, 70, 72, 75, 73, 116)  # fmt: skip
# Every published width-16k residual SAE, layer -> average_l0 values (sorted).
GEMMA_SCOPE_PUBLISHED_L0 = {
    0: (13, 25, 46, 105, 226), 1: (10, 20, 40, 102, 250), 2: (13, 24, 53, 141, 142, 304),
    3: (14, 28, 59, 142, 315), 4: (17, 31, 60, 124, 125, 281), 5: (18, 34, 68, 143, 309),
    6: (19, 36, 70, 144, 301), 7: (20, 36, 69, 137, 285), 8: (20, 37, 71, 142, 301),
    9: (21, 37, 73, 151, 340), 10: (21, 39, 77, 166, 395), 11: (22, 41, 80, 168, 393),
    12: (22, 41, 82, 176, 445), 13: (23, 43, 83, 84, 173, 403), 14: (23, 43, 83, 84, 173, 388),
    15: (23, 41, 78, 150, 308), 16: (23, 42, 78, 154, 335), 17: (23, 42, 77, 150, 304),
    18: (23, 40, 74, 138, 280), 19: (23, 40, 73, 137, 279), 20: (22, 38, 71, 139, 294),
    21: (22, 38, 70, 139, 301), 22: (21, 38, 72, 147, 349), 23: (21, 38, 74, 75, 157, 404),
    24: (20, 38, 73, 158, 457), 25: (16, 28, 55, 116, 285),
}  # fmt: skip
SWEEP_LAYERS = (20, 21)
Layers = int | str | Iterable[int] | None  # see parse_layers


def _gemma_id(layer: int, l0: int) -> str:
    return f"layer_{layer}/width_16k/average_l0_{l0}"


# Layers whose Table-1 SAE is not published: use the canonical one and say so (docs/method.md §7).
GEMMA_SCOPE_PAPER_FALLBACKS = {
    L: (
        _gemma_id(L, GEMMA_SCOPE_CANONICAL_L0[L]),
        f"paper Table 1 lists average_l0_{GEMMA_SCOPE_PAPER_L0[L]} at layer {L}, which is not "
        f"published; using the canonical SAE average_l0_{GEMMA_SCOPE_CANONICAL_L0[L]} instead",
    )
    for L in (0, 1)
}


def parse_layers(layers: Layers, n_layers: int | None = None) -> tuple[int, ...]:
    """Layers from None (all n_layers), an int, an iterable, "a-b" (inclusive) or "a:b" (range)."""
    if layers is None:
        if n_layers is None:
            raise ValueError("layers=None means all layers, but the number of layers is unknown.")
        out = tuple(range(n_layers))
    elif isinstance(layers, int):
        out = (layers,)
    elif isinstance(layers, str):
        sep = ":" if ":" in layers else "-"
        try:
            a, b = (int(p) for p in layers.split(sep))
        except ValueError as e:
            raise ValueError(f"layer range {layers!r}: write 'a-b' (inclusive) or 'a:b'.") from e
        out = tuple(range(a, b + (sep == "-")))
    else:
        out = tuple(int(L) for L in layers)
    if n_layers is not None:
        bad = [L for L in out if not 0 <= L < n_layers]
        if bad:
            raise ValueError(f"layers {bad} out of range: this model has layers 0..{n_layers - 1}.")
    return out


def gemma_scope_paper_ids(layers: Layers = None) -> dict[int, str]:
    """layer -> `layer_{L}/width_16k/average_l0_{K}` with K from Table 1 (fallbacks at 0, 1)."""
    return {
        L: GEMMA_SCOPE_PAPER_FALLBACKS[L][0]
        if L in GEMMA_SCOPE_PAPER_FALLBACKS
        else _gemma_id(L, GEMMA_SCOPE_PAPER_L0[L])
        for L in parse_layers(layers, GEMMA2_2B_LAYERS)
    }


def gemma_scope_canonical_ids(layers: Layers = None, *, resolve: bool = False) -> dict[int, str]:
    """layer -> `layer_{L}/width_16k/canonical` (in the -canonical repo), or with resolve=True
    the `average_l0_{K}` id it points to in google/gemma-scope-2b-pt-res."""
    return {
        L: _gemma_id(L, GEMMA_SCOPE_CANONICAL_L0[L])
        if resolve
        else f"layer_{L}/width_16k/canonical"
        for L in parse_layers(layers, GEMMA2_2B_LAYERS)
    }


def gemma_scope_sweep_ids(layers: Layers = SWEEP_LAYERS) -> dict[int, tuple[str, ...]]:
    """layer -> every published width-16k average_l0 id, by increasing l0 (sparsity sweep)."""
    return {
        L: tuple(_gemma_id(L, k) for k in GEMMA_SCOPE_PUBLISHED_L0[L])
        for L in parse_layers(layers, GEMMA2_2B_LAYERS)
    }


def llama_scope_ids(layers: Layers = None, *, expansion: int = 8) -> dict[int, str]:
    """layer -> `Llama3_1-8B-Base-L{L}R-{expansion}x` (Llama Scope resid_post SAEs)."""
    return {
        L: llama_scope_folder(L, site="R", expansion=expansion)
        for L in parse_layers(layers, LLAMA31_8B_LAYERS)
    }


def gemma_scope_module_ids(layers: Layers = None, *, width: str = "16k") -> dict[int, str]:
    """layer -> `layer_{L}/width_{width}/canonical` of the -att/-mlp-canonical repos."""
    return {L: f"layer_{L}/width_{width}/canonical" for L in parse_layers(layers, GEMMA2_2B_LAYERS)}


def llama_scope_module_ids(site: str, layers: Layers = None, *, expansion: int = 8) -> dict:
    """layer -> `Llama3_1-8B-Base-L{L}{site}-{expansion}x`, site "A" (attention) or "M" (MLP)."""
    if site not in ("A", "M", "R"):
        raise ValueError(f"Llama Scope site must be R, A or M, got {site!r}")
    return {
        L: llama_scope_folder(L, site=site, expansion=expansion)
        for L in parse_layers(layers, LLAMA31_8B_LAYERS)
    }
