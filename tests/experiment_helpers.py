"""Compose the real config tree for tests: the test-size zoo, tiny data, no W&B, tmp outputs."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from saematch_experiments.harness.config_location import CONFIG_PACKAGE
from saematch_experiments.harness.schema import register_schemas


def zoo_overrides(zoo) -> list[str]:
    """Overrides that point the config at an already built zoo (its cache root and size)."""
    cache = Path(zoo.root).parent.parent  # <cache>/zoo/<size>-seed<seed>
    size, seed = zoo.manifest["size"], zoo.manifest["seed"]
    return [f"paths.cache_dir={cache}", f"model.zoo_size={size}", f"seed={seed}"]


def compose_cfg(experiment: str, overrides: list[str], zoo, tmp_path: Path) -> DictConfig:
    """The composed config of `saematch experiment=<experiment> <overrides>` on the test zoo
    (zoo None: no zoo overrides, for experiments that need no zoo)."""
    register_schemas()
    base = [
        f"experiment={experiment}",
        *(zoo_overrides(zoo) if zoo is not None else []),
        "logger=none",
        f"paths.output_root={tmp_path}",
        "data.n_examples=8",
        "data.seq_len=64",
        "model.batch_size=8",
    ]
    with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
        return compose("config", overrides=base + list(overrides))


def run_dirs(cfg: DictConfig) -> list[Path]:
    """The folders of the helper's runs of cfg, oldest first."""
    base = Path(cfg.paths.output_root) / cfg.experiment.name
    return sorted(base.glob("run-*"), key=lambda p: int(p.name.split("-")[1]))


def run_dir_of(cfg: DictConfig) -> Path:
    """The folder of the latest `run(cfg)`."""
    return run_dirs(cfg)[-1]


def run(cfg: DictConfig) -> dict:
    """Run cfg's experiment through the CLI skeleton into <output_root>/<name>/run-<k>."""
    from saematch_experiments.harness.cli import run_experiment

    base = Path(cfg.paths.output_root) / cfg.experiment.name
    return run_experiment(cfg, run_dir=base / f"run-{len(run_dirs(cfg))}")


def context(cfg: DictConfig):
    """A Context of cfg (for checking a run's numbers against the library)."""
    from saematch_experiments.harness.context import Context

    return Context(cfg, Path(cfg.paths.output_root) / "ctx")
