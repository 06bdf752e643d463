"""Sparsity sweep (App. A, Fig. 14) and the l0-matched SAE set (Fig. 15).

Fig. 14: on one pair t -> t+1 (the paper: 20 -> 21), every available SAE of layer t is paired
with one of layer t+1 (`combos: diagonal` pairs the k-th sparsest with the k-th sparsest, as the
paper's "five SAEs ... each with a different mean l0"; `all` evaluates every combination),
matched (folded), and block t+1 is pruned by D_{t+1}(P E_t(x_t)) in raw units (docs/method.md §5);
ΔL and EV against the l0 measured on the batch's metric tokens, next to the App. A baselines.

Fig. 15: per layer the candidate SAE whose l0 is closest to its neighbours' (`l0_matched_choice`:
an exact DP over layers), then per-layer SAE Match pruning EV/ΔL of that set vs the default set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from saematch.pruning import permute_codes, pruning_sweep
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.l0_matched import l0_matched_sets, measure_l0
from saematch_experiments.support.sparsity_plots import plot_sweep


@dataclass
class Options:
    pair: int | None  # first layer t of the swept pair t -> t+1; null = the middle pair
    combos: str  # diagonal (k-th sparsest level with k-th) | all
    baselines: bool  # layer drop, encode-decode current / previous per SAE
    l0_matched: bool  # Fig. 15: l0-matched set vs the default set, every layer
    anchor_weight: float  # λ of l0_matched_choice (pull towards the default set's l0)


@dataclass(frozen=True)
class Candidate:
    """One SAE available at a layer: its name, its stored l0 and how to load it."""

    name: str
    stored_l0: float
    load: Callable


def sae_candidates(ctx: Context, layer: int) -> list[Candidate]:
    """Every SAE at `layer`, sparsest first by nominal l0: the zoo's sparsity levels (target
    l0; stored_l0 = l0 measured when the zoo was built), or for a saes=gemma_scope_* set every
    published width-16k Gemma Scope average_l0 SAE (saematch.sources.sets)."""
    s, device = ctx.cfg.saes, ctx.cfg.model.device
    kind = str(s._target_).rsplit(".", 1)[-1].removesuffix("_set")  # zoo, gemma_scope_paper, ...
    if kind == "zoo":
        zoo = ctx.zoo  # levels its build did not train are trained here, on first use
        out = [
            Candidate(
                lv, float(zoo.sae_metrics(lv)[str(layer)]["l0"]), partial(zoo.load_sae, layer, lv)
            )
            for lv in zoo.sparsities
        ]
    elif kind.startswith("gemma_scope"):
        from saematch.sources.gemma_scope import GEMMA_SCOPE_2B_RES
        from saematch.sources.sets import gemma_scope_sweep_set

        # the canonical repo holds only `canonical` folders; the paper set's repo (or its
        # local mirror) has every average_l0 folder
        repo = s.repo_id if kind == "gemma_scope_paper" and s.repo_id else GEMMA_SCOPE_2B_RES
        specs = gemma_scope_sweep_set([layer], repo_id=repo).specs(layer)  # by published l0
        out = [
            Candidate(
                sp.sae_id, float(sp.sae_id.rsplit("_", 1)[1]), partial(sp.load, device=device)
            )
            for sp in specs
        ]
    else:
        raise ValueError(
            f"sparsity_sweep needs several SAEs per layer: use saes=tiny (the zoo) or a "
            f"gemma_scope_* set, not saes._target_={s._target_}"
        )
    return out


@torch.no_grad()
def _row(method: str, a: dict | None = None, b: dict | None = None) -> dict:
    """A sweep-table row prefix: the SAEs used and the l0 to plot (mean of their l0)."""
    l0 = [c["l0"] for c in (a, b) if c]
    return {
        "method": method,
        "sae_t": a["sae"] if a else "",
        "sae_t1": b["sae"] if b else "",
        "l0_t": a["l0"] if a else math.nan,
        "l0_t1": b["l0"] if b else math.nan,
        "l0": float(np.mean(l0)) if l0 else math.nan,
    }


def sweep_replacements(t_saes: list, t1_saes: list, combos, perms: dict, baselines: bool):
    """(replacements, rows): x̂_{t+1} builders for each combo (i, j) of candidates (dicts with
    "sae", "l0", "model") and, with baselines, each SAE's encode-decode and the layer drop;
    rows[name] is the table-row prefix (_row) of each."""
    reps, rows = {}, {}
    for i, j in combos:
        a, b = t_saes[i], t1_saes[j]
        name = f"sae_match|{a['sae']}|{b['sae']}"
        # matched folded, transferred in raw units: E_t, D_{t+1} as published (docs/method.md §5)
        fa, fb = a["model"], b["model"]
        reps[name] = lambda t, r, fa=fa, fb=fb, p=perms[i, j]: fb.decode(
            permute_codes(fa.encode(r[t]), p)
        )
        rows[name] = _row("sae_match", a, b)
    if baselines:
        reps["layer_drop"], rows["layer_drop"] = (lambda t, r: r[t]), _row("layer_drop")
        for a in {t_saes[i]["sae"]: t_saes[i] for i, _ in combos}.values():
            reps[f"prev|{a['sae']}"] = lambda t, r, m=a["model"]: m(r[t])
            rows[f"prev|{a['sae']}"] = _row("encdec_previous", a=a)
        for b in {t1_saes[j]["sae"]: t1_saes[j] for _, j in combos}.values():
            reps[f"cur|{b['sae']}"] = lambda t, r, m=b["model"]: m(r[t + 1])
            rows[f"cur|{b['sae']}"] = _row("encdec_current", b=b)
    return reps, rows


def public(c: dict) -> dict:
    """The table/results view of a measured candidate."""
    return {k: c[k] for k in ("layer", "sae", "stored_l0", "l0")}


def measured_candidates(ctx: Context, layer: int, keep: bool) -> list[dict]:
    """The candidates at `layer` with their l0 measured on ctx.batch, sparsest first.

    Each: {"layer", "sae", "stored_l0", "l0", "model" (kept only when `keep`: memory),
    "load", "fingerprint"}; other layers' SAEs are reloaded if chosen."""
    cs = sae_candidates(ctx, layer)
    models = [c.load().to(ctx.device) for c in cs]
    l0 = measure_l0(ctx.lm, ctx.batch, layer, models, ctx.batch_size)
    return [
        {
            "layer": layer,
            "sae": c.name,
            "stored_l0": c.stored_l0,
            "l0": v,
            "model": m if keep else None,
            "load": c.load,
            "fingerprint": m.fingerprint(),
        }
        for c, v, m in zip(cs, l0, models, strict=True)
    ]


