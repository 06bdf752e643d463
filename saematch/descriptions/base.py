"""Feature descriptions: feature index -> text, from a dict or a JSON file; the picking rule.

Missing descriptions are returned as None, counted in `.missing` and reported with
`warnings.warn`; they are never invented. Callers skip pairs with a missing side.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from saematch.atomic import atomic_write_text


def pick_explanation(
    explanations: Iterable[Mapping[str, Any]],
    prefer_models: Sequence[str] = (),
    prefer_types: Sequence[str] = (),
) -> str | None:
    """Choose one description among a feature's Neuronpedia explanations, deterministically.

    Rule: drop explanations with an empty `description`; if any has `explanationModelName`
    equal to the first of `prefer_models` present, keep only those (likewise, then, for
    `typeName` and `prefer_types`); return the first of the rest ordered by
    (typeName, explanationModelName, description). None when nothing is left.
    """
    cands = [e for e in explanations if str(e.get("description") or "").strip()]
    for field, prefs in (("explanationModelName", prefer_models), ("typeName", prefer_types)):
        for p in prefs:
            hit = [e for e in cands if e.get(field) == p]
            if hit:
                cands = hit
                break
    if not cands:
        return None

    def order(e: Mapping[str, Any]) -> tuple[str, str, str]:
        return (
            str(e.get("typeName") or ""),
            str(e.get("explanationModelName") or ""),
            str(e["description"]).strip(),
        )

    return order(min(cands, key=order))[2]


class DescriptionSource(ABC):
    """Feature index -> description text, or None when the source has none."""

    def __init__(self) -> None:
        self.missing: set[int] = set()  # every index asked for that had no description

    @abstractmethod
    def _lookup(self, index: int) -> str | None:
        """The raw description of feature `index`, or None."""

    def get(self, index: int | str) -> str | None:
        """Description of feature `index`, or None (recorded in `.missing`)."""
        idx = int(index)
        text = self._lookup(idx)
        if text is None or not str(text).strip():
            self.missing.add(idx)
            return None
        return str(text).strip()

    def get_many(self, indices: Iterable[int | str]) -> dict[int, str | None]:
        """Descriptions of many features; warns once with the count of missing ones."""
        out = {int(i): self.get(i) for i in indices}
        lost = sorted(i for i, t in out.items() if t is None)
        if lost:
            warnings.warn(
                f"{len(lost)} of {len(out)} features have no description in {self!r} "
                f"(e.g. {lost[:10]}); they are skipped, not invented",
                stacklevel=2,
            )
        return out


class DictDescriptions(DescriptionSource):
    """Descriptions from an in-memory mapping {index: text} (keys may be str or int)."""

    def __init__(self, mapping: Mapping[int | str, str | None], name: str = "dict"):
        super().__init__()
        self.name = name
        self._map = {int(k): v for k, v in mapping.items()}

    def _lookup(self, index: int) -> str | None:
        return self._map.get(index)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"DictDescriptions({self.name}, {len(self._map)} features)"


def load_json_descriptions(path: str | os.PathLike) -> DictDescriptions:
    """Read a `descriptions.json` file: a JSON object {"<index>": "text"}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no descriptions file at {path}: expected a JSON object")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object {{index: text}}, got {type(data)}")
    bad = [k for k in data if not str(k).lstrip("-").isdigit()]
    if bad:
        raise ValueError(f"{path}: keys must be feature indices, found {bad[:5]}")
    return DictDescriptions(data, name=str(path))


def save_json_descriptions(mapping: Mapping[int, str], path: str | os.PathLike) -> Path:
    """Write {index: text} as `descriptions.json` (sorted by index, atomic)."""
    items = {str(k): mapping[k] for k in sorted(mapping, key=int)}
    return atomic_write_text(path, json.dumps(items, indent=1, ensure_ascii=False))
