"""The experiments, found by convention: `conf/experiment/<name>.yaml` + `experiments/<name>.py`.

No list of names is kept anywhere: the YAML files are the experiments, and every module directly
in experiments/ (not in harness/ or support/) is one (`unpaired` finds a file without its pair).
`conf/experiment/<name>.yaml` is the single source of every option's default (it is what the
command line overrides: `experiment.pairs=[3]`). `experiments/<name>.py` defines

    @dataclass class Options: ...   # each option's type and meaning, no defaults
    def run(opts: Options, ctx: Context) -> Results: ...

and may set `MIN_LAYERS` (default 2). Options are checked against the YAML before any work:
an unknown key, a wrong type or an option without a YAML default is a clear error.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from saematch_experiments.harness.config_location import group_dir

EXPERIMENT_CONF = group_dir("experiment")


PACKAGE = __name__.rsplit(".", 2)[0]  # saematch_experiments: the experiments' package


def names() -> tuple[str, ...]:
    """Every experiment: the stems of conf/experiment/*.yaml, sorted."""
    return tuple(sorted(p.stem for p in EXPERIMENT_CONF.glob("*.yaml")))


def modules() -> tuple[str, ...]:
    """Every experiment module: the modules directly in experiments/ (subpackages and _private
    modules are not experiments), sorted."""
    pkg = importlib.import_module(PACKAGE)
    found = pkgutil.iter_modules(pkg.__path__)
    return tuple(sorted(m.name for m in found if not m.ispkg and not m.name.startswith("_")))


def unpaired() -> dict[str, list[str]]:
    """Files without their pair: {"no module": [YAML stems], "no yaml": [module names]}."""
    yamls, mods = set(names()), set(modules())
    return {"no module": sorted(yamls - mods), "no yaml": sorted(mods - yamls)}


@dataclass(frozen=True)
class Experiment:
    """One registered experiment: its options type, its run function, its layer needs."""

    name: str
    options: type
    run: Callable[..., Any]
    min_layers: int = 2
    doc: str = ""


def get(name: str) -> Experiment:
    """The experiment `name` (module experiments/<name>.py); ValueError naming the choices."""
    known = names()
    if name not in known:
        raise ValueError(
            f"unknown experiment {name!r}; choose one of: {', '.join(known)} "
            f"(each is a file in {EXPERIMENT_CONF})"
        )
    try:
        mod = importlib.import_module(f"{PACKAGE}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{PACKAGE}.{name}":
            raise
        raise ValueError(
            f"conf/experiment/{name}.yaml has no module: write experiments/{name}.py "
            "(docs/EXPERIMENTS_GUIDE.md)"
        ) from None
    for attr in ("Options", "run"):
        if not hasattr(mod, attr):
            raise ValueError(f"experiments/{name}.py must define `{attr}` (EXPERIMENTS_GUIDE.md)")
    doc = (mod.__doc__ or "").strip().splitlines()
    return Experiment(
        name, mod.Options, mod.run, getattr(mod, "MIN_LAYERS", 2), doc[0] if doc else ""
    )


def options_of(cfg: DictConfig) -> Any:
    """cfg.experiment as its typed Options instance; unknown keys or bad types raise."""
    exp = get(cfg.experiment.name)
    schema = OmegaConf.structured(exp.options)
    given = OmegaConf.to_container(cfg.experiment, resolve=True)
    given.pop("name", None)
    valid = ", ".join(schema.keys())
    try:
        merged = OmegaConf.merge(schema, given)
    except OmegaConfBaseException as e:
        raise ValueError(
            f"bad option for experiment {exp.name!r}: {getattr(e, 'msg', e)}"
            f"\nvalid options: {valid}"
        ) from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ValueError(
            f"experiment {exp.name!r}: no value for {', '.join(missing)}; give it a default in "
            f"conf/experiment/{exp.name}.yaml (the one place defaults live)"
        )
    return OmegaConf.to_object(merged)


def default_options(name: str, **overrides: Any) -> Any:
    """Options of `name` from its YAML defaults, with `overrides` (for Python use and tests)."""
    node = OmegaConf.load(EXPERIMENT_CONF / f"{name}.yaml").experiment
    return options_of(
        OmegaConf.create({"experiment": {**OmegaConf.to_container(node), **overrides}})
    )


def check_config(cfg: DictConfig) -> Any:
    """Re-check the whole config against the schema (a `+group.key=...` override bypasses it)
    and return the experiment's Options."""
    from saematch_experiments.harness.schema import Config

    given = OmegaConf.to_container(cfg, resolve=False)
    given.pop("hydra", None)
    try:
        OmegaConf.merge(OmegaConf.structured(Config), given)
    except OmegaConfBaseException as e:
        raise ValueError(f"bad config: {getattr(e, 'msg', e)}") from None
    from saematch.matching import parse_unmatched

    parse_unmatched(cfg.matching.get("unmatched"))  # none | auto | ρ ≥ 0, else a clear error
    return options_of(cfg)
