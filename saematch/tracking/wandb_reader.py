"""Read an offline W&B run (`run-<id>.wandb`) without the network or a W&B account.

wandb >= 0.30 has no public reader for this file, so this module decodes it directly.
Format (written by the Go `wandb-core`, package `core/pkg/leveldb`; checked on wandb 0.31):

* File header, 7 bytes: b":W&B", magic 0xBEE1 (uint16 LE), version 0 (uint8).
* The file is cut into 32 KiB blocks (the header counts toward block 0). Each chunk has a
  7-byte header `<IHB`: checksum (uint32 LE), data length (uint16 LE), chunk type
  (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST); a record longer than a block's remaining space is
  split into FIRST, MIDDLE..., LAST. When fewer than 7 bytes remain in a block they are
  zero padding. An all-zero header means preallocated space: skip to the next block.
* The checksum is **CRC-32 (IEEE, zlib) of the data, seeded with the CRC-32 of the type
  byte** (`zlib.crc32(data, zlib.crc32(bytes([type])))`), not LevelDB's masked CRC-32C.
* Each record is a serialized `wandb.proto.wandb_internal_pb2.Record`. Items carry either
  `key` or `nested_key` (a path; wandb 0.31 uses `nested_key`) and a JSON `value_json`.
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
MAGIC_IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_SEED = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


def iter_raw_records(path: Path | str, strict: bool = True) -> Iterator[bytes]:
    """Yield each record's bytes from a .wandb file, checking every chunk's checksum.

    A truncated last record (a run that crashed mid-write) ends the iteration; with
    `strict=False` a bad checksum also ends it instead of raising ValueError.
    """
    data = Path(path).read_bytes()
    if len(data) < HEADER.size:
        raise ValueError(f"{path}: {len(data)} bytes is too short for a W&B run file")
    ident, magic, version = HEADER.unpack_from(data, 0)
    if (ident, magic) != (MAGIC_IDENT, MAGIC):
        raise ValueError(f"{path}: not a W&B run file (header {data[:7]!r})")
    if version != VERSION:
        raise ValueError(f"{path}: W&B file format version {version}, this reader knows 0")
    pos, pending = HEADER.size, None
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK.size:  # block trailer padding
            pos += left
            continue
        if pos + CHUNK.size > len(data):
            return
        crc, length, kind = CHUNK.unpack_from(data, pos)
        if crc == length == kind == 0:  # preallocated zeros
            pos += left
            continue
        body = data[pos + CHUNK.size : pos + CHUNK.size + length]
        if len(body) < length:
            return  # truncated tail
        if kind not in _SEED or zlib.crc32(body, _SEED[kind]) != crc:
            if strict:
                raise ValueError(f"{path}: corrupt chunk at byte {pos} (type {kind}, bad CRC)")
            return
        pos += CHUNK.size + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pending = bytearray(body)
        elif pending is not None:
            pending += body
            if kind == LAST:
                yield bytes(pending)
                pending = None


def iter_records(path: Path | str, strict: bool = True) -> Iterator[Any]:
    """Yield each record of a .wandb file as a `wandb_internal_pb2.Record` protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    for raw in iter_raw_records(path, strict=strict):
        rec = pb.Record()
        rec.ParseFromString(raw)
        yield rec


def wait_for_exit(path: Path | str, timeout: float = 10.0) -> bool:
    """Wait until the .wandb file holds its exit record; False if `timeout` s pass first.

    wandb-core 0.31 flushes the file asynchronously: `run.finish()` can return while the
    file still holds only its 7-byte header (seen in 4 of 6 offline runs here; flushed
    within 50 ms).
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            if any(r.WhichOneof("record_type") == "exit" for r in iter_records(path, False)):
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _key(item: Any) -> list[str]:
    return list(item.nested_key) or [item.key]


def _set(d: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1]] = value


def _remove(d: dict, keys: list[str]) -> None:
    for k in keys[:-1]:
        d = d.get(k)
        if not isinstance(d, dict):
            return
    d.pop(keys[-1], None)


def _apply(d: dict, update: Any) -> None:
    """Apply a ConfigRecord/SummaryRecord (update then remove items) to the dict `d`."""
    for item in update.update:
        _set(d, _key(item), json.loads(item.value_json))
    for item in update.remove:
        _remove(d, _key(item))


def _load_tables(files_dir: Path, history: list[dict[str, Any]]) -> dict[str, list[dict]]:
    """Rows of each wandb.Table logged in `history`, read from the run's media files."""
    tables: dict[str, list[dict]] = {}
    for row in history:
        for key, v in row.items():
            if isinstance(v, dict) and v.get("_type") == "table-file":
                f = files_dir / v.get("path", "")
                if f.is_file():
                    t = json.loads(f.read_text())
                    tables[key] = [dict(zip(t["columns"], r, strict=True)) for r in t["data"]]
    return tables


def find_offline_runs(path: Path | str) -> list[Path]:
    """All `run-*.wandb` files under `path` (a .wandb file, a run folder, or above), sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    found = sorted(path.glob("**/offline-run-*/run-*.wandb")) or sorted(path.glob("run-*.wandb"))
    return found


def read_offline_run(path: Path | str, strict: bool = True) -> dict[str, Any]:
    """Decode an offline W&B run: history rows, summary, config, files, artifacts.

    `path` is the .wandb file, its `offline-run-*` folder, or any folder above (e.g. the
    experiment's run_dir); with several runs below it, the newest (by name) is read.
    Returns {"run_id", "project", "name", "group", "tags", "config", "history" (list of
    dicts, JSON-decoded, incl. _step/_runtime/_timestamp), "summary", "files",
    "artifacts", "tables" ({history key: list of row dicts} for every logged wandb.Table
    whose JSON file is on disk), "exit_code" (None if the run never finished), "path"}.
    """
    runs = find_offline_runs(path)
    if not runs:
        raise FileNotFoundError(
            f"no offline W&B run (wandb/offline-run-*/run-*.wandb) under {path}; was the run "
            "made with mode='offline' and dir set to this folder?"
        )
    out: dict[str, Any] = {
        "path": str(runs[-1]), "run_id": None, "project": None, "name": None, "group": None,
        "tags": [], "config": {}, "history": [], "summary": {}, "files": [],
        "artifacts": [], "exit_code": None,
    }  # fmt: skip
    for rec in iter_records(runs[-1], strict=strict):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.update(run_id=r.run_id, project=r.project, name=r.display_name)
            out.update(group=r.run_group, tags=list(r.tags))
            _apply(out["config"], r.config)
            _apply(out["summary"], r.summary)
        elif kind == "config":
            _apply(out["config"], rec.config)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in rec.history.item:
                _set(row, _key(item), json.loads(item.value_json))
            out["history"].append(row)
        elif kind == "summary":
            _apply(out["summary"], rec.summary)
        elif kind == "files":
            out["files"] += [f.path for f in rec.files.files if f.path not in out["files"]]
        elif kind == "artifact":
            a = rec.artifact
            entries = [c.path for c in a.manifest.contents]
            out["artifacts"].append({"name": a.name, "type": a.type, "digest": a.digest,
                                     "files": entries})  # fmt: skip
        elif kind == "exit":
            out["exit_code"] = rec.exit.exit_code
    out["tables"] = _load_tables(runs[-1].parent / "files", out["history"])
    out["config"].pop("_wandb", None)
    out["summary"].pop("_wandb", None)
    return out
