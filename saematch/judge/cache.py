"""On-disk cache of judge answers: one JSON file per key, written atomically.

Key = sha256 of the JSON list [model, system prompt, user message]; the API key and the
endpoint URL are not part of it, so a rerun in any run directory (or against a mirror of
the same model) costs zero calls. Files live at `{root}/{model}/{key[:2]}/{key}.json`; writes
go through a temporary file and `os.replace`, so concurrent processes never see half a file.
Only answers are cached (never failures); the label is re-parsed from `raw` on every read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from saematch.atomic import atomic_write_text

FORMAT = "saematch-judge-cache/1"


def default_cache_dir() -> Path:
    """`<$SAEMATCH_CACHE or ~/.cache/saematch>/judge`."""
    root = os.environ.get("SAEMATCH_CACHE") or Path.home() / ".cache" / "saematch"
    return Path(root) / "judge"


def cache_key(model: str, system: str, user: str) -> str:
    """sha256 hex of [model, system, user] (JSON-encoded, so fields cannot run together)."""
    blob = json.dumps([model, system, user], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Answers of one judge model under `root` (default `default_cache_dir()`)."""

    def __init__(self, model: str, root: str | os.PathLike | None = None):
        self.model = model
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._") or "model"
        self.folder = Path(root) if root else default_cache_dir()
        self.folder = self.folder / slug

    def path(self, key: str) -> Path:
        """File holding entry `key`."""
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None (a missing or unreadable file is a miss)."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return entry if isinstance(entry, dict) and "raw" in entry else None

    def put(self, key: str, user: str, raw: str, usage: dict[str, Any] | None = None) -> None:
        """Store one answer atomically."""
        path = self.path(key)
        entry = {
            "format": FORMAT,
            "key": key,
            "model": self.model,
            "user": user,
            "raw": raw,
            "usage": usage or {},
            "created_unix": time.time(),
        }
        atomic_write_text(path, json.dumps(entry, ensure_ascii=False))

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.is_dir() else 0
