"""Shared plumbing of the findings scripts (ground_truth_seeds.py, pruning_accuracy.py,
make_findings.py): which planted sets a result came from, the commit that made it, CSV files
with a JSON sidecar that says so, and a cache check so `make findings` recomputes only what
changed (a new trainer recipe gives new planted sets, hence a new key)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


_COMMIT: str | None = None


def git_commit() -> str:
    """HEAD of the checkout the scripts run from, with '+dirty' when tracked files differ from
    it; read once per process (at its first call: call it at the start of a run)."""
    global _COMMIT
    if _COMMIT is None:
        _COMMIT = _read_commit()
    return _COMMIT


def _read_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def planted_parser(description: str) -> argparse.ArgumentParser:
    """The options every findings data script takes: which planted sets (seeds, size, knobs),
    where the result goes, the cache, and --force to recompute an up-to-date file."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", default="default")
    p.add_argument("--knob", action="append", default=[], help="planted knob KEY=VALUE")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "data")
    p.add_argument("--cache-dir", default=os.environ.get("SAEMATCH_CACHE"))
    p.add_argument("--force", action="store_true")
    return p


def parse_knobs(items: list[str]) -> dict:
    """['recipe=published', 'drift=0.4'] -> {'recipe': 'published', 'drift': 0.4}."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--knob {item!r}: write KEY=VALUE, e.g. --knob drift=0.4")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare word such as a recipe name
    return out


def planted_sets(size: str, seeds: list[int], knobs: dict, cache_dir: str | None):
    """The planted set of each seed (world seed = SAE seed = `seed`), built if missing."""
    from saematch.planted import ensure_planted

    return {s: ensure_planted(size=size, cache_dir=cache_dir, seed=s, **knobs) for s in seeds}


def source_key(sets: dict, args: dict) -> dict:
    """What a result depends on: each planted set's folder (its config digest and seed), its
    code versions, the matching code version and the script's arguments."""
    from saematch.matching.cache import CODE_VERSION

    return {
        "planted": {
            str(s): {"root": str(p.root), "code_version": p.manifest.get("code_version")}
            for s, p in sets.items()
        },
        "matching_code": CODE_VERSION,
        "args": args,
    }


def up_to_date(sidecar: Path, key: dict) -> bool:
    """True when `sidecar` exists and was written for exactly `key`."""
    try:
        return json.loads(sidecar.read_text()).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def write_csv(path: Path, rows: list[dict]) -> None:
    """rows (dicts with the same keys) as CSV, floats at 6 significant digits; atomic."""
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    os.replace(tmp, path)


def command_line(script: str, argv: list[str] | None) -> str:
    """How the script was run: `python scripts/<script> <args>` (argv None: sys.argv's)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"scripts/{script}", *args])


def write_sidecar(path: Path, key: dict, extra: dict, command: str) -> None:
    """<name>.json beside the CSVs: the key, the commit, the command and `extra`."""
    doc = {"key": key, "git_commit": git_commit(), "command": command, **extra}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_csv(path: Path) -> list[dict]:
    """CSV rows with numbers parsed (int, then float; other cells stay strings)."""

    def cell(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    with path.open() as f:
        return [{k: cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
