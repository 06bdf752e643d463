"""match_layers: match every adjacent SAE pair, with a resumable on-disk cache.

Cache entry = a match file (saematch.matchfile): `<key>.safetensors` (perm, pair cost, duals u
and v, and what matching beyond the bijection adds; no pickle) + `<key>.json` (provenance and
settings, written last, so it marks a complete entry). key = hash(fingerprints of both SAEs,
mode, fold, solver, CODE_VERSION, the beyond-bijection options when set). Writes go to a temp
file then os.replace; a per-key file lock lets several processes share one cache without
computing a pair twice. A corrupt entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from saematch.matching.match import Matching, match
from saematch.matching.solvers import Solver, get_solver
from saematch.sae import JumpReLUSAE

# bump when the matching definition or solvers change results (5: mode both has no b_enc term)
CODE_VERSION = "matching-5"
log = logging.getLogger(__name__)


def cache_key(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    mode: str,
    fold: bool,
    solver: str | Solver,
    beyond: dict | None = None,
    bias_weight: float = 0.0,
) -> str:
    """Hex key of a matching: both SAEs' content fingerprints + settings + code version.

    solver: a name or a Solver object, keyed by its key() (the bare name for default options,
    so `AutoSolver()` and "auto" share entries with earlier runs).

    beyond: the options of matching beyond the bijection (unmatched, confidence, top_k,
    splits), when any is set; such entries are stored as match files (saematch.matchfile).
    """
    spec = {
        "a": a.fingerprint(),
        "b": b.fingerprint(),
        "mode": mode,
        "fold": bool(fold),
        "solver": get_solver(solver).key(),
        "code": CODE_VERSION,
    }
    if beyond:
        spec["beyond"] = beyond
    if mode == "both" and bias_weight:
        spec["bias_weight"] = float(bias_weight)
    return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=16).hexdigest()


def cached_match(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str,
    fold: bool,
    solver: str | Solver,
    cache_dir: str | Path | None,
    beyond: dict | None = None,
    bias_weight: float = 0.0,
    **resources,
) -> Matching:
    """match(a, b, ...) through the cache in cache_dir (no cache when None).

    beyond = dict(unmatched=, confidence=, top_k=, splits=) as for match(); resources
    (max_memory, device) change how, not what: they are not part of the key. Entries are
    match files `<key>.safetensors` + `<key>.json`.
    """
    beyond = {k: v for k, v in (beyond or {}).items() if v not in (None, False, 0, "none")}
    from saematch.matchfile import record_saes  # matchfile imports this package

    if cache_dir is None:
        m = match(a, b, mode=mode, fold=fold, solver=solver, **beyond, bias_weight=bias_weight,
                  **resources)  # fmt: skip
        return record_saes(m, a, b)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(a, b, mode, fold, solver, beyond, bias_weight=bias_weight)
    beyond = {**beyond, "bias_weight": bias_weight}  # passed on to match()
    with FileLock(str(folder / f"{key}.lock")):
        return _cached_match_file(a, b, folder / key, mode, fold, solver, beyond, resources)


def _cached_match_file(
    a, b, stem: Path, mode, fold, solver, beyond: dict, resources: dict
) -> Matching:
    """The match file at stem, or compute and write it (caller holds the key's lock).

    The JSON is written last, so it marks a complete entry; one that does not load (corrupt,
    replaced, another format) is recomputed with a warning.
    """
    from saematch.matchfile import load_matching as load_match_file
    from saematch.matchfile import record_saes, save_match_file

    if stem.with_name(stem.name + ".json").exists():
        try:
            m = load_match_file(stem, a, b)  # checks both fingerprints, records them
            m.info["cached"] = True
            return m
        except Exception as e:  # noqa: BLE001 - any unreadable entry is recomputed
            log.warning("matching cache entry %s is corrupt (%s); recomputing", stem.name, e)
    m = match(a, b, mode=mode, fold=fold, solver=solver, **beyond, **resources)
    m.info["cached"] = False
    record_saes(m, a, b)
    save_match_file(m, stem, extra={"key": stem.name, "code": CODE_VERSION})
    return m


def match_layers(
    saes: Sequence[JumpReLUSAE],
    *,
    mode: str = "both",
    fold: bool = True,
    solver: str | Solver = "auto",
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_memory=None,
    device: str = "auto",
    unmatched: float | str | None = None,
    confidence: bool = False,
    top_k: int = 0,
    splits: bool = False,
    bias_weight: float = 0.0,
) -> list[Matching]:
    """Matchings of every adjacent pair (saes[t] -> saes[t+1]); len(saes) − 1 results.

    max_memory, device: as in match(); unmatched, confidence, top_k, splits: matching beyond
    the bijection (match()); bias_weight: the optional b_enc term of mode both (match()).
    """
    beyond = {"unmatched": unmatched, "confidence": confidence, "top_k": top_k, "splits": splits}
    if len(saes) < 2:
        raise ValueError(f"match_layers needs at least two SAEs, got {len(saes)}")
    pairs = range(len(saes) - 1)
    return [
        cached_match(
            saes[t],
            saes[t + 1],
            mode=mode,
            fold=fold,
            solver=solver,
            cache_dir=cache_dir,
            beyond=beyond,
            max_memory=max_memory,
            device=device,
            bias_weight=bias_weight,
        )
        for t in tqdm(pairs, desc="matching layers", disable=not progress)
    ]
