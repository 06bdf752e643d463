"""Scores of a matching against known successors: unmatched, confidence, splits.

Truth is `successors` (n_A, 2) int64: the features of B that continue A's feature i (none,
one, or two for a split; −1 pads), and optionally `known` (n_A,) bool, the features whose truth
is known (in the planted world: SAE features that represent a true feature, docs/method.md §9).

* unmatched precision / recall (A side): predicted = perm[i] = −1, true = no successor;
  B side the same with "no predecessor" (born features).
* pair accuracy: share of matched known i with perm[i] ∈ successors[i].
* confidence AUROC: P(conf of a correct pair > conf of a wrong one), ties ½ (Mann–Whitney).
* split precision / recall: detected parents (split_children[i, 0] ≥ 0) vs true two-child
  features; `children_exact`: detected splits whose two children are exactly the true ones.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """AUROC of `score` for `positive` vs the rest (NaN when one class is empty)."""
    score, positive = np.asarray(score, dtype=np.float64), np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _pr(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    tp = float((pred & true).sum())
    prec = tp / pred.sum() if pred.sum() else float("nan")
    rec = tp / true.sum() if true.sum() else float("nan")
    return prec, rec


def sae_level_truth(
    rep_a: np.ndarray, rep_b: np.ndarray, successor: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth between SAE features from truth between true features (planted world,
    docs/method.md §9).

    rep_a (F_A,), rep_b (F_B,): the true feature each SAE feature represents (−1: none);
    successor (N_t, 2): true children at t+1 (−1 pads). Returns (successors (F_A, 2): the SAE
    features of B representing a child of what A's feature represents, at most one per child;
    known (F_A,): A's feature represents something; known_b (F_B,): likewise for B).
    Born / died at the SAE level: no represented child / parent.
    """
    rep_a, rep_b = np.asarray(rep_a, dtype=np.int64), np.asarray(rep_b, dtype=np.int64)
    first = {}  # true feature of t+1 -> one SAE feature representing it (the first)
    for j, i in enumerate(rep_b.tolist()):
        if i >= 0:
            first.setdefault(i, j)
    out = np.full((len(rep_a), 2), -1, dtype=np.int64)
    for j, i in enumerate(rep_a.tolist()):
        if i < 0:
            continue
        kids = [first[c] for c in successor[i].tolist() if c >= 0 and c in first]
        out[j, : len(kids)] = kids
    return out, rep_a >= 0, rep_b >= 0


def unambiguous(
    rep_a: np.ndarray, rep_b: np.ndarray, successor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The SAE features whose truth a one-to-one matching can meet (planted world).

    A's feature j (representing true i) is unambiguous when no other feature of A represents
    i and each child of i is represented by at most one feature of B; B's feature l
    (representing c) when no other feature of B represents c and c's parent, if any, is
    represented by at most one feature of A. Duplicates (two SAE features on one true feature)
    make "unmatched" ill-posed: a bijection-free matching must still leave one twin unmatched.
    """
    rep_a, rep_b = np.asarray(rep_a, dtype=np.int64), np.asarray(rep_b, dtype=np.int64)
    successor = np.asarray(successor, dtype=np.int64)
    n_t, n_u = len(successor), int(max(successor.max(initial=-1) + 1, rep_b.max(initial=-1) + 1))
    ca = np.bincount(rep_a[rep_a >= 0], minlength=n_t)
    cb = np.bincount(rep_b[rep_b >= 0], minlength=n_u)
    kid_ok = np.where(successor >= 0, cb[np.maximum(successor, 0)] <= 1, True).all(1)
    parent = np.full(n_u, -1)
    for i, c in zip(*np.nonzero(successor >= 0), strict=True):
        parent[successor[i, c]] = i
    ia, ib = np.maximum(rep_a, 0), np.maximum(rep_b, 0)
    ua = (rep_a >= 0) & (ca[ia] == 1) & kid_ok[ia]
    pb = parent[ib]
    ub = (rep_b >= 0) & (cb[ib] == 1) & ((pb < 0) | (ca[np.maximum(pb, 0)] <= 1))
    return ua, ub


def score_matching(
    perm: np.ndarray,
    successors: np.ndarray,
    confidence: np.ndarray | None = None,
    split_children: np.ndarray | None = None,
    known: np.ndarray | None = None,
    known_b: np.ndarray | None = None,
    relative_to: np.ndarray | None = None,
) -> dict[str, float]:
    """The scores of the module doc for one matching (perm with −1 = unmatched).

    relative_to: optional (n_A,) scale (e.g. ‖z_i‖² + ‖z'_p(i)‖²) for a scale-free
    confidence; its AUROC is reported as `auroc_relative`.
    """
    perm = np.asarray(perm, dtype=np.int64)
    n_a, n_b = len(perm), int(max(successors.max(initial=-1), perm.max(initial=-1)) + 1)
    known = np.ones(n_a, dtype=bool) if known is None else np.asarray(known, dtype=bool)
    has_succ = (successors >= 0).any(1)
    matched = perm >= 0
    out = {"n": int(known.sum()), "matched": int((matched & known).sum())}
    out["unmatched_precision"], out["unmatched_recall"] = _pr(~matched & known, ~has_succ & known)
    out["unmatched_tp"] = int((~matched & known & ~has_succ).sum())  # counts, for pooling
    out["unmatched_pred"] = int((~matched & known).sum())
    out["unmatched_true"] = int((~has_succ & known).sum())
    out["unmatched_share"] = float((~matched).mean()) if n_a else 0.0
    # B side: features of B without a predecessor (born) vs left unmatched
    n_b = max(n_b, len(known_b) if known_b is not None else 0)
    kb = np.ones(n_b, dtype=bool) if known_b is None else np.asarray(known_b, dtype=bool)
    has_pred = np.zeros(n_b, dtype=bool)
    has_pred[successors[known][successors[known] >= 0]] = True
    b_matched = np.zeros(n_b, dtype=bool)
    b_matched[perm[matched]] = True
    out["unmatched_b_precision"], out["unmatched_b_recall"] = _pr(~b_matched & kb, ~has_pred & kb)
    correct = matched & ((perm[:, None] == successors) & (successors >= 0)).any(1)
    ev = matched & known
    out["pair_accuracy"] = float(correct[ev].mean()) if ev.any() else float("nan")
    if confidence is not None:
        conf = np.asarray(confidence, dtype=np.float64)
        out["confidence_auroc"] = auroc(conf[ev], correct[ev])
        if relative_to is not None:
            rel = conf / np.maximum(np.asarray(relative_to, dtype=np.float64), 1e-30)
            out["confidence_auroc_relative"] = auroc(rel[ev], correct[ev])
    if split_children is not None:
        true_split = (successors >= 0).all(1) & known
        pred_split = (split_children[:, 0] >= 0) & known
        out["split_precision"], out["split_recall"] = _pr(pred_split, true_split)
        same = np.sort(split_children, 1) == np.sort(successors, 1)
        hit = pred_split & true_split & same.all(1)
        out["split_children_exact"] = (
            float(hit.sum() / pred_split.sum()) if pred_split.any() else float("nan")
        )
        out["splits_true"], out["splits_detected"] = int(true_split.sum()), int(pred_split.sum())
    return out
