"""Train the zoo's small Gemma 2 causal LM from scratch on the standard-library token stream."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from transformers import Gemma2Config, Gemma2ForCausalLM

from saematch.zoo.config import ZooConfig
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads

# Bump when a change to the tokenizer or LM training code changes the model it trains: a zoo
# built by another LM_VERSION is rebuilt from scratch (zoo/store.py).
LM_VERSION = 1


def make_model(cfg: ZooConfig, pad_id: int, eos_id: int, bos_id: int) -> Gemma2ForCausalLM:
    """A freshly initialised Gemma2ForCausalLM of the zoo's size (eager attention, tied head).

    Layers alternate sliding-window (window < seq_len) and global attention, as in Gemma 2.
    """
    config = Gemma2Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        query_pre_attn_scalar=cfg.head_dim,
        max_position_embeddings=max(1024, cfg.seq_len),
        sliding_window=cfg.sliding_window,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=bos_id,
        tie_word_embeddings=True,
        use_cache=False,
        attn_implementation="eager",
    )
    return Gemma2ForCausalLM(config)


def lm_loss(model: Gemma2ForCausalLM, rows: Tensor) -> Tensor:
    """Mean next-token CE (nats) of rows (B, T), over predicted tokens 1..T-1 (never BOS)."""
    logits = model(input_ids=rows).logits  # (B, T, V)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), rows[:, 1:].reshape(-1)
    )


def lr_at(step: int, cfg: ZooConfig) -> float:
    """Linear warmup to lm_lr, then cosine decay to 10 % of it."""
    if step < cfg.lm_warmup:
        return cfg.lm_lr * (step + 1) / cfg.lm_warmup
    t = (step - cfg.lm_warmup) / max(1, cfg.lm_steps - cfg.lm_warmup)
    return cfg.lm_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train_lm(
    model: Gemma2ForCausalLM, rows: Tensor, cfg: ZooConfig, seed: int, progress: Progress
) -> list[float]:
    """AdamW on rows (n, seq_len) in a seeded order; returns the training loss per step."""
    g = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(rows), generator=g) for _ in range(2)])
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lm_lr, betas=(0.9, 0.95), weight_decay=0.01, eps=1e-8
    )
    model.train()
    losses: list[float] = []
    for step in range(cfg.lm_steps):
        if step % 50 == 49:  # other processes may have started or ended: re-pick the threads
            torch.set_num_threads(pick_threads(cfg.max_threads, torch.get_num_threads()))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        idx = order[(step * cfg.lm_batch) % len(order) :][: cfg.lm_batch]
        loss = lm_loss(model, rows[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        progress.step("lm step", step + 1, cfg.lm_steps, f"loss {loss.item():.3f}")
    model.eval()
    return losses


@torch.no_grad()
def heldout_ce(model: Gemma2ForCausalLM, rows: Tensor, batch: int = 32) -> float:
    """Mean CE (nats) over the non-BOS tokens of held-out rows (n, T)."""
    total, count = 0.0, 0
    for i in range(0, len(rows), batch):
        r = rows[i : i + batch]
        total += lm_loss(model, r).item() * r[:, 1:].numel()
        count += r[:, 1:].numel()
    return total / count


def unigram_entropy(stream: Tensor, vocab_size: int) -> float:
    """Entropy (nats) of the token frequency distribution: H = −Σ_v p_v log p_v."""
    p = torch.bincount(stream, minlength=vocab_size).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())
