"""Targets of the `logger` config group: a RunRecorder for a run folder, with or without W&B.

    # conf/logger/wandb.yaml
    _target_: saematch.tracking.wandb_recorder
    mode: offline

The run folder, the run's config (run_config) and its name come from the experiment skeleton.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from saematch.tracking.recorder import RunRecorder


def local_recorder(run_dir: Path | str, run_config: Mapping[str, Any]) -> RunRecorder:
    """Local files only (results.json, CSV, PNG/PDF)."""
    return RunRecorder(run_dir, config=run_config, logger="none")


def wandb_recorder(
    run_dir: Path | str,
    run_config: Mapping[str, Any],
    name: str | None = None,
    mode: str = "offline",
    project: str = "saematch",
    entity: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
) -> RunRecorder:
    """Local files plus a W&B run (offline by default: `wandb sync` its folder later)."""
    kw = {"project": project, "entity": entity, "group": group, "tags": list(tags)}
    return RunRecorder(
        run_dir, config=run_config, logger="wandb", wandb_kwargs={**kw, "mode": mode, "name": name}
    )
