"""Config values as plain Python, for code that must not hold OmegaConf nodes."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def plain(node: Any) -> Any:
    """A config node as plain Python (enums as strings)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    return getattr(node, "value", node)
