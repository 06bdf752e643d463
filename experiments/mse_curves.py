"""MSE curves (Fig. 3): per layer pair, the W_enc, W_dec and b_enc MSE of three matchings.

Variants, for each adjacent pair t → t+1 (A = SAE t, B = SAE t+1, cfg.matching.mode cost):

    vanilla          perm = identity
    matched          perm = match(A, B, fold=False)   (matched on raw weights)
    folded+matched   perm = match(A, B, fold=True)    (SAE Match)

Every variant is scored on FOLDED weights (docs/method.md §3, last sentence; eq. 4), per pair term
of docs/method.md §3 averaged over the F matched pairs:

    encoder_mse = mean_i mean_d (W'_enc,A[:, i] − W'_enc,B[:, perm[i]])²
    decoder_mse = mean_i mean_d (W'_dec,A[i] − W'_dec,B[perm[i]])²
    bias_mse    = mean_i (b'_enc,A[i] − b'_enc,B[perm[i]])²
    objective   = the mean per-pair cost of the matching mode ("both" = encoder + decoder;
                  + bias_weight · bias_mse only with the non-paper option bias_weight > 0)

ReLU and TopK SAEs have no θ, so folding is undefined for them: with such a set (run with
matching.fold=false) the curves are vanilla and matched only, scored on the raw weights.

folded+matched minimises the folded objective, so objective(folded+matched) ≤ objective of
any other permutation, pair by pair; b_dec is not part of any cost (it does not depend on
the feature order).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from saematch import plotting
from saematch.lazy_saes import mapped
from saematch.pair_mse import TERMS, mode_cost, mse_terms
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results

VARIANTS = ("vanilla", "matched", "folded")  # plotting keys: folded = folded + matched
TITLES = {"encoder_mse": "W_enc", "decoder_mse": "W_dec", "bias_mse": "b_enc"}


@dataclass
class Options:
    log_scale: bool  # y axis of the figure on a log scale (as in the paper)


@dataclass
class CurveRow:
    """One variant of one pair t -> next_layer, every term on folded weights (module doc)."""

    layer: int
    next_layer: int
    variant: str  # vanilla | matched | folded (= folded + matched)
    encoder_mse: float
    decoder_mse: float
    bias_mse: float
    objective: float  # the matching mode's cost per pair
    fixed_points: float  # share of features i with perm[i] = i


@dataclass
class PairRow:
    """The headline of one pair: each variant's objective and how often matched = folded."""

    layer: int
    vanilla: float
    matched: float
    folded: float
    agreement_matched_folded: float


def curve_row(
    t: int, u: int, variant: str, a_folded, b_folded, perm, mode: str, bias_weight: float = 0.0
) -> CurveRow:
    """The docs/method.md §3 terms of perm between folded SAEs t and u, averaged over pairs;
    objective = the mode's cost (both: encoder + decoder + bias_weight · b_enc term)."""
    terms = mse_terms(a_folded, b_folded, perm)
    objective = mode_cost(terms, mode, bias_weight)
    fixed = float(np.mean(perm == np.arange(len(perm))))
    return CurveRow(t, u, variant, **terms, objective=objective, fixed_points=fixed)


def plot(rows: list[CurveRow], log_scale: bool):
    """W_enc, W_dec, b_enc MSE (folded weights) vs layer pair, a line per variant (Fig. 3)."""
    fig, axes = plotting.new_figure(1, 3, panel_size=(4.2, 3.3))
    for ax, (term, title) in zip(axes, TITLES.items(), strict=True):
        for v in VARIANTS:
            sel = [r for r in rows if r.variant == v]
            if not sel:  # folded is absent for ReLU / TopK SAEs
                continue
            ys = [getattr(r, term) for r in sel]
            plotting.line_per_layer(ax, [r.layer for r in sel], ys, method=v)
        if log_scale:
            ax.set_yscale("log")
        legend = term == "encoder_mse"
        plotting.label_axes(ax, x="layer_pair", y=term, title=f"{title} (folded)", legend=legend)
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Vanilla / matched / folded+matched MSE of W_enc, W_dec, b_enc per adjacent pair."""
    mode = plain(ctx.cfg.matching.mode)
    w = float(ctx.cfg.matching.bias_weight)
    can_fold = all(s.foldable for s in ctx.saes.values())  # ReLU / TopK: raw weights only
    # folded on access, a pair at a time (a full-size set does not fit twice: saematch.lazy_saes)
    scored = mapped(ctx.saes, lambda s: s.to("cpu").fold() if can_fold else s.to("cpu"))
    matchings = {"matched": ctx.matchings(fold=False)}
    if can_fold:
        matchings["folded"] = ctx.matchings(fold=True)
    variants = VARIANTS if can_fold else VARIANTS[:2]
    rows, pairs = [], []
    for t, u in ctx.next_layer.items():
        perms = {"vanilla": np.arange(scored[t].width)}
        perms |= {v: np.asarray(ms[t].perm) for v, ms in matchings.items()}
        new = [curve_row(t, u, v, scored[t], scored[u], perms[v], mode, w)
               for v in variants]  # fmt: skip
        obj = {v: float("nan") for v in VARIANTS} | {r.variant: r.objective for r in new}
        agree = float(np.mean(perms["matched"] == perms["folded"])) if can_fold else float("nan")
        pairs.append(PairRow(t, **obj, agreement_matched_folded=agree))
        rows += new
    res = Results(matchings=matchings, metrics=pairs, headline=pairs)
    res.table("mse_curves", rows)
    res.figures["mse_curves"] = plot(rows, bool(opts.log_scale))
    res.summary = summary(rows, pairs, mode, ctx.solver.key())
    if not can_fold:
        res.summary["scored_on"] = "raw weights: ReLU/TopK SAEs have no θ, folding is undefined"
    return res


def summary(rows: list[CurveRow], pairs: list[PairRow], mode: str, solver: str) -> dict:
    """results.json: per pair {variant: terms, agreement}, and each term's mean over pairs."""
    layers = {str(p.layer): {"agreement_matched_folded": p.agreement_matched_folded} for p in pairs}
    for r in rows:
        terms = asdict(r)
        del terms["layer"], terms["next_layer"], terms["variant"]
        layers[str(r.layer)][r.variant] = terms
    present = [v for v in VARIANTS if any(r.variant == v for r in rows)]
    mean = lambda v, k: float(np.mean([getattr(r, k) for r in rows if r.variant == v]))  # noqa: E731
    return {
        "matching": {"mode": mode, "solver": solver},
        "variants": {
            "vanilla": "identity",
            "matched": "matched unfolded, scored folded",
            "folded": "matched folded, scored folded",
        },
        "layers": layers,
        "mean_over_pairs": {v: {k: mean(v, k) for k in (*TERMS, "objective")} for v in present},
    }
