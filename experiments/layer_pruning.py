"""Layer pruning with matched features (Sec. 5.5, Fig. 9-11, App. A baselines)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from experiments.common import as_matched, by_layer, save_matchings
from experiments.context import Context
from saematch import plotting
from saematch.pruning import BASELINES, permute_codes, pruning_sweep, pruning_table


@dataclass
class Options:
    pairs: list[int] | None = None  # first layers t of the pairs t -> t+1; null = all
    baselines: bool = True
    unfolded: bool = False  # with matching.fold=true, also prune with the unfolded matching


def replacements(
    saes: dict,
    perms: dict[str, dict],
    baselines: bool,
    folded: dict | None = None,
    fold: dict[str, bool] | None = None,
) -> dict:
    """name -> x̂_{t+1} builder: SAE Match per matching, plus the App. A baselines.

    saes / folded: layer -> SAE, raw / folded; fold[name] says which form matching `name`
    used (default: raw). The baselines are the same for both forms (folding keeps x̂).
    """
    fold = fold or {}

    def transfer(p: dict, sae: dict):
        return lambda t, r: sae[t + 1].decode(permute_codes(sae[t].encode(r[t]), p[t]))

    reps = {name: transfer(p, folded if fold.get(name) else saes) for name, p in perms.items()}
    if baselines:
        reps |= {
            "layer_drop": lambda t, r: r[t],
            "encdec_current": lambda t, r: saes[t + 1](r[t + 1]),
            "encdec_previous": lambda t, r: saes[t](r[t]),
        }
    return reps


def plot(rows: list[dict], methods: list[str]):
    """Fig. 10/11 style: ΔL and EV per pruned block, one line per method."""
    fig, (ax_l, ax_ev) = plotting.new_figure(1, 2, panel_size=(5.0, 3.4))
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        xs = [r["pruned_block"] for r in sel]
        plotting.line_per_layer(ax_l, xs, [r["delta_loss"] for r in sel], method=m)
        plotting.line_per_layer(ax_ev, xs, [r["explained_variance"] for r in sel], method=m)
    plotting.label_axes(ax_l, x="pruned_block", y="delta_loss", title="Loss increase")
    plotting.label_axes(
        ax_ev, x="pruned_block", y="explained_variance", title="Explained variance", legend=False
    )
    return fig


def run(cfg: DictConfig) -> dict:
    """ΔL and EV of pruning each block t+1 by encode(t) -> permute -> decode(t+1)."""
    ctx = Context(cfg)
    opts = ctx.options
    with ctx.recorder as rec:
        layers = list(ctx.layers)
        raw = [s.to(ctx.lm.device) for s in ctx.saes]
        saes, folded = by_layer(layers, raw), by_layer(layers, as_matched(raw, True))
        main_fold = bool(cfg.matching.fold)  # the matching config decides SAE Match's form
        fold = {"sae_match": main_fold}
        matchings = {"sae_match": ctx.matchings()}
        if opts.unfolded and main_fold:
            fold["sae_match_unfolded"] = False
            matchings["sae_match_unfolded"] = ctx.matchings(fold=False)
        perms = {k: by_layer(layers[:-1], [m.perm for m in v]) for k, v in matchings.items()}
        for k, v in matchings.items():
            save_matchings(ctx.run_dir, k, layers, v)
        rec.add_artifact("matchings", ctx.run_dir / "matchings", type="matchings")
        pairs = [t for t in layers[:-1] if opts.pairs is None or t in opts.pairs]
        batch = ctx.batch
        rows = pruning_sweep(
            ctx.lm,
            replacements(saes, perms, opts.baselines, folded=folded, fold=fold),
            batch.input_ids,
            batch.metric_mask,
            attention_mask=batch.attention_mask,
            layers=pairs,
            batch_size=int(cfg.model.batch_size),
            progress=True,
        )
        for r in rows:
            r["delta_loss"] = r["methods"]["sae_match"]["delta_loss"]
            r["explained_variance"] = r["methods"]["sae_match"]["explained_variance"]
            rec.log_metrics(
                {
                    "layer": r["layer"],
                    "pruned_block": r["pruned_block"],
                    "delta_loss": r["delta_loss"],
                    "explained_variance": r["explained_variance"],
                }
            )
        table = pruning_table(rows)
        rec.add_table("layer_pruning", table)
        methods = list(perms) + (list(BASELINES) if opts.baselines else [])
        rec.add_figure("layer_pruning", plot(table, methods))
        results = {
            "data": cfg.data.source if isinstance(cfg.data.source, str) else cfg.data.source.value,
            "clean_loss": rows[0]["clean_loss"],
            "n_tokens": rows[0]["n_tokens"],
            "layers": {
                str(r["layer"]): {
                    "delta_loss": r["delta_loss"],
                    "explained_variance": r["explained_variance"],
                    "methods": r["methods"],
                }
                for r in rows
            },
            "sae_set": ctx.sae_set.to_dict(),
        }
        rec.finish(results)
    return results
