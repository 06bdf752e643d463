"""Feature descriptions (index -> text) for the judge: dict/JSON, Neuronpedia exports or API."""

from __future__ import annotations

from typing import Any

from saematch.descriptions.base import (
    DescriptionSource,
    DictDescriptions,
    load_json_descriptions,
    pick_explanation,
    save_json_descriptions,
)
from saematch.descriptions.http import RetryPolicy
from saematch.descriptions.neuronpedia import NeuronpediaAPI, NeuronpediaExport


def build_descriptions(kind: str, **kw: Any) -> DescriptionSource:
    """Make a description source by name: json (path=) | export (root=, model=, source=) | api."""
    if kind == "json":
        return load_json_descriptions(kw["path"])
    if kind == "export":
        return NeuronpediaExport(**kw)
    if kind == "api":
        return NeuronpediaAPI(**kw)
    raise ValueError(f"unknown description source {kind!r}; use json, export or api")


__all__ = [
    "DescriptionSource",
    "DictDescriptions",
    "NeuronpediaAPI",
    "NeuronpediaExport",
    "RetryPolicy",
    "build_descriptions",
    "load_json_descriptions",
    "pick_explanation",
    "save_json_descriptions",
]
