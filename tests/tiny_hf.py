"""Tiny random Hugging Face causal LMs of each supported family, built from `transformers`
configs (no downloads) and saved with a small byte-level BPE tokenizer to a local folder."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf

V, D = 320, 32  # vocab (the BPE's 259 byte/special tokens + merges), d_model
SHARED = dict(vocab_size=V, bos_token_id=2, eos_token_id=1, pad_token_id=0)
ROTARY = dict(SHARED, hidden_size=D, intermediate_size=64, num_attention_heads=2)
ROTARY["max_position_embeddings"] = 256

# family -> (config class, its keyword arguments for n_layers layers)
FAMILIES = {
    "gpt2": lambda n: tf.GPT2Config(n_embd=D, n_layer=n, n_head=2, n_positions=256, **SHARED),
    "gpt_neox": lambda n: tf.GPTNeoXConfig(num_hidden_layers=n, rotary_pct=0.25, **ROTARY),
    "llama": lambda n: tf.LlamaConfig(num_hidden_layers=n, num_key_value_heads=1, **ROTARY),
    "mistral": lambda n: tf.MistralConfig(
        num_hidden_layers=n, num_key_value_heads=1, sliding_window=8, **ROTARY
    ),  # fmt: skip
    "qwen2": lambda n: tf.Qwen2Config(num_hidden_layers=n, num_key_value_heads=1, **ROTARY),
    "gemma": lambda n: tf.GemmaConfig(
        num_hidden_layers=n, num_key_value_heads=1, head_dim=16, **ROTARY
    ),  # fmt: skip
    "gemma2": lambda n: tf.Gemma2Config(
        num_hidden_layers=n,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=8,
        attn_implementation="eager",
        **ROTARY,
    ),  # fmt: skip
    "gemma3": lambda n: tf.Gemma3TextConfig(
        num_hidden_layers=n, num_key_value_heads=1, head_dim=16, sliding_window=8, **ROTARY
    ),  # fmt: skip
    "gemma3_multimodal": lambda n: tf.Gemma3Config(  # Gemma3ForConditionalGeneration
        text_config=FAMILIES["gemma3"](n).to_dict(),
        vision_config=tf.SiglipVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ).to_dict(),
        mm_tokens_per_image=4,
    ),  # fmt: skip
}


def tiny_model(family: str, n_layers: int = 4, seed: int = 0):
    """A random *ForCausalLM of `family` (FAMILIES), in eval mode."""
    torch.manual_seed(seed)
    cfg = FAMILIES[family](n_layers)
    return tf.AutoModelForCausalLM.from_config(cfg).eval()


def tiny_tokenizer():
    """A byte-level BPE of V tokens (<pad> 0, <eos> 1, <bos> 2) on a few lines of text."""
    from saematch.zoo.tokenizer import train_tokenizer

    texts = ["def f(x):\n    return x + 1\n", "the quick brown fox jumps over the lazy dog"] * 20
    return train_tokenizer(texts, vocab_size=V)


def save_tiny_model(family: str, folder: Path, n_layers: int = 4, seed: int = 0) -> Path:
    """tiny_model(family) and tiny_tokenizer() saved to `folder` (save_pretrained layout)."""
    tiny_model(family, n_layers, seed).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
