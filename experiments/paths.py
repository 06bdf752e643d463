"""Example feature paths across layers (Fig. 18, 19; Sec. 3.2): composed adjacent matchings.

N features of a start layer are followed through perm_AC = perm_BC[perm_AB]; each step
carries its pair MSE on folded weights, the feature's activation frequency on ctx.batch
(non-BOS tokens) and its description.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from saematch import plotting
from saematch.feature_paths import layer_path, select_features
from saematch.pair_mse import folded_mse
from saematch_experiments.harness.config_values import plain
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.activations import activation_frequency


@dataclass
class Options:
    start_layer: int | None  # null = first layer of the set (paper: 20 Gemma, 10 Llama)
    end_layer: int | None  # null = last layer of the set
    n_paths: int
    select: str  # first (features 0..N-1, as the paper) | most_active | random_active
    features: list[int] | None  # explicit start features (overrides select)
    seed: int  # for random_active


@dataclass
class PathStep:
    """Feature `feature` at `layer` on path `path`, reached from the previous layer's step."""

    path: int
    layer: int
    feature: int
    step_mse: float | None  # pair MSE (matching mode, folded) of the step into this layer
    step_decoder_mse: float | None  # its decoder term; None at the start layer
    act_freq: float  # fraction of non-BOS tokens of ctx.batch on which the feature fires
    description: str | None


def plot_diagram(table: list[PathStep], layers: list[int]):
    """Fig. 18 style: one row per path, one box per layer (feature id + description)."""
    paths = sorted({r.path for r in table})
    fig, ax = plotting.new_figure(panel_size=(2.6 * len(layers), 1.35 * len(paths)))
    ax.set_xlim(-0.5, len(layers) - 0.5)
    ax.set_ylim(len(paths) - 0.5, -0.5)
    ax.axis("off")
    for r in table:
        x, y = layers.index(r.layer), paths.index(r.path)
        label = f"L{r.layer}/{r.feature}  (freq {r.act_freq:.3f})\n"
        label += plotting.short_text(r.description, 30, 3)
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=6.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": plotting.GREY},
        )
        if r.step_mse is not None:
            ax.annotate(
                "",
                xy=(x - 0.42, y),
                xytext=(x - 0.58, y),
                arrowprops={"arrowstyle": "->", "color": plotting.GREY},
            )
            ax.text(x - 0.5, y - 0.08, f"{r.step_mse:.2g}", ha="center", va="bottom", fontsize=6.5)
    ax.set_title("Feature paths (composed matchings); arrow label = step pair MSE (folded)")
    return fig


def plot_mse(table: list[PathStep]):
    """Step MSE and activation frequency along each path, against layer."""
    fig, (ax, ax_f) = plotting.new_figure(1, 2, panel_size=(4.6, 3.2))
    for p in sorted({r.path for r in table}):
        rows = [r for r in table if r.path == p]
        label = f"path {p} (L{rows[0].layer}/{rows[0].feature})"
        steps = [r for r in rows if r.step_mse is not None]
        line = plotting.line_per_layer(
            ax, [r.layer for r in steps], [r.step_mse for r in steps], label=label
        )
        plotting.line_per_layer(
            ax_f,
            [r.layer for r in rows],
            [r.act_freq for r in rows],
            label=label,
            color=line.get_color(),
        )
    ax.set_yscale("log")
    plotting.label_axes(ax, y=None, title="Step pair MSE (t−1 → t)")
    ax.set_ylabel("pair MSE, folded (mean over d_model)")
    plotting.label_axes(ax_f, y=None, title="Activation frequency", legend=False)
    ax_f.set_ylabel("fraction of non-BOS tokens")
    return fig


def markdown(table: list[PathStep], mode: str) -> str:
    """The paths as Markdown: one table per path."""
    out = [f"# Feature paths (composed matchings, step MSE in mode `{mode}` on folded weights)\n"]
    for p in sorted({r.path for r in table}):
        rows = [r for r in table if r.path == p]
        out += [
            f"\n## Path {p}: layer {rows[0].layer}, feature {rows[0].feature}\n",
            "| layer | feature | step MSE | decoder MSE | act. freq | description |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            mse = "—" if r.step_mse is None else f"{r.step_mse:.4g}"
            dec = "—" if r.step_decoder_mse is None else f"{r.step_decoder_mse:.4g}"
            desc = " ".join(str(r.description or "(none)").split()).replace("|", "\\|")
            out.append(f"| {r.layer} | {r.feature} | {mse} | {dec} | {r.act_freq:.4f} | {desc} |")
    return "\n".join(out) + "\n"


def run(opts: Options, ctx: Context) -> Results:
    """Follow N start features through the composed matchings; table, figures, Markdown."""
    mode, layers, by = plain(ctx.cfg.matching.mode), ctx.layers, ctx.saes
    start = layers[0] if opts.start_layer is None else opts.start_layer
    end = layers[-1] if opts.end_layer is None else opts.end_layer
    if start not in layers or end not in layers or end <= start:
        raise ValueError(
            f"start_layer={start}, end_layer={end}: both must be layers of the SAE "
            f"set {layers} with start < end"
        )
    span = [L for L in layers if start <= L <= end]
    adjacent = ctx.perms()
    freq = activation_frequency(ctx, span)
    feats = (
        [int(i) for i in opts.features]
        if opts.features
        else select_features(freq[start], opts.n_paths, opts.select, opts.seed)
    )
    step = {  # next layer u -> (F,) cost of each step t -> u, indexed by t's feature
        (u, m): folded_mse(by[t], by[u], adjacent[t], m)
        for t, u in ctx.next_layer.items()
        if start <= t < end
        for m in (mode, "decoder")
    }
    table = []
    for p, f0 in enumerate(feats):
        path = layer_path(layers, adjacent, start, f0, end)
        for s, (L, i) in enumerate(path):
            cost = (
                [None, None]
                if s == 0
                else [float(step[L, m][path[s - 1][1]]) for m in (mode, "decoder")]
            )
            desc = ctx.descriptions(L).get(i)
            table.append(PathStep(p, L, i, *cost, float(freq[L][i]), desc))
    res = Results(texts={"paths.md": markdown(table, mode)})
    res.table("paths", table, history=False)
    res.figures["paths"] = plot_diagram(table, span)
    res.figures["paths_mse"] = plot_mse(table)
    mean_step = {L: float(np.mean([r.step_mse for r in table if r.layer == L])) for L in span[1:]}
    res.headline = [{"layer": L, "mean_step_mse": v} for L, v in mean_step.items()]
    res.summary = {
        "start_layer": start,
        "end_layer": end,
        "select": "features" if opts.features else opts.select,
        "mode": mode,
        "paths": [[asdict(r) for r in table if r.path == p] for p in range(len(feats))],
        "layers": {str(L): {"mean_step_mse": v} for L, v in mean_step.items()},
    }
    return res