def combos_of(k_t: int, k_t1: int, how: str) -> list[tuple[int, int]]:
    """SAE index pairs to sweep: the diagonal (k-th sparsest with k-th sparsest) or all."""
    if how == "all":
        return [(i, j) for i in range(k_t) for j in range(k_t1)]
    if how != "diagonal":
        raise ValueError(f"experiment.combos must be 'diagonal' or 'all', got {how!r}")
    if k_t != k_t1:
        raise ValueError(
            f"combos=diagonal needs as many SAEs at t as at t+1 ({k_t} vs {k_t1}); "
            "use experiment.combos=all"
        )
    return [(k, k) for k in range(k_t)]


def run(opts: Options, ctx: Context) -> Results:
    """Fig. 14 (ΔL, EV vs l0 on one pair) and Fig. 15 (l0-matched set vs default set)."""
    layers, bs = ctx.layers, ctx.batch_size
    t = layers[(len(layers) - 2) // 2] if opts.pair is None else opts.pair
    if t not in layers or t + 1 not in layers:
        raise ValueError(f"experiment.pair={t}: need layers {t} and {t + 1}; have {layers}")
    combos_of(1, 1, opts.combos)  # a bad option fails before any work
    cands = {
        L: measured_candidates(ctx, L, keep=L in (t, t + 1))
        for L in (layers if opts.l0_matched else [t, t + 1])
    }
    combos = combos_of(len(cands[t]), len(cands[t + 1]), opts.combos)
    pair_saes = lambda i, j: {t: cands[t][i]["model"], t + 1: cands[t + 1][j]["model"]}  # noqa: E731
    perms = {(i, j): ctx.matchings(fold=True, saes=pair_saes(i, j))[t].perm for i, j in combos}
    reps, meta = sweep_replacements(cands[t], cands[t + 1], combos, perms, opts.baselines)
    b, kw = ctx.batch, {"attention_mask": ctx.batch.attention_mask, "batch_size": bs}
    (row,) = pruning_sweep(ctx.lm, reps, b.input_ids, b.metric_mask, layers=[t], **kw)
    sweep = [{**meta[name], **v} for name, v in row["methods"].items()]
    res = Results()
    res.metrics = [
        {k: r[k] for k in ("l0", "delta_loss", "explained_variance")}
        for r in sweep
        if r["method"] == "sae_match"
    ]
    res.headline = res.metrics
    res.table("sae_candidates", [public(r) for rs in cands.values() for r in rs])
    res.table("sparsity_sweep", sweep)
    res.figures["sparsity_sweep"] = plot_sweep(sweep)
    res.summary = {
        "pair": t,
        "combos": opts.combos,
        "clean_loss": row["clean_loss"],
        "n_tokens": row["n_tokens"],
        "sweep": sweep,
        "candidates": {str(L): [public(r) for r in rs] for L, rs in cands.items()},
    }
    if opts.l0_matched:
        res.summary |= l0_matched_sets(ctx, res, cands, kw, opts.anchor_weight)
    return res
