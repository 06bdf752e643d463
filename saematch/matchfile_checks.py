"""What `load_matching` checks before it trusts a match file (saematch.matchfile).

A match file cannot lie: the JSON sidecar carries the SHA-256 of its own canonical form
(`sidecar_sha256`, over every other field: mode, fold, proven_optimal, total_cost, the SAE
records with their layers and fingerprints, ...) and of the arrays file (`arrays_sha256`).
Past the hashes, every field's type and every array's dtype, shape and range are checked, so
a file re-hashed after an edit still cannot hand back a perm that is not a matching. Every
error is a MatchFileError (a ValueError) that names the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

FORMAT = "saematch.match"
FORMAT_VERSION = 2  # 2: the sidecar carries its own SHA-256
SIDECAR_HASH = "sidecar_sha256"


class MatchFileError(ValueError):
    """A match file that cannot be read or does not belong to the SAEs given."""


def canonical_sidecar(meta: dict) -> bytes:
    """The bytes `sidecar_sha256` hashes: the sidecar without that field, as JSON with sorted
    keys, no spaces and ASCII escapes (any JSON library can reproduce them)."""
    rest = {k: v for k, v in meta.items() if k != SIDECAR_HASH}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def sidecar_digest(meta: dict) -> str:
    """SHA-256 (hex) of canonical_sidecar(meta)."""
    return hashlib.sha256(canonical_sidecar(meta)).hexdigest()


def read_sidecar(path: Path) -> dict:
    """The JSON sidecar at path as a dict; MatchFileError naming the file when it is empty,
    truncated, not UTF-8, not JSON or not an object."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MatchFileError(f"{path}: cannot read the match file's sidecar ({e})") from None
    if not raw.strip():
        raise MatchFileError(f"{path}: the match file's sidecar is empty (an interrupted copy?)")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise MatchFileError(
            f"{path}: the match file's sidecar is not UTF-8 text (byte {e.start}); it is "
            "corrupt or not a match file"
        ) from None
    except json.JSONDecodeError as e:
        raise MatchFileError(
            f"{path}: the match file's sidecar is not valid JSON ({e.msg} at line {e.lineno}, "
            f"column {e.colno}); truncated or corrupt: recompute or copy it again"
        ) from None
    if not isinstance(meta, dict):
        raise MatchFileError(f"{path}: the sidecar holds a {type(meta).__name__}, not an object")
    return meta


