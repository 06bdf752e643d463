"""A byte-level BPE tokenizer trained on the standard-library corpus, saved as a HF tokenizer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import Tensor
from transformers import PreTrainedTokenizerFast

PAD, EOS, BOS = "<pad>", "<eos>", "<bos>"
SPECIAL_TOKENS = (PAD, EOS, BOS)  # ids 0, 1, 2 as in Gemma (pad 0, eos 1, bos 2)


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE of `vocab_size` tokens (incl. <pad> <eos> <bos>) on `texts`.

    Deterministic for the same texts (checked by the zoo's rebuild test).
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=BOS,
        model_max_length=8192,
    )


def token_stream(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> Tensor:
    """Encode documents into one flat int64 stream (n_tokens,), each document followed by <eos>."""
    enc = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for e in enc:
        ids.extend(e.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def chunk_with_bos(stream: Tensor, seq_len: int, bos_id: int) -> Tensor:
    """Cut a stream into rows of seq_len - 1 tokens and prepend <bos>: (n_rows, seq_len)."""
    body = seq_len - 1
    n = stream.numel() // body
    rows = stream[: n * body].view(n, body)
    return torch.cat([torch.full((n, 1), bos_id, dtype=torch.long), rows], dim=1)
