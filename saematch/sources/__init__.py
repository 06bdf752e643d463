"""Loaders: Gemma Scope, Llama Scope, SAELens releases, and this project's own files."""

from saematch.sources.gemma_scope import fetch_file, load_gemma_scope
from saematch.sources.llama_scope import convert_llama_scope, load_llama_scope
from saematch.sources.local import load_sae, save_sae
from saematch.sources.registry import resolve_set
from saematch.sources.saelens import load_saelens
from saematch.sources.sets import SAESet, SAESpec

__all__ = [
    "SAESet",
    "SAESpec",
    "convert_llama_scope",
    "fetch_file",
    "load_gemma_scope",
    "load_llama_scope",
    "load_sae",
    "load_saelens",
    "resolve_set",
    "save_sae",
]
