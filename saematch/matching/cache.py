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

from tqdm.auto import tqdm

from saematch.locking import cache_lock
from saematch.matching.match import Matching, match
from saematch.matching.options import DEFAULTS, MatchOptions
from saematch.matching.solvers import Solver, get_solver
from saematch.sae import JumpReLUSAE

# bump when the matching definition, the solvers or the match file's format change results
# (7: mode both without the b_enc term, and match files of format version 2)
CODE_VERSION = "matching-7"
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

    beyond: the options of matching beyond the bijection that are on (MatchOptions.beyond():
    unmatched, confidence, top_k, splits), when any is.
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
    a: JumpReLUSAE, b: JumpReLUSAE, opts: MatchOptions, cache_dir: str | Path | None
) -> Matching:
    """match(a, b, **opts) through the cache in cache_dir (no cache when None).

    opts.max_memory, opts.device and opts.bound_gemm change how, not what (the same certified
    optimum): they are not part of the key.
    Entries are match files `<key>.safetensors` + `<key>.json`.
    """
    from saematch.matchfile import record_saes  # matchfile imports this package

    if cache_dir is None:
        return record_saes(match(a, b, **opts.kwargs()), a, b)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(
        a, b, opts.mode, opts.fold, opts.solver, opts.beyond(), bias_weight=opts.bias_weight
    )
    with cache_lock(folder / f"{key}.lock", "a matching cache entry"):
        return _cached_match_file(a, b, folder / key, opts)


def _cached_match_file(a, b, stem: Path, opts: MatchOptions) -> Matching:
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
    m = match(a, b, **opts.kwargs())
    m.info["cached"] = False
    record_saes(m, a, b)
    save_match_file(m, stem, extra={"key": stem.name, "code": CODE_VERSION})
    return m


def match_layers(
    saes: Sequence[JumpReLUSAE],
    *,
    mode: str = DEFAULTS.mode,
    fold: bool = DEFAULTS.fold,
    solver: str | Solver = DEFAULTS.solver,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_memory: int | float | str | None = DEFAULTS.max_memory,
    device: str = DEFAULTS.device,
    bound_gemm: str = DEFAULTS.bound_gemm,
    unmatched: float | str | None = DEFAULTS.unmatched,
    confidence: bool = DEFAULTS.confidence,
    top_k: int = DEFAULTS.top_k,
    splits: bool = DEFAULTS.splits,
    bias_weight: float = DEFAULTS.bias_weight,
    null_alpha: float = DEFAULTS.null_alpha,
    seed: int = DEFAULTS.seed,
) -> list[Matching]:
    """Matchings of every adjacent pair (saes[t] -> saes[t+1]); len(saes) − 1 results.

    Every option as in match() (same defaults, options.DEFAULTS); cache_dir: the on-disk
    cache of match files (module doc; None: no cache).
    """
    opts = MatchOptions(
        mode=mode, fold=fold, bias_weight=bias_weight, solver=solver, unmatched=unmatched,
        confidence=confidence, top_k=top_k, splits=splits, null_alpha=null_alpha, seed=seed,
        max_memory=max_memory, device=device, bound_gemm=bound_gemm,
    )  # fmt: skip
    if len(saes) < 2:
        raise ValueError(f"match_layers needs at least two SAEs, got {len(saes)}")
    pairs = range(len(saes) - 1)
    return [
        cached_match(saes[t], saes[t + 1], opts, cache_dir)
        for t in tqdm(pairs, desc="matching layers", disable=not progress)
    ]
