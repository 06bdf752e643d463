"""The `model` config group: `_target_`-built language models (the zoo's, or any HF causal LM).

    # conf/model/hf.yaml
    _target_: saematch.lm.LanguageModel.load
    name: ???              # hub id or local folder
    batch_size: 8          # read by the experiments (MODEL_SKELETON), not passed to the target

A target gets `zoo` from the Context when it has a parameter of that name (MODEL_EXTRAS).
"""

from __future__ import annotations

from omegaconf import DictConfig

from saematch.lm import LanguageModel
from saematch_experiments.harness.targets import build

MODEL_SKELETON = ("batch_size", "zoo_size")  # read by the experiments, not passed to the target
MODEL_EXTRAS = ("zoo",)


def zoo_model(zoo, dtype: str = "float32", device: str = "cpu") -> LanguageModel:
    """The built-in zoo's tiny Gemma 2 model (docs/method.md §8), read from its folder."""
    return LanguageModel.load(str(zoo.model_dir), dtype=dtype, device=device)


def build_model(cfg: DictConfig, ctx) -> LanguageModel:
    """The LanguageModel of cfg.model (the zoo built on first use when the target takes it)."""
    return build(cfg.model, "model", own=MODEL_SKELETON, zoo=lambda: ctx.zoo)
