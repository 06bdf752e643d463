"""Experiment lookup and option checking (before any work starts)."""

from __future__ import annotations

import importlib
from types import ModuleType

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

EXPERIMENTS = (
    "layer_pruning",
    "folding_stats",
    "mse_curves",
    "matching_score",
    "match_examples",
    "matching_modes",
    "sparsity_sweep",
    "quantile_ablation",
    "persistence",
    "persistence_judge",
    "paths",
    "judge_by_layer",
    "mse_by_label",
    "ground_truth",
)


def experiment_module(name: str) -> ModuleType:
    """The module that implements experiment `name`."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"experiments.{name}")


def check_config(cfg: DictConfig) -> None:
    """Re-check the whole config against the schema (a `+group.key=...` override bypasses it)."""
    from experiments.schema import Config

    given = OmegaConf.to_container(cfg, resolve=False)
    given.pop("hydra", None)
    try:
        OmegaConf.merge(OmegaConf.structured(Config), given)
    except OmegaConfBaseException as e:
        raise ValueError(f"bad config: {getattr(e, 'msg', e)}") from None
    checked_options(cfg)


def checked_options(cfg: DictConfig) -> DictConfig:
    """cfg.experiment merged onto its Options schema; unknown keys or bad types raise."""
    mod = experiment_module(cfg.experiment.name)
    schema = OmegaConf.structured(mod.Options)
    given = OmegaConf.to_container(cfg.experiment, resolve=True)
    given.pop("name", None)
    try:
        return OmegaConf.merge(schema, given)
    except OmegaConfBaseException as e:
        raise ValueError(
            f"bad option for experiment {cfg.experiment.name!r}: {getattr(e, 'msg', e)}"
            f"\nvalid options: {', '.join(schema.keys())}"
        ) from None
