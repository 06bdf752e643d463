"""MSE-quantile ablation (App. B, eq. 6, Fig. 16-17).

For the pair t -> t+1 and quantile q, block t+1 is pruned and x_{t+1} replaced by

    ĥ_q = W_dec^(t) f⁺_q + W_dec^(t+1) P f⁻_q + b_dec^(t+1),   f = E_t(x_t)

(saematch.metrics.quantile_mix_decode): f⁻_q are the ⌊q·F⌋ features whose matched pair has the
smallest MSE, decoded by their partner in SAE t+1; f⁺_q the rest, decoded by SAE t's own
decoder. q = 1 is SAE Match pruning, q = 0 is D_t(E_t(x_t)) with b_dec of SAE t+1.

Which SAEs: the permutation and its pair MSE come from the configured matching (cfg.matching;
folded by default). The decode uses the SAEs as published (raw units, docs/method.md §5;
`folded_decode: false`, the default), exactly like layer_pruning's SAE Match, so q = 1
reproduces its numbers; `folded_decode: true` decodes in folded units (features f/θ_t, decoder
rows θ_t+1 · W_dec), null in the units the matching saw. The same at q = 0, different wherever a
feature crosses layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from matplotlib import colormaps

from saematch import plotting
from saematch.metrics import below_quantile, quantile_mix_decode
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results, as_matched


@dataclass
class Options:
    pairs: list[int] | None  # first layers t of the pairs t -> t+1; null = all
    quantiles: list[float]  # the q of eq. 6, each in [0, 1]
    folded_decode: bool | None  # null = as the matching (matching.fold); see docstring


@dataclass
class QuantileRow:
    """Pruning block t+1 with ĥ_q: the pair, q, where the MSE split falls, ΔL and EV."""

    layer: int
    pruned_block: int
    q: float
    n_below: int  # features decoded by their partner in SAE t+1 (f⁻_q)
    width: int
    mse_max_below: float  # largest pair MSE among f⁻_q (nan when empty)
    mse_min_above: float  # smallest pair MSE among f⁺_q (nan when empty)
    loss: float
    delta_loss: float
    explained_variance: float

    @classmethod
    def of(cls, row: dict, q: float, pair_mse) -> QuantileRow:
        """The row of quantile q in one pruning_sweep result row (pair_mse of its matching)."""
        mse = np.asarray(pair_mse, dtype=np.float64)
        low = below_quantile(mse, q)
        nan = float("nan")
        return cls(
            row["layer"],
            row["pruned_block"],
            q,
            int(low.sum()),
            int(low.size),
            float(mse[low].max()) if low.any() else nan,
            float(mse[~low].min()) if (~low).any() else nan,
            **row["methods"][f"q={q:g}"],
        )

    def values(self) -> dict:
        """Everything but the keys (layer, pruned_block, q): results.json's per-q entry."""
        return {k: v for k, v in asdict(self).items() if k not in ("layer", "pruned_block", "q")}


def check_quantiles(qs) -> list[float]:
    """The quantiles as floats, each in [0, 1], without repeats; ValueError otherwise."""
    qs = [float(q) for q in qs]
    bad = [q for q in qs if not 0.0 <= q <= 1.0]
    if not qs or bad or len(set(qs)) != len(qs):
        raise ValueError(
            f"experiment.quantiles must be distinct numbers in [0, 1], got {qs}"
            " (e.g. experiment.quantiles=[0,0.5,1])"
        )
    return qs


def quantile_replacements(saes: dict, matchings: dict, qs: list[float]) -> dict:
    """name "q=<q>" -> (t, resid) -> ĥ_q (eq. 6) for the matching of pair t -> t+1."""
    return {
        f"q={q:g}": lambda t, r, q=q: quantile_mix_decode(
            saes[t].encode(r[t]),
            matchings[t].perm,
            matchings[t].pair_mse,
            saes[t],
            saes[t + 1],
            q,
        )
        for q in qs
    }


