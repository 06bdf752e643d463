"""A corpus as a token batch in one call: the target of the `data` config group.

    # conf/data/openwebtext.yaml
    _target_: saematch.data.corpus_batch
    source: openwebtext
    n_examples: 100
    seq_len: 1024

The tokenizer (and the model's BOS id) come from the run's language model.
"""

from __future__ import annotations

import os

from saematch.data.batches import TokenBatch, make_batch
from saematch.data.sources import load_texts


def corpus_batch(
    tokenizer,
    source: str = "stdlib",
    split: str = "heldout",
    path: str | os.PathLike | None = None,
    text_key: str = "text",
    n_examples: int = 32,
    seq_len: int = 128,
    seed: int = 0,
    bos_token_id: int | None = None,
) -> TokenBatch:
    """n_examples rows of seq_len tokens ([BOS] + text) from `source` (saematch.data.load_texts
    names them), documents in a seeded order; 4 × n_examples documents (≥ 64) are read."""
    texts = load_texts(
        source,
        split=split,
        path=path,
        text_key=text_key,
        n_docs=max(4 * int(n_examples), 64),
        seed=int(seed),
    )
    return make_batch(
        texts,
        tokenizer,
        n_examples=int(n_examples),
        seq_len=int(seq_len),
        seed=int(seed),
        bos_token_id=bos_token_id,
    )
