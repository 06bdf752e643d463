"""The `logger` config group -> a saematch.tracking.RunRecorder for the run dir."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from saematch.tracking import RunRecorder


def make_recorder(cfg: DictConfig, run_dir: Path) -> RunRecorder:
    """A recorder writing local files in run_dir and, unless logger=none, an (offline) W&B run."""
    lg = cfg.logger
    kind = lg.kind.value if hasattr(lg.kind, "value") else str(lg.kind)
    mode = lg.mode.value if hasattr(lg.mode, "value") else str(lg.mode)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    name = f"{cfg.experiment.name}-{run_dir.name}"
    wandb_kwargs = {
        "project": lg.project,
        "entity": lg.entity,
        "group": lg.group,
        "tags": list(lg.tags),
        "mode": mode,
        "name": name,
    }
    return RunRecorder(run_dir, config=config, logger=kind, wandb_kwargs=wandb_kwargs)
