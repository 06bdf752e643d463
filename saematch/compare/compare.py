"""compare(a, b): two SAEs on one stream, matched exactly, with what they share and what not.

    c = compare(a, b)                 # any widths, same d_model
    print(c.console())                # PW-MCC, share above cos 0.7, shared / unshared counts
    save_match_file(c.matching, "out/compare")   # families and the shared pairs included

What it computes (module docs of rect.py, shared.py, families.py, cosine.py):

* the exact matching on the folded MSE (docs/method.md §3) from the narrow side into the wide
  one, certified by LP duals (rect.py): `matching.perm`;
* "shared": the exact partial matching at the rotation null's κ* (shared.py), so no forced pair
  counts: `matching.shared_perm` (−1 = no partner);
* families on the wide side (families.py): `matching.family_parent`, `family_confidence`;
* per part (decoder, encoder): PW-MCC and the share above cos 0.7 on the |cos|-optimal
  matching (cosine.py, as the literature defines them), and the same two numbers on the
  MSE matching's pairs (saematch's), so each number says which matching it comes from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from saematch.compare.cosine import PARTS, SHARE_COS, CosineMatching, cosine_matching, pair_cosines
from saematch.compare.families import ROW_BYTES, Families, families
from saematch.compare.rect import RectCertificate, check_match_rect, match_rect
from saematch.compare.shared import Shared, shared_features
from saematch.matching import Matching
from saematch.matching.cost import augmented_features
from saematch.sae import JumpReLUSAE

FAMILY_DEFINITION = (
    "wide feature j belongs to narrow feature p(j) = argmax_i κ_ij when κ_p(j),j > κ* "
    "(κ = 1 − c/(‖z‖² + ‖z'‖²) on the matching's cost, κ* the rotation null's); confidence = "
    "κ margin over the runner-up narrow feature"
)


def foldable(sae: JumpReLUSAE) -> bool:
    """Whether θ can be folded: every θ > 0 (TopK and ReLU SAEs have θ = 0: no)."""
    try:
        sae.check_foldable()
    except ValueError:
        return False
    return True


def resolve_fold(a: JumpReLUSAE, b: JumpReLUSAE, fold: bool | str) -> bool:
    """fold = "auto": fold when both SAEs have θ > 0; True requires it (clear error)."""
    if fold == "auto":
        return foldable(a) and foldable(b)
    if fold and not (foldable(a) and foldable(b)):
        side = "a" if not foldable(a) else "b"
        raise ValueError(
            f"compare: SAE {side} has a threshold θ ≤ 0 (a TopK or ReLU SAE), so it cannot be "
            "folded; compare with fold=auto or fold=false"
        )
    return bool(fold)


@dataclass
class Comparison:
    """Everything compare() found (module doc); `summary()` is the numbers, flat."""

    a: dict  # name, width, d_model
    b: dict
    matching: Matching  # exact rectangular (perm) + shared_perm + families
    shared: Shared
    families: Families
    cosine: dict[str, CosineMatching]  # part -> the |cos|-optimal matching
    mse_pair_cos: dict[str, np.ndarray]  # part -> cos of the MSE matching's pairs (F_A,)
    certificate: RectCertificate | None
    seconds: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Flat JSON-ready numbers; keys say which matching each comes from."""
        n_n = min(self.a["width"], self.b["width"])
        m = self.matching
        out = {
            "a": self.a["name"],
            "b": self.b["name"],
            "width_a": self.a["width"],
            "width_b": self.b["width"],
            "d_model": self.a["d_model"],
            "mode": m.mode,
            "fold": m.fold,
            "mse_total_cost": m.total_cost,
            "mse_certified": None if self.certificate is None else self.certificate.ok,
            "mse_gap_bound": None if self.certificate is None else self.certificate.gap_bound,
            "kappa_star": self.shared.kappa,
            "shared_pairs": self.shared.shared,
            "shared_share": self.shared.shared / n_n if n_n else float("nan"),
            "unshared_a": self.shared.unshared_a,
            "unshared_b": self.shared.unshared_b,
            "family_wide_side": self.families.wide,
            "family_members": int((self.families.parent >= 0).sum()),
            "family_splits": self.families.splits(n_n),
        }
        for part, cm in self.cosine.items():
            out[f"pwmcc_{part}"] = cm.pwmcc
            out[f"share_cos{SHARE_COS}_{part}"] = cm.share_above()
            out[f"cos_method_{part}"] = cm.method
            pc = np.abs(self.mse_pair_cos[part])
            pc = pc[np.isfinite(pc)]
            out[f"mse_match_mean_abs_cos_{part}"] = float(pc.mean()) if len(pc) else float("nan")
            out[f"mse_match_share_cos{SHARE_COS}_{part}"] = (
                float((pc > SHARE_COS).mean()) if len(pc) else float("nan")
            )
        out.update({f"seconds_{k}": v for k, v in self.seconds.items()})
        return out

    def console(self) -> str:
        """A few lines for the terminal: what is shared and how similar."""
        s = self.summary()
        n_n = min(s["width_a"], s["width_b"])
        lines = [
            f"compare: a = {s['a']} ({s['width_a']} features), b = {s['b']} "
            f"({s['width_b']}), d_model {s['d_model']}",
        ]
        for part in self.cosine:
            lines.append(
                f"  {part:8s} PW-MCC {s[f'pwmcc_{part}']:.4f} (|cos| matching, "
                f"{s[f'cos_method_{part}']}); pairs with |cos| > {SHARE_COS}: "
                f"{s[f'share_cos{SHARE_COS}_{part}']:.1%}; on the MSE matching: mean |cos| "
                f"{s[f'mse_match_mean_abs_cos_{part}']:.4f}, > {SHARE_COS}: "
                f"{s[f'mse_match_share_cos{SHARE_COS}_{part}']:.1%}"
            )
        cert = {True: "certified optimal", False: "NOT certified", None: "not checked"}
        lines += [
            f"  exact matching ({s['mode']}, {'folded' if s['fold'] else 'unfolded'} MSE): "
            f"{n_n} pairs, total cost {s['mse_total_cost']:.6g}, {cert[s['mse_certified']]}",
            f"  shared (rotation null, κ* = {s['kappa_star']:.3f}): {s['shared_pairs']} pairs "
            f"= {s['shared_share']:.1%} of the narrow side; unshared: a {s['unshared_a']}, "
            f"b {s['unshared_b']}",
            f"  families on side {s['family_wide_side']}: {s['family_members']} members, "
            f"{s['family_splits']} narrow features with ≥ 2",
        ]
        return "\n".join(lines)


