"""match_layers: match every adjacent SAE pair, with a resumable on-disk cache.

Cache entry = `<key>.npz` (perm, pair_mse, duals u and v; no pickle) + `<key>.json` (settings,
written last, so it marks a complete entry). key = hash(fingerprints of both SAEs, mode, fold,
solver, CODE_VERSION). Writes go to a temp file then os.replace; a per-key file lock lets several
processes share one cache without computing a pair twice. A corrupt entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from saematch.atomic import atomic_write, atomic_write_text
from saematch.matching.match import Matching, match
from saematch.sae import JumpReLUSAE

CODE_VERSION = "matching-4"  # bump when the matching definition or solvers change results
log = logging.getLogger(__name__)


def cache_key(a: JumpReLUSAE, b: JumpReLUSAE, mode: str, fold: bool, solver: str) -> str:
    """Hex key of a matching: both SAEs' content fingerprints + settings + code version."""
    spec = {
        "a": a.fingerprint(),
        "b": b.fingerprint(),
        "mode": mode,
        "fold": bool(fold),
        "solver": solver,
        "code": CODE_VERSION,
    }
    return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=16).hexdigest()


def save_matching(m: Matching, folder: Path, key: str) -> None:
    """Write m as <key>.npz + <key>.json (atomic, no pickle)."""
    duals = {} if m.duals is None else {"u": m.duals[0], "v": m.duals[1]}
    atomic_write(
        folder / f"{key}.npz", lambda f: np.savez(f, perm=m.perm, pair_mse=m.pair_mse, **duals)
    )
    meta = {
        **m.settings(),
        "key": key,
        "code": CODE_VERSION,
        "total_cost": m.total_cost,
        "seconds": m.seconds,
        "info": m.info,
    }
    atomic_write_text(folder / f"{key}.json", json.dumps(meta, indent=1, default=str))


def load_matching(folder: Path, key: str, width: int) -> Matching | None:
    """The cached matching for key, or None if absent or corrupt (a warning; it is redone)."""
    meta_path, arr_path = folder / f"{key}.json", folder / f"{key}.npz"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(arr_path, allow_pickle=False) as z:
            perm, pair = z["perm"].astype(np.int64), z["pair_mse"].astype(np.float32)
            duals = (z["u"], z["v"]) if "u" in z.files else None
        if meta.get("key") != key or perm.shape != (width,) or pair.shape != (width,):
            raise ValueError("entry does not match its key or width")
        if duals is not None and any(d.shape != (width,) for d in duals):
            raise ValueError("duals do not match the width")
        if np.bincount(perm, minlength=width).max(initial=0) != 1 or perm.min(initial=0) < 0:
            raise ValueError("perm is not a bijection")
    except Exception as e:  # noqa: BLE001 - any unreadable entry is recomputed
        log.warning("matching cache entry %s is corrupt (%s); recomputing", key, e)
        return None
    info = {**meta.get("info", {}), "cached": True}
    return Matching(
        perm,
        pair,
        float(pair.astype(np.float64).sum()),
        meta["mode"],
        bool(meta["fold"]),
        meta["solver"],
        float(meta["seconds"]),
        info,
        duals,
    )


def cached_match(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str,
    fold: bool,
    solver: str,
    cache_dir: str | Path | None,
) -> Matching:
    """match(a, b, ...) through the cache in cache_dir (no cache when None)."""
    if cache_dir is None:
        return match(a, b, mode=mode, fold=fold, solver=solver)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(a, b, mode, fold, solver)
    with FileLock(str(folder / f"{key}.lock")):
        hit = load_matching(folder, key, a.width)
        if hit is not None:
            return hit
        m = match(a, b, mode=mode, fold=fold, solver=solver)
        m.info["cached"] = False
        save_matching(m, folder, key)
        return m


def match_layers(
    saes: Sequence[JumpReLUSAE],
    *,
    mode: str = "both",
    fold: bool = True,
    solver: str = "auto",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> list[Matching]:
    """Matchings of every adjacent pair (saes[t] -> saes[t+1]); len(saes) − 1 results."""
    if len(saes) < 2:
        raise ValueError(f"match_layers needs at least two SAEs, got {len(saes)}")
    pairs = range(len(saes) - 1)
    return [
        cached_match(saes[t], saes[t + 1], mode=mode, fold=fold, solver=solver, cache_dir=cache_dir)
        for t in tqdm(pairs, desc="matching layers", disable=not progress)
    ]
