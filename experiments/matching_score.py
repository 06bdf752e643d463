"""Matching score per adjacent layer pair (Fig. 7, right): folded vs unfolded vs vanilla.

One pass over ctx.batch: resid_post of every layer of the set, each SAE encodes its layer,
and the active sets stream into one MatchingScoreAccumulator per (pair, method).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import DictConfig

from experiments.context import Context
from saematch import plotting
from saematch.data import chunks
from saematch.metrics import MatchingScoreAccumulator, describe

METHODS = ("folded", "unfolded", "vanilla")


@dataclass
class Options:
    methods: list[str] = field(default_factory=lambda: list(METHODS))  # subset of METHODS
    pairs: list[int] | None = None  # first layers t of the pairs t -> t+1; null = all
    per_feature: bool = True  # write matching_score_per_feature.csv (one row per feature)


def perm_array(perm) -> np.ndarray:
    """A permutation (array, list or Permutation-like with .perm) as an int64 array (F,)."""
    return np.asarray(getattr(perm, "perm", perm), dtype=np.int64).reshape(-1)


def resid_rows(ctx: Context, layers: list[int]) -> Iterator[torch.Tensor]:
    """resid_post of `layers` on ctx.batch, chunk by chunk, non-BOS tokens only: (L, n, d)."""
    bs = int(ctx.cfg.model.batch_size)
    for b in chunks(ctx.batch, bs):
        with torch.inference_mode():
            resid = ctx.lm.resid_post(b.input_ids, b.attention_mask, layers=layers)  # (L,B,T,d)
            yield resid[:, b.metric_mask.to(resid.device)]  # (L, n, d)


def active(sae, x: torch.Tensor) -> torch.Tensor:
    """Bool (n, F): which features of `sae` fire on the rows x (n, d) (f > 0, fold-invariant)."""
    with torch.inference_mode():
        return sae.encode(x.to(sae.dtype)) > 0


def method_perms(ctx: Context, methods: list[str]) -> dict[str, list[np.ndarray]]:
    """Adjacent-pair permutations per method; vanilla is the identity (SPEC §3)."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}, got {methods}")
    F = ctx.saes[0].width
    out = {}
    for m in methods:
        if m == "vanilla":
            out[m] = [np.arange(F, dtype=np.int64) for _ in ctx.layers[:-1]]
        else:
            out[m] = [perm_array(x.perm) for x in ctx.matchings(fold=m == "folded")]
    return out


def plot(rows: list[dict], per_feature: dict[str, np.ndarray], methods: list[str]):
    """Left: score per layer pair per method. Right: distribution of per-feature scores."""
    fig, (ax, ax_h) = plotting.new_figure(1, 2, panel_size=(5.0, 3.4))
    for m in methods:
        plotting.line_per_layer(ax, [r["layer"] for r in rows], [r[m] for r in rows], method=m)
    ax.set_ylim(0, 1.02)
    plotting.label_axes(ax, x="layer_pair", y="matching_score", title="Matching score")
    bins = np.linspace(0, 1, 21)
    for m in methods:
        v = per_feature[m][~np.isnan(per_feature[m])]
        ax_h.hist(v, bins=bins, histtype="step", linewidth=1.6, color=plotting.method_color(m),
                  label=plotting.method_label(m))  # fmt: skip
    ax_h.set_yscale("log")  # most features score 0; the tail is what differs
    plotting.label_axes(
        ax_h, x="matching_score", y="count", title="Per-feature score (all pairs, active features)"
    )
    ax_h.set_xlabel("per-feature matching score")
    return fig


def run(cfg: DictConfig) -> dict:
    """Matching score of every adjacent pair for each method, plus per-feature values."""
    ctx = Context(cfg)
    opts = ctx.options
    methods = list(opts.methods)
    with ctx.recorder as rec:
        layers = list(ctx.layers)
        perms = method_perms(ctx, methods)
        pairs = [k for k, t in enumerate(layers[:-1]) if opts.pairs is None or t in opts.pairs]
        if not pairs:
            raise ValueError(f"no adjacent pair starts at {list(opts.pairs)}; layers: {layers}")
        need = sorted({layers[k] for k in pairs} | {layers[k + 1] for k in pairs})
        pos = {L: i for i, L in enumerate(need)}
        saes = {L: s.to(ctx.lm.device) for L, s in zip(layers, ctx.saes, strict=True)}
        acc = {(k, m): MatchingScoreAccumulator(perms[m][k]) for k in pairs for m in methods}
        n_tokens = 0
        for rows in resid_rows(ctx, need):
            n_tokens += rows.shape[1]
            prev = None  # (layer, active) kept so each layer is encoded once per chunk
            for k in pairs:
                t, u = layers[k], layers[k + 1]
                a = prev[1] if prev and prev[0] == t else active(saes[t], rows[pos[t]])
                b = active(saes[u], rows[pos[u]])
                for m in methods:
                    acc[(k, m)].update(a, b)
                prev = (u, b)
        table, feats, per_all = [], [], {m: [] for m in methods}
        results = {"methods": methods, "n_tokens": n_tokens, "layers": {}}
        for k in pairs:
            t, u = layers[k], layers[k + 1]
            row = {"layer": t, "next_layer": u}
            entry = {"next_layer": u}
            for m in methods:
                a = acc[(k, m)]
                score, per = a.result()
                row[m] = score
                per_all[m].append(per)
                entry[m] = {"score": score, "per_feature": describe(per)}
                entry[m]["n_active_features"] = int((a.active > 0).sum())
                if opts.per_feature:
                    both, act = a.both.numpy(), a.active.numpy()
                    feats += [
                        {"layer": t, "method": m, "feature": i, "matched_feature": int(p),
                         "n_active": int(act[i]), "n_both": int(both[i]), "score": float(per[i])}
                        for i, p in enumerate(perms[m][k])
                    ]  # fmt: skip
            rec.log_metrics(row)
            table.append(row)
            results["layers"][str(t)] = entry
        per_all = {m: np.concatenate(v) for m, v in per_all.items()}
        results["mean_over_pairs"] = {m: float(np.mean([r[m] for r in table])) for m in methods}
        rec.add_table("matching_score", table)
        if opts.per_feature:
            rec.add_table("matching_score_per_feature", feats, as_history=False)
        rec.add_figure("matching_score", plot(table, per_all, methods))
        results["sae_set"] = ctx.sae_set.to_dict()
        rec.finish(results)
    return results
