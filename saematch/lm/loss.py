"""Next-token cross-entropy, metric masks and batch chunking (docs/method.md §4–5)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


def default_metric_mask(
    input_ids: Tensor, attention_mask: Tensor | None = None, bos_token_id: int | None = None
) -> Tensor:
    """(B, T) bool: tokens that count in metrics — not position 0, not padding, not BOS.

    docs/method.md §4: BOS stays a model input but is excluded from every metric.
    """
    mask = torch.ones_like(input_ids, dtype=torch.bool)
    mask[:, 0] = False
    if attention_mask is not None:
        mask &= attention_mask.bool()
    if bos_token_id is not None:
        mask &= input_ids != bos_token_id
    return mask


def token_ce(logits: Tensor, input_ids: Tensor) -> Tensor:
    """Per-token next-token CE in nats, aligned to the *target* position: (B, T) float32.

    out[b, j] = −log softmax(logits[b, j − 1])[input_ids[b, j]] for j ≥ 1; out[:, 0] = 0
    (position 0, the BOS, is never a target).
    """
    B, T, V = logits.shape  # (B, T, V)
    if input_ids.shape != (B, T):
        raise ValueError(f"input_ids {tuple(input_ids.shape)} does not match logits {(B, T, V)}")
    target = torch.full_like(input_ids, -100, device=logits.device)  # (B, T): next token
    target[:, :-1] = input_ids[:, 1:]
    ce = F.cross_entropy(logits.float().reshape(-1, V), target.reshape(-1), reduction="none")
    return ce.view(B, T).roll(1, dims=1)  # ce at j−1 -> out[j]; ignored last -> out[0] = 0


def ce_loss(logits: Tensor, input_ids: Tensor, metric_mask: Tensor) -> float:
    """Mean next-token CE (nats) over target tokens where metric_mask (B, T) is True."""
    tok = token_ce(logits, input_ids)
    m = metric_mask.to(tok.device).bool().clone()
    m[:, 0] = False  # position 0 has no prediction
    n = int(m.sum())
    if n == 0:
        raise ValueError("metric_mask selects no predicted token (all False after position 0)")
    return float(tok[m].sum() / n)


def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Slices [0:bs], [bs:2bs], … covering range(n), to process (N, T) batches piecewise."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
