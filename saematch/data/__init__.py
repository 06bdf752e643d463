"""Text corpora and token batches."""
