"""Matching beyond the bijection: unmatched features, per-pair confidence, predecessors, splits.

    m = match_beyond(a, b, unmatched="auto", top_k=5)

* unmatched=None: the paper's bijection (match(), proven by LP duals); "auto" or a number ρ:
  the exact partial matching with reject costs τ_i = ρ ‖z_i‖² (partial.py), ρ = 1 − κ* from
  the rotation null (null.py) for "auto".
* confidence: swap regret per pair (confidence.py; computed by the int8 screen, screen.py,
  exact in float64), plus the dual regret from the LP duals every bijection solver returns
  (Matching.duals).
* top_k predecessors per feature of B and the split detector (splits.py), from the same pass.
"""

from __future__ import annotations

import time

import numpy as np

from saematch.matching.budget import features_bytes, resolve_budget
from saematch.matching.cost import (
    augmented_features,
    check_bias_weight,
    check_mode,
    cost_layout,
    feature_dim,
)
from saematch.matching.match import Matching, match
from saematch.matching.null import NULL_ALPHA, null_kappa
from saematch.matching.partial import partial_assign, pass_block, squared_norms
from saematch.matching.screen import analyse_pairs
from saematch.matching.splits import detect_splits
from saematch.sae import JumpReLUSAE, check_compatible

UNMATCHED_HELP = (
    "matching.unmatched must be none, auto, or a number ≥ 0 (the relative reject cost ρ)"
)


def parse_unmatched(value) -> float | str | None:
    """None | "auto" | ρ ≥ 0 from a config value ("none", "auto", a number or numeric text)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool):
        raise ValueError(f"{UNMATCHED_HELP}; got {value!r}")
    try:
        rho = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{UNMATCHED_HELP}; got {value!r}") from None
    if not np.isfinite(rho) or rho < 0:
        raise ValueError(f"{UNMATCHED_HELP}; got {value!r}")
    return rho


def feature_parts(d_model: int, mode: str) -> list[tuple[int, int]]:
    """The d_model-wide blocks of the feature vector z (rotated together by the null)."""
    return [(0, d_model)] if mode != "both" else [(0, d_model), (d_model, 2 * d_model)]


def match_beyond(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str = "both",
    fold: bool = True,
    solver: str = "auto",
    unmatched: float | str | None = None,
    confidence: bool = True,
    top_k: int = 5,
    splits: bool = True,
    null_alpha: float = NULL_ALPHA,
    seed: int = 0,
    max_memory: int | float | str | None = None,
    device: str = "auto",
    bias_weight: float = 0.0,
) -> Matching:
    """match(a, b) with a reject option, confidence, predecessors and splits (module doc).

    max_memory, device: as in match(); the partial path keeps to the same budget (its routes'
    estimates in partial.py) and stops with a MemoryError before building the features.
    """
    check_mode(mode)
    check_compatible(a, b)
    bias_weight = check_bias_weight(bias_weight, mode)
    setting = parse_unmatched(unmatched)
    work = None
    if setting is not None or confidence or splits or top_k > 0:
        D = feature_dim(a.d_model, mode, bias_weight)
        work = resolve_budget(max_memory) - features_bytes(a.width, D)
    if setting is not None:
        pass_block(a.width, D, work)  # MemoryError now when not even the float32 pass fits
    t0 = time.perf_counter()
    xa = augmented_features(a, mode, "a", np.float32, fold=fold, bias_weight=bias_weight)
    xb = augmented_features(b, mode, "b", np.float32, fold=fold, bias_weight=bias_weight)
    r, s = squared_norms(xa, xb)
    need_null = setting == "auto" or splits
    null = (
        null_kappa(xa, xb, feature_parts(a.d_model, mode), null_alpha, seed=seed)
        if need_null
        else None
    )
    tau = None
    layout = cost_layout(a.d_model, mode, bias_weight)  # as match()
    if setting is None:
        m = match(
            a, b, mode=mode, fold=fold, solver=solver, max_memory=max_memory, device=device,
            bias_weight=bias_weight,
        )  # fmt: skip
        t_match = m.seconds
    else:
        rho = null["rho"] if setting == "auto" else float(setting)
        t1 = time.perf_counter()
        perm, pair, info = partial_assign(xa, xb, rho, **layout, max_memory=work)
        t_match = time.perf_counter() - t1
        tau = (rho * r, rho * s)
        m = Matching(
            perm=perm,
            pair_mse=pair,
            total_cost=info["objective"],
            mode=mode,
            fold=bool(fold),
            solver="partial-exact",
            seconds=0.0,
            info={"method": "partial-exact", **info},
            unmatched=setting,
            proven=info["proven"],
            bias_weight=bias_weight,
        )
    m.info["match_seconds"] = t_match
    if null is not None:
        m.info["null"] = null
    if confidence or splits or top_k > 0:
        t2 = time.perf_counter()
        duals = m.duals if setting is None else None
        pa, ainfo = analyse_pairs(
            xa,
            xb,
            m.perm,
            tau,
            max(int(top_k), 1),
            duals,
            layout["exact_tail"],
            layout["head_splits"],
            work,
        )
        m.info.update(ainfo)
        m.info["analysis_seconds"] = time.perf_counter() - t2
        if confidence:
            m.confidence = pa.confidence
            m.confidence_lower = pa.confidence_lower
        if top_k > 0:
            m.predecessors, m.predecessor_cost = pa.predecessors, pa.predecessor_cost
        if splits:
            kappa = m.info.get("kappa", null["kappa"])
            m.split_children = detect_splits(
                pa.successors, pa.successor_cost, pa.predecessors, r, s, kappa
            )
            m.info["split_kappa"] = kappa
            m.info["splits"] = int((m.split_children[:, 0] >= 0).sum())
    m.seconds = time.perf_counter() - t0
    return m
