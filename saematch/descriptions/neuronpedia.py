"""Neuronpedia feature descriptions: bulk exports on disk, or the web API with a disk cache.

Bulk export layout (as published in Neuronpedia's dataset bucket, prefix `v1/`):
`{root}/{model}/{source}/explanations/batch-*.jsonl.gz`, one explanation object per line with
`modelId`, `layer` (the source id, e.g. `20-gemmascope-res-16k`), `index` (int or str),
`description`, and usually `typeName` and `explanationModelName`.
Several explanations of one feature are reduced to one by `pick_explanation`.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from saematch.atomic import atomic_write_text
from saematch.descriptions.base import DescriptionSource, pick_explanation
from saematch.descriptions.http import (
    HTTPStatusError,
    RateLimiter,
    RetryPolicy,
    request_json,
)

DEFAULT_BASE_URL = "https://www.neuronpedia.org"
KEPT_FIELDS = ("description", "typeName", "explanationModelName")


def default_cache_root() -> Path:
    """`$SAEMATCH_CACHE`, else `~/.cache/saematch`."""
    return Path(os.environ.get("SAEMATCH_CACHE") or Path.home() / ".cache" / "saematch")


class NeuronpediaExport(DescriptionSource):
    """Descriptions of one SAE (`model`, `source`) from a local Neuronpedia bulk export."""

    def __init__(
        self,
        root: str | os.PathLike,
        model: str,
        source: str,
        prefer_models: Sequence[str] = (),
        prefer_types: Sequence[str] = (),
    ):
        super().__init__()
        self.folder = Path(root) / model / source / "explanations"
        self.model, self.source = model, source
        self.prefer_models, self.prefer_types = tuple(prefer_models), tuple(prefer_types)
        self._table: dict[int, str] | None = None

    def _load(self) -> dict[int, str]:
        files = sorted(self.folder.glob("batch-*.jsonl.gz"))
        if not files:
            raise FileNotFoundError(
                f"no Neuronpedia export at {self.folder}: expected batch-*.jsonl.gz files "
                f"(download v1/{self.model}/{self.source}/explanations/ from Neuronpedia's "
                "dataset exports)"
            )
        grouped: dict[int, list[dict[str, Any]]] = {}
        for f in files:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError as e:
                        raise ValueError(f"{f}:{n} is not a JSON object: {e}") from e
                    if row.get("layer", self.source) != self.source:
                        continue
                    if row.get("modelId", self.model) != self.model:
                        continue
                    grouped.setdefault(int(row["index"]), []).append(row)
        table = {}
        for idx, rows in grouped.items():
            text = pick_explanation(rows, self.prefer_models, self.prefer_types)
            if text is not None:
                table[idx] = text
        return table

    def _lookup(self, index: int) -> str | None:
        if self._table is None:
            self._table = self._load()
        return self._table.get(index)

    def __len__(self) -> int:
        if self._table is None:
            self._table = self._load()
        return len(self._table)

    def __repr__(self) -> str:
        return f"NeuronpediaExport({self.model}/{self.source} at {self.folder})"


class NeuronpediaAPI(DescriptionSource):
    """Descriptions fetched from `GET {base_url}/api/feature/{model}/{source}/{index}`.

    Each answer (its explanations, or "not found" for HTTP 404) is cached as one JSON file
    `{cache_dir}/{model}/{source}/{index}.json`, written atomically, so reruns make no
    requests. The key `$NEURONPEDIA_API_KEY`, if set, goes in the `x-api-key` header only.
    """

    def __init__(
        self,
        model: str,
        source: str,
        base_url: str = DEFAULT_BASE_URL,
        cache_dir: str | os.PathLike | None = None,
        max_requests_per_s: float | None = 5.0,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        prefer_models: Sequence[str] = (),
        prefer_types: Sequence[str] = (),
        api_key_env: str = "NEURONPEDIA_API_KEY",
    ):
        super().__init__()
        self.model, self.source = model, source
        self.base_url = base_url.rstrip("/")
        root = Path(cache_dir) if cache_dir else default_cache_root() / "neuronpedia"
        self.cache_folder = root / model / source
        self.limiter = RateLimiter(max_requests_per_s)
        self.timeout, self.retry = timeout, retry or RetryPolicy()
        self.prefer_models, self.prefer_types = tuple(prefer_models), tuple(prefer_types)
        self.api_key_env = api_key_env
        self.requests = 0  # HTTP attempts made (retries included)
        self.cache_hits = 0
        self._lock = threading.Lock()

    def _count(self, event: str) -> None:
        if event == "request":
            with self._lock:
                self.requests += 1

    def fetch(self, index: int) -> dict[str, Any]:
        """The cached record {"found": bool, "explanations": [...]} of one feature."""
        path = self.cache_folder / f"{int(index)}.json"
        if path.is_file():
            with self._lock:
                self.cache_hits += 1
            return json.loads(path.read_text(encoding="utf-8"))
        url = f"{self.base_url}/api/feature/{self.model}/{self.source}/{int(index)}"
        key = os.environ.get(self.api_key_env, "")
        headers = {"x-api-key": key} if key else {}
        try:
            body = request_json(
                "GET",
                url,
                headers=headers,
                timeout=self.timeout,
                retry=self.retry,
                secrets=(key,),
                limiter=self.limiter,
                on_event=self._count,
            )
            exps = (body.get("explanations") or []) if isinstance(body, dict) else []
            record = {
                "found": isinstance(body, dict) and bool(body),
                "explanations": [{k: e.get(k) for k in KEPT_FIELDS} for e in exps],
            }
        except HTTPStatusError as e:
            if e.status != 404:
                raise
            record = {"found": False, "explanations": []}
        atomic_write_text(path, json.dumps(record, ensure_ascii=False))
        return record

    def _lookup(self, index: int) -> str | None:
        rec = self.fetch(index)
        return pick_explanation(rec["explanations"], self.prefer_models, self.prefer_types)

    def __repr__(self) -> str:
        return f"NeuronpediaAPI({self.model}/{self.source} at {self.base_url})"
