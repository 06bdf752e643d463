"""MSE curves (Fig. 3): per layer pair, the W_enc, W_dec and b_enc MSE of three matchings.

Variants, for each adjacent pair t → t+1 (A = SAE t, B = SAE t+1, cfg.matching.mode cost):

    vanilla          perm = identity
    matched          perm = match(A, B, fold=False)   (matched on raw weights)
    folded+matched   perm = match(A, B, fold=True)    (SAE Match)

Every variant is scored on FOLDED weights (SPEC §3, last sentence; eq. 4), per pair term of
SPEC §3 averaged over the F matched pairs:

    encoder_mse = mean_i mean_d (W'_enc,A[:, i] − W'_enc,B[:, perm[i]])²
    decoder_mse = mean_i mean_d (W'_dec,A[i] − W'_dec,B[perm[i]])²
    bias_mse    = mean_i (b'_enc,A[i] − b'_enc,B[perm[i]])²
    objective   = the mean per-pair cost of the matching mode ("both" = the sum of the three)

folded+matched minimises the folded objective, so objective(folded+matched) ≤ objective of
any other permutation, pair by pair; b_dec is not part of any cost (it does not depend on
the feature order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.common import Results
from experiments.context import Context, plain
from saematch import plotting
from saematch.matching import pair_cost

VARIANTS = ("vanilla", "matched", "folded")  # plotting keys: folded = folded + matched
TERMS = {"encoder_mse": "encoder", "decoder_mse": "decoder", "bias_mse": "bias"}


@dataclass
class Options:
    log_scale: bool  # y axis of the figure on a log scale (as in the paper)


def folded_terms(a_folded, b_folded, perm, objective_mode: str) -> dict[str, float]:
    """Mean over pairs of each SPEC §3 term (and of the objective) for perm, on folded SAEs."""
    out = {
        k: float(pair_cost(a_folded, b_folded, perm, m).astype(np.float64).mean())
        for k, m in TERMS.items()
    }
    if objective_mode == "both":
        out["objective"] = out["encoder_mse"] + out["decoder_mse"] + out["bias_mse"]
    else:
        out["objective"] = out[f"{objective_mode}_mse"]
    return out


def plot(rows: list[dict], log_scale: bool):
    """W_enc, W_dec, b_enc MSE (folded weights) vs layer pair, a line per variant (Fig. 3)."""
    fig, axes = plotting.new_figure(1, 3, panel_size=(4.2, 3.3))
    titles = {"encoder_mse": "W_enc", "decoder_mse": "W_dec", "bias_mse": "b_enc"}
    for ax, (term, title) in zip(axes, titles.items(), strict=True):
        for v in VARIANTS:
            sel = [r for r in rows if r["variant"] == v]
            plotting.line_per_layer(ax, [r["layer"] for r in sel], [r[term] for r in sel], method=v)
        if log_scale:
            ax.set_yscale("log")
        plotting.label_axes(
            ax,
            x="layer_pair",
            y=term,
            title=f"{title} (folded weights)",
            legend=term == "encoder_mse",
        )
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Vanilla / matched / folded+matched MSE of W_enc, W_dec, b_enc per adjacent pair."""
    mode = plain(ctx.cfg.matching.mode)
    folded = {L: s.to("cpu").fold() for L, s in ctx.saes.items()}
    matchings = {"matched": ctx.matchings(fold=False), "folded": ctx.matchings(fold=True)}
    rows, per_pair = [], {}
    for t, u in ctx.next_layer.items():
        a, b = folded[t], folded[u]
        perms = {
            "vanilla": np.arange(a.width),
            **{k: np.asarray(v[t].perm) for k, v in matchings.items()},
        }
        entry = {v: folded_terms(a, b, perms[v], mode) for v in VARIANTS}
        for v in VARIANTS:
            entry[v]["fixed_points"] = float(np.mean(perms[v] == np.arange(a.width)))
            rows.append({"layer": t, "next_layer": u, "variant": v, **entry[v]})
        entry["agreement_matched_folded"] = float(np.mean(perms["matched"] == perms["folded"]))
        per_pair[str(t)] = entry
    res = Results(matchings=matchings)
    res.metrics = [
        {"layer": int(t), **{f"{v}/objective": e[v]["objective"] for v in VARIANTS}}
        for t, e in per_pair.items()
    ]
    res.headline = res.metrics
    res.table("mse_curves", rows)
    res.figures["mse_curves"] = plot(rows, bool(opts.log_scale))
    mean = lambda v, k: float(np.mean([p[v][k] for p in per_pair.values()]))  # noqa: E731
    res.summary = {
        "matching": {"mode": mode, "solver": plain(ctx.cfg.matching.solver)},
        "variants": {
            "vanilla": "identity",
            "matched": "matched unfolded, scored folded",
            "folded": "matched folded, scored folded",
        },
        "layers": per_pair,
        "mean_over_pairs": {v: {k: mean(v, k) for k in (*TERMS, "objective")} for v in VARIANTS},
    }
    return res
