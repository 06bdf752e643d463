"""Folding statistics (Fig. 1): does θ track the hidden-state norm, and do folded decoders?

Per layer l (x_l = resid_post of block l, averages over the non-BOS tokens of ctx.batch):

    hidden_norm_l      = mean_n ‖x_l,n‖₂
    theta_mean_l       = mean_j θ_l,j
    folded_dec_norm_l  = mean_j ‖θ_l,j W_dec_l[j, :]‖₂              (eq. 4: the folded decoder row)

Per adjacent pair t → t+1 with the matching perm (docs/method.md §3, folded by default):

    hidden_norm_change_t = mean_n (‖x_t+1,n‖₂ − ‖x_t,n‖₂)           (same tokens, so = Δ of means)
    dec_norm_diff_t      = mean_i (‖θ_t+1,perm[i] W_dec_t+1[perm[i]]‖₂ − ‖θ_t,i W_dec_t[i]‖₂)
    dec_norm_absdiff_t   = mean_i |…the same difference…|          (and `_vanilla` with perm = id)

Because perm is a bijection, dec_norm_diff_t equals folded_dec_norm_t+1 − folded_dec_norm_t
for every perm; the matching only enters the absolute difference, which is therefore reported
for the matched and the identity permutation. The paper's claim (Sec. 3.1) is that the
per-pair norm change and the folded decoder norm difference move together: their Pearson and
Spearman correlations over pairs are in results["correlation"].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import stats

from saematch import plotting
from saematch.data import chunks
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results


@dataclass
class Options:
    fold: bool  # perm from folded matching (SAE Match); false = unfolded matching


@dataclass
class LayerRow:
    """Per layer l: hidden-state norm, θ and decoder row norms (see the module docstring)."""

    layer: int
    hidden_norm: float
    hidden_norm_std: float
    theta_mean: float
    theta_median: float
    dec_norm: float  # mean unfolded ‖W_dec[j]‖₂
    folded_dec_norm: float  # mean ‖θ_j W_dec[j]‖₂

    @classmethod
    def of(cls, layer: int, sae, dec: np.ndarray, norms: dict, i: int) -> LayerRow:
        th = sae.threshold.double().cpu().numpy()
        return cls(
            layer,
            float(norms["mean"][i]),
            float(norms["std"][i]),
            float(th.mean()),
            float(np.median(th)),
            float(sae.W_dec.double().norm(dim=1).mean()),
            float(dec.mean()),
        )


@dataclass
class PairRow:
    """Per adjacent pair t -> t+1: norm change and matched folded decoder norm differences."""

    layer: int
    next_layer: int
    hidden_norm_change: float
    hidden_step_norm: float  # mean ‖x_t+1 − x_t‖₂
    theta_change: float
    dec_norm_diff: float
    dec_norm_absdiff: float
    dec_norm_absdiff_vanilla: float

    @classmethod
    def of(cls, a: LayerRow, b: LayerRow, dec_a, dec_b, perm, norms: dict) -> PairRow:
        perm = np.asarray(perm, dtype=np.int64)
        diff = dec_b[perm] - dec_a  # (F,) matched folded row-norm differences
        step = float(norms["step"][norms["index"][a.layer]])
        return cls(
            a.layer,
            b.layer,
            b.hidden_norm - a.hidden_norm,
            step,
            b.theta_mean - a.theta_mean,
            float(diff.mean()),
            float(np.abs(diff).mean()),
            float(np.abs(dec_b - dec_a).mean()),
        )


@torch.no_grad()
def hidden_norms(lm, batch, layers: list[int], batch_size: int) -> dict[str, np.ndarray]:
    """Per layer, mean and std of ‖x_l‖₂ and mean ‖x_l+1 − x_l‖₂ over the masked tokens.

    Returns {"mean": (L,), "std": (L,), "step": (L−1,) mean ‖x_next − x‖₂, "n_tokens": int,
    "index": {layer: position}}.
    """
    L = len(layers)
    s1, s2, step = np.zeros(L), np.zeros(L), np.zeros(max(L - 1, 0))
    n = 0
    for b in chunks(batch, batch_size):
        resid = lm.resid_post(b.input_ids, b.attention_mask, layers=layers)  # (L, B, T, d)
        x = resid[:, b.metric_mask.to(resid.device).bool()].double()  # (L, n, d)
        norms = x.norm(dim=-1)  # (L, n)
        s1 += norms.sum(1).cpu().numpy()
        s2 += norms.pow(2).sum(1).cpu().numpy()
        step += (x[1:] - x[:-1]).norm(dim=-1).sum(1).cpu().numpy()
        n += x.shape[1]
    if n == 0:
        raise ValueError("the batch's metric_mask selects no token; use longer sequences")
    mean = s1 / n
    return {
        "mean": mean,
        "std": np.sqrt(np.maximum(s2 / n - mean**2, 0)),
        "step": step / n,
        "n_tokens": n,
        "index": {L: i for i, L in enumerate(layers)},
    }


def folded_row_norms(sae) -> np.ndarray:
    """(F,) ‖θ_j W_dec[j, :]‖₂, the folded decoder row norms (eq. 4)."""
    return sae.fold().W_dec.double().norm(dim=1).cpu().numpy()


def correlation(x, y) -> dict[str, float]:
    """Pearson r and Spearman ρ of two sequences (NaN when fewer than 3 points or constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": math.nan, "spearman": math.nan, "n": len(x)}
    r = float(np.corrcoef(x, y)[0, 1])
    rho = float(stats.spearmanr(x, y).statistic)
    return {"pearson": r, "spearman": rho, "n": len(x)}


def _fmt_r(c: dict) -> str:
    r = c["pearson"]
    return "n/a" if r is None or not math.isfinite(r) else f"{r:.2f}"


def plot_layers(layer_rows: list[LayerRow], corr: dict):
    """Fig. 1 left: hidden-state norm, mean θ and mean folded decoder norm per layer."""
    fig, (ax_h, ax_t, ax_d) = plotting.new_figure(1, 3, panel_size=(4.0, 3.2))
    xs = [r.layer for r in layer_rows]
    h = [r.hidden_norm for r in layer_rows]
    sd = [r.hidden_norm_std for r in layer_rows]
    blue, orange, green = (plotting.OKABE_ITO[k] for k in ("blue", "orange", "green"))
    plotting.line_per_layer(ax_h, xs, h, color=blue)
    plotting.band_per_layer(ax_h, xs, np.subtract(h, sd), np.add(h, sd), color=blue)
    plotting.label_axes(ax_h, y="hidden_norm", title="Hidden-state norm (± 1 sd over tokens)")
    plotting.line_per_layer(ax_t, xs, [r.theta_mean for r in layer_rows], "mean", color=orange)
    plotting.line_per_layer(
        ax_t, xs, [r.theta_median for r in layer_rows], "median", color=orange, ls="--"
    )
    r_t = _fmt_r(corr["hidden_norm_vs_theta"])
    plotting.label_axes(ax_t, y="theta", title=f"Threshold θ (r with norm = {r_t})")
    plotting.line_per_layer(ax_d, xs, [r.folded_dec_norm for r in layer_rows], color=green)
    ax_d.set_ylabel("mean ‖θ_j W_dec[j]‖₂ (folded)")
    r_d = _fmt_r(corr["hidden_norm_vs_folded_dec_norm"])
    plotting.label_axes(ax_d, title=f"Folded decoder norm (r with norm = {r_d})")
    return fig


def plot_pairs(pair_rows: list[PairRow], corr: dict):
    """Fig. 1 right: per pair, hidden-norm change and folded decoder norm difference."""
    fig, (ax_l, ax_s) = plotting.new_figure(1, 2, panel_size=(4.8, 3.6))
    fig.get_layout_engine().set(wspace=0.08)
    xs = [r.layer for r in pair_rows]
    x = [r.hidden_norm_change for r in pair_rows]
    y = [r.dec_norm_diff for r in pair_rows]
    blue, green = plotting.OKABE_ITO["blue"], plotting.OKABE_ITO["green"]
    y_label = "Δ folded decoder norm ‖θ W_dec[j]‖₂ (matched)"
    l1 = plotting.line_per_layer(ax_l, xs, x, "hidden-state norm change", color=blue)
    ax_l.set_ylabel("Δ mean ‖x‖₂ (t → t+1)", color=blue)
    ax_r = ax_l.twinx()
    ax_r.spines["right"].set_visible(True)
    ax_r.grid(False)
    l2 = plotting.line_per_layer(ax_r, xs, y, "folded decoder norm difference", color=green)
    ax_r.set_ylabel(y_label, color=green)
    ax_l.set_xticks(xs, [f"{t}→{t + 1}" for t in xs])
    ax_l.set_xlabel(plotting.axis_label("layer_pair"))
    ax_l.set_title("Per layer pair")
    ax_l.legend(handles=[l1, l2], loc="best")
    ax_s.axhline(0, color=plotting.GREY, lw=0.8)
    ax_s.scatter(x, y, color=blue, zorder=3)
    for xi, yi, t in zip(x, y, xs, strict=True):
        ax_s.annotate(
            f"{t}→{t + 1}", (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=8
        )
    ax_s.set_xlabel("Δ mean ‖x‖₂ (t → t+1)")
    ax_s.set_ylabel(y_label)
    c = corr
    rho = (
        "n/a"
        if c["spearman"] is None or not math.isfinite(c["spearman"])
        else f"{c['spearman']:.2f}"
    )
    ax_s.set_title(
        "Norm change vs decoder norm change\n"
        f"Pearson r = {_fmt_r(c)}, Spearman ρ = {rho}, n = {c['n']}"
    )
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Hidden-state norms, θ and folded decoder norms per layer; their changes per pair."""
    layers, saes = ctx.layers, ctx.saes
    norms = hidden_norms(ctx.lm, ctx.batch, layers, ctx.batch_size)
    matchings = ctx.matchings(fold=opts.fold)
    dec = {L: folded_row_norms(s) for L, s in saes.items()}  # per layer (F,)
    per_layer = {L: LayerRow.of(L, saes[L], dec[L], norms, i) for i, L in enumerate(layers)}
    pair_rows = [
        PairRow.of(per_layer[t], per_layer[u], dec[t], dec[u], matchings[t].perm, norms)
        for t, u in ctx.next_layer.items()
    ]
    layer_rows = list(per_layer.values())
    x = lambda rows, k: [getattr(r, k) for r in rows]  # noqa: E731
    corr = {
        "norm_change_vs_dec_norm_diff": correlation(
            x(pair_rows, "hidden_norm_change"), x(pair_rows, "dec_norm_diff")
        ),
        "hidden_norm_vs_theta": correlation(
            x(layer_rows, "hidden_norm"), x(layer_rows, "theta_mean")
        ),
        "hidden_norm_vs_folded_dec_norm": correlation(
            x(layer_rows, "hidden_norm"), x(layer_rows, "folded_dec_norm")
        ),
    }
    res = Results(metrics=layer_rows, headline=pair_rows)
    res.matchings["folded" if opts.fold else "unfolded"] = matchings
    res.table("folding_stats_layers", layer_rows)
    res.table("folding_stats_pairs", pair_rows)
    res.figures["folding_stats_norms"] = plot_layers(layer_rows, corr)
    res.figures["folding_stats_norm_change"] = plot_pairs(
        pair_rows, corr["norm_change_vs_dec_norm_diff"]
    )
    res.summary = {
        "matching": {"fold": bool(opts.fold), "mode": plain(ctx.cfg.matching.mode)},
        "n_tokens": norms["n_tokens"],
        "layers": {str(r.layer): asdict(r) for r in layer_rows},
        "pairs": {str(r.layer): asdict(r) for r in pair_rows},
        "correlation": corr,
    }
    return res
