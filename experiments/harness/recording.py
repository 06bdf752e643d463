"""The `logger` config group -> a saematch.tracking.RunRecorder for the run dir; provenance."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from saematch.tracking import RunRecorder
from saematch_experiments.harness.targets import args, check, parameters

REPO = Path(__file__).resolve().parents[2]  # the checkout: experiments/harness/ -> root


LOGGER_EXTRAS = ("run_dir", "run_config", "name")  # what the skeleton hands a `logger` target


def make_recorder(cfg: DictConfig, run_dir: Path) -> RunRecorder:
    """The recorder of cfg.logger (`_target_`-built): local files in run_dir and, unless
    logger=none, an (offline) W&B run."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    # Called directly, not through instantiate: run_config holds other groups' `_target_`
    # nodes, which instantiate would build.
    fn = check(cfg.logger, "logger", supplied=LOGGER_EXTRAS)
    extras = {
        "run_dir": run_dir,
        "run_config": config,
        "name": f"{cfg.experiment.name}-{run_dir.name}",
    }
    params, var_kw = parameters(fn)
    extras = {k: v for k, v in extras.items() if k in params or var_kw}
    return fn(**extras, **args(cfg.logger))


@cache
def provenance() -> dict:
    """What produced a run: saematch version, git commit (+ dirty flag), Python, torch, argv."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(REPO), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    try:
        ver = version("saematch")
    except PackageNotFoundError:
        ver = None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "saematch": ver,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "argv": sys.argv[1:],
    }
