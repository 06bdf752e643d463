"""Typed schemas for the config groups (Hydra ConfigStore): a typo or a wrong type fails early."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from saematch.matching.options import DEFAULTS as MATCH

RUN_ID = secrets.token_hex(3)  # one per process: the suffix of its run folders


class MatchMode(str, Enum):
    encoder = "encoder"
    decoder = "decoder"
    both = "both"


@dataclass
class MatchingConfig:
    # defaults: the library's (saematch.matching.options.MatchOptions), one place for each
    mode: MatchMode = MatchMode(MATCH.mode)
    fold: bool = MATCH.fold
    # weight of the b_enc term (Δb_enc)² in mode both; 0 = the paper's cost (a departure if > 0)
    bias_weight: float = MATCH.bias_weight
    # `_target_` node from conf/matching/solver/, or its file's name (matching.solver=scipy)
    solver: Any = MISSING
    cache: bool = True
    max_memory: str | None = MATCH.max_memory  # e.g. "6GB"; None: half the available memory
    device: str = MATCH.device  # auto | cpu | cuda
    bound_gemm: str = MATCH.bound_gemm  # auto | int8 | fp32: the GEMM of solver=auto's bound
    unmatched: str | None = MATCH.unmatched  # none | auto | a number ρ (relative reject cost)
    confidence: bool = MATCH.confidence  # swap regret per pair, in the match files
    top_k: int = MATCH.top_k  # predecessors kept per feature of layer t+1 (0: none)
    splits: bool = MATCH.splits  # split detector (two close successors of one feature)


@dataclass
class PathsConfig:
    cache_dir: str = MISSING
    output_root: str = "outputs"


@dataclass
class Config:
    # `_target_` groups: checked against their target's signature (experiments/harness/targets.py)
    model: Any = MISSING
    saes: Any = MISSING
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    data: Any = MISSING
    judge: Any = MISSING
    descriptions: Any = MISSING
    logger: Any = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    # Each experiment checks its own options against its dataclass (harness/registry.py).
    experiment: Any = MISSING
    seed: int = 0
    dry_run: bool = False
    explorer: bool = False  # also write explorer.html for the run's matchings


def register_schemas() -> None:
    """Put the schemas into Hydra's ConfigStore (the primary config lists `config_schema`) and
    register the `${run_id:}` and `${run_name:}` resolvers of the run folder names."""
    from saematch_experiments.harness.run_folder import run_name

    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: RUN_ID)
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", run_name)
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
