"""Layer pruning with matched features (Sec. 5.5, Fig. 9-11)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig


@dataclass
class Options:
    pairs: list[int] | None = None
    baselines: bool = True
    unfolded: bool = False


def run(cfg: DictConfig) -> dict:
    raise NotImplementedError
