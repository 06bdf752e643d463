"""Token batches (docs/method.md §4): N examples of T tokens, BOS kept as input but masked from
metrics.

T = seq_len counts the BOS: each row is [BOS] + seq_len − 1 document tokens (the paper truncates
examples to 1024 tokens; we read that as 1024 model inputs). Selection is seeded and greedy:
documents are visited in a seeded random order and every document with at least seq_len − 1
tokens gives one row (its first tokens). If fewer than n_examples documents are that long, the
rest (short documents whole, long ones from token seq_len − 1 on; same order) is packed: the
pieces are concatenated, each followed by the tokenizer's EOS when it has one, and cut into rows
of seq_len − 1 after a BOS. A last partial row is right-padded (attention_mask 0, metric_mask
False). Caches are safetensors, no pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

BATCH_KEYS = ("input_ids", "attention_mask", "metric_mask")


@dataclass(eq=False)
class TokenBatch:
    """Model inputs and the mask of tokens that count in metrics (False at BOS and padding)."""

    input_ids: Tensor  # (N, T) long, column 0 is BOS
    attention_mask: Tensor  # (N, T) long, 0 at padding
    metric_mask: Tensor  # (N, T) bool
    meta: dict = field(default_factory=dict)  # JSON-able provenance (seed, doc_index, ...)

    def __post_init__(self) -> None:
        self.input_ids = torch.as_tensor(self.input_ids, dtype=torch.long)
        self.attention_mask = torch.as_tensor(self.attention_mask, dtype=torch.long)
        self.metric_mask = torch.as_tensor(self.metric_mask, dtype=torch.bool)
        shape = tuple(self.input_ids.shape)
        if len(shape) != 2:
            raise ValueError(f"input_ids must be (N, T), got shape {shape}")
        for k in BATCH_KEYS[1:]:
            if tuple(getattr(self, k).shape) != shape:
                raise ValueError(f"{k} has shape {tuple(getattr(self, k).shape)}, expected {shape}")

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, idx) -> TokenBatch:
        """Rows idx (a slice or index tensor) as a new TokenBatch."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return TokenBatch(
            self.input_ids[idx], self.attention_mask[idx], self.metric_mask[idx], dict(self.meta)
        )

    @property
    def seq_len(self) -> int:
        """T, BOS included."""
        return self.input_ids.shape[1]

    @property
    def n_metric_tokens(self) -> int:
        """Number of tokens that count in metrics."""
        return int(self.metric_mask.sum())

    def to(self, device: str | torch.device) -> TokenBatch:
        """A copy with the three tensors on device."""
        return TokenBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.metric_mask.to(device),
            dict(self.meta),
        )

    def fingerprint(self) -> str:
        """A content hash of the token ids and masks (identity for caches)."""
        h = hashlib.blake2b(digest_size=16)
        for k in BATCH_KEYS:
            t = getattr(self, k).detach().cpu().contiguous()
            h.update(k.encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike) -> None:
        """Write as safetensors (meta as JSON in the header)."""
        save_batch(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenBatch:
        """Read a batch written by save()."""
        return load_batch(path)


def save_batch(batch: TokenBatch, path: str | os.PathLike) -> None:
    """Write batch to a .safetensors file; meta goes into the header as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: getattr(batch, k).detach().cpu().contiguous() for k in BATCH_KEYS}
    save_file(tensors, str(path), metadata={"meta": json.dumps(batch.meta)})


def load_batch(path: str | os.PathLike) -> TokenBatch:
    """Read a TokenBatch written by save_batch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no token batch at {path}; build one with make_batch and .save")
    with safe_open(str(path), framework="pt") as f:
        missing = [k for k in BATCH_KEYS if k not in f.keys()]  # noqa: SIM118
        if missing:
            raise ValueError(f"{path} is not a token batch: missing tensors {missing}")
        tensors = {k: f.get_tensor(k) for k in BATCH_KEYS}
        meta = json.loads((f.metadata() or {}).get("meta", "{}"))
    return TokenBatch(**tensors, meta=meta)


def chunks(batch: TokenBatch, batch_size: int) -> Iterator[TokenBatch]:
    """Consecutive sub-batches of at most batch_size rows."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i in range(0, len(batch), batch_size):
        yield batch[i : i + batch_size]


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of text without special tokens (HF tokenizer or a `tokenizers.Tokenizer`).

    Whole documents are encoded and windowed later, so a transformers tokenizer is told not
    to warn that a document is longer than its model_max_length (verbose=False)."""
    kw = {"verbose": False} if hasattr(tokenizer, "model_max_length") else {}
    out = tokenizer.encode(text, add_special_tokens=False, **kw)
    return list(out.ids) if hasattr(out, "ids") else list(out)


def make_batch(
    texts: Sequence[str],
    tokenizer,
    *,
    n_examples: int = 100,
    seq_len: int = 1024,
    seed: int = 0,
    bos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> TokenBatch:
    """n_examples rows of seq_len tokens ([BOS] + seq_len − 1 document tokens), seeded.

    Heads of long documents first, then packing of what is left (see the module docstring).
    bos/pad default to the tokenizer's; pad falls back to EOS, then 0 (it is never attended).
    """
    if seq_len < 2 or n_examples < 1:
        raise ValueError(f"need seq_len >= 2 and n_examples >= 1, got {seq_len}, {n_examples}")
    bos = bos_token_id if bos_token_id is not None else getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        raise ValueError("the tokenizer has no BOS token; pass bos_token_id=")
    eos = getattr(tokenizer, "eos_token_id", None)
    candidates = (pad_token_id, getattr(tokenizer, "pad_token_id", None), eos, 0)
    pad = next(t for t in candidates if t is not None)
    body = seq_len - 1
    rows: list[list[int]] = []
    doc_index: list[int] = []  # source document of each row, −1 for packed rows
    rest: list[list[int]] = []  # what packing may use, in visiting order
    sep = [eos] if eos is not None else []
    for i in np.random.default_rng(seed).permutation(len(texts)):
        if len(rows) == n_examples:
            break
        ids = encode_text(tokenizer, texts[i])
        if len(ids) >= body:
            rows.append(ids[:body])
            doc_index.append(int(i))
            if len(ids) > body:
                rest.append(ids[body:] + sep)
        elif ids:
            rest.append(ids + sep)
    n_long = len(rows)
    buf: list[int] = []
    for ids in rest:
        if len(rows) == n_examples:
            break
        buf.extend(ids)
        while len(buf) >= body and len(rows) < n_examples:
            rows.append(buf[:body])
            doc_index.append(-1)
            buf = buf[body:]
    if len(rows) < n_examples and buf:
        rows.append(buf)
        doc_index.append(-1)
    if not rows:
        raise ValueError("no tokens: every text is empty after tokenization")
    if len(rows) < n_examples:
        warnings.warn(
            f"only {len(rows)} of {n_examples} examples: the texts hold too few tokens",
            stacklevel=2,
        )
    N = len(rows)
    input_ids = torch.full((N, seq_len), pad, dtype=torch.long)
    attention = torch.zeros((N, seq_len), dtype=torch.long)
    for r, ids in enumerate(rows):
        input_ids[r, 0] = bos
        input_ids[r, 1 : 1 + len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[r, : 1 + len(ids)] = 1
    metric = attention.bool()
    metric[:, 0] = False  # BOS is input only
    meta = {
        "seed": seed,
        "seq_len": seq_len,
        "n_long": n_long,
        "n_packed": N - n_long,
        "bos_token_id": int(bos),
        "pad_token_id": int(pad),
        "doc_index": doc_index,
    }
    return TokenBatch(input_ids, attention, metric, meta)
