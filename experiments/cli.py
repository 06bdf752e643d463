"""The `saematch` command: Hydra composes the config, then one experiment runs."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.registry import check_config, experiment_module
from experiments.schema import register_schemas

log = logging.getLogger("saematch")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def run_experiment(cfg: DictConfig) -> dict:
    """Validate the experiment's options, then run it; returns its results dict."""
    check_config(cfg)  # fail fast on a typo, before loading anything
    if cfg.dry_run:
        print(OmegaConf.to_yaml(cfg))
        return {"dry_run": True}
    out = experiment_module(cfg.experiment.name).run(cfg)
    if cfg.explorer and cfg.experiment.name != "explorer":  # the page beside the run's files
        from experiments.context import run_dir_of
        from experiments.explorer import write_for_run

        write_for_run(cfg, run_dir_of(cfg))
    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> dict:
    out = run_experiment(cfg)
    if HydraConfig.initialized():
        log.info("results in %s", HydraConfig.get().runtime.output_dir)
    return out


def main() -> None:
    """Console entry point."""
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
