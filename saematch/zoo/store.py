"""The zoo on disk: `ensure_zoo` builds it once per (size, seed) into the cache, `Zoo` reads it.

Layout under <cache>/zoo/<size>-seed<seed>/: model/ (HF model + tokenizer), saes/<sparsity>/
layer_<l>/ (sae.safetensors, sae.json, descriptions.json), manifest.json (written last; sha256 of
every file). A build runs in a temporary sibling folder under a file lock and is renamed into
place, so readers never see a partial zoo and concurrent builders build it once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from saematch.atomic import atomic_build_dir
from saematch.locking import cache_lock
from saematch.sae import JumpReLUSAE
from saematch.sources import load_sae
from saematch.zoo.build import (
    DESCRIPTIONS,
    LM_FILES,
    STAGE_WEIGHTS,
    build_zoo,
    code_version,
    sae_dir,
)
from saematch.zoo.config import LM_KEYS, ZooConfig, get_config
from saematch.zoo.manifest import read_manifest, sha256_file, verify
from saematch.zoo.progress import Progress


def default_cache_dir() -> Path:
    """$SAEMATCH_CACHE if set, else ~/.cache/saematch."""
    env = os.environ.get("SAEMATCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "saematch"


def zoo_dir(size: str, seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where a zoo lives: <cache>/zoo/<size>-seed<seed>."""
    return Path(cache_dir or default_cache_dir()) / "zoo" / f"{size}-seed{seed}"


class Zoo:
    """A built zoo: the LM folder, per-layer SAEs at several sparsities, and their descriptions."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.manifest: dict = read_manifest(self.root)
        self.model_dir: Path = self.root / "model"
        self.n_layers: int = self.manifest["n_layers"]
        self.d_model: int = self.manifest["d_model"]
        self.width: int = self.manifest["width"]
        self.sparsities: list[str] = list(self.manifest["sparsities"])
        # levels the build trained; the others are trained on first use (zoo/levels.py)
        self.built_sparsities: list[str] = list(
            self.manifest.get("built_sparsities", self.sparsities)
        )
        self.default_sparsity: str = self.manifest["default_sparsity"]

    def _level(self, sparsity: str | None) -> str:
        level = sparsity or self.default_sparsity
        if level not in self.sparsities:
            raise ValueError(f"unknown sparsity {level!r}; this zoo has {self.sparsities}")
        return level

    def sae_path(self, layer: int, sparsity: str | None = None) -> Path:
        """Folder of the SAE on resid_post of block `layer` (default sparsity if None)."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(
                f"layer {layer} out of range; this zoo has layers 0..{self.n_layers - 1}"
            )
        level = self._level(sparsity)
        if level in self.built_sparsities:
            return sae_dir(self.root, layer, level)
        from saematch.zoo.levels import ensure_level

        return ensure_level(self, level) / f"layer_{layer}"

    def sae_metrics(self, sparsity: str | None = None) -> dict[str, dict]:
        """{layer: held-out metrics (l0, explained_variance, dead_frac, l0_coeff)} of one level
        (a level the build did not train is trained first)."""
        from saematch.zoo.levels import level_metrics

        return level_metrics(self, self._level(sparsity))

    def load_sae(self, layer: int, sparsity: str | None = None) -> JumpReLUSAE:
        """The SAE of one layer (saematch.sources.load_sae)."""
        return load_sae(self.sae_path(layer, sparsity))

    def load_saes(self, sparsity: str | None = None) -> list[JumpReLUSAE]:
        """SAEs of every layer, in layer order."""
        return [self.load_sae(layer, sparsity) for layer in range(self.n_layers)]

    def descriptions(self, layer: int, sparsity: str | None = None) -> dict[int, str]:
        """Feature index -> description (from top-activating contexts) for one SAE."""
        raw = json.loads((self.sae_path(layer, sparsity) / DESCRIPTIONS).read_text())
        return {int(k): v for k, v in raw.items()}

    def __repr__(self) -> str:
        return (
            f"Zoo({self.root}, n_layers={self.n_layers}, d_model={self.d_model}, "
            f"width={self.width}, sparsities={self.sparsities})"
        )


def _remove_stale(root: Path, log: Progress) -> None:
    """Delete temporary folders of builds killed by a signal (called while holding the lock:
    every builder of `root` holds it, so any existing temporary sibling is a dead one's)."""
    for pattern in (f".{root.name}.building-*", f".{root.name}.old-*"):
        for stale in root.parent.glob(pattern):
            log.log(f"removing stale {stale.name} left by an interrupted build")
            shutil.rmtree(stale, ignore_errors=True)


def reusable_lm(root: Path, cfg: ZooConfig, seed: int) -> Path | None:
    """`root` when a rebuild can keep its tokenizer and LM, else None: its manifest is readable
    and names this seed, the LM code version and every LM knob of cfg (LM_KEYS), and every file
    under model/ is intact. Then bad SAE or description files, other SAE knobs (a new schedule)
    or another trainer version rebuild only the stages after the LM."""
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError):
        return None
    old, new = manifest.get("config") or {}, cfg.to_dict()
    if manifest.get("seed") != seed or any(old.get(k) != new[k] for k in LM_KEYS):
        return None
    # zoos built before code versions were recorded have LM_VERSION 1's tokenizer and LM
    if (manifest.get("code_version") or {"lm": 1}).get("lm") != code_version()["lm"]:
        return None
    lm_files = {rel: e for rel, e in manifest.get("files", {}).items() if rel.startswith(LM_FILES)}
    intact = [_intact(root / rel, e["bytes"], e["sha256"]) for rel, e in lm_files.items()]
    return root if intact and all(intact) else None


def _intact(path: Path, size: int, sha256: str) -> bool:
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256


def ensure_zoo(
    size: str = "default",
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    force: bool = False,
) -> Zoo:
    """Load the zoo of (size, seed) from the cache, building it first if missing or corrupt."""
    cfg = get_config(size)
    root = zoo_dir(size, seed, cache_dir)
    # new knobs or code -> rebuild
    expect = {"size": size, "seed": seed, "config": cfg.to_dict(), "code_version": code_version()}
    if not force and not verify(root, expect):
        return Zoo(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(str(root) + ".lock", "the zoo"):
        problems = verify(root, expect)
        if not force and not problems:  # another process built it while we waited
            return Zoo(root)
        log = Progress(progress, STAGE_WEIGHTS)
        _remove_stale(root, log)
        if root.exists():
            log.log(f"rebuilding {root}: {'forced' if force else '; '.join(problems[:3])}")
        reuse = None if force else reusable_lm(root, cfg, seed)
        atomic_build_dir(root, lambda tmp: build_zoo(cfg, seed, tmp, log, reuse=reuse))
    return Zoo(root)
