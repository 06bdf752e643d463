"""Matching modes (Fig. 12): encoder-only, decoder-only and encoder+decoder matching, one pair.

For the pair t → t+1 (option `pair`), each mode m ∈ {encoder, decoder, both} gives perm_m =
match(SAE t, SAE t+1, mode=m, fold) (SPEC §3). For each perm (and the identity, "vanilla"):

* MSE terms on folded weights (eq. 4): mean over pairs of the encoder, decoder and b_enc terms;
* cost_in[m'] — the mean per-pair cost of mode m' on the weights that were matched (folded
  when fold=true). perm_m is optimal for its own mode: cost_in[m](perm_m) ≤ cost_in[m](perm_x);
* agreement — the fraction of features i with perm_m[i] = perm_m'[i], for every pair of modes;
* ΔL and EV of pruning block t+1 with x̂_t+1 = D_t+1(P_m E_t(x_t)) (SPEC §5, the SAEs as
  loaded, as in experiments/layer_pruning.py);
* matching score Σ_i #(f_t,i > 0 ∧ f_t+1,perm[i] > 0) / Σ_i #(f_t,i > 0) on the run's tokens
  (ctx.batch, or the planted world's x_t; there ΔL is NaN: no LM, see Context.prune).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch

from experiments.common import Results
from experiments.context import Context, plain
from experiments.layer_pruning import replacements
from saematch import plotting
from saematch.matching import MODES, pair_cost
from saematch.metrics import MatchingScoreAccumulator

TERMS = {"encoder_mse": "encoder", "decoder_mse": "decoder", "bias_mse": "bias"}
TERM_LABELS = {"encoder_mse": "W_enc", "decoder_mse": "W_dec", "bias_mse": "b_enc"}


@dataclass
class Options:
    pair: int | None  # first layer t of the pair t -> t+1; null = the middle layer
    fold: bool  # match folded weights (eq. 4), as SAE Match does
    vanilla: bool  # also evaluate the identity permutation as a reference


def pick_pair(layers: list[int], pair: int | None) -> int:
    """The first layer t of the pair (default: the middle one); t and t+1 must have SAEs."""
    t = layers[(len(layers) - 1) // 2] if pair is None else int(pair)
    if t not in layers or t + 1 not in layers:
        raise ValueError(
            f"experiment.pair={t}: need SAEs at layers {t} and {t + 1}, the set has {layers}"
        )
    return t


def mode_costs(a, b, perm) -> dict[str, float]:
    """Mean per-pair cost of every matching mode and every MSE term (SPEC §3) for perm."""
    terms = {k: float(pair_cost(a, b, perm, m).astype(np.float64).mean()) for k, m in TERMS.items()}
    return {
        **terms,
        "encoder": terms["encoder_mse"],
        "decoder": terms["decoder_mse"],
        "both": terms["encoder_mse"] + terms["decoder_mse"] + terms["bias_mse"],
    }


@torch.no_grad()
def matching_scores(rows, sa, sb, perms: dict) -> dict[str, float]:
    """Matching score of each perm between SAE t on x_t and SAE t+1 on x_t+1; rows yields
    (2, n, d) chunks of x_t, x_t+1 for the run's tokens (Context.activation_rows)."""
    accs = {k: MatchingScoreAccumulator(p) for k, p in perms.items()}
    for x in rows:
        fa, fb = sa.encode(x[0]), sb.encode(x[1])  # (n, F)
        for acc in accs.values():
            acc.update(fa, fb)
    return {k: acc.result()[0] for k, acc in accs.items()}


def _bars(ax, names: list[str], values: list[float], metric: str, title: str) -> None:
    colors = [plotting.method_color(n) for n in names]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_xticks(range(len(names)), [plotting.method_label(n) for n in names], rotation=20)
    for i, v in enumerate(values):
        va, dy = ("bottom", 2) if v >= 0 else ("top", -2)
        ax.annotate(
            f"{v:.3g}",
            (i, v),
            xytext=(0, dy),
            textcoords="offset points",
            ha="center",
            va=va,
            fontsize=8,
        )
    ax.axhline(0, color=plotting.GREY, lw=0.8)
    ax.margins(y=0.12)
    plotting.label_axes(ax, x=None, y=metric, title=title, legend=False)


