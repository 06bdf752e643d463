"""Text corpora and token batches."""

from saematch.data.batches import TokenBatch, chunks, load_batch, make_batch, save_batch
from saematch.data.corpus import corpus_batch
from saematch.data.sources import DatasetUnavailableError, load_texts
from saematch.data.stdlib import stdlib_texts

__all__ = [
    "DatasetUnavailableError",
    "TokenBatch",
    "chunks",
    "corpus_batch",
    "load_batch",
    "load_texts",
    "make_batch",
    "save_batch",
    "stdlib_texts",
]
