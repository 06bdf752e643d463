"""Layer pruning with matched features (Sec. 5.5, Fig. 9-11, App. A baselines).

    x̂_{t+1} = D_{t+1}(P E_t(x_t))     P from the matching (folded by default)

Units of the transfer (docs/method.md §5): `raw` (default, the paper's equation) uses E_t and
D_{t+1} as published; `folded` uses the folded SAEs, which rescales feature i by θ_{t+1,P(i)} /
θ_{t,i}. With `other_transfer`, every matching is also scored in the other units, under the method
name `<name>_folded_transfer` (or `<name>_raw_transfer`), so Fig. 11 shows both side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from saematch import plotting
from saematch.lazy_saes import mapped
from saematch.pruning import BASELINES, pruning_table, replacements
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results, as_matched


@dataclass
class Options:
    pairs: list[int] | None  # first layers t of the pairs t -> t+1; null = all
    baselines: bool  # also the App. A baselines (layer drop, encode-decode current/previous)
    unfolded: bool  # with matching.fold=true, also prune with the unfolded matching
    transfer: str  # raw (docs/method.md §5: E_t, D_{t+1} as published) | folded (folded SAEs)
    other_transfer: bool  # also score every matching with the other transfer units


@dataclass
class PruneRow:
    """SAE Match pruning of block t+1 (the main metric; per layer in metrics and console)."""

    layer: int
    pruned_block: int
    delta_loss: float
    explained_variance: float

    @classmethod
    def of(cls, row: dict, method: str) -> PruneRow:
        """The row of `method` in one pruning_sweep result row."""
        v = row["methods"][method]
        return cls(row["layer"], row["pruned_block"], v["delta_loss"], v["explained_variance"])


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


def run(opts: Options, ctx: Context) -> Results:
    """ΔL and EV of pruning each block t+1 by encode(t) -> permute -> decode(t+1)."""
    if opts.transfer not in ("raw", "folded"):
        raise ValueError(
            f"experiment.transfer={opts.transfer!r}: use raw (docs/method.md §5, the default) "
            "or folded"
        )
    saes = mapped(ctx.saes, lambda s: s.to(ctx.act_device))  # a pair at a time (lazy_saes)
    can_fold = all(s.foldable for s in saes.values())  # ReLU / TopK SAEs: raw transfer only
    if opts.transfer == "folded" and not can_fold:
        raise ValueError(
            "experiment.transfer=folded needs SAEs with thresholds; these are ReLU/TopK SAEs "
            "(no θ, folding undefined): use experiment.transfer=raw"
        )
    main_fold = bool(ctx.cfg.matching.fold)  # the matching config decides SAE Match's matching
    matchings = {"sae_match": ctx.matchings()}
    if opts.unfolded and main_fold:
        matchings["sae_match_unfolded"] = ctx.matchings(fold=False)
    perms = {k: {t: m.perm for t, m in v.items()} for k, v in matchings.items()}
    in_folded = opts.transfer == "folded"
    fold = dict.fromkeys(perms, in_folded)
    if opts.other_transfer and can_fold:
        other = "raw" if in_folded else "folded"
        for name in list(perms):
            perms[f"{name}_{other}_transfer"] = perms[name]
            fold[f"{name}_{other}_transfer"] = not in_folded
    pairs = [t for t in ctx.next_layer if opts.pairs is None or t in opts.pairs]
    folded = as_matched(saes, True) if can_fold else None
    reps = replacements(saes, perms, opts.baselines, folded, fold)
    rows = ctx.prune(reps, pairs, progress=True)
    main = [PruneRow.of(r, "sae_match") for r in rows]
    methods = list(perms) + (list(BASELINES) if opts.baselines else [])
    table = pruning_table(rows)
    res = Results(metrics=main, headline=main, matchings=matchings)
    res.table("layer_pruning", table)
    fig = plot(table, methods)  # Fig. 11: every method
    fig.suptitle(f"SAE Match transfers in {opts.transfer} units (docs/method.md §5)", fontsize=9)
    res.figures["layer_pruning"] = fig
    res.figures["layer_pruning_sae_match"] = plot(table, ["sae_match"])  # Fig. 10
    res.summary = {
        "data": "planted generator" if ctx.is_planted else plain(ctx.cfg.data.source),
        **ctx.loss_note,
        "clean_loss": rows[0]["clean_loss"],
        "n_tokens": rows[0]["n_tokens"],
        "transfer": opts.transfer,
        "layers": {
            str(r["layer"]): {
                "delta_loss": m.delta_loss,
                "explained_variance": m.explained_variance,
                "methods": r["methods"],
            }
            for r, m in zip(rows, main, strict=True)
        },
    }
    return res
