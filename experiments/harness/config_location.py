"""Where the configs live: the one place that knows.

conf/ ships as the package `saematch_conf` (pyproject.toml maps it), so Hydra finds it the same
way from a wheel, an editable install or a source checkout: through the import system, never a
path computed from this file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONFIG_PACKAGE = "saematch_conf"
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"  # Hydra's name for it (hydra.main, initialize)
CONF_DIR = Path(str(files(CONFIG_PACKAGE)))  # the folder: conf/ of a checkout, or site-packages


def group_dir(group: str) -> Path:
    """The folder of a config group: `experiment`, `matching.solver` -> conf/matching/solver."""
    return CONF_DIR.joinpath(*group.split("."))
