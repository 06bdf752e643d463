"""Split detection (data-free): one feature of layer t whose two best successors are both close.

Feature i of A **splits** into j1, j2 (its two cheapest columns, c_i,j1 ≤ c_i,j2) when

    κ_i,j1 > κ*  and  κ_i,j2 > κ*  and  i is the cheapest predecessor of both j1 and j2,

with κ_ij = 1 − c_ij / (‖z_i‖² + ‖z'_j‖²) the pair similarity and κ* the threshold of the
null model (null.py; the matching's own κ* = 1 − ρ when it is partial). The last condition
keeps a feature that merely sits in a crowded region (whose neighbours have better parents)
from counting as a parent.
"""

from __future__ import annotations

import numpy as np


def similarity(cost: np.ndarray, r: np.ndarray, s: np.ndarray) -> np.ndarray:
    """κ = 1 − c / (r + s) elementwise (−1 where both norms are 0: dead features)."""
    den = np.asarray(r, dtype=np.float64) + np.asarray(s, dtype=np.float64)
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, 1.0 - np.asarray(cost, dtype=np.float64) / safe, -1.0)


def detect_splits(
    successors: np.ndarray,
    successor_cost: np.ndarray,
    predecessors: np.ndarray,
    r: np.ndarray,
    s: np.ndarray,
    kappa: float,
) -> np.ndarray:
    """children (n_A, 2) int64: the two successors of each splitting feature, −1 elsewhere.

    successors / successor_cost: (n_A, 2) each row's two cheapest columns (confidence.py);
    predecessors: (n_B, k) each column's cheapest rows; r, s: squared norms of A's and B's z.
    """
    j1, j2 = successors[:, 0], successors[:, 1]
    k1 = similarity(successor_cost[:, 0], r, s[j1])
    k2 = similarity(successor_cost[:, 1], r, s[j2])
    rows = np.arange(len(r))
    parent = (predecessors[j1, 0] == rows) & (predecessors[j2, 0] == rows)
    split = (k1 > kappa) & (k2 > kappa) & parent & (j1 >= 0) & (j2 >= 0)
    return np.where(split[:, None], successors, -1).astype(np.int64)
