"""Ground truth (docs/method.md §9): how often each matching variant pairs the right features.

On the planted set (saes=planted), for every adjacent pair t → t+1: SAE recovery per layer,
matching accuracy of `vanilla` and of every mode × fold (with its support size and the best any
bijection can score), and composition accuracy against distance k (composed adjacent
permutations vs the exact LAP between t and t+k). The computation is
saematch.planted.ground_truth_report; every permutation it scored is returned as a match file
(matchings/<variant>_L<t>-L<t+1>.*, and <variant>_exact_k<k>_L<t>-L<t+k>.* for the direct
t → t+k LAPs, each variant with its index <variant>.json), so every
number can be recomputed from truth.safetensors, the SAE files and those files alone
(saematch.planted.report.saved_matcher).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from saematch.planted import ground_truth_report
from saematch.planted.report import RecordingMatcher, plot_report, summary_table
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results


@dataclass
class Options:
    variants: list[str]  # vanilla and <folded|unfolded>_<encoder|decoder|both>
    composition_variant: str  # whose permutations are composed over distance
    print_summary: bool  # the summary table as the console summary (else the headline rows)


@dataclass
class RecoveryRow:
    layer: int
    sae_recovery: float  # share of true features with a decoder row at cos ≥ 0.9


@dataclass
class AccuracyRow:
    variant: str
    pair: str  # "t-(t+1)"
    accuracy: float
    support: int  # SAE features whose true feature has a represented successor
    correct: int
    ceiling: float  # the best any bijection can score (duplicate latents share partners)


@dataclass
class CompositionRow:
    distance: int
    kind: str  # composed | exact
    accuracy: float
    support: int
    correct: int
    ceiling: float


def run(opts: Options, ctx: Context) -> Results:
    """Score every matching variant of the planted set against its truth."""
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    planted = ctx.planted
    saes = [s.to("cpu") for s in planted.load_saes()]
    bias_weight = float(ctx.cfg.matching.bias_weight)
    matcher = RecordingMatcher({id(s): t for t, s in enumerate(saes)}, bias_weight)
    report = ground_truth_report(
        saes,
        planted.truth,
        variants=list(opts.variants),
        composition_variant=opts.composition_variant,
        matcher=matcher,
    )
    res = Results(matchings=matcher.match_files())
    res.table("ground_truth_recovery", [RecoveryRow(t, r) for t, r in report.recovery.items()])
    acc = res.table(
        "ground_truth_accuracy",
        [
            AccuracyRow(v, p, a.accuracy, a.support, a.correct, a.ceiling)
            for v, per in report.accuracy.items()
            for p, a in per.items()
        ],
    )
    res.table(
        "ground_truth_composition",
        [
            CompositionRow(k, kind, a.accuracy, a.support, a.correct, a.ceiling)
            for k, d in report.composition.items()
            for kind, a in d.items()
        ],
    )
    res.figures["ground_truth"] = plot_report(report)
    table = summary_table(report)
    res.texts["ground_truth_summary.txt"] = table
    if opts.print_summary:
        res.console = f"ground_truth:\n{table}"
    res.metrics = acc
    res.headline = [r for r in acc if r.variant == opts.composition_variant]
    res.summary = {
        **report.to_results(),
        "planted": {
            "root": str(planted.root),
            "config": planted.manifest["config"],
            "sae_metrics": planted.manifest["metrics"]["saes"],
        },
    }
    return res
