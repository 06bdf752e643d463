"""The `saes` and `descriptions` config groups: `_target_`-built SAE sets and description sources.

`saes.layers` and `saes.sae_ids` are read here, not passed to the target (SKELETON_KEYS); a
target gets `zoo`, `cache_dir`, `seed` or `device` from the Context when it has a parameter
of that name (SAE_SET_EXTRAS), e.g. `def my_set(cache_dir, seed, size="default") -> SAESet`.
"""

from __future__ import annotations

from omegaconf import DictConfig

from saematch.descriptions import DictDescriptions
from saematch.sources import SAESet
from saematch_experiments.harness.targets import build, target

SKELETON_KEYS = ("layers", "sae_ids")
# What the Context hands an SAE-set target that asks for it by parameter name.
SAE_SET_EXTRAS = ("zoo", "cache_dir", "seed", "device")


def layer_range(layers) -> tuple[int, int]:
    """saes.layers as (first, last), inclusive: [L] or [first, last] with 0 ≤ first ≤ last."""
    vals = list(layers)
    if not 1 <= len(vals) <= 2 or any(not isinstance(v, int) or v < 0 for v in vals):
        raise ValueError(
            f"saes.layers={vals}: write [first, last] (inclusive, e.g. saes.layers=[0,4]) or "
            "[L] for one layer; every layer in between is used"
        )
    first, last = vals[0], vals[-1]
    if first > last:
        raise ValueError(f"saes.layers={vals}: first > last; write saes.layers=[{last},{first}]")
    return first, last


def zoo_set(zoo, sparsity: str | None = None) -> SAESet:
    """The built-in zoo's SAEs at one sparsity, read through the local-format loader."""
    sparsity = sparsity or zoo.default_sparsity
    if sparsity not in zoo.sparsities:
        raise ValueError(f"saes.sparsity={sparsity!r}: the zoo has {zoo.sparsities}")
    paths = {L: zoo.sae_path(L, sparsity) for L in range(zoo.n_layers)}
    root = paths[0].parent
    return SAESet.from_ids(
        f"tiny/{sparsity}",
        "local",
        str(root),
        {L: p.relative_to(root).as_posix() for L, p in paths.items()},
        description=f"built-in zoo SAEs, sparsity {sparsity}",
    )


def planted_set(cache_dir, seed, size: str = "default", knobs=None) -> SAESet:
    """The planted world's SAEs (saematch.planted, docs/method.md §9), one per layer, built on first
    use; `knobs`: any saematch.planted knob (drift, growth_spread, …)."""
    root = planted_of(cache_dir, seed, size, knobs).root / "saes"
    n_layers = len(list(root.glob("layer_*")))
    return SAESet.from_ids(
        f"planted/{size}",
        "local",
        str(root),
        {L: f"layer_{L}" for L in range(n_layers)},
        description=f"planted-world SAEs ({root.parent.name}); truth in truth.safetensors",
    )


def planted_of(cache_dir, seed, size: str = "default", knobs=None):
    """The saematch.planted.PlantedSet (SAEs + truth) of these settings, built on first use."""
    from saematch.planted import ensure_planted

    knobs = dict(knobs or {})
    return ensure_planted(size=size, cache_dir=cache_dir, seed=int(seed), **knobs)


def is_planted_set(cfg: DictConfig) -> bool:
    """Whether saes names the planted world."""
    return target(cfg.saes, "saes") is planted_set


def zoo_descriptions(zoo, layer: int, sparsity: str | None = None) -> DictDescriptions:
    """The zoo's descriptions of the SAE at `layer` (sparsity: saes.sparsity)."""
    return DictDescriptions(zoo.descriptions(layer, sparsity), name=f"zoo layer {layer}")


def is_zoo_set(cfg: DictConfig) -> bool:
    """Whether saes names the built-in zoo (its layers are known without building it)."""
    return target(cfg.saes, "saes") is zoo_set


def build_sae_set(cfg: DictConfig, ctx) -> SAESet:
    """The SAE set of cfg.saes, narrowed to cfg.saes.layers, with per-layer sae_ids."""
    s = cfg.saes
    sae_set = build(
        s,
        "saes",
        own=SKELETON_KEYS,
        zoo=lambda: ctx.zoo,
        cache_dir=lambda: ctx.cache_dir,
        seed=lambda: int(cfg.seed),
        device=lambda: ctx.device,
    )
    if s.sae_ids:
        src = next(iter(sae_set.entries.values()))[0]
        ids = {L: specs[0].sae_id for L, specs in sae_set.entries.items()}
        ids.update({int(L): str(v) for L, v in s.sae_ids.items()})
        sae_set = SAESet.from_ids(
            sae_set.name,
            src.source,
            src.repo_id,
            ids,
            notes=sae_set.notes,
            description=sae_set.description,
            site=src.site,
        )
    if s.layers is not None:
        first, last = layer_range(s.layers)
        sae_set = sae_set.narrow(range(first, last + 1))
    return sae_set


def descriptions_mismatch(cfg: DictConfig) -> str | None:
    """Why cfg.descriptions cannot describe cfg.saes (the zoo's descriptions on another SAE
    set would label its features with the zoo's texts, and build the zoo to do it), or None."""
    if target(cfg.descriptions, "descriptions") is not zoo_descriptions or is_zoo_set(cfg):
        return None
    return (
        f"descriptions=zoo describes the built-in zoo's SAEs, not this set "
        f"({cfg.saes._target_}); pick a description source of conf/descriptions/ for it"
    )


def descriptions_of(cfg: DictConfig, ctx, layer: int):
    """The description source of `layer`: cfg.descriptions with {layer} filled in."""
    from omegaconf import OmegaConf

    why = descriptions_mismatch(cfg)
    if why is not None:
        raise ValueError(why)
    node = OmegaConf.to_container(cfg.descriptions, resolve=True)
    node = {
        k: v.format(layer=layer) if isinstance(v, str) and "{layer}" in v else v
        for k, v in node.items()
    }
    return build(
        OmegaConf.create(node),
        "descriptions",
        zoo=lambda: ctx.zoo,
        layer=lambda: layer,
        sparsity=lambda: cfg.saes.get("sparsity"),
        cache_dir=lambda: ctx.cache_dir / "neuronpedia",
    )
