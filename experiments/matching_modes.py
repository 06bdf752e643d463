"""Matching modes (Fig. 12): encoder-only, decoder-only and encoder+decoder matching, one pair.

For the pair t → t+1 (option `pair`), each mode m ∈ {encoder, decoder, both} gives perm_m =
match(SAE t, SAE t+1, mode=m, fold) (docs/method.md §3). For each perm (and the identity,
"vanilla"):

* MSE terms on folded weights (eq. 4): mean over pairs of the encoder, decoder and b_enc terms;
* cost_in[m'] — the mean per-pair cost of mode m' on the weights that were matched (folded
  when fold=true). perm_m is optimal for its own mode: cost_in[m](perm_m) ≤ cost_in[m](perm_x);
* agreement — the fraction of features i with perm_m[i] = perm_m'[i], for every pair of modes;
* ΔL and EV of pruning block t+1 with x̂_t+1 = D_t+1(P_m E_t(x_t)) (docs/method.md §5, the SAEs as
  loaded, as in experiments/layer_pruning.py);
* matching score Σ_i #(f_t,i > 0 ∧ f_t+1,perm[i] > 0) / Σ_i #(f_t,i > 0) on the run's tokens
  (ctx.batch, or the planted world's x_t; there ΔL is NaN: no LM, see Context.prune).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
import torch

from saematch import plotting
from saematch.matching import MODES
from saematch.metrics import MatchingScoreAccumulator
from saematch.pair_mse import TERMS, mode_cost, mse_terms
from saematch.pruning import replacements
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results

TERM_LABELS = {"encoder_mse": "W_enc", "decoder_mse": "W_dec", "bias_mse": "b_enc"}


@dataclass
class Options:
    pair: int | None  # first layer t of the pair t -> t+1; null = the middle layer
    fold: bool  # match folded weights (eq. 4), as SAE Match does
    vanilla: bool  # also evaluate the identity permutation as a reference


@dataclass
class ModeRow:
    """One permutation of the pair layer -> layer + 1: a matching mode's, or the identity."""

    layer: int
    method: str  # encoder | decoder | both | vanilla
    delta_loss: float  # pruning block layer + 1 (docs/method.md §5)
    explained_variance: float
    matching_score: float
    encoder_mse: float  # the docs/method.md §3 terms on folded weights, mean over pairs
    decoder_mse: float
    bias_mse: float
    cost_in_encoder: float  # each mode's mean cost per pair on the weights that were matched
    cost_in_decoder: float
    cost_in_both: float


@dataclass
class AgreementRow:
    modes: str  # "x~y"
    agreement: float  # share of features i with perm_x[i] = perm_y[i]


