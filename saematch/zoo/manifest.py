"""The zoo manifest: every artifact with its sha256, plus config and metrics; and its check."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT = "saematch-zoo/2"  # 2: SAEs in Gemma Scope units (θ, f in input units)


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path) -> dict[str, dict]:
    """{relative posix path: {"sha256", "bytes"}} for every file under root except the manifest."""
    table = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != MANIFEST:
            table[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return table


def write_manifest(root: Path, manifest: dict) -> dict:
    """Add the file table to `manifest` and write root/manifest.json (last step of a build)."""
    manifest = {"format": FORMAT, **manifest, "files": file_table(root)}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False))
    return manifest


def read_manifest(root: Path) -> dict:
    """Parse root/manifest.json; FileNotFoundError / ValueError when missing or malformed."""
    path = root / MANIFEST
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} manifest")
    return manifest


def verify(root: Path, expect: dict | None = None) -> list[str]:
    """Problems with the zoo at root ([] = intact): missing manifest, missing/changed files,
    or entries differing from `expect` (e.g. {"size": "test", "seed": 0, "config": {...}})."""
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError) as e:
        return [f"manifest unreadable: {e}"]
    problems = []
    for k, v in (expect or {}).items():
        got = manifest.get(k)
        if got == v:
            continue
        if isinstance(v, dict) and isinstance(got, dict):  # e.g. the config: name the keys
            keys = sorted(set(v) ^ set(got) | {x for x in set(v) & set(got) if v[x] != got[x]})
            problems.append(f"manifest {k} differs in {', '.join(keys)} (built by other code)")
        else:
            problems.append(f"manifest {k}={got!r}, expected {v!r}")
    files = manifest.get("files")
    if not files:
        problems.append("manifest lists no files")
    for rel, entry in (files or {}).items():
        p = root / rel
        if not p.is_file():
            problems.append(f"missing file {rel}")
        elif p.stat().st_size != entry["bytes"] or sha256_file(p) != entry["sha256"]:
            problems.append(f"checksum mismatch {rel}")
    return problems