F32 = 4  # bytes


def memory_plan(
    a: JumpReLUSAE, b: JumpReLUSAE, mode: str = "both", parts: tuple[str, ...] = PARTS
) -> dict[str, int]:
    """Bytes each stage of compare() holds beyond the two SAEs before its own solver works
    (as budget.py counts: what the stage allocates, not its inputs). n_n ≤ n_w the widths, D
    the cost's feature length (docs/method.md §3), d = d_model:

    * matching: the plain features (n_a + n_b)(D + 2) and, for different widths, their padded
      square copies 2 n_w (D + 3) (rect.py; both live while the copies are made);
    * shared: the plain features of the partial matching (shared.py: rectangular, unpadded);
    * families: the plain features and one block of 16 wide rows (families.family_block);
    * cosine_<part>: unit directions (n_a + n_b) d, then the dense n_a × n_b float64 cosine
      and its |cos| (cosine.DENSE_LIMIT) or the augmented and padded directions;
    * pair_cosines: the unit directions of one part.
    All float32 unless said. Each stage's solver gets max_memory minus its stage's bytes."""
    from saematch.compare.cosine import DENSE_LIMIT
    from saematch.compare.families import ROW_BYTES
    from saematch.matching.cost import feature_dim

    n_a, n_b, d = a.width, b.width, a.d_model
    n_n, n_w = min(n_a, n_b), max(n_a, n_b)
    D = feature_dim(d, mode)
    rect = n_a != n_b
    plain = (n_a + n_b) * (D + 2) * F32
    units = (n_a + n_b) * d * F32
    plan = {
        "matching": plain + (2 * n_w * (D + 3) * F32 if rect else 0),
        "shared": plain,
        "families": plain + ROW_BYTES * 16 * n_n,
    }
    for part in parts:
        if n_a * n_b <= DENSE_LIMIT:
            plan[f"cosine_{part}"] = units + 3 * n_a * n_b * 8
        else:
            aug = (n_a + n_b) * (d + 2) * F32
            plan[f"cosine_{part}"] = units + aug + (2 * n_w * (d + 3) * F32 if rect else 0)
    plan["pair_cosines"] = units
    return plan


