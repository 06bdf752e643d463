"""Score every matching variant of a planted set against its truth (docs/method.md §9).

Variants: `vanilla` (identity) and `<folded|unfolded>_<encoder|decoder|both>` (docs/method.md §3).
Composition at distance k: the adjacent permutations t → … → t+k composed (Sec. 3.2), and the
exact LAP between t and t+k, both scored against the composed truth desc_k; pooled over start
layers t (correct and support summed), so each distance is one share with one support size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from saematch.matching import MODES, match
from saematch.planted.metrics import Accuracy, matching_accuracy, represented, sae_recovery
from saematch.planted.world import World, descendants
from saematch.sae import JumpReLUSAE

VARIANTS = ("vanilla",) + tuple(
    f"{'folded' if fold else 'unfolded'}_{mode}" for fold in (True, False) for mode in MODES
)

# (a, b, mode, fold) -> perm (F_A,) with perm[i] = j
Matcher = Callable[[JumpReLUSAE, JumpReLUSAE, str, bool], np.ndarray]


def lap_matcher(a: JumpReLUSAE, b: JumpReLUSAE, mode: str, fold: bool) -> np.ndarray:
    """The default matcher: saematch.matching.match (eq. 3)."""
    return match(a, b, mode=mode, fold=fold, confidence=False, top_k=0, splits=False).perm


def parse_variant(name: str) -> tuple[str, bool] | None:
    """'folded_both' -> ("both", True); 'vanilla' -> None; ValueError for unknown names."""
    if name == "vanilla":
        return None
    fold, _, mode = name.partition("_")
    if fold not in ("folded", "unfolded") or mode not in MODES:
        raise ValueError(f"unknown matching variant {name!r}; choose from {list(VARIANTS)}")
    return mode, fold == "folded"


def _pool(accs: Sequence[Accuracy]) -> Accuracy:
    support = sum(a.support for a in accs)
    correct = sum(a.correct for a in accs)
    attainable = sum(a.attainable for a in accs)
    return Accuracy(correct / support if support else float("nan"), support, correct, attainable)


@dataclass
class GroundTruthReport:
    """recovery[t]; accuracy[variant]["t-(t+1)"]; composition[k] = {"composed", "exact"}."""

    recovery: dict[int, float]
    accuracy: dict[str, dict[str, Accuracy]]
    composition: dict[int, dict[str, Accuracy]] = field(default_factory=dict)
    composition_variant: str = "folded_both"

    def to_results(self) -> dict:
        """The results.json layout: sae_recovery, accuracy, composition (shares), support."""
        return {
            "sae_recovery": {str(t): r for t, r in self.recovery.items()},
            "accuracy": {
                v: {p: a.accuracy for p, a in pairs.items()} for v, pairs in self.accuracy.items()
            },
            "support": {
                v: {p: a.support for p, a in pairs.items()} for v, pairs in self.accuracy.items()
            },
            "ceiling": {  # the best any bijection can score (duplicate latents share partners)
                p: a.ceiling for p, a in next(iter(self.accuracy.values()), {}).items()
            },
            "composition_variant": self.composition_variant,
            "composition": {
                str(k): {kind: a.accuracy for kind, a in d.items()}
                for k, d in self.composition.items()
            },
            "composition_support": {
                str(k): {kind: a.support for kind, a in d.items()}
                for k, d in self.composition.items()
            },
        }


def ground_truth_report(
    saes: Sequence[JumpReLUSAE],
    world: World,
    *,
    variants: Sequence[str] = VARIANTS,
    composition_variant: str | None = "folded_both",
    matcher: Matcher = lap_matcher,
) -> GroundTruthReport:
    """Recovery per layer, accuracy per variant and adjacent pair, composition per distance."""
    L = world.n_layers
    if len(saes) != L:
        raise ValueError(f"{len(saes)} SAEs for a world of {L} layers; pass one per layer")
    reps = [represented(s.W_dec, world.directions[t]) for t, s in enumerate(saes)]
    recovery = {t: sae_recovery(s.W_dec, world.directions[t]) for t, s in enumerate(saes)}
    truth1 = [descendants(world.successor, t, 1) for t in range(L - 1)]
    perms: dict[str, list[np.ndarray]] = {}
    accuracy: dict[str, dict[str, Accuracy]] = {}
    for v in variants:
        how = parse_variant(v)
        perms[v] = [
            np.arange(saes[t].width) if how is None else matcher(saes[t], saes[t + 1], *how)
            for t in range(L - 1)
        ]
        accuracy[v] = {
            f"{t}-{t + 1}": matching_accuracy(perms[v][t], reps[t], reps[t + 1], truth1[t])
            for t in range(L - 1)
        }
    report = GroundTruthReport(recovery, accuracy)
    if composition_variant is None:
        return report
    how = parse_variant(composition_variant)
    if how is None:
        raise ValueError("composition needs a matching variant, not vanilla")
    if composition_variant not in perms:
        perms[composition_variant] = [matcher(saes[t], saes[t + 1], *how) for t in range(L - 1)]
    adj = perms[composition_variant]
    report.composition_variant = composition_variant
    for k in range(1, L):
        composed, exact = [], []
        for t in range(L - k):
            truth = descendants(world.successor, t, k)
            chain = adj[t]
            for step in range(t + 1, t + k):
                chain = adj[step][chain]  # perm_AC = perm_BC[perm_AB]
            direct = adj[t] if k == 1 else matcher(saes[t], saes[t + k], *how)
            composed.append(matching_accuracy(chain, reps[t], reps[t + k], truth))
            exact.append(matching_accuracy(direct, reps[t], reps[t + k], truth))
        report.composition[k] = {"composed": _pool(composed), "exact": _pool(exact)}
    return report
