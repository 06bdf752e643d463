"""The certificate of an assignment, and a checker that trusts nothing but the costs.

Every solver returns an `Assignment`: the permutation and LP duals (u, v) with

    c_ij − u_i − v_j ≥ −tol  for every pair (feasible),
    c_iσ(i) − u_i − v_σ(i) ≤ tol  on the assignment (tight),

which proves Σ_i c_iσ(i) ≤ min over all bijections + 2·n·tol (LP duality: every bijection
costs ≥ Σu + Σv − n·tol). `check_certificate` verifies both from a cost function alone,
streaming the n² reduced costs in row blocks, so it never needs the solver's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Assignment:
    """A solver's answer: perm (n,) int64 and its duals u, v (n,) float64 at tolerance tol."""

    perm: np.ndarray
    u: np.ndarray
    v: np.ndarray
    tol: float
    info: dict = field(default_factory=dict)


@dataclass
class Certificate:
    """What check_certificate found. ok ⇔ feasible and tight (both within tol)."""

    ok: bool
    min_reduced: float  # min over all pairs of c_ij − u_i − v_j (≥ −tol when feasible)
    max_slack: float  # max over rows of c_iσ(i) − u_i − v_σ(i) (≤ tol when tight)
    gap_bound: float  # Σ_i c_iσ(i) − (Σu + Σv) + n·max(0, −min_reduced): cost − optimum ≤ this


def features_cost_fn(xa: np.ndarray, xb: np.ndarray) -> Callable[[slice], np.ndarray]:
    """Block cost function of augmented features (cost.py): rows -> float64 xa[rows] @ xb.T."""
    xbt = xb.astype(np.float64).T

    def cost(rows: slice) -> np.ndarray:
        return xa[rows].astype(np.float64) @ xbt

    return cost


def check_certificate(
    cost_fn: Callable[[slice], np.ndarray],
    perm,
    u,
    v,
    tol: float = 0.0,
    block: int = 1024,
) -> Certificate:
    """Verify that (u, v) proves perm optimal for the cost c given by cost_fn.

    cost_fn(slice(r0, r1)) -> (r1 − r0, n) float array of c_ij for those rows and every
    column; it is called once per row block (memory: block × n). Checks feasibility over all
    n² pairs and tightness on perm, both within tol; raises ValueError on malformed input.
    """
    perm = np.asarray(perm)
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    n = len(perm)
    if perm.ndim != 1 or u.shape != (n,) or v.shape != (n,):
        shapes = f"{perm.shape} {u.shape} {v.shape}"
        raise ValueError(f"perm, u, v must all have shape (n,); got {shapes}")
    if n and (np.sort(perm) != np.arange(n)).any():
        raise ValueError("perm is not a bijection of range(n)")
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        raise ValueError("duals must be finite")
    min_red, slack = np.inf, np.empty(n)
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        c = np.asarray(cost_fn(slice(r0, r1)), dtype=np.float64)
        if c.shape != (r1 - r0, n):
            raise ValueError(f"cost_fn returned shape {c.shape}, expected {(r1 - r0, n)}")
        red = c - u[r0:r1, None] - v[None, :]
        min_red = min(min_red, float(red.min()))
        slack[r0:r1] = red[np.arange(r1 - r0), perm[r0:r1]]
    if n == 0:
        return Certificate(True, 0.0, 0.0, 0.0)
    max_slack = float(slack.max())
    gap = float(slack.sum()) + n * max(0.0, -min_red)
    return Certificate(min_red >= -tol and max_slack <= tol, min_red, max_slack, gap)


def check_matching(a, b, m, block: int = 1024) -> Certificate:
    """check_certificate for a Matching of SAEs a -> b (its mode, fold and tol)."""
    from saematch.matching.cost import augmented_features

    if m.duals is None:
        raise ValueError("this matching carries no duals (loaded from an old cache entry?)")
    dtype = np.float64 if m.solver == "scipy" else np.float32
    w = m.bias_weight
    xa = augmented_features(a, m.mode, "a", dtype, fold=m.fold, bias_weight=w)
    xb = augmented_features(b, m.mode, "b", dtype, fold=m.fold, bias_weight=w)
    return check_certificate(features_cost_fn(xa, xb), m.perm, *m.duals, m.info["tol"], block)