def plot_by_q(rows: list[QuantileRow], key: str, y: str, title: str):
    """Fig. 17 style: `key` vs q, one line per layer pair, and their mean ± std band."""
    fig, ax = plotting.new_figure(panel_size=(5.0, 3.4))
    pairs = sorted({r.layer for r in rows})
    cmap = colormaps["viridis"]
    for n, t in enumerate(pairs):
        sel = sorted((r for r in rows if r.layer == t), key=lambda r: r.q)
        color = cmap(n / max(len(pairs) - 1, 1))
        ax.plot(
            [r.q for r in sel],
            [getattr(r, key) for r in sel],
            marker="o",
            color=color,
            lw=1.0,
            alpha=0.8,
            label=f"{t} → {t + 1}",
        )
    qs = sorted({r.q for r in rows})
    vals = np.array([[getattr(r, key) for r in rows if r.q == q] for q in qs])  # (Q, pairs)
    mean, std = vals.mean(1), vals.std(1)
    ax.plot(qs, mean, color="black", lw=2.2, label="mean over pairs")
    ax.fill_between(qs, mean - std, mean + std, color="black", alpha=0.12, lw=0)
    plotting.label_axes(ax, x="quantile", y=y, title=title)
    return fig


def plot_by_layer(rows: list[QuantileRow]):
    """Fig. 16: ΔL and EV per layer pair, one line per quantile q."""
    fig, (ax_l, ax_ev) = plotting.new_figure(1, 2, panel_size=(5.0, 3.4))
    qs = sorted({r.q for r in rows})
    cmap = colormaps["viridis"]
    for n, q in enumerate(qs):
        sel = sorted((r for r in rows if r.q == q), key=lambda r: r.layer)
        color = cmap(n / max(len(qs) - 1, 1))
        xs = [r.layer for r in sel]
        plotting.line_per_layer(ax_l, xs, [r.delta_loss for r in sel], f"q = {q:g}", color=color)
        plotting.line_per_layer(ax_ev, xs, [r.explained_variance for r in sel], color=color)
    plotting.label_axes(ax_l, x="layer_pair", y="delta_loss", title="Loss increase")
    plotting.label_axes(ax_ev, x="layer_pair", y="ev", title="Explained variance", legend=False)
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """ΔL and EV of pruning block t+1 with ĥ_q (eq. 6), for every pair and quantile q."""
    qs = check_quantiles(opts.quantiles)
    pairs = [t for t in ctx.next_layer if opts.pairs is None or t in opts.pairs]
    if not pairs:
        raise ValueError(f"experiment.pairs={opts.pairs} has no pair t -> t+1 in {ctx.layers}")
    ms = ctx.matchings()
    fold = ctx.cfg.matching.fold if opts.folded_decode is None else opts.folded_decode
    saes = as_matched({L: s.to(ctx.act_device) for L, s in ctx.saes.items()}, bool(fold))
    rows = ctx.prune(quantile_replacements(saes, ms, qs), pairs, progress=True)
    table = [QuantileRow.of(r, q, ms[r["layer"]].pair_mse) for r in rows for q in qs]
    res = Results(metrics=table, matchings={"sae_match": ms})
    res.headline = [r for r in table if r.q == max(qs)]
    res.table("quantile_ablation", table)
    res.figures["quantile_ablation_by_layer"] = plot_by_layer(table)
    if not ctx.is_planted:  # the planted world has no LM: ΔL is NaN there
        res.figures["quantile_delta_loss"] = plot_by_q(table, "delta_loss", "delta_loss", "ΔL vs q")
    res.figures["quantile_ev"] = plot_by_q(table, "explained_variance", "ev", "EV vs q")
    mean = lambda q, k: float(np.mean([getattr(r, k) for r in table if r.q == q]))  # noqa: E731
    res.summary = {
        "quantiles": qs,
        "folded_decode": bool(fold),
        "clean_loss": rows[0]["clean_loss"],
        "n_tokens": rows[0]["n_tokens"],
        **ctx.loss_note,
        "mean": {
            f"{q:g}": {k: mean(q, k) for k in ("delta_loss", "explained_variance")} for q in qs
        },
        "layers": {
            str(t): {"quantiles": {f"{r.q:g}": r.values() for r in table if r.layer == t}}
            for t in pairs
        },
    }
    return res
