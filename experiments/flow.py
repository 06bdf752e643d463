"""Feature flow across modules (saematch.flow): where each residual feature of layer t comes from.

Data-free: for every feature of res(t), its top-k predecessors in res(t−1), mlp(t) and att(t)
by decoder cosine (Feature Flow) or folded cost (SAE Match), and its origin (persisting / created
by MLP / created by attention / unclear). The graph is written to matchings/flow_graph.*; the
per-layer origin shares are a figure and a CSV. With `validate`, a sample of top-1 edges per
layer and source is checked on ctx.batch: the Pearson correlation of the two features'
activations over non-BOS tokens, against random feature pairs of the same SAEs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from saematch import plotting
from saematch.data.batches import chunks
from saematch.flow import ORIGINS, SOURCES, build_flow_graph, save_flow_graph
from saematch.flow.graph import check_similarity
from saematch.flow.validate import CorrelationAccumulator, random_pairs, sample_edges
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.module_saes import module_saes

KINDS = ("edge", "top1_any", "random")  # edges above τ, best source at any score, random pairs
ORIGIN_COLORS = {
    "persisting": plotting.OKABE_ITO["blue"],
    "mlp": plotting.OKABE_ITO["orange"],
    "attention": plotting.OKABE_ITO["green"],
    "unclear": plotting.GREY,
}


@dataclass
class Options:
    similarity: str  # cosine (Feature Flow) | folded_cost (SAE Match's eq. 3 on folded rows)
    top_k: int  # candidates kept per (target, source)
    threshold: float | None  # null: 0.5 (docs/method.md §15); a candidate is an edge iff score ≥ it
    att_set: str | None  # null: the module set that goes with `saes` (zoo, Gemma/Llama Scope)
    mlp_set: str | None
    att_repo: str | None  # local mirror of the att repo
    mlp_repo: str | None
    validate: bool  # correlate sampled edges' activations on `data`
    n_edges: int  # edges (and random pairs) per (layer, source) checked on the data
    seed: int  # sampling and the chance level's rotation


@dataclass
class ShareRow:
    layer: int  # target layer t
    persisting: float  # share of res(t) features of each origin
    mlp: float
    attention: float
    unclear: float
    persisting_and_module: float  # persisting and with an mlp or att edge too
    best_res_mean: float  # mean best score per source
    best_mlp_mean: float
    best_att_mean: float
    null_res_mean: float | None  # chance level: mean best score vs rotated source rows
    null_mlp_mean: float | None
    null_att_mean: float | None
    null_res_above_threshold: float | None  # share of targets the chance level puts above τ
    null_mlp_above_threshold: float | None
    null_att_above_threshold: float | None


@dataclass
class ValidationRow:
    layer: int
    source: str  # res | mlp | att
    pairs: str  # edge (score ≥ τ) | top1_any (best candidate, any score) | random
    n: int  # pairs sampled
    n_valid: int  # pairs where both features fire on the data
    mean_rho: float | None
    median_rho: float | None
    frac_rho_gt_0_1: float | None


def share_rows(graph) -> list[ShareRow]:
    """Per target layer: origin shares, persisting features with a module edge, best scores."""
    rows = []
    for fl in graph.layers:
        linked = {s: fl.best(s) >= graph.threshold for s in SOURCES}
        both = float((linked["res"] & (linked["mlp"] | linked["att"])).float().mean())
        null = {s: fl.null_best.get(s) for s in SOURCES}
        rows.append(
            ShareRow(
                fl.layer,
                *fl.shares().values(),
                both,
                *(float(fl.best(s).mean()) for s in SOURCES),
                *(None if v is None else float(v.mean()) for v in null.values()),
                *(
                    None if v is None else float((v >= graph.threshold).float().mean())
                    for v in null.values()
                ),
            )
        )
    return rows


def plot_shares(rows: list[ShareRow], graph):
    """Left: origin shares per layer (stacked). Right: mean best score per source per layer."""
    fig, (ax, ax_s) = plotting.new_figure(1, 2, panel_size=(4.8, 3.4))
    layers = [r.layer for r in rows]
    bottom = np.zeros(len(rows))
    for o in ORIGINS:
        v = np.array([getattr(r, o) for r in rows])
        ax.bar(layers, v, bottom=bottom, color=ORIGIN_COLORS[o], label=o)
        bottom += v
    ax.set_xticks(layers)
    plotting.label_axes(
        ax, y=None, title=f"Origin of res(t) features ({graph.similarity}, τ={graph.threshold:g})"
    )
    ax.set_ylabel("share of features")
    ax.set_ylim(0, 1.3)
    ax.legend(ncol=2, loc="upper center", fontsize=8)
    names = {"res": "res(t−1)", "mlp": "mlp(t)", "att": "att(t)"}
    for s in SOURCES:
        line = plotting.line_per_layer(
            ax_s, layers, [getattr(r, f"best_{s}_mean") for r in rows], label=names[s]
        )
        if getattr(rows[0], f"null_{s}_mean") is not None:
            null = [getattr(r, f"null_{s}_mean") for r in rows]
            ax_s.plot(layers, null, ":", color=line.get_color(), label=f"{names[s]}, chance")
    ax_s.axhline(graph.threshold, color=plotting.GREY, ls="--", lw=1, label="threshold")
    plotting.label_axes(ax_s, y=None, title="Mean best predecessor score")
    ax_s.set_ylabel(graph.similarity)
    ax_s.legend(fontsize=7, ncol=2, loc="upper right")
    return fig


def validate(
    ctx: Context, graph, mods, n: int, seed: int
) -> tuple[list[ValidationRow], dict[tuple, np.ndarray]]:
    """ρ of sampled top-1 edges and random pairs per (layer, source) on ctx.batch: rows, and
    {(layer, source, pairs): every ρ} for the histograms."""
    g = torch.Generator().manual_seed(seed)
    res = ctx.saes
    src_sae = {
        "res": lambda t: res[t - 1],
        "mlp": lambda t: mods.mlp[t],
        "att": lambda t: mods.att[t],
    }
    src_site = {"res": "resid_post", "mlp": mods.sites["mlp"], "att": mods.sites["att"]}
    src_layer = {"res": lambda t: t - 1, "mlp": lambda t: t, "att": lambda t: t}
    plan = {}  # (t, source, kind) -> (target ids, source ids)
    for fl in graph.layers:
        for s in SOURCES:
            plan[(fl.layer, s, "edge")] = sample_edges(fl, s, n, g, graph.threshold)
            plan[(fl.layer, s, "top1_any")] = sample_edges(fl, s, n, g)
            plan[(fl.layer, s, "random")] = random_pairs(
                n, res[fl.layer].width, src_sae[s](fl.layer).width, g
            )
    acc = {k: CorrelationAccumulator(len(v[0])) for k, v in plan.items()}
    want = sorted(
        {("resid_post", fl.layer) for fl in graph.layers}
        | {(src_site[s], src_layer[s](fl.layer)) for fl in graph.layers for s in SOURCES}
    )
    for b in chunks(ctx.batch, ctx.batch_size):
        acts = ctx.lm.site_activations(b.input_ids, b.attention_mask, want)
        m = b.metric_mask.to(ctx.lm.device)
        for fl in graph.layers:  # one target layer at a time: (n, F) codes of 4 SAEs in memory
            t = fl.layer
            with torch.inference_mode():
                ft = res[t].encode(acts[("resid_post", t)][m].to(res[t].dtype))  # (n, F)
                for s in SOURCES:
                    sae = src_sae[s](t)
                    fs = sae.encode(acts[(src_site[s], src_layer[s](t))][m].to(sae.dtype))
                    for kind in KINDS:
                        ti, si = plan[(t, s, kind)]
                        acc[(t, s, kind)].update(ft[:, ti.to(ft.device)], fs[:, si.to(fs.device)])
    rows, every = [], {}
    for (t, s, kind), a in acc.items():
        rho = a.value().numpy()
        ok = rho[np.isfinite(rho)]
        every[(t, s, kind)] = ok
        stats = (
            (float(ok.mean()), float(np.median(ok)), float((ok > 0.1).mean()))
            if ok.size
            else (None, None, None)
        )
        rows.append(ValidationRow(t, s, kind, int(rho.size), int(ok.size), *stats))
    return rows, every


def plot_validation(rows: list[ValidationRow], every: dict[tuple, np.ndarray]):
    """Per source: mean ρ per layer, edges vs random pairs; and all ρ as histograms."""
    fig, axes = plotting.new_figure(2, 3, panel_size=(3.6, 2.8), squeeze=False)
    for k, s in enumerate(SOURCES):
        ax, ax_h = axes[0, k], axes[1, k]
        colors = (plotting.OKABE_ITO["blue"], plotting.OKABE_ITO["sky"], plotting.GREY)
        for kind, color in zip(KINDS, colors, strict=True):
            rs = sorted(
                (r for r in rows if r.source == s and r.pairs == kind), key=lambda r: r.layer
            )
            means = [np.nan if r.mean_rho is None else r.mean_rho for r in rs]
            plotting.line_per_layer(
                ax, [r.layer for r in rs], means, label=f"{kind} pairs", color=color
            )
            rho = np.concatenate([every[(r.layer, s, kind)] for r in rs] or [np.zeros(0)])
            ax_h.hist(
                rho, bins=30, range=(-0.2, 1.0), alpha=0.5, color=color, label=kind, density=True
            )
        plotting.label_axes(ax, y=None, title=f"{s} → res(t): mean ρ")
        plotting.label_axes(ax_h, x=None, y=None, title=f"{s}: ρ over all layers")
        ax_h.set_yscale("log")
        ax_h.set_ylabel("density")
        ax_h.set_xlabel("activation correlation ρ")
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Build, store and plot the flow graph; check its edges against activations."""
    check_similarity(opts.similarity)  # before loading anything
    if opts.top_k < 1 or opts.n_edges < 1:
        raise ValueError(
            f"experiment.top_k={opts.top_k}, experiment.n_edges={opts.n_edges}: both must be ≥ 1"
        )
    layers = ctx.layers
    mods = module_saes(
        ctx,
        layers[1:],
        att_set=opts.att_set,
        mlp_set=opts.mlp_set,
        att_repo=opts.att_repo,
        mlp_repo=opts.mlp_repo,
    )
    graph = build_flow_graph(
        ctx.saes,
        mods.mlp,
        mods.att,
        sites=mods.sites,
        o_proj=mods.o_proj,
        similarity=opts.similarity,
        top_k=opts.top_k,
        threshold=opts.threshold,
        null_seed=opts.seed,
    )
    graph.notes["module_sets"] = f"att: {mods.names['att']}, mlp: {mods.names['mlp']}"
    # the graph file sits next to the match files (Results has no slot for it)
    _, js = save_flow_graph(graph, ctx.run_dir / "matchings" / "flow_graph")
    rows = share_rows(graph)
    keep = ("layer", "persisting", "mlp", "attention", "unclear")
    res = Results(headline=[{k: getattr(r, k) for k in keep} for r in rows])
    res.table("flow_shares", rows)
    res.figures["flow_shares"] = plot_shares(rows, graph)
    res.summary = {
        "similarity": graph.similarity,
        "threshold": graph.threshold,
        "top_k": graph.top_k,
        "graph": str(js.relative_to(ctx.run_dir)),
        "module_sets": mods.names,
        "sites": mods.sites,
        "layers": {str(r.layer): asdict(r) for r in rows},
    }
    if opts.validate:
        vrows, every = validate(ctx, graph, mods, opts.n_edges, opts.seed)
        res.table("flow_validation", vrows, history=False)
        res.figures["flow_validation"] = plot_validation(vrows, every)
        res.summary["validation"] = {
            f"{s}/{kind}": float(
                np.nanmean(
                    [
                        np.nan if r.mean_rho is None else r.mean_rho
                        for r in vrows
                        if r.source == s and r.pairs == kind
                    ]
                )
            )
            for s in SOURCES
            for kind in KINDS
        }
    return res
