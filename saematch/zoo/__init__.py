"""The built-in tiny zoo (docs/method.md §8): a small Gemma 2 LM, JumpReLU SAEs on every layer, and
feature descriptions, built offline and deterministically from a seed and cached."""

from saematch.zoo.config import SIZES, ZooConfig, get_config
from saematch.zoo.manifest import verify
from saematch.zoo.store import Zoo, default_cache_dir, ensure_zoo, zoo_dir

__all__ = [
    "SIZES",
    "Zoo",
    "ZooConfig",
    "default_cache_dir",
    "ensure_zoo",
    "get_config",
    "verify",
    "zoo_dir",
]