def check_version(meta: dict, path: Path, fmt: str, supported: tuple[int, ...]) -> None:
    """The format is `fmt` and the version an int (not 1.0, not true) this reader supports."""
    if meta.get("format") != fmt:
        raise MatchFileError(f"{path} is not a saematch match file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if type(version) is not int or version not in supported:
        hint = (
            "upgrade saematch"
            if type(version) is int and version > max(supported)
            else "the file was written by an older saematch or edited; recompute the matching"
        )
        raise MatchFileError(
            f"{path}: match file format version {version!r} is not supported by this saematch "
            f"(reads {', '.join(map(str, supported))}); {hint}"
        )


def check_sidecar_hash(meta: dict, path: Path) -> None:
    """The sidecar's fields are the ones it was written with (sidecar_sha256)."""
    want = meta.get(SIDECAR_HASH)
    if want != sidecar_digest(meta):
        raise MatchFileError(
            f"{path}: the sidecar's fields do not match its {SIDECAR_HASH} (edited after it was "
            "written?); a match file's settings cannot be changed by hand: recompute the matching"
        )


def sidecar_field(meta: dict, key: str, types, path: Path, *, none: bool = False, where: str = ""):
    """meta[key], checked to be of `types` (bool is not a number here; None when none=True)."""
    if key not in meta:
        raise MatchFileError(f"{path}: the sidecar has no {where}{key!r} field")
    value = meta[key]
    if value is None and none:
        return value
    numeric = types in (int, float, (int, float))
    if not isinstance(value, types) or (numeric and isinstance(value, bool)):
        raise MatchFileError(
            f"{path}: sidecar field {where}{key!r} = {value!r} is not {_name(types)}"
        )
    return value


def _name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


def check_fields(meta: dict, path: Path, modes: tuple[str, ...]) -> tuple[int, int]:
    """Every field load_matching reads has its type; returns the widths (F_A, F_B)."""
    widths = []
    for side in ("a", "b"):
        rec = sidecar_field(meta, side, dict, path)
        w = sidecar_field(rec, "width", int, path, where=f"{side}.")
        sidecar_field(rec, "fingerprint", str, path, where=f"{side}.")
        if w < 1:
            raise MatchFileError(f"{path}: SAE {side.upper()} has width {w}")
        widths.append(w)
    if sidecar_field(meta, "mode", str, path) not in modes:
        raise MatchFileError(f"{path}: mode {meta['mode']!r} is not one of {modes}")
    sidecar_field(meta, "fold", bool, path)
    if "bias_weight" in meta and sidecar_field(meta, "bias_weight", (int, float), path) < 0:
        raise MatchFileError(f"{path}: bias_weight {meta['bias_weight']!r} is negative")
    sidecar_field(meta, "proven_optimal", bool, path)
    sidecar_field(meta, "solver", str, path)
    sidecar_field(meta, "total_cost", (int, float), path, none=True)
    sidecar_field(meta, "seconds", (int, float), path, none=True)
    sidecar_field(meta, "unmatched_a", int, path)
    sidecar_field(meta, "unmatched", dict, path)
    sidecar_field(meta, "info", dict, path)
    sidecar_field(meta, "array_names", list, path)
    return widths[0], widths[1]


# name -> (dtype, shape as a function of (F_A, F_B, k), lowest value, highest value + 1)
# k is the predecessors' second dimension (top_k); ranges only for index arrays
ARRAYS = {
    "perm": (np.int64, lambda a, b, k: (a,), -1, "b"),
    "pair_cost": (np.float32, lambda a, b, k: (a,), None, None),
    "confidence": (np.float32, lambda a, b, k: (a,), None, None),
    "confidence_lower": (np.float32, lambda a, b, k: (a,), None, None),
    "predecessors": (np.int64, lambda a, b, k: (b, k), 0, "a"),
    "predecessor_cost": (np.float32, lambda a, b, k: (b, k), None, None),
    "split_children": (np.int64, lambda a, b, k: (a, 2), -1, "b"),
    "dual_u": (np.float64, lambda a, b, k: (a,), None, None),
    "dual_v": (np.float64, lambda a, b, k: (b,), None, None),
    # a comparison of two SAEs (saematch.compare): the rotation null's partial matching, and
    # families on the wider side (shape and range checked in matchfile._read_compare)
    "shared_perm": (np.int64, lambda a, b, k: (a,), -1, "b"),
    "family_parent": (np.int64, None, None, None),
    "family_confidence": (np.float32, None, None, None),
}
REQUIRED = ("perm", "pair_cost")


def check_arrays(arr: dict, meta: dict, path: Path, n_a: int, n_b: int) -> None:
    """Each array has its dtype, shape and index range; perm pairs no feature of B twice;
    the sidecar's array_names and unmatched_a agree with the arrays."""
    names = sorted(arr)
    unknown = [n for n in names if n not in ARRAYS]
    missing = [n for n in REQUIRED if n not in arr]
    if unknown or missing:
        raise MatchFileError(f"{path}: arrays missing {missing} or unknown {unknown}")
    if names != sorted(meta["array_names"]):
        raise MatchFileError(
            f"{path}: holds arrays {names}, the sidecar lists {sorted(meta['array_names'])}"
        )
    if ("dual_u" in arr) != ("dual_v" in arr):
        raise MatchFileError(f"{path}: has one of dual_u, dual_v without the other")
    if ("predecessors" in arr) != ("predecessor_cost" in arr):
        raise MatchFileError(f"{path}: has one of predecessors, predecessor_cost without the other")
    k = arr["predecessors"].shape[-1] if "predecessors" in arr else 0
    bound = {"a": n_a, "b": n_b}
    for name, x in arr.items():
        dtype, shape, low, high = ARRAYS[name]
        want = x.shape if shape is None else shape(n_a, n_b, k)
        if x.dtype != dtype or x.shape != want:
            raise MatchFileError(
                f"{path}: array {name} is {x.dtype} {x.shape}, must be "
                f"{np.dtype(dtype).name} {want} (F_A={n_a}, F_B={n_b})"
            )
        if low is not None and x.size and (x.min() < low or x.max() >= bound[high]):
            raise MatchFileError(
                f"{path}: array {name} holds values in [{x.min()}, {x.max()}], outside "
                f"[{low}, {bound[high]}) (feature indices of SAE {high.upper()}"
                f"{', or −1' if low < 0 else ''})"
            )
    perm = arr["perm"]
    matched = perm[perm >= 0]
    if len(np.unique(matched)) != len(matched):
        raise MatchFileError(f"{path}: perm matches some feature of B twice (not one-to-one)")
    if meta["unmatched"].get("setting") is None and len(matched) != min(n_a, n_b):
        raise MatchFileError(
            f"{path}: a bijection (unmatched: none) must match every feature of the narrower "
            f"side (F_A={n_a}, F_B={n_b}), but perm matches {len(matched)}"
        )
    if int((perm < 0).sum()) != meta["unmatched_a"]:
        raise MatchFileError(
            f"{path}: perm leaves {int((perm < 0).sum())} features unmatched, the sidecar says "
            f"{meta['unmatched_a']}"
        )
