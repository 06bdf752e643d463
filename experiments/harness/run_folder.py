"""What Hydra would write into a run folder, written only once the run owns it.

Hydra creates the run folder and writes `.hydra/` and `<job>.log` before the task starts, so a
run refused because its folder is taken used to overwrite the first run's `.hydra/` and append
to its log. conf/hydra/default.yaml turns both off (output_subdir: null, no file handler on the
root logger); the CLI calls `write_hydra_files` right after `claim`. The folder's name is
checked as it is resolved (`${run_name:...}`), before Hydra creates it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=,-]*")  # one path segment, not . or ..


def run_name(name: object) -> str:
    """`name` when it is one plain folder name (letters, digits, _ . + = , -; not starting
    with a dot), else ValueError: experiment.name=../../x must not leave outputs/."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise ValueError(
            f"experiment.name={name!r} is not a plain folder name (letters, digits, _ . - ; no "
            "'/' or leading '.'): run folders stay inside paths.output_root; pick one of the "
            "experiments with experiment=<name>"
        )
    return name


def write_hydra_files(cfg: DictConfig, run_dir: Path) -> None:
    """What Hydra writes into a run folder, into the claimed `run_dir`: `.hydra/config.yaml`,
    `hydra.yaml`, `overrides.yaml`, and the INFO log `<job>.log` from now on."""
    hydra = HydraConfig.get()
    out = Path(run_dir) / ".hydra"
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), out / "hydra.yaml")
    OmegaConf.save(hydra.overrides.task, out / "overrides.yaml")
    handler = logging.FileHandler(Path(run_dir) / f"{hydra.job.name}.log")
    handler.setFormatter(logging.Formatter(hydra.job_logging.formatters.simple.format))
    logging.getLogger().addHandler(handler)  # Hydra's next job resets the root's handlers


def remove_if_empty(run_dir: Path) -> None:
    """Remove the folder Hydra created for a run that never claimed it (dry_run, a config
    error): rmdir only, so a folder holding anything, a claim included, stays."""
    with contextlib.suppress(OSError):  # not empty (claimed, another run's), or already gone
        os.rmdir(run_dir)
