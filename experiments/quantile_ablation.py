"""MSE-quantile ablation (App. B, eq. 6, Fig. 16-17).

For the pair t -> t+1 and quantile q, block t+1 is pruned and x_{t+1} replaced by

    ĥ_q = W_dec^(t) f⁺_q + W_dec^(t+1) P f⁻_q + b_dec^(t+1),   f = E_t(x_t)

(saematch.metrics.quantile_mix_decode): f⁻_q are the ⌊q·F⌋ features whose matched pair has the
smallest MSE, decoded by their partner in SAE t+1; f⁺_q the rest, decoded by SAE t's own
decoder. q = 1 is SAE Match pruning, q = 0 is D_t(E_t(x_t)) with b_dec of SAE t+1.

Which SAEs: the permutation and its pair MSE come from the configured matching (cfg.matching;
folded by default). The decode uses the SAEs in the form that matching saw them (folded when
matching.fold=true: features f/θ_t, decoder rows θ_t+1 · W_dec), exactly like layer_pruning's
SAE Match, so q = 1 reproduces its numbers. `folded_decode` overrides that choice: the same at
q = 0, different wherever a feature crosses layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps
from omegaconf import DictConfig

from experiments.common import by_layer, save_matchings
from experiments.context import Context
from saematch import plotting
from saematch.metrics import below_quantile, quantile_mix_decode
from saematch.pruning import pruning_sweep

DEFAULT_QUANTILES = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


@dataclass
class Options:
    pairs: list[int] | None = None  # first layers t of the pairs t -> t+1; null = all
    quantiles: list[float] = field(default_factory=lambda: list(DEFAULT_QUANTILES))
    folded_decode: bool | None = None  # null = as the matching (matching.fold); see docstring


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
        )  # fmt: skip
        for q in qs
    }


def plot_by_q(rows: list[dict], key: str, y: str, title: str):
    """Fig. 17 style: `key` vs q, one line per layer pair, and their mean ± std band."""
    fig, ax = plotting.new_figure(panel_size=(5.0, 3.4))
    pairs = sorted({r["layer"] for r in rows})
    cmap = colormaps["viridis"]
    for n, t in enumerate(pairs):
        sel = sorted((r for r in rows if r["layer"] == t), key=lambda r: r["q"])
        color = cmap(n / max(len(pairs) - 1, 1))
        ax.plot([r["q"] for r in sel], [r[key] for r in sel], marker="o", color=color,
                lw=1.0, alpha=0.8, label=f"{t} → {t + 1}")  # fmt: skip
    qs = sorted({r["q"] for r in rows})
    vals = np.array([[r[key] for r in rows if r["q"] == q] for q in qs])  # (Q, pairs)
    mean, std = vals.mean(1), vals.std(1)
    ax.plot(qs, mean, color="black", lw=2.2, label="mean over pairs")
    ax.fill_between(qs, mean - std, mean + std, color="black", alpha=0.12, lw=0)
    plotting.label_axes(ax, x="quantile", y=y, title=title)
    return fig


def plot_by_layer(rows: list[dict]):
    """Fig. 16: ΔL and EV per layer pair, one line per quantile q."""
    fig, (ax_l, ax_ev) = plotting.new_figure(1, 2, panel_size=(5.0, 3.4))
    qs = sorted({r["q"] for r in rows})
    cmap = colormaps["viridis"]
    for n, q in enumerate(qs):
        sel = sorted((r for r in rows if r["q"] == q), key=lambda r: r["layer"])
        color = cmap(n / max(len(qs) - 1, 1))
        xs = [r["layer"] for r in sel]
        plotting.line_per_layer(ax_l, xs, [r["delta_loss"] for r in sel], f"q = {q:g}", color=color)
        plotting.line_per_layer(ax_ev, xs, [r["explained_variance"] for r in sel], color=color)
    plotting.label_axes(ax_l, x="layer_pair", y="delta_loss", title="Loss increase")
    plotting.label_axes(ax_ev, x="layer_pair", y="ev", title="Explained variance", legend=False)
    return fig


def run(cfg: DictConfig) -> dict:
    """ΔL and EV of pruning block t+1 with ĥ_q (eq. 6), for every pair and quantile q."""
    ctx = Context(cfg)
    opts = ctx.options
    qs = check_quantiles(opts.quantiles)
    with ctx.recorder as rec:
        layers = list(ctx.layers)
        pairs = [t for t in layers[:-1] if opts.pairs is None or t in opts.pairs]
        if not pairs:
            raise ValueError(
                f"experiment.pairs={list(opts.pairs)} has no pair t -> t+1 in {layers}"
            )
        saes = [s.to(ctx.lm.device) for s in ctx.saes]
        ms = ctx.matchings()
        save_matchings(ctx.run_dir, "sae_match", layers, ms)
        folded_decode = bool(
            cfg.matching.fold if opts.folded_decode is None else opts.folded_decode
        )
        if folded_decode:
            saes = [s.fold() for s in saes]
        saes, matchings = by_layer(layers, saes), by_layer(layers[:-1], ms)
        batch = ctx.batch
        rows = pruning_sweep(
            ctx.lm, quantile_replacements(saes, matchings, qs), batch.input_ids,
            batch.metric_mask, attention_mask=batch.attention_mask, layers=pairs,
            batch_size=int(cfg.model.batch_size), progress=True,
        )  # fmt: skip
        table, per_layer = [], {}
        for r in rows:
            t, mse = r["layer"], np.asarray(matchings[r["layer"]].pair_mse, dtype=np.float64)
            per_layer[str(t)] = {"quantiles": {}}
            for q in qs:
                low = below_quantile(mse, q)
                v = r["methods"][f"q={q:g}"]
                row = {"layer": t, "pruned_block": t + 1, "q": q, "n_below": int(low.sum()),
                       "width": int(low.size),
                       "mse_max_below": float(mse[low].max()) if low.any() else float("nan"),
                       "mse_min_above": float(mse[~low].min()) if (~low).any() else float("nan"),
                       **v}  # fmt: skip
                table.append(row)
                per_layer[str(t)]["quantiles"][f"{q:g}"] = {k: row[k] for k in list(row)[3:]}
                rec.log_metrics({"layer": t, "q": q, "delta_loss": v["delta_loss"],
                                 "explained_variance": v["explained_variance"]})  # fmt: skip
        rec.add_table("quantile_ablation", table)
        rec.add_figure("quantile_ablation_by_layer", plot_by_layer(table))
        rec.add_figure(
            "quantile_delta_loss", plot_by_q(table, "delta_loss", "delta_loss", "ΔL vs q")
        )
        rec.add_figure("quantile_ev", plot_by_q(table, "explained_variance", "ev", "EV vs q"))
        results = {
            "quantiles": qs,
            "folded_decode": folded_decode,
            "clean_loss": rows[0]["clean_loss"],
            "n_tokens": rows[0]["n_tokens"],
            "mean": {
                f"{q:g}": {
                    k: float(np.mean([r[k] for r in table if r["q"] == q]))
                    for k in ("delta_loss", "explained_variance")
                }
                for q in qs
            },  # fmt: skip
            "layers": per_layer,
            "sae_set": ctx.sae_set.to_dict(),
        }
        rec.finish(results)
    return results
