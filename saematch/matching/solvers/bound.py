"""The stored lower bound of every pair by the chosen GEMM backend (gemm.py): int8
(quantised.py) or float32 (fp32.py), the same arrays either way (docs/method.md §13)."""

from __future__ import annotations

import logging

import numpy as np

from saematch.matching.solvers.fp32 import fp32_bound
from saematch.matching.solvers.gemm import bound_gemm
from saematch.matching.solvers.quantised import bound_holds, quantised_bound

log = logging.getLogger(__name__)


def stored_bound(
    xa: np.ndarray,
    xb: np.ndarray,
    exact_tail: int = 0,
    head_splits: tuple[int, ...] = (),
    block: int = 128,
    gemm: str | None = None,
):
    """(bound, top2, backend): the stored bound of c = xa @ xb.T (quantised_bound's arrays) by
    `gemm` (None: gemm.bound_gemm's choice), or None when it fails its spot check."""
    backend = bound_gemm(gemm)
    log.info("stored bound: %s GEMM (%d features)", backend, xa.shape[0])
    if backend == "int8":
        res = quantised_bound(xa, xb, exact_tail, head_splits, block)
    else:
        res = fp32_bound(xa, xb, exact_tail, head_splits, block)
        res = res if bound_holds(res[0], xa, xb) else None
    return None if res is None else (*res, backend)
