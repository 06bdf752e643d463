"""The planted SAE set: a world, its truth file, and JumpReLU SAEs trained on its tokens.

Layout under <cache>/planted/<size>-<config hash>-seed<seed>/: truth.safetensors,
saes/layer_<t>/ (sae.safetensors, sae.json), saes_seed<k>/layer_<t>/ for extra seeds, and
manifest.json (written last; sha256 of every file, the config, per-layer metrics, timings).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from saematch.planted.metrics import sae_recovery
from saematch.planted.sample import sample_activations
from saematch.planted.truth import TRUTH, save_truth
from saematch.planted.world import WorldConfig, make_world
from saematch.sources import save_sae
from saematch.zoo.agreement import seed_agreement
from saematch.zoo.manifest import write_manifest
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads, torch_threads
from saematch.zoo.train_sae import RECIPES, TRAINER_VERSION, train_saes

STAGE_WEIGHTS = {"world": 0.1, "saes": 0.85, "save": 0.05}
# Bump when a change to world.py or sample.py changes the world or its tokens for the same
# config; with the trainer's TRAINER_VERSION it keys the cache (a stale set is rebuilt).
GENERATOR_VERSION = 1


# The published recipe's fixed λ per preset (units where E‖x‖² = 1), calibrated so the held-out
# L0 lands near l0_target: scripts/calibrate_lambda.py, docs/trainer.md.
PUBLISHED_L0_COEFF: dict[str, float] = {"default": 1e-2, "test": 1e-2}


def code_version() -> dict[str, int]:
    """The versions of the code that builds a planted set; part of the cache key (manifest)."""
    return {"generator": GENERATOR_VERSION, "saes": TRAINER_VERSION}


@dataclass(frozen=True)
class PlantedConfig:
    """Every knob of one planted set: the world (docs/method.md §9) and the SAEs trained on it."""

    size: str
    world: WorldConfig = field(default_factory=WorldConfig)
    n_train: int = 32768  # tokens per layer the SAEs train on
    n_heldout: int = 4096  # held-out tokens per layer for EV / L0
    width: int = 384
    l0_target: int = 6
    n_seeds: int = 1  # SAEs per layer; a second seed measures same-layer agreement
    steps: int = 3000
    batch: int = 256
    lr: float = 1e-2
    bandwidth: float | None = None  # ε; None = the recipe's (0.05 controller, 0.001 published)
    # controller: λ and θ steered to l0_target; published: Gemma Scope's recipe with the fixed
    # λ l0_coeff (units where E‖x‖² = 1), warmed up over lambda_warmup of the steps
    recipe: str = "published"  # chosen from docs/data/trainer_compare.csv: docs/trainer.md
    # None = PUBLISHED_L0_COEFF[size] (a measured calibration); ignored (None) for controller
    l0_coeff: float | None = None
    lambda_warmup: float = 0.1
    lr_decay: bool = True  # published only: cosine lr decay to 10 % (not in the report)

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(
                f"planted set: unknown recipe {self.recipe!r}; choose one of {list(RECIPES)}"
            )
        if self.recipe == "published" and self.l0_coeff is None and self.size in PUBLISHED_L0_COEFF:
            # the calibrated λ goes into the config itself, so it is part of the cache key
            object.__setattr__(self, "l0_coeff", PUBLISHED_L0_COEFF[self.size])
        if self.recipe == "controller":  # it steers λ itself: a fixed λ means nothing here
            object.__setattr__(self, "l0_coeff", None)
        checks = {
            "width": self.width >= 1,
            "l0_target": 1 <= self.l0_target < self.width,
            "n_seeds": self.n_seeds >= 1,
            "steps": self.steps >= 1,
            "batch": 1 <= self.batch <= self.n_train,
            "lr": self.lr > 0,
            "bandwidth": self.bandwidth is None or self.bandwidth > 0,
            "n_heldout": self.n_heldout >= 1,
            "l0_coeff": self.l0_coeff is None or self.l0_coeff > 0,
            "lambda_warmup": 0 <= self.lambda_warmup <= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            vals = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(
                f"planted set: invalid {vals}; need 1 ≤ l0_target < width, 1 ≤ batch ≤ n_train "
                "and positive steps, lr, bandwidth, n_seeds, n_heldout, l0_coeff (or null), "
                "0 ≤ lambda_warmup ≤ 1"
            )

    def sparsity_coeff(self) -> float | None:
        """The published recipe's fixed λ: l0_coeff, or the calibrated default of this size
        (PUBLISHED_L0_COEFF); None for the controller recipe (it steers λ itself)."""
        if self.recipe != "published":
            return None
        if self.l0_coeff is not None:
            return self.l0_coeff
        if self.size not in PUBLISHED_L0_COEFF:
            raise ValueError(
                f"planted size {self.size!r} has no calibrated λ for recipe 'published'; set "
                "l0_coeff (scripts/calibrate_lambda.py measures one)"
            )
        return PUBLISHED_L0_COEFF[self.size]

    def to_dict(self) -> dict:
        """JSON-ready dict of every knob (the world's nested)."""
        return asdict(self)

    def digest(self) -> str:
        """8 hex digits naming this exact configuration (cache folder names)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]


SIZES: dict[str, PlantedConfig] = {
    "default": PlantedConfig(size="default"),
    # small enough for the test suite: 4 layers, 96 features in d 48
    "test": PlantedConfig(
        size="test",
        world=WorldConfig(n_layers=4, d_model=48, n_features=96, l0=4.0),
        n_train=16384,
        n_heldout=2048,
        width=192,
        l0_target=4,
    ),
    # SynthSAEBench-16k-like (16k features in d 768): for a machine with many cores and memory.
    # The trainer holds every token in memory: 2^18 tokens × 6 layers × 768 floats = 4.8 GB.
    "16k": PlantedConfig(
        size="16k",
        world=WorldConfig(d_model=768, n_features=16384, l0=32.0),
        n_train=1 << 18,
        n_heldout=16384,
        width=16384,
        l0_target=32,
        recipe="controller",  # no calibrated λ for the published recipe at this size
        steps=20000,
        batch=4096,
        lr=3e-3,
    ),
}

_WORLD_KEYS = {f.name for f in fields(WorldConfig)}
_SET_KEYS = {f.name for f in fields(PlantedConfig)} - {"size", "world"}


def planted_config(size: str = "default", **overrides) -> PlantedConfig:
    """The preset `size` with knobs replaced: world keys (drift, growth_spread, …) or SAE keys."""
    if size not in SIZES:
        raise ValueError(f"unknown planted size {size!r}; choose one of {sorted(SIZES)}")
    unknown = set(overrides) - _WORLD_KEYS - _SET_KEYS
    if unknown:
        raise ValueError(
            f"unknown planted knob(s) {sorted(unknown)}; world knobs: {sorted(_WORLD_KEYS)}, "
            f"SAE knobs: {sorted(_SET_KEYS)}"
        )
    base = SIZES[size]
    world = replace(base.world, **{k: v for k, v in overrides.items() if k in _WORLD_KEYS})
    return replace(base, world=world, **{k: v for k, v in overrides.items() if k in _SET_KEYS})


def sae_folder(root: Path, layer: int, seed_index: int = 0) -> Path:
    """saes/layer_<t> for the first seed, saes_seed<k>/layer_<t> for seed k ≥ 1."""
    return root / ("saes" if seed_index == 0 else f"saes_seed{seed_index}") / f"layer_{layer}"


def build_planted(
    cfg: PlantedConfig, seed: int, out: Path, progress: Progress, max_threads: int = 2
) -> dict:
    """Build the world, its truth file and its SAEs into the empty folder `out`; returns the
    manifest. Tokens: training seed = seed + 1, held-out seed = seed + 2 (sample_activations).
    Torch threads: up to max_threads while the cores are otherwise idle (saematch.zoo.threads:
    two threads sharing a busy core run several times slower than one)."""
    with torch_threads(pick_threads(max_threads)):
        return _build(cfg, seed, out, progress)


def _build(cfg: PlantedConfig, seed: int, out: Path, progress: Progress) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}

    def mark(name: str) -> None:
        timings[name] = round(time.perf_counter() - t0 - sum(timings.values()), 2)

    progress.stage("world")
    world = make_world(cfg.world, seed)
    save_truth(world, out / TRUTH)
    acts = sample_activations(world, cfg.n_train, seed + 1)  # (L, N, d)
    held = sample_activations(world, cfg.n_heldout, seed + 2)
    mark("world")

    progress.stage("saes")
    result = train_saes(
        acts,
        held,
        [cfg.l0_target] * cfg.n_seeds,
        cfg.width,
        steps=cfg.steps,
        batch=cfg.batch,
        lr=cfg.lr,
        bandwidth=cfg.bandwidth,
        seed=seed,
        progress=progress,
        recipe=cfg.recipe,
        l0_coeff=cfg.sparsity_coeff(),
        lambda_warmup=cfg.lambda_warmup,
        lr_decay=cfg.lr_decay,
    )
    mark("saes")

    progress.stage("save")
    metrics: dict[str, dict] = {}
    for t in range(world.n_layers):
        per_seed = []
        for k in range(cfg.n_seeds):
            sae = result.saes[t][k]
            sae.name = f"planted-{cfg.size}-{cfg.digest()}-seed{seed}/layer_{t}" + (
                f"/seed{k}" if k else ""
            )
            sae.meta = {"layer": t, "site": "planted", "planted": cfg.size, "seed_index": k}
            save_sae(sae, sae_folder(out, t, k))
            m = dict(result.metrics[t][k])
            m["sae_recovery"] = sae_recovery(sae.W_dec, world.directions[t])
            per_seed.append({key: round(v, 6) for key, v in m.items()})
        metrics[str(t)] = {**per_seed[0], "n_true_features": len(world.directions[t])}
        if cfg.n_seeds > 1:
            a, b = result.saes[t][0], result.saes[t][1]
            metrics[str(t)]["second_seed"] = per_seed[1]
            metrics[str(t)]["agreement"] = seed_agreement(a, b, held[t]).to_dict()
    mark("save")
    timings["total_wall_s"] = round(time.perf_counter() - t0, 2)
    timings["total_cpu_s"] = round(time.process_time() - c0, 2)
    manifest = {
        "kind": "planted",
        "size": cfg.size,
        "seed": seed,
        "n_layers": world.n_layers,
        "d_model": world.d_model,
        "width": cfg.width,
        "config": cfg.to_dict(),
        "code_version": code_version(),
        "metrics": {"saes": metrics},
        "timings": timings,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__},
    }
    progress.log(f"planted set built in {timings['total_wall_s']:.0f}s")
    return write_manifest(out, manifest)
