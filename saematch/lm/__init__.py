"""The model runner: resid_post capture, resumption from a block, and the LM loss."""

from saematch.lm.loss import ce_loss, chunks, default_metric_mask, token_ce
from saematch.lm.runner import LanguageModel

__all__ = ["LanguageModel", "ce_loss", "chunks", "default_metric_mask", "token_ce"]