def check_memory_plan(plan: dict[str, int], budget: int, what: str) -> None:
    """MemoryError naming every stage whose own arrays do not fit `budget` bytes (before
    anything large is allocated)."""
    from saematch.matching.budget import show_bytes

    over = {k: v for k, v in plan.items() if v >= budget}
    if over:
        worst = max(plan.values())
        raise MemoryError(
            f"compare {what}: "
            + ", ".join(f"{k} needs {show_bytes(v)}" for k, v in over.items())
            + f" beyond the two SAEs, max_memory is {show_bytes(budget)}; raise matching."
            f"max_memory above {show_bytes(worst)} (plus the solvers' working memory)"
        )


def sae_info(sae: JumpReLUSAE) -> dict:
    """Name, width, d_model of an SAE (for the summary)."""
    return {"name": sae.name or "unnamed", "width": sae.width, "d_model": sae.d_model}


def compare(
    a: JumpReLUSAE,
    b: JumpReLUSAE,
    *,
    mode: str = "both",
    fold: bool | str = "auto",
    solver="auto",
    parts: tuple[str, ...] = PARTS,
    null_alpha: float = 0.05,
    seed: int = 0,
    certify: bool = True,
    max_memory: int | None = None,
    device: str = "auto",
) -> Comparison:
    """Compare SAEs a and b of one stream (same d_model, any widths): module doc.

    fold: auto (fold θ when both have θ > 0), True or False. certify: check the rectangular
    certificate from the costs (an n_A × n_B pass in blocks; off for the largest sizes).
    """
    from saematch.compare.rect import check_same_stream
    from saematch.matching.budget import resolve_budget

    check_same_stream(a, b)
    fold = resolve_fold(a, b, fold)
    budget = resolve_budget(max_memory)
    plan = memory_plan(a, b, mode, parts)
    check_memory_plan(plan, budget, f"{a.width} x {b.width} (d {a.d_model}, mode {mode})")
    t = {}
    t0 = time.perf_counter()
    m = match_rect(a, b, mode=mode, fold=fold, solver=solver, max_memory=budget, device=device)
    t["match"] = time.perf_counter() - t0
    cert = None
    if certify:
        t0 = time.perf_counter()
        cert = check_match_rect(a, b, m)
        t["certificate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sh = shared_features(
        a, b, mode=mode, fold=fold, null_alpha=null_alpha, seed=seed,
        max_memory=budget, device=device,
    )  # fmt: skip
    t["shared"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    xa = augmented_features(a, mode, "a", np.float32, fold=fold)
    xb = augmented_features(b, mode, "b", np.float32, fold=fold)
    block_room = budget - plan["families"] + ROW_BYTES * 16 * min(a.width, b.width)
    fam = families(xa, xb, sh.kappa, work_bytes=block_room)
    del xa, xb
    t["families"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cos = {
        p: cosine_matching(a, b, p, solver=solver, max_memory=budget - plan[f"cosine_{p}"])
        for p in parts
    }
    mse_cos = {p: pair_cosines(a, b, m.perm, p) for p in parts}
    t["cosine"] = time.perf_counter() - t0
    m.shared_perm = sh.matching.perm
    m.family_parent, m.family_confidence = fam.parent, fam.confidence
    m.info["families"] = {
        "wide": fam.wide,
        "kappa_star": fam.kappa_star,
        "definition": FAMILY_DEFINITION,
    }
    m.info["shared"] = {
        "kappa_star": sh.kappa,
        "null": sh.matching.info.get("null"),
        "unmatched_a": sh.unshared_a,
        "unmatched_b": sh.unshared_b,
        "proven": sh.matching.proven,
    }
    if cert is not None:
        m.info["certificate"] = {"ok": cert.ok, "gap_bound": cert.gap_bound}
        m.proven = cert.ok
    return Comparison(sae_info(a), sae_info(b), m, sh, fam, cos, mse_cos, cert, t)
