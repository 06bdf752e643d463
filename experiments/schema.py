"""Typed schemas for the config groups (Hydra ConfigStore): a typo or a wrong type fails early."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

RUN_ID = secrets.token_hex(3)  # one per process: the suffix of its run folders


class MatchMode(str, Enum):
    encoder = "encoder"
    decoder = "decoder"
    both = "both"


class ModelKind(str, Enum):
    zoo = "zoo"
    hf = "hf"


class DataSource(str, Enum):
    stdlib = "stdlib"
    stdlib_code = "stdlib_code"
    stdlib_prose = "stdlib_prose"
    openwebtext = "openwebtext"
    code = "code"
    wikitext = "wikitext"
    local_text = "local_text"


class LoggerKind(str, Enum):
    wandb = "wandb"
    none = "none"


class WandbMode(str, Enum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


@dataclass
class ModelConfig:
    kind: ModelKind = ModelKind.zoo
    name_or_path: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    batch_size: int = 16
    zoo_size: str = "default"


@dataclass
class MatchingConfig:
    mode: MatchMode = MatchMode.both
    fold: bool = True
    # weight of the b_enc term (Δb_enc)² in mode both; 0 = the paper's cost (a departure if > 0)
    bias_weight: float = 0.0
    # `_target_` node from conf/matching/solver/, or its file's name (matching.solver=scipy)
    solver: Any = MISSING
    cache: bool = True
    max_memory: str | None = None  # e.g. "6GB"; None: half the available memory
    device: str = "auto"  # auto | cpu | cuda
    unmatched: str | None = None  # none | auto | a number ρ (relative reject cost)
    confidence: bool = True  # swap regret per pair, in the match files
    top_k: int = 5  # predecessors kept per feature of layer t+1 (0: none)
    splits: bool = True  # split detector (two close successors of one feature)


@dataclass
class DataConfig:
    source: DataSource = DataSource.stdlib
    split: str = "heldout"
    path: str | None = None
    text_key: str = "text"
    n_examples: int = 32
    seq_len: int = 128
    seed: int = 0


@dataclass
class LoggerConfig:
    kind: LoggerKind = LoggerKind.wandb
    mode: WandbMode = WandbMode.offline
    project: str = "saematch"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class PathsConfig:
    cache_dir: str = MISSING
    output_root: str = "outputs"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    # `_target_` groups: checked against their target's signature (experiments/targets.py)
    saes: Any = MISSING
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    judge: Any = MISSING
    descriptions: Any = MISSING
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Each experiment checks its own options against its dataclass (experiments/registry.py).
    experiment: Any = MISSING
    seed: int = 0
    dry_run: bool = False
    explorer: bool = False  # also write explorer.html for the run's matchings


def register_schemas() -> None:
    """Put the schemas into Hydra's ConfigStore (the primary config lists `config_schema`) and
    register the `${run_id:}` resolver of the run folder names."""
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: RUN_ID)
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
