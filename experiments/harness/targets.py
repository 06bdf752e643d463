"""Config nodes with `_target_`: checked against the target's signature before any work, then
built by Hydra's `instantiate` with the extras the Context supplies (cache_dir, zoo, layer).

    # conf/judge/lexical.yaml
    _target_: saematch.judge.lexical.LexicalJudge
    thresholds: [0.15, 0.4]

A key the target does not take, or a value of the wrong type for an annotated parameter, is a
ValueError naming `<group>.<key>` and the valid keys. Adding a judge, description source or SAE
set is a new YAML naming any callable; no if/elif chain or enum to extend.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import field, make_dataclass
from pathlib import Path
from typing import Any

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from saematch_experiments.harness.config_location import group_dir


def node_of(node: Any, group: str) -> DictConfig:
    """The `_target_` node of `group`, also when the command line gave a file name as a value:
    `matching.solver=scipy` means what `matching/solver=scipy` does (conf/matching/solver/
    scipy.yaml). An unknown name is a ValueError listing the files."""
    if not isinstance(node, str):
        return node
    folder = group_dir(group)
    path = folder / f"{node}.yaml"
    if Path(node).name != node or not path.is_file():
        have = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise ValueError(f"{group}={node!r}: no such choice; pick one of {have} (in {folder})")
    return OmegaConf.load(path)


def target(node: DictConfig, group: str) -> Callable:
    """The callable named by node._target_ (ValueError naming the group when it cannot import)."""
    name = node.get("_target_")
    if not name:
        where = group.replace(".", "/")
        raise ValueError(f"{group}: no _target_; pick a file of conf/{where}/ ({where}=...)")
    try:
        return get_object(name)
    except Exception as e:  # noqa: BLE001 - ImportError, AttributeError, hydra's wrappers
        raise ValueError(f"{group}._target_={name}: cannot import it ({e})") from None


def parameters(fn: Callable) -> tuple[dict[str, inspect.Parameter], bool]:
    """fn's (or its class __init__'s) named parameters, and whether it takes **kwargs."""
    params = dict(inspect.signature(fn).parameters)
    params.pop("self", None)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {k: p for k, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named, var_kw


def _hints(fn: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no type check
        return {}


def args(node: DictConfig, own: tuple[str, ...] = ()) -> dict:
    """The node's arguments for its target: every key but `_target_`-style ones and `own`."""
    plain = OmegaConf.to_container(node, resolve=True)
    return {
        k: v
        for k, v in plain.items()
        if not k.startswith("_") and k not in own and v != "???"  # ??? = still to be given
    }


def check(
    node: DictConfig, group: str, supplied: tuple[str, ...] = (), own: tuple[str, ...] = ()
) -> Callable:
    """Check node's keys against its target's signature; `supplied` are filled in at build,
    `own` are keys the skeleton reads itself (e.g. saes.layers)."""
    fn = target(node, group)
    params, var_kw = parameters(fn)
    given = args(node, own)
    unknown = [k for k in given if k not in params and not var_kw]
    if unknown:
        raise ValueError(
            f"{group}.{unknown[0]}: {node._target_} takes no argument {unknown[0]!r}; "
            f"valid: {', '.join(k for k in params if k not in supplied) or '(none)'}"
        )
    missing = [
        k
        for k, p in params.items()
        if p.default is p.empty and k not in given and k not in supplied
    ]
    if missing:
        raise ValueError(
            f"{group}: {node._target_} needs {', '.join(missing)}; set {group}.{missing[0]}=..."
        )
    hints = _hints(fn)
    for k, v in given.items():
        if k in hints and v is not None:
            _check_type(f"{group}.{k}", hints[k], v)
    return fn


def _check_type(key: str, hint: Any, value: Any) -> None:
    """ValueError when OmegaConf's validation of `hint` rejects `value` (unsupported hints pass)."""
    try:
        spec = [("v", typing.Optional[hint], field(default=None))]  # noqa: UP045
        schema = OmegaConf.structured(make_dataclass("T", spec))
    except Exception:  # noqa: BLE001 - a hint OmegaConf cannot express (Callable, a class)
        return
    try:
        OmegaConf.merge(schema, {"v": value})
    except OmegaConfBaseException as e:
        raise ValueError(f"{key}={value!r}: {str(e).splitlines()[0]}") from None


def build(
    node: DictConfig, group: str, own: tuple[str, ...] = (), **extras: Callable[[], Any]
) -> Any:
    """instantiate(node) with the extras its target accepts, each a zero-argument callable
    called only when taken (e.g. zoo=lambda: ctx.zoo builds the zoo only for a zoo target)."""
    fn = check(node, group, supplied=tuple(extras), own=own)
    params, var_kw = parameters(fn)
    kw = {k: f() for k, f in extras.items() if k in params or var_kw}
    spec = OmegaConf.create({"_target_": node._target_, **args(node, own)})
    return instantiate(spec, _convert_="all", **kw)


def short_name(node: DictConfig) -> str:
    """A short name of the target: its module's last part (saematch.judge.lexical... -> lexical)."""
    parts = str(node.get("_target_", "")).split(".")
    return parts[-2] if len(parts) >= 2 else parts[0]
