"""Loaders: Gemma Scope, Llama Scope, SAELens releases, and this project's own files."""

from saematch.sources.local import load_sae, save_sae

__all__ = ["load_sae", "save_sae"]
