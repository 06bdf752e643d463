"""Scores of a comparison against the planted truth (docs/method.md §9).

Each SAE feature represents at most one true feature (planted.metrics.represented: the true
direction of highest cosine with its decoder row, if ≥ 0.9); `same[k]` is the set of B's true
features that are A's true feature k (itself for one layer; its descendants for the next).
A feature is *known* when it represents something; a known feature of A is *truly shared*
when some feature of B represents a true feature in same[k] (B's side: the converse).

* pair accuracy: over A's known, truly shared features with a partner, the share whose
  partner represents a true feature in same[k] (for the exact matching, the |cos| matching,
  and the shared pairs); `ceiling_exact`: the most any one-to-one matching can get right
  when several latents represent one true feature (planted.metrics.matching_accuracy);
* unshared precision / recall, per side: predicted = no partner in the shared (partial)
  matching; true = known and not truly shared. Features that represent nothing are left out
  and counted apart (`unknown_*`). `unshared_dup_*`: predicted unshared although truly shared
  — the extra latents of a duplicated true feature, which a one-to-one matching must leave
  out: "unshared" then means "no one-to-one partner", not "a feature the other lacks";
* families (the wide side's members j -> narrow parent i): precision = members with
  rep(j) ∈ same[rep(i)] among known members; recall = known wide features whose true
  feature the narrow side represents that got such a parent.
"""

from __future__ import annotations

import numpy as np
import torch


def _shared_truth(rep_a, rep_b, same) -> tuple[np.ndarray, np.ndarray]:
    """(truly shared (F_A,), truly shared (F_B,)) for known features; False for unknown."""
    in_b = set(rep_b[rep_b >= 0].tolist())
    sh_a = np.array([k >= 0 and bool(same[k] & in_b) for k in rep_a.tolist()], dtype=bool)
    back = {c for k in set(rep_a[rep_a >= 0].tolist()) for c in same[k]}  # B's true feats in A
    sh_b = np.array([k >= 0 and k in back for k in rep_b.tolist()], dtype=bool)
    return sh_a, sh_b


def pair_accuracy(perm, rep_a, rep_b, same, sh_a) -> tuple[float, int]:
    """(accuracy, support) of A -> B pairs perm (−1 = none) on A's known, truly shared
    features that have a partner (module doc)."""
    perm = np.asarray(perm)
    rows = np.flatnonzero(sh_a & (perm >= 0))
    ok = [rep_b[perm[i]] in same[rep_a[i]] for i in rows]
    return (float(np.mean(ok)) if ok else float("nan")), len(rows)


def _pr(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    tp = float((pred & true).sum())
    return (
        tp / pred.sum() if pred.sum() else float("nan"),
        tp / true.sum() if true.sum() else float("nan"),
    )


def score_comparison(c, rep_a: np.ndarray, rep_b: np.ndarray, same: list[set[int]]) -> dict:
    """The module doc's scores of Comparison c (saematch.compare) as a flat dict."""
    rep_a, rep_b = np.asarray(rep_a, np.int64), np.asarray(rep_b, np.int64)
    sh_a, sh_b = _shared_truth(rep_a, rep_b, same)
    known_a, known_b = rep_a >= 0, rep_b >= 0
    m = c.matching
    out = {
        "known_a": int(known_a.sum()),
        "known_b": int(known_b.sum()),
        "truly_shared_a": int(sh_a.sum()),
        "truly_shared_b": int(sh_b.sum()),
    }
    out["acc_exact"], out["support_exact"] = pair_accuracy(m.perm, rep_a, rep_b, same, sh_a)
    if (np.asarray(m.perm) >= 0).all():  # A narrow (or equal): the best any matching can do
        from saematch.planted.metrics import matching_accuracy

        out["ceiling_exact"] = matching_accuracy(m.perm, torch.as_tensor(rep_a),
                                                 torch.as_tensor(rep_b), same).ceiling  # fmt: skip
    cos = c.cosine.get("decoder")
    if cos is not None:
        p = np.full(len(rep_a), -1)
        p[cos.rows] = cos.cols
        out["acc_cos_decoder"], _ = pair_accuracy(p, rep_a, rep_b, same, sh_a)
    out["acc_shared"], out["support_shared"] = pair_accuracy(
        m.shared_perm, rep_a, rep_b, same, sh_a
    )
    sp = np.asarray(m.shared_perm)
    un_a = sp < 0
    kept_b = np.zeros(len(rep_b), dtype=bool)
    kept_b[sp[sp >= 0]] = True
    un_b = ~kept_b
    out["unshared_prec_a"], out["unshared_rec_a"] = _pr(un_a & known_a, known_a & ~sh_a)
    out["unshared_prec_b"], out["unshared_rec_b"] = _pr(un_b & known_b, known_b & ~sh_b)
    out["unshared_true_a"] = int((known_a & ~sh_a).sum())
    out["unshared_true_b"] = int((known_b & ~sh_b).sum())
    out["unshared_dup_a"] = int((un_a & sh_a).sum())
    out["unshared_dup_b"] = int((un_b & sh_b).sum())
    out["unknown_a"], out["unknown_unshared_a"] = (
        int((~known_a).sum()),
        int((un_a & ~known_a).sum()),
    )
    out["unknown_b"], out["unknown_unshared_b"] = (
        int((~known_b).sum()),
        int((un_b & ~known_b).sum()),
    )
    out.update(family_scores(c, rep_a, rep_b, same, sh_a, sh_b))
    return out


def family_scores(c, rep_a, rep_b, same, sh_a, sh_b) -> dict:
    """Family precision / recall (module doc); the wide side is c.families.wide."""
    fam = c.families
    if fam.wide == "b":
        rep_w, rep_n, sh_w = rep_b, rep_a, sh_b

        def right(j: int, i: int) -> bool:
            return rep_w[j] in same[rep_n[i]]
    else:
        rep_w, rep_n, sh_w = rep_a, rep_b, sh_a

        def right(j: int, i: int) -> bool:
            return rep_n[i] >= 0 and rep_w[j] >= 0 and rep_n[i] in same[rep_w[j]]

    parent = fam.parent
    members = np.flatnonzero((parent >= 0) & (rep_w >= 0))
    good = np.array([rep_n[parent[j]] >= 0 and right(j, parent[j]) for j in members], bool)
    want = np.flatnonzero(sh_w)
    got = np.array([parent[j] >= 0 and rep_n[parent[j]] >= 0 and right(j, parent[j]) for j in want])
    sizes = fam.sizes(len(rep_n))
    # true split families: narrow features whose true feature ≥ 2 wide features represent
    return {
        "family_members": int((parent >= 0).sum()),
        "family_prec": float(good.mean()) if len(good) else float("nan"),
        "family_rec": float(got.mean()) if len(got) else float("nan"),
        "family_splits": int((sizes >= 2).sum()),
    }
