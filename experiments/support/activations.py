"""How often each feature fires on a run's tokens (paths and steering choose features by it)."""

from __future__ import annotations

import numpy as np
import torch

from saematch.metrics import active
from saematch_experiments.harness.context import Context


def activation_frequency(ctx: Context, layers: list[int]) -> dict[int, np.ndarray]:
    """{layer: (F,) fraction of the run's tokens (ctx.activation_rows: non-BOS tokens of
    ctx.batch, or the planted world's stream) on which each feature fires}."""
    by = {L: s.to(ctx.act_device) for L, s in ctx.saes.items()}
    counts = {L: torch.zeros(by[L].width, dtype=torch.long) for L in layers}
    n = 0
    for rows in ctx.activation_rows(layers):  # (len(layers), n, d)
        n += rows.shape[1]
        for i, L in enumerate(layers):
            counts[L] += active(by[L], rows[i]).sum(0).cpu()
    if n == 0:
        raise ValueError("the batch has no non-BOS tokens; raise data.seq_len")
    return {L: c.numpy() / n for L, c in counts.items()}
