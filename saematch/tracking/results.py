"""Local run files: JSON-safe conversion, atomic JSON writes and CSV tables."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from saematch.atomic import atomic_write, atomic_write_text


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, Paths, sets and tuples to plain JSON types.

    Non-finite floats (nan, ±inf) become None so the file is strict JSON (readable by jq
    and JavaScript); everything unknown becomes its `str()`.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)  # numpy arrays/scalars and torch tensors
    if callable(tolist):
        if hasattr(obj, "detach"):
            obj = obj.detach().cpu()
        return to_jsonable(obj.tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return to_jsonable(item())
    return str(obj)


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write `obj` as indented strict JSON to `path` via a temp file and `os.replace`.

    A reader never sees a half-written file: either the old file or the complete new one.
    """
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def append_jsonl(path: Path, row: Mapping[str, Any]) -> None:
    """Append one JSON line to `path` (the crash-safe running log of metrics)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(to_jsonable(row), allow_nan=False) + "\n")


def table_columns(rows: list[Mapping[str, Any]]) -> list[str]:
    """Union of the rows' keys, in first-seen order."""
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(map(str, row)))
    return list(cols)


def write_csv(path: Path, rows: list[Mapping[str, Any]]) -> Path:
    """Write rows (dicts) as CSV with a header; missing cells are empty, nested values JSON."""
    rows = [to_jsonable(r) for r in rows]
    cols = table_columns(rows)

    def cell(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)

    def write(f) -> None:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([cell(r.get(c)) for c in cols])

    return atomic_write(path, write, text=True, newline="")
