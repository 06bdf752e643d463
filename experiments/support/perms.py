"""Exact matchings between any two layers of a run's SAE set (not only adjacent ones).

Shared by persistence and persistence_judge, which compare them with compositions of the
adjacent matchings (saematch.feature_paths.composed_perms).
"""

from __future__ import annotations

import numpy as np

from saematch.feature_paths import perm_array
from saematch_experiments.harness.context import Context

PERM_KINDS = ("exact", "composition")  # the two ways from layer s to layer L


def exact_perms(ctx: Context, start: int, targets: list[int]) -> dict[int, np.ndarray]:
    """{L: exact LAP start -> L} with cfg.matching's mode/fold/solver (disk cached via ctx)."""
    by = ctx.saes
    return {
        L: perm_array(ctx.matchings(saes={start: by[start], L: by[L]})[start].perm) for L in targets
    }
