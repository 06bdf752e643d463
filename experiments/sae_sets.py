"""The `saes` config group -> a saematch.sources.SAESet."""

from __future__ import annotations

from omegaconf import DictConfig

from saematch.sources import SAESet, resolve_set

HUB_SETS = {
    "gemma_scope_paper": "gemma_scope_paper",
    "gemma_scope_canonical": "gemma_scope_canonical",
    "llama_scope": "llama_scope",
}


def zoo_set(zoo, sparsity: str | None) -> SAESet:
    """The built-in zoo's SAEs at one sparsity, read through the local-format loader."""
    sparsity = sparsity or zoo.default_sparsity
    if sparsity not in zoo.sparsities:
        raise ValueError(f"the zoo has no sparsity {sparsity!r}; it has {zoo.sparsities}")
    paths = {L: zoo.sae_path(L, sparsity) for L in range(zoo.n_layers)}
    root = paths[0].parent
    return SAESet.from_ids(
        f"tiny/{sparsity}",
        "local",
        str(root),
        {L: p.relative_to(root).as_posix() for L, p in paths.items()},
        description=f"built-in zoo SAEs, sparsity {sparsity}",
    )


def planted_set(planted) -> SAESet:
    """The planted world's SAEs (saematch.planted), one per layer, through the local loader."""
    root = planted.root / "saes"
    return SAESet.from_ids(
        f"planted/{planted.manifest['size']}",
        "local",
        str(root),
        {L: f"layer_{L}" for L in range(planted.n_layers)},
        description=f"planted-world SAEs ({planted.root.name}); truth in truth.safetensors",
    )


def build_sae_set(cfg: DictConfig, ctx) -> SAESet:
    """The SAE set named by cfg.saes, narrowed to cfg.saes.layers, with per-layer overrides."""
    s = cfg.saes
    kind = s.kind.value if hasattr(s.kind, "value") else str(s.kind)
    if kind == "zoo":
        sae_set = zoo_set(ctx.zoo, s.sparsity)
    elif kind == "planted":
        sae_set = planted_set(ctx.planted)
    elif kind in HUB_SETS:
        kw = {"repo_id": s.repo_id} if s.repo_id else {}
        sae_set = resolve_set(HUB_SETS[kind], **kw)
    else:
        raise ValueError(f"saes.kind={kind!r} is not a known set; use a file in conf/saes/")
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
        )
    if s.layers is not None:
        first, last = (list(s.layers) * 2)[:2] if len(s.layers) == 1 else list(s.layers)
        if len(s.layers) > 2:
            raise ValueError(f"saes.layers is [first, last], got {list(s.layers)}")
        sae_set = sae_set.narrow(range(int(first), int(last) + 1))
    return sae_set
