"""The planted set on disk: `ensure_planted` builds it once per (config, seed) under a file lock
into the cache, `PlantedSet` reads it (SAEs, truth, and the world's tokens on demand)."""

from __future__ import annotations

import os
import shutil
from functools import cached_property
from pathlib import Path

from torch import Tensor

from saematch.atomic import atomic_build_dir
from saematch.locking import cache_lock
from saematch.planted.build import (
    STAGE_WEIGHTS,
    PlantedConfig,
    build_planted,
    code_version,
    planted_config,
    sae_folder,
)
from saematch.planted.sample import sample_activations
from saematch.planted.truth import TRUTH, load_truth
from saematch.planted.world import World
from saematch.sae import JumpReLUSAE
from saematch.sources import load_sae
from saematch.zoo.manifest import read_manifest, verify
from saematch.zoo.progress import Progress
from saematch.zoo.store import default_cache_dir


def planted_dir(cfg: PlantedConfig, seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """<cache>/planted/<size>-<config digest>-seed<seed>: one folder per exact configuration."""
    root = Path(cache_dir or default_cache_dir())
    return root / "planted" / f"{cfg.size}-{cfg.digest()}-seed{seed}"


class PlantedSet:
    """A built planted set: SAEs per layer (and extra seeds), the truth, the manifest."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.manifest: dict = read_manifest(self.root)
        self.seed: int = self.manifest["seed"]
        self.n_layers: int = self.manifest["n_layers"]
        self.d_model: int = self.manifest["d_model"]
        self.width: int = self.manifest["width"]

    @cached_property
    def truth(self) -> World:
        """The world's truth, read from truth.safetensors."""
        return load_truth(self.root / TRUTH)

    def sae_path(self, layer: int, seed_index: int = 0) -> Path:
        """Folder of one SAE (seed_index ≥ 1: the extra seeds of the same layer)."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer {layer} out of range; this set has 0..{self.n_layers - 1}")
        n_seeds = self.manifest["config"]["n_seeds"]
        if not 0 <= seed_index < n_seeds:
            raise ValueError(f"seed_index {seed_index} out of range; this set has {n_seeds}")
        return sae_folder(self.root, layer, seed_index)

    def load_sae(self, layer: int, seed_index: int = 0) -> JumpReLUSAE:
        return load_sae(self.sae_path(layer, seed_index))

    def load_saes(self, seed_index: int = 0) -> list[JumpReLUSAE]:
        """SAEs of every layer, in layer order."""
        return [self.load_sae(t, seed_index) for t in range(self.n_layers)]

    def activations(self, n: int, seed: int | None = None) -> Tensor:
        """(L, n, d) fresh tokens of this world (default: the held-out stream, seed + 2)."""
        return sample_activations(self.truth, n, self.seed + 2 if seed is None else seed)

    def __repr__(self) -> str:
        return f"PlantedSet({self.root}, n_layers={self.n_layers}, width={self.width})"


def ensure_planted(
    size: str = "default",
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    force: bool = False,
    **overrides,
) -> PlantedSet:
    """Load the planted set of (size + overrides, seed) from the cache, building it if missing
    or corrupt (checksums in the manifest). Overrides are planted_config knobs."""
    cfg = planted_config(size, **overrides)
    root = planted_dir(cfg, seed, cache_dir)
    expect = {
        "kind": "planted",
        "seed": seed,
        "config": cfg.to_dict(),
        "code_version": code_version(),
    }
    if not force and not verify(root, expect):
        return PlantedSet(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(str(root) + ".lock", "the planted world"):
        problems = verify(root, expect)
        if not force and not problems:  # built by another process while we waited
            return PlantedSet(root)
        log = Progress(progress, STAGE_WEIGHTS)
        for stale in root.parent.glob(f".{root.name}.*"):  # left by killed builders
            shutil.rmtree(stale, ignore_errors=True)
        if root.exists():
            log.log(f"rebuilding {root}: {'forced' if force else '; '.join(problems[:3])}")
        atomic_build_dir(root, lambda tmp: build_planted(cfg, seed, tmp, log))
    return PlantedSet(root)
