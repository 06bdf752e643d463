"""Steering: add feature directions to the residual stream and measure the next-token effect.

An addition a = {l: v_l} adds v_l (d,) to resid_post of block l at every position. For a
feature path (l, i_l) the direction at l is its folded decoder row θ_{l,i} W_dec^(l)[i] (the
feature at its threshold, eq. 4) times a scale α; "single" steering adds only the first layer's.
The effect on the next-token distribution, over the positions of a mask (non-BOS):

    KL     = mean_pos KL(p_steered ‖ p_clean)
    Δlogp  = mean_pos mean_{w ∈ W} (log p_steered(w) − log p_clean(w))     W: a token set

and the baseline is the same with random directions of the same norm at the same layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from saematch.lm.loss import chunks
from saematch.lm.sites import adding_to_resid
from saematch.sae import JumpReLUSAE


def path_additions(
    saes: dict[int, JumpReLUSAE], path: Sequence[tuple[int, int]], scale: float
) -> dict[int, Tensor]:
    """{layer: scale · θ_i W_dec[i]} for every (layer, feature) of the path."""
    out = {}
    for layer, i in path:
        sae = saes[layer]
        out[int(layer)] = float(scale) * sae.fold_threshold()[i].float() * sae.W_dec[i].float()
    return out


def random_like(add: dict[int, Tensor], generator: torch.Generator) -> dict[int, Tensor]:
    """Independent Gaussian directions with the norm of each add[l]."""
    out = {}
    for layer, v in add.items():
        r = torch.randn(v.shape, generator=generator, dtype=torch.float32)  # CPU generator
        out[layer] = (r / r.norm() * float(v.float().norm())).to(v.device)
    return out


@dataclass
class Effect:
    """Next-token effect of one addition, averaged over the masked positions."""

    kl: float
    delta_logp: dict[str, float]  # token-set name -> mean Δ log p


@torch.no_grad()
def log_probs(
    lm, input_ids: Tensor, add: dict[int, Tensor] | None = None, attention_mask=None
) -> Tensor:
    """Next-token log-probabilities (B, T, V), float32, with `add` applied to resid_post."""
    if not add:
        return F.log_softmax(lm.logits(input_ids, attention_mask).float(), dim=-1)
    with adding_to_resid(lm.layers, add):
        return F.log_softmax(lm.logits(input_ids, attention_mask).float(), dim=-1)


@torch.no_grad()
def steering_effect(
    lm,
    input_ids: Tensor,
    mask: Tensor,
    add: dict[int, Tensor],
    token_sets: dict[str, Tensor] | None = None,
    batch_size: int = 8,
    clean: list[Tensor] | None = None,
    attention_mask: Tensor | None = None,
) -> Effect:
    """KL(steered ‖ clean) and Δ log p of each token set, mean over mask (B, T) positions.

    `clean` (the unsteered log-probs per batch chunk, from `clean_log_probs`) saves a forward.
    """
    token_sets = token_sets or {}
    kl_sum, n = 0.0, 0
    d_sum = {k: 0.0 for k in token_sets}
    for c, s in enumerate(chunks(input_ids.shape[0], batch_size)):
        ids, m = input_ids[s], mask[s].to(lm.device)
        am = None if attention_mask is None else attention_mask[s]
        lp0 = clean[c] if clean is not None else log_probs(lm, ids, None, am)
        lp1 = log_probs(lm, ids, add, am)
        kl = (lp1.exp() * (lp1 - lp0)).sum(-1)  # (b, T)
        kl_sum += float(kl[m].sum())
        n += int(m.sum())
        for k, toks in token_sets.items():
            toks = toks.to(lm.device)
            d = (lp1[..., toks] - lp0[..., toks]).mean(-1)  # (b, T)
            d_sum[k] += float(d[m].sum())
    if n == 0:
        raise ValueError("the mask selects no position")
    return Effect(kl_sum / n, {k: v / n for k, v in d_sum.items()})


@torch.no_grad()
def clean_log_probs(
    lm, input_ids: Tensor, batch_size: int = 8, attention_mask: Tensor | None = None
) -> list[Tensor]:
    """The unsteered log-probs per chunk of batch_size rows (reuse across many additions)."""
    return [
        log_probs(lm, input_ids[s], None, None if attention_mask is None else attention_mask[s])
        for s in chunks(input_ids.shape[0], batch_size)
    ]


@torch.no_grad()
def generate(lm, input_ids: Tensor, add: dict[int, Tensor] | None, n_new: int) -> Tensor:
    """Greedy continuation (B, T + n_new) with `add` applied at every step (no KV cache)."""
    ids = input_ids.to(lm.device)
    for _ in range(int(n_new)):
        nxt = log_probs(lm, ids, add)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        ids = torch.cat([ids, nxt], dim=1)
    return ids
