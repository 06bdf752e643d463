"""Every named SAE set, by name: the residual sets (sets.py) and the module sets (module_sets.py).

Its own module so that module_sets.py, which builds on sets.SAESet, and sets.py do not import
each other.
"""

from __future__ import annotations

from saematch.sources.module_sets import MODULE_SETS
from saematch.sources.set_ids import Layers
from saematch.sources.sets import SETS, SAESet


def resolve_set(name: str, layers: Layers = None, **kw) -> SAESet:
    """Build the named SAE set (see `SETS`, `MODULE_SETS`), optionally for a subset or range of
    layers."""
    sets = {**SETS, **MODULE_SETS}
    if name not in sets:
        raise KeyError(f"unknown SAE set {name!r}; known: {sorted(sets)}")
    return sets[name](layers, **kw) if layers is not None else sets[name](**kw)
