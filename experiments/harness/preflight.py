"""Checks of a composed config that need no model, SAE or data download (dry_run runs them too).

Each failure is a ValueError naming the config key, the bad value and how to fix it, raised
before anything is loaded, built or written.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.sae_sets import (
    SAE_SET_EXTRAS,
    SKELETON_KEYS,
    is_planted_set,
    is_zoo_set,
    layer_range,
    planted_set,
)
from saematch_experiments.harness.targets import build, check, node_of, parameters, target

DATA_EXTRAS = ("tokenizer", "bos_token_id")  # what the Context hands a `data` target
SNIFF_BYTES = 8192  # a NUL byte in a text file's first 8 KiB means it is not text
# a dry run builds only these packages' targets
OWN_PACKAGES = ("saematch.", "saematch_experiments.")


def is_own(fn) -> bool:
    """Whether fn is saematch's own code, safe to call in a dry run (a user's `_target_` may
    do anything when called: it is only checked against its signature there)."""
    return getattr(fn, "__module__", "").startswith(OWN_PACKAGES)


def set_layers(cfg: DictConfig) -> list[int] | None:
    """The layers the configured SAE set has, without loading any SAE (the zoo: its size's
    config; a hub set: its id snapshot, no download). None when only building it would tell
    (a target that needs the Context's extras): then SAESet.narrow checks at build."""
    if is_zoo_set(cfg):
        from saematch.zoo.config import get_config

        return list(range(get_config(cfg.model.get("zoo_size", "default")).n_layers))
    fn = target(cfg.saes, "saes")
    if fn is planted_set:
        return planted_layers(cfg)
    params, _ = parameters(fn)
    if not is_own(fn) or any(
        k in params and params[k].default is params[k].empty for k in SAE_SET_EXTRAS
    ):
        return None
    return list(build(cfg.saes, "saes", own=SKELETON_KEYS).layers)


def planted_layers(cfg: DictConfig) -> list[int]:
    """The planted set's layers from its size and knobs (nothing is built)."""
    from omegaconf import OmegaConf

    from saematch.planted import planted_config

    knobs = OmegaConf.to_container(cfg.saes.get("knobs") or {}, resolve=True)
    try:
        world = planted_config(cfg.saes.get("size", "default"), **knobs).world
    except ValueError as e:
        raise ValueError(f"saes (planted): {e}") from None
    return list(range(world.n_layers))


def check_saes(cfg: DictConfig) -> None:
    """saes names a callable taking its keys; saes.layers is [first, last] inside its layers."""
    check(cfg.saes, "saes", supplied=SAE_SET_EXTRAS, own=SKELETON_KEYS)
    if is_planted_set(cfg):
        planted_layers(cfg)  # its size and knobs, also when every layer is used
    check_foldable_set(cfg)
    if cfg.saes.layers is None:
        return
    first, last = layer_range(cfg.saes.layers)
    have = set_layers(cfg)
    if have is not None and not {first, last} <= set(have):
        raise ValueError(
            f"saes.layers={list(cfg.saes.layers)}: the SAE set ({cfg.saes._target_}) has "
            f"layers {have[0]}..{have[-1]}; pick first and last among them"
        )


def check_foldable_set(cfg: DictConfig) -> None:
    """With matching.fold, every SAE of the set has a threshold to fold: a ReLU or TopK SAE
    (known from its config, before any weights load) is a ValueError saying matching.fold=false."""
    if not cfg.matching.fold:
        return
    params, _ = parameters(target(cfg.saes, "saes"))
    if any(k in params and params[k].default is params[k].empty for k in SAE_SET_EXTRAS):
        return  # only the Context can build this set; Context.saes checks each SAE on load
    bad = build(cfg.saes, "saes", own=SKELETON_KEYS).unfoldable()
    if bad:
        L, arch = next(iter(bad.items()))
        raise ValueError(
            f"matching.fold=true, but the SAE of layer {L} is a {arch} SAE ({len(bad)} SAEs of "
            "the set are ReLU/TopK): it has no threshold θ, so folding is undefined. Run with "
            "matching.fold=false"
        )


def check_targets(cfg: DictConfig) -> None:
    """judge, descriptions and logger name callables that take their keys (no object is
    built); a W&B mode is one W&B knows; a descriptions.root (Neuronpedia exports) is an
    existing folder."""
    from saematch.tracking.wandb_logger import MODES
    from saematch_experiments.harness.recording import LOGGER_EXTRAS

    check(cfg.judge, "judge", supplied=("cache_dir",))
    check(cfg.logger, "logger", supplied=LOGGER_EXTRAS)
    mode = cfg.logger.get("mode")
    if mode is not None and mode not in MODES:
        raise ValueError(f"logger.mode={mode!r}: choose one of {', '.join(MODES)}")
    supplied = ("zoo", "layer", "sparsity", "cache_dir")
    check(cfg.descriptions, "descriptions", supplied=supplied)
    root = cfg.descriptions.get("root")
    if root is not None and not Path(str(root)).expanduser().is_dir():
        raise ValueError(
            f"descriptions.root={str(root)!r}: no such folder; point it at the folder holding "
            "the Neuronpedia exports (<root>/<model>/<source>/explanations/)"
        )


def check_matching(cfg: DictConfig) -> None:
    """matching.max_memory is a memory size; matching.top_k a whole number ≥ 0."""
    from saematch.matching.budget import parse_bytes

    mc = cfg.matching
    if mc.max_memory is not None:
        try:
            parse_bytes(mc.max_memory)
        except ValueError as e:
            raise ValueError(f"matching.{e}") from None
    top_k = mc.top_k
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise ValueError(
            f"matching.top_k={top_k!r}: must be a whole number ≥ 0 (predecessors kept per "
            "feature; 0 keeps none)"
        )


def check_solver(cfg: DictConfig) -> None:
    """matching.solver names a solver file (or a `_target_` node) of a Solver class whose
    options are valid: saematch's own solvers are built (cheap, nothing allocated) so their
    range checks run now; any other target is imported and checked, never called."""
    from saematch.matching.solvers import Solver

    node = node_of(cfg.matching.solver, "matching.solver")
    fn = target(node, "matching.solver")
    if not (isinstance(fn, type) and issubclass(fn, Solver)):
        raise ValueError(
            f"matching.solver._target_={node._target_} is not a solver (a subclass of "
            "saematch.matching.solvers.Solver); pick one of conf/matching/solver/ "
            "(matching.solver=auto)"
        )
    if not is_own(fn):
        check(node, "matching.solver")
        return
    try:
        build(node, "matching.solver")
    except Exception as e:  # noqa: BLE001 - hydra wraps the target's own error
        cause = e.__cause__ if isinstance(e.__cause__, TypeError | ValueError) else e
        msg = str(cause) if str(cause).startswith("matching.") else f"matching.solver: {cause}"
        raise ValueError(msg) from None


def check_data(cfg: DictConfig) -> None:
    """data names a callable taking its keys; a known source; positive sizes; a local corpus
    exists and its .txt files are text."""
    from saematch.data.sources import SOURCES

    check(cfg.data, "data", supplied=DATA_EXTRAS)
    d, m = cfg.data, cfg.model
    if d.get("source") is not None and plain(d.source) not in SOURCES:
        raise ValueError(f"data.source={plain(d.source)!r}: choose one of {', '.join(SOURCES)}")
    for key, value, low in (
        ("data.n_examples", d.n_examples, 1),
        ("data.seq_len", d.seq_len, 2),
        ("model.batch_size", m.batch_size, 1),
    ):
        if value < low:
            raise ValueError(f"{key}={value}: must be ≥ {low}")
    if plain(d.source) == "local_text" or d.path is not None:
        check_corpus(d.path, local=plain(d.source) == "local_text")


def check_corpus(path, local: bool = True) -> None:
    """The files of data.path exist and have a suffix the reader takes (local_text: .txt,
    .jsonl[.gz]; a mirror of a hub data set: also .json, .parquet); a .txt among them holding
    NUL bytes is binary, not text."""
    from saematch.data.sources import LOCAL_SUFFIXES, MIRROR_BUILDERS, _expand

    if path is None:
        raise ValueError("data=local_text needs data.path=<file, folder or glob of .txt/.jsonl>")
    suffixes = set(LOCAL_SUFFIXES) if local else set(MIRROR_BUILDERS)
    if Path(str(path)).expanduser().is_dir() and (Path(path) / "dataset_info.json").exists():
        return  # a datasets save_to_disk mirror
    try:
        files = _expand(path, suffixes)
    except FileNotFoundError:
        raise ValueError(
            f"data.path={path!r}: no {'/'.join(sorted(suffixes))} file there; check the path "
            "(a file, a folder or a glob such as '/data/*.txt')"
        ) from None
    for f in files:
        if not f.name.lower().endswith(tuple(suffixes)):
            raise ValueError(
                f"data.path={path!r}: {f} is not a {'/'.join(sorted(suffixes))} file; the "
                f"{'local_text' if local else 'mirror'} reader cannot read it"
            )
        if f.name.lower().endswith(".txt"):
            check_text_file(f)


def check_text_file(path: Path) -> None:
    """ValueError when a .txt file is binary (a NUL byte in its first 8 KiB)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise ValueError(
            f"{path} is named .txt but is binary (NUL byte at offset {head.index(0)}); remove it "
            "from data.path or convert it to text"
        )


def check_model(cfg: DictConfig) -> None:
    """model names a callable taking its keys (model=hf: model.name is set); batch_size is set."""
    from saematch_experiments.harness.models import MODEL_EXTRAS, MODEL_SKELETON

    check(cfg.model, "model", supplied=MODEL_EXTRAS, own=MODEL_SKELETON)
    if cfg.model.get("batch_size") is None:
        raise ValueError("model.batch_size is not set: sequences per forward pass, e.g. 8")


def preflight(cfg: DictConfig) -> None:
    """Every check above, in order: model, SAE set and layers, solver, matching sizes, judge
    and descriptions, data."""
    check_model(cfg)
    check_saes(cfg)
    check_solver(cfg)
    check_matching(cfg)
    check_targets(cfg)
    check_data(cfg)
