"""Ground truth (SPEC §9): how often each matching variant pairs the right features.

On the planted set (saes=planted), for every adjacent pair t → t+1: SAE recovery per layer,
matching accuracy of `vanilla` and of every mode × fold (with its support size), and composition
accuracy against distance k (composed adjacent permutations vs the exact LAP between t and t+k).
The computation is saematch.planted.ground_truth_report; the permutations are saved to
matchings.safetensors, so every number can be recomputed from truth.safetensors, the SAE files
and that file alone (saematch.planted.report.saved_matcher).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from omegaconf import DictConfig

from experiments.context import Context
from saematch.planted import VARIANTS, ground_truth_report
from saematch.planted.report import PERMS, RecordingMatcher, plot_report, summary_table


@dataclass
class Options:
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    composition_variant: str = "folded_both"  # whose permutations are composed over distance
    print_summary: bool = True  # the summary table on the console


def run(cfg: DictConfig) -> dict:
    """Score every matching variant of the planted set against its truth."""
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    ctx = Context(cfg)
    opts = ctx.options
    with ctx.recorder as rec:
        planted = ctx.planted
        saes = [s.to("cpu") for s in planted.load_saes()]
        matcher = RecordingMatcher({id(s): t for t, s in enumerate(saes)})
        report = ground_truth_report(
            saes,
            planted.truth,
            variants=list(opts.variants),
            composition_variant=opts.composition_variant,
            matcher=matcher,
        )
        rec.add_artifact("matchings", matcher.save(ctx.run_dir / PERMS), "matchings")
        rec.add_table(
            "ground_truth_recovery",
            [{"layer": t, "sae_recovery": r} for t, r in report.recovery.items()],
        )
        rec.add_table(
            "ground_truth_accuracy",
            [
                {"variant": v, "pair": p, **a.to_dict()}
                for v, per in report.accuracy.items()
                for p, a in per.items()
            ],
        )
        rec.add_table(
            "ground_truth_composition",
            [
                {"distance": k, "kind": kind, **a.to_dict()}
                for k, d in report.composition.items()
                for kind, a in d.items()
            ],
        )
        rec.add_figure("ground_truth", plot_report(report))
        table = summary_table(report)
        if opts.print_summary:
            print(table, flush=True)
        results = {
            **report.to_results(),
            "planted": {
                "root": str(planted.root),
                "config": planted.manifest["config"],
                "sae_metrics": planted.manifest["metrics"]["saes"],
            },
            "summary": table,
        }
        rec.finish(results)
    return results
