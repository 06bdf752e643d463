"""The portable match file: `<stem>.safetensors` (arrays) + `<stem>.json` (provenance).

Readable without saematch (docs/method.md §14): `safetensors.numpy.load_file` and
`json.load` are enough. Arrays (row i = feature i of SAE A, row j of `predecessors` = feature
j of SAE B):

    perm             int64   (F_A,)     B's feature matched to A's i; −1 = unmatched
    pair_cost        float32 (F_A,)     the mode's cost of that pair (docs/method.md §3);
                                        NaN if unmatched
    confidence       float32 (F_A,)     swap regret (docs/method.md §11); NaN if unmatched
    confidence_lower float32 (F_A,)     dual regret, a lower bound on the true regret
    predecessors     int64   (F_B, k)   A's k cheapest features for B's j, best first
    predecessor_cost float32 (F_B, k)
    split_children   int64   (F_A, 2)   the two children of a split feature; −1 = no split
    dual_u, dual_v   float64 (F_A,), (F_B,)  LP duals proving a bijection optimal

Two SAEs compared (saematch.compare; F_A and F_B may differ, perm is then the exact
rectangular matching from the narrow side, −1 on the wide side's free features) add:

    shared_perm        int64   (F_A,)     the partial matching by the rotation null; −1 = unshared
    family_parent      int64   (F_wide,)  the narrow feature each wide feature splits; −1 = none
    family_confidence  float32 (F_wide,)  κ margin over the runner-up; NaN where none

with the JSON's "families" {"wide": "a" | "b", "kappa_star", "definition"} and "shared".

All but perm and pair_cost are optional (present when computed). The JSON sidecar holds format and
version, both SAEs' ids and content fingerprints, the settings, whether the optimum was
proven, the SHA-256 of the arrays file (`arrays_sha256`) and of the sidecar itself
(`sidecar_sha256`: over the other fields as JSON with sorted keys, separators "," and ":",
ASCII escapes), so neither can be edited without the reader noticing (matchfile_checks.py).
Version 2 added `sidecar_sha256`; version 1 files are not read (their settings cannot be
checked): recompute them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save

from saematch.atomic import atomic_write_bytes, atomic_write_text
from saematch.matchfile_checks import (
    FORMAT,
    FORMAT_VERSION,
    SIDECAR_HASH,
    MatchFileError,
    check_arrays,
    check_fields,
    check_sidecar_hash,
    check_version,
    read_sidecar,
    sidecar_digest,
)
from saematch.matching.cost import MODES
from saematch.matching.match import Matching
from saematch.sae import JumpReLUSAE

SUPPORTED_VERSIONS = (FORMAT_VERSION,)
# what a comparison of two SAEs adds (saematch.compare); checked against the widths on reading
COMPARE_ARRAYS = {
    "shared_perm": np.int64,
    "family_parent": np.int64,
    "family_confidence": np.float32,
}
FINGERPRINT = (
    "blake2b, 16-byte digest, over W_enc, b_enc, W_dec, b_dec, threshold in that order: "
    "for each the UTF-8 name, str(tuple(shape)), then its float32 C-order bytes"
)
OPTIONAL = (
    "confidence",
    "confidence_lower",
    "predecessors",
    "predecessor_cost",
    "split_children",
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MatchFileError",
    "load_matching",
    "record_saes",
    "sae_record",
    "save_match_file",
]


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def sae_record(sae: JumpReLUSAE, fingerprint: str | None = None) -> dict:
    """Identity of an SAE for provenance: name, hub ids where known, shape, content hash."""
    meta = sae.meta or {}
    rec = {"name": sae.name, "width": sae.width, "d_model": sae.d_model}
    for key in ("source", "repo_id", "sae_id", "path", "revision", "layer", "sparsity"):
        if key in meta:
            rec[key] = meta[key]
    rec["fingerprint"] = fingerprint or sae.fingerprint()
    return rec


def record_saes(m, a: JumpReLUSAE, b: JumpReLUSAE):
    """m with both SAEs' provenance in m.info (sae_a, sae_b), so a match file can be written
    from the Matching alone (save_match_file); returns m."""
    for side, sae in (("a", a), ("b", b)):
        if f"sae_{side}" not in m.info:
            m.info[f"sae_{side}"] = sae_record(sae)
    return m


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.integer, np.floating)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x if isinstance(x, (str, int, float, bool)) or x is None else str(x)


def save_match_file(
    m: Matching,
    path: str | Path,
    a: JumpReLUSAE | None = None,
    b: JumpReLUSAE | None = None,
    extra: dict | None = None,
) -> Path:
    """Write m as `<path>.safetensors` + `<path>.json` (atomic); returns the JSON path.

    a, b: the matched SAEs, for provenance; when omitted, the records match_layers attached
    to m.info ("sae_a", "sae_b") are used, and a matching without either is an error.
    """
    records = []
    for side, sae in (("a", a), ("b", b)):
        rec = sae_record(sae) if sae is not None else (m.info or {}).get(f"sae_{side}")
        if rec is None:
            raise ValueError(
                f"save_match_file: SAE {side.upper()} unknown; pass the SAEs the matching was "
                "made from (a=..., b=...) or match through match_layers, which records them"
            )
        records.append(rec)
    arrays_path, json_path = _paths(path)
    arrays = {
        "perm": np.ascontiguousarray(m.perm, dtype=np.int64),
        "pair_cost": np.ascontiguousarray(m.pair_mse, dtype=np.float32),
    }
    for name in OPTIONAL:
        value = getattr(m, name, None)
        if value is not None:
            dtype = np.int64 if name in ("predecessors", "split_children") else np.float32
            arrays[name] = np.ascontiguousarray(value, dtype=dtype)
    if m.duals is not None:
        arrays["dual_u"] = np.ascontiguousarray(m.duals[0], dtype=np.float64)
        arrays["dual_v"] = np.ascontiguousarray(m.duals[1], dtype=np.float64)
    compared = _compare_arrays(m)
    arrays.update(compared)
    blob = save(arrays, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    atomic_write_bytes(arrays_path, blob)
    from saematch import __version__

    info = m.info or {}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "saematch_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "arrays": arrays_path.name,
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        "fingerprint_method": FINGERPRINT,
        "a": records[0],
        "b": records[1],
        "mode": m.mode,
        "fold": bool(m.fold),
        "bias_weight": float(m.bias_weight),
        "solver": m.solver,
        "method": info.get("method"),
        "proven_optimal": bool(m.proven),
        "unmatched": {
            "setting": m.unmatched,
            "rho": info.get("rho"),
            "kappa": info.get("kappa"),
            "null": info.get("null"),
        },
        "total_cost": m.total_cost,
        "unmatched_a": int((m.perm < 0).sum()),
        "unmatched_share": float((m.perm < 0).mean()) if len(m.perm) else 0.0,
        "split_kappa": info.get("split_kappa"),
        "tol": info.get("tol"),
        "seconds": m.seconds,
        "info": {k: v for k, v in info.items() if k not in ("null", "sae_a", "sae_b")},
        "array_names": sorted(arrays),
        **({"families": info.get("families"), "shared": info.get("shared")} if compared else {}),
        "extra": extra or {},
    }
    meta = _json_safe(meta)
    meta[SIDECAR_HASH] = sidecar_digest(meta)
    atomic_write_text(json_path, json.dumps(meta, indent=1))
    return json_path


def _check_sae(meta: dict, side: str, sae: JumpReLUSAE | None, path: Path) -> None:
    if sae is None:
        return
    want, got = meta[side].get("fingerprint"), sae.fingerprint()
    if want != got:
        raise MatchFileError(
            f"{path}: SAE {side.upper()} given ({sae.name or 'unnamed'}, fingerprint {got}) is not "
            f"the SAE this matching was made from ({meta[side].get('name')}, fingerprint {want}); "
            "pass the SAEs it was computed on, or recompute the matching"
        )


def load_matching(
    path: str | Path, a: JumpReLUSAE | None = None, b: JumpReLUSAE | None = None
) -> Matching:
    """Read a match file (either file of the pair, or their common stem) and check it.

    Raises MatchFileError (a ValueError naming the file) for an unreadable or unknown file or
    version, a sidecar or arrays file that does not match its recorded hash, a field or array
    of the wrong type, dtype, shape or range, or SAEs a, b (when given) whose content differs
    from the file's. Pass the SAEs whenever you have them: only then is the pairing checked.
    """
    arrays_path, json_path = _paths(path)
    if not json_path.exists() or not arrays_path.exists():
        raise MatchFileError(
            f"match file incomplete: need both {json_path} and {arrays_path} "
            f"(found: {[p.name for p in (json_path, arrays_path) if p.exists()]})"
        )
    meta = read_sidecar(json_path)
    check_version(meta, json_path, FORMAT, SUPPORTED_VERSIONS)
    check_sidecar_hash(meta, json_path)
    n_a, n_b = check_fields(meta, json_path, MODES)
    blob = arrays_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("arrays_sha256"):
        raise MatchFileError(
            f"{arrays_path} does not match the SHA-256 in {json_path} (corrupt or replaced)"
        )
    _check_sae(meta, "a", a, json_path)
    _check_sae(meta, "b", b, json_path)
    try:
        arr = load(blob)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise MatchFileError(f"{arrays_path}: not a readable safetensors file ({e})") from None
    check_arrays(arr, meta, arrays_path, n_a, n_b)
    return _matching(meta, arr, json_path)


def _matching(meta: dict, arr: dict, json_path: Path) -> Matching:
    """The Matching a checked sidecar and its arrays describe."""
    u = meta["unmatched"]
    total = meta["total_cost"]
    m = Matching(
        perm=arr["perm"],
        pair_mse=arr["pair_cost"],
        total_cost=float("nan") if total is None else float(total),
        mode=meta["mode"],
        fold=meta["fold"],
        solver=meta["solver"],
        seconds=float(meta["seconds"] or 0.0),
        info={
            "method": meta.get("method"),
            "rho": u.get("rho"),
            "kappa": u.get("kappa"),
            "null": u.get("null"),
            "split_kappa": meta.get("split_kappa"),
            "tol": meta.get("tol"),
            **meta["info"],
            "loaded_from": str(json_path),
            "sae_a": meta["a"],
            "sae_b": meta["b"],
        },
        unmatched=u.get("setting"),
        proven=meta["proven_optimal"],
        bias_weight=float(meta.get("bias_weight", 0.0)),
    )
    for name in OPTIONAL:
        if name in arr:
            setattr(m, name, arr[name])
    if "dual_u" in arr:
        m.duals = (arr["dual_u"], arr["dual_v"])
    if any(name in arr for name in COMPARE_ARRAYS):
        _read_compare(arr, meta, m, json_path)
    return m


def _compare_arrays(m: Matching) -> dict:
    """The comparison arrays of m that are set (COMPARE_ARRAYS), contiguous in their dtypes."""
    out = {}
    for name, dtype in COMPARE_ARRAYS.items():
        value = getattr(m, name, None)
        if value is not None:
            out[name] = np.ascontiguousarray(value, dtype=dtype)
    return out


def _read_compare(arr: dict, meta: dict, m: Matching, path: Path) -> None:
    """Check and attach the comparison arrays. check_arrays has checked their dtypes and
    shared_perm's shape and range; the families' shapes depend on which side is wide."""
    n_a, n_b = meta["a"]["width"], meta["b"]["width"]
    if "shared_perm" in arr:
        sp = arr["shared_perm"]
        kept = sp[sp >= 0]
        if len(np.unique(kept)) != len(kept):
            raise MatchFileError(f"{path}: shared_perm matches some feature of B twice")
        m.shared_perm = sp
    if "family_parent" in arr:
        wide = (meta.get("families") or {}).get("wide")
        if wide not in ("a", "b"):
            raise MatchFileError(f"{path}: family arrays without families.wide (a or b)")
        n_w, n_n = (n_a, n_b) if wide == "a" else (n_b, n_a)
        fp = arr["family_parent"]
        fc = arr.get("family_confidence")
        if fp.shape != (n_w,) or fp.min(initial=0) < -1 or fp.max(initial=-1) >= n_n:
            raise MatchFileError(f"{path}: family_parent has shape {fp.shape} or values outside")
        if fc is not None and fc.shape != (n_w,):
            raise MatchFileError(f"{path}: family_confidence has shape {fc.shape}, not {(n_w,)}")
        m.family_parent, m.family_confidence = fp, fc