def plot(per: dict[str, dict], agreement: dict[str, float], t: int):
    """Grouped bars: MSE terms per mode; ΔL, EV, matching score per mode; pairwise agreement."""
    fig, axes = plotting.new_figure(2, 3, panel_size=(4.0, 3.2))
    names = list(per)
    ax = axes[0, 0]
    w = 0.8 / len(names)
    for k, n in enumerate(names):
        xs = np.arange(len(TERMS)) + (k - (len(names) - 1) / 2) * w
        ax.bar(
            xs,
            [per[n][term] for term in TERMS],
            w,
            color=plotting.method_color(n),
            label=plotting.method_label(n),
        )
    ax.set_xticks(range(len(TERMS)), [TERM_LABELS[k] for k in TERMS])
    ax.set_yscale("log")
    plotting.label_axes(ax, x=None, y="mse", title="MSE on folded weights", legend=False)
    _bars(axes[0, 1], names, [per[n]["delta_loss"] for n in names], "delta_loss", "Loss increase")
    _bars(
        axes[0, 2], names, [per[n]["explained_variance"] for n in names], "ev", "Explained variance"
    )
    _bars(
        axes[1, 0],
        names,
        [per[n]["matching_score"] for n in names],
        "matching_score",
        "Matching score",
    )
    ax = axes[1, 1]
    keys = list(agreement)
    ax.bar(range(len(keys)), list(agreement.values()), color=plotting.GREY)
    ax.set_xticks(range(len(keys)), [k.replace("~", " vs\n") for k in keys])
    ax.set_ylim(0, 1.05)
    for i, v in enumerate(agreement.values()):
        ax.annotate(f"{v:.2f}", (i, v), ha="center", va="bottom", fontsize=8)
    plotting.label_axes(
        ax,
        x=None,
        y="fraction of equal assignments",
        title="Agreement of permutations",
        legend=False,
    )
    leg = axes[1, 2]
    leg.axis("off")
    leg.legend(
        *axes[0, 0].get_legend_handles_labels(),
        loc="center",
        fontsize=10,
        title=f"matching mode, layers {t}→{t + 1}",
    )
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Match one pair with each mode; score MSE terms, agreement, pruning ΔL/EV, matching score."""
    t = pick_pair(ctx.layers, opts.pair)
    sa, sb = ctx.saes[t].to("cpu"), ctx.saes[t + 1].to("cpu")
    perms, info = {}, {}
    for m in MODES:
        mt = ctx.matchings(mode=m, fold=opts.fold, saes={t: sa, t + 1: sb})[t]
        perms[m] = np.asarray(mt.perm, dtype=np.int64)
        info[m] = {"total_cost": float(mt.total_cost), "seconds": float(mt.seconds)}
    if opts.vanilla:
        perms["vanilla"] = np.arange(sa.width)
    fa, fb = sa.fold(), sb.fold()
    ma, mb = (fa, fb) if opts.fold else (sa, sb)  # the weights the matching saw
    per = {n: mode_costs(fa, fb, p) for n, p in perms.items()}
    for n, p in perms.items():
        per[n]["cost_in"] = {m: mode_costs(ma, mb, p)[m] for m in MODES}
    agreement = {
        f"{x}~{y}": float(np.mean(perms[x] == perms[y])) for x, y in combinations(MODES, 2)
    }
    saes = {t: ma.to(ctx.act_device), t + 1: mb.to(ctx.act_device)}  # matched units (SPEC §5)
    reps = replacements(saes, {n: {t: p} for n, p in perms.items()}, baselines=False)
    (row,) = ctx.prune(reps, [t])
    scores = matching_scores(ctx.activation_rows([t, t + 1]), saes[t], saes[t + 1], perms)
    table, metrics = [], []
    for n in perms:
        per[n] |= {k: row["methods"][n][k] for k in ("delta_loss", "explained_variance")}
        per[n]["matching_score"] = scores[n]
        flat = {k: v for k, v in per[n].items() if k != "cost_in"}
        cost_in = {f"cost_in_{m}": c for m, c in per[n]["cost_in"].items()}
        table.append({"layer": t, "method": n, **flat, **cost_in})
        metrics.append({"layer": t, "method": n, **flat})
    res = Results(metrics=metrics, headline=metrics)
    res.table("matching_modes", table)
    res.table(
        "matching_modes_agreement", [{"modes": k, "agreement": v} for k, v in agreement.items()]
    )
    res.figures["matching_modes"] = plot(per, agreement, t)
    res.summary = {
        "pair": t,
        "fold": bool(opts.fold),
        "solver": plain(ctx.cfg.matching.solver),
        "clean_loss": row["clean_loss"],
        "n_tokens": row["n_tokens"],
        **ctx.loss_note,
        "layers": {str(t): {"modes": per, "agreement": agreement, "matching": info}},
    }
    return res