def pick_pair(layers: list[int], pair: int | None) -> int:
    """The first layer t of the pair (default: the middle one); t and t+1 must have SAEs."""
    t = layers[(len(layers) - 1) // 2] if pair is None else int(pair)
    if t not in layers or t + 1 not in layers:
        raise ValueError(
            f"experiment.pair={t}: need SAEs at layers {t} and {t + 1}, the set has {layers}"
        )
    return t


def mode_costs(a, b, perm, bias_weight: float = 0.0) -> dict[str, float]:
    """Mean per-pair cost of every matching mode (docs/method.md §3) for perm; both =
    encoder + decoder (+ bias_weight · b_enc term, off by default: not the paper's cost)."""
    terms = mse_terms(a, b, perm)
    return {m: mode_cost(terms, m, bias_weight) for m in MODES}


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


def plot(rows: list[ModeRow], agreement: list[AgreementRow], t: int):
    """Grouped bars: MSE terms per mode; ΔL, EV, matching score per mode; pairwise agreement."""
    fig, axes = plotting.new_figure(2, 3, panel_size=(4.0, 3.2))
    names = [r.method for r in rows]
    ax = axes[0, 0]
    w = 0.8 / len(rows)
    for k, r in enumerate(rows):
        xs = np.arange(len(TERMS)) + (k - (len(rows) - 1) / 2) * w
        color, label = plotting.method_color(r.method), plotting.method_label(r.method)
        ax.bar(xs, [getattr(r, term) for term in TERMS], w, color=color, label=label)
    ax.set_xticks(range(len(TERMS)), [TERM_LABELS[k] for k in TERMS])
    ax.set_yscale("log")
    plotting.label_axes(ax, x=None, y="mse", title="MSE on folded weights", legend=False)
    for ax, (key, metric, title) in zip(
        (axes[0, 1], axes[0, 2], axes[1, 0]),
        (
            ("delta_loss", "delta_loss", "Loss increase"),
            ("explained_variance", "ev", "Explained variance"),
            ("matching_score", "matching_score", "Matching score"),
        ),
        strict=True,
    ):
        _bars(ax, names, [getattr(r, key) for r in rows], metric, title)
    ax = axes[1, 1]
    ax.bar(range(len(agreement)), [a.agreement for a in agreement], color=plotting.GREY)
    ax.set_xticks(range(len(agreement)), [a.modes.replace("~", " vs\n") for a in agreement])
    ax.set_ylim(0, 1.05)
    for i, a in enumerate(agreement):
        ax.annotate(f"{a.agreement:.2f}", (i, a.agreement), ha="center", va="bottom", fontsize=8)
    title = "Agreement of permutations"
    plotting.label_axes(ax, x=None, y="fraction of equal assignments", title=title, legend=False)
    leg = axes[1, 2]
    leg.axis("off")
    handles = axes[0, 0].get_legend_handles_labels()
    leg.legend(*handles, loc="center", fontsize=10, title=f"matching mode, layers {t}→{t + 1}")
    return fig


def mode_row(
    t: int, name: str, perm, folded: tuple, matched: tuple, pruned: dict, score: float, w: float
):
    """The ModeRow of perm: terms on the folded pair, mode costs (b_enc weight w) on the
    matched pair."""
    cost_in = {f"cost_in_{m}": c for m, c in mode_costs(*matched, perm, w).items()}
    return ModeRow(
        t,
        name,
        pruned["delta_loss"],
        pruned["explained_variance"],
        score,
        **mse_terms(*folded, perm),
        **cost_in,
    )


def run(opts: Options, ctx: Context) -> Results:
    """Match one pair with each mode; score MSE terms, agreement, pruning ΔL/EV, matching score."""
    t = pick_pair(ctx.layers, opts.pair)
    w = float(ctx.cfg.matching.bias_weight)
    sa, sb = ctx.saes[t].to("cpu"), ctx.saes[t + 1].to("cpu")
    found = {m: ctx.matchings(mode=m, fold=opts.fold, saes={t: sa, t + 1: sb})[t] for m in MODES}
    perms = {m: np.asarray(mt.perm, dtype=np.int64) for m, mt in found.items()}
    if opts.vanilla:
        perms["vanilla"] = np.arange(sa.width)
    folded = (sa.fold(), sb.fold())
    matched = folded if opts.fold else (sa, sb)  # the weights the matching saw
    # docs/method.md §5
    saes = {t: matched[0].to(ctx.act_device), t + 1: matched[1].to(ctx.act_device)}
    (pruned,) = ctx.prune(replacements(saes, {n: {t: p} for n, p in perms.items()}, False), [t])
    scores = matching_scores(ctx.activation_rows([t, t + 1]), saes[t], saes[t + 1], perms)
    rows = [
        mode_row(t, n, p, folded, matched, pruned["methods"][n], scores[n], w)
        for n, p in perms.items()
    ]
    agreement = [
        AgreementRow(f"{x}~{y}", float(np.mean(perms[x] == perms[y])))
        for x, y in combinations(MODES, 2)
    ]
    res = Results(metrics=rows, headline=rows)
    res.table("matching_modes", rows)
    res.table("matching_modes_agreement", agreement)
    res.figures["matching_modes"] = plot(rows, agreement, t)
    res.summary = {
        "pair": t,
        "fold": bool(opts.fold),
        "solver": ctx.solver.key(),
        "clean_loss": pruned["clean_loss"],
        "n_tokens": pruned["n_tokens"],
        **ctx.loss_note,
        "modes": {r.method: asdict(r) for r in rows},
        "agreement": {a.modes: a.agreement for a in agreement},
        "matching": {
            m: {"total_cost": mt.total_cost, "seconds": mt.seconds} for m, mt in found.items()
        },
    }
    return res
