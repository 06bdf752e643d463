"""Typed schemas for the config groups (Hydra ConfigStore): a typo or a wrong type fails early."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class MatchMode(str, Enum):
    encoder = "encoder"
    decoder = "decoder"
    both = "both"


class Solver(str, Enum):
    auto = "auto"
    lapjv = "lapjv"
    scipy = "scipy"


class ModelKind(str, Enum):
    zoo = "zoo"
    hf = "hf"


class SAESetKind(str, Enum):
    zoo = "zoo"
    gemma_scope_paper = "gemma_scope_paper"
    gemma_scope_canonical = "gemma_scope_canonical"
    gemma_scope = "gemma_scope"
    llama_scope = "llama_scope"
    local = "local"
    planted = "planted"


class DataSource(str, Enum):
    stdlib = "stdlib"
    stdlib_code = "stdlib_code"
    stdlib_prose = "stdlib_prose"
    openwebtext = "openwebtext"
    code = "code"
    wikitext = "wikitext"
    local_text = "local_text"


class JudgeKind(str, Enum):
    lexical = "lexical"
    openai = "openai"
    hf_local = "hf_local"
    embedding = "embedding"


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
class SAESetConfig:
    kind: SAESetKind = SAESetKind.zoo
    repo_id: str | None = None
    sparsity: str | None = None
    layers: list[int] | None = None
    sae_ids: dict[int, str] = field(default_factory=dict)
    # kind=planted only: the preset (default | test | 16k) and knobs of saematch.planted
    size: str = "default"
    knobs: dict[str, Any] = field(default_factory=dict)


@dataclass
class MatchingConfig:
    mode: MatchMode = MatchMode.both
    fold: bool = True
    solver: Solver = Solver.auto
    cache: bool = True


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
class JudgeConfig:
    kind: JudgeKind = JudgeKind.lexical
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    timeout_s: float = 60.0
    thresholds: list[float] = field(default_factory=list)


class DescriptionsKind(str, Enum):
    zoo = "zoo"
    json = "json"
    export = "export"
    api = "api"


@dataclass
class DescriptionsConfig:
    kind: DescriptionsKind = DescriptionsKind.zoo
    path: str | None = None  # json: template over {layer}
    root: str | None = None  # export: folder of Neuronpedia exports
    model: str | None = None  # Neuronpedia model id, e.g. gemma-2-2b
    source: str | None = None  # Neuronpedia source id template, e.g. "{layer}-gemmascope-res-16k"


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
    saes: SAESetConfig = field(default_factory=SAESetConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    descriptions: DescriptionsConfig = field(default_factory=DescriptionsConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Each experiment checks its own options against its dataclass (experiments/registry.py).
    experiment: Any = MISSING
    seed: int = 0
    dry_run: bool = False


def register_schemas() -> None:
    """Put the schemas into Hydra's ConfigStore (the primary config lists `config_schema`)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
