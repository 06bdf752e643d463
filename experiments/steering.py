"""Steering along a feature path (saematch.flow.steering), against random directions.

For N start features (most active on `data` by default), the path through the composed SAE Match
permutations (Sec. 3.2) from start_layer to end_layer. At each scale α, add α · θ_{l,i} W_dec[i]
(the folded decoder row) at every layer of the path ("path"), or only at the start layer
("single"), and measure on the batch's non-BOS positions: KL(steered ‖ clean) of the next-token
distribution, and the change in log-probability of the feature's top-activating tokens (`top`)
and of the tokens that follow its top activations (`next`). Baseline: n_random draws of random
directions with the same norm at the same layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import DictConfig

from experiments.context import Context
from experiments.matching_score import resid_rows
from experiments.paths import activation_frequency, select_features
from experiments.persistence import layer_path
from saematch import plotting
from saematch.data.batches import chunks
from saematch.flow.steering import (
    clean_log_probs,
    generate,
    path_additions,
    random_like,
    steering_effect,
)

MODES = ("path", "single")


@dataclass
class Options:
    start_layer: int | None = None  # null = first layer of the set
    end_layer: int | None = None  # null = last layer of the set
    n_features: int = 6
    select: str = "most_active"  # first | most_active | random_active (as experiment=paths)
    features: list[int] | None = None  # explicit start features (overrides select)
    scales: list[float] = field(default_factory=lambda: [1.0, 4.0, 16.0])  # × θ W_dec row
    n_random: int = 3  # random same-norm directions per (feature, mode, scale)
    n_tokens: int = 10  # distinct top-activating (and next) tokens per feature
    n_generate: int = 12  # greedy tokens in the text samples (0 = none)
    seed: int = 0


@torch.no_grad()
def feature_tokens(ctx: Context, layers: list[int], start: int, feats: list[int], n: int):
    """Per feature: its n top-activating distinct tokens and the n distinct tokens after them;
    and the mean residual norm at each layer (for relative steering norms)."""
    sae = dict(zip(ctx.layers, ctx.saes, strict=True))[start]
    vals, cur, nxt, norms = [], [], [], []
    for b, rows in zip(chunks(ctx.batch, int(ctx.cfg.model.batch_size)), resid_rows(ctx, layers),
                       strict=True):  # fmt: skip
        norms.append(rows.norm(dim=-1).cpu())  # (L, n)
        f = sae.encode(rows[layers.index(start)].to(sae.dtype))[:, feats].cpu()  # (n, k)
        m = b.metric_mask
        ids = b.input_ids
        after = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -1)], dim=1)
        after = torch.where(torch.cat([m[:, 1:], torch.zeros_like(m[:, :1])], 1), after, -1)
        vals.append(f)
        cur.append(ids[m])
        nxt.append(after[m])
    f, cur, nxt = torch.cat(vals), torch.cat(cur), torch.cat(nxt)
    out = {}
    for k, i in enumerate(feats):
        order = torch.argsort(f[:, k], descending=True)
        order = order[f[order, k] > 0]
        out[i] = {w: _distinct(toks[order], n) for w, toks in (("top", cur), ("next", nxt))}
    mean_norm = torch.cat(norms, dim=1).mean(1)  # (L,)
    return out, {L: float(mean_norm[j]) for j, L in enumerate(layers)}


def _distinct(tokens: torch.Tensor, n: int) -> torch.Tensor:
    seen: list[int] = []
    for t in tokens.tolist():
        if t >= 0 and t not in seen:
            seen.append(t)
            if len(seen) == n:
                break
    return torch.tensor(seen, dtype=torch.long)


def summarise(rows: list[dict]) -> list[dict]:
    """Per (mode, scale): mean over features of steered and random effects, and the win rate."""
    out = []
    for mode in MODES:
        for scale in sorted({r["scale"] for r in rows}):
            rs = [r for r in rows if r["mode"] == mode and r["scale"] == scale]
            if not rs:
                continue
            row = {"mode": mode, "scale": scale, "n_features": len(rs)}
            for key in ("kl", "dlogp_top", "dlogp_next"):
                row[key] = float(np.nanmean([r[key] for r in rs]))
                row[f"{key}_random"] = float(np.nanmean([r[f"{key}_random"] for r in rs]))
            row["kl_wins"] = float(np.mean([r["kl"] > r["kl_random"] for r in rs]))
            out.append(row)
    return out


def plot(summary: list[dict]):
    """KL and Δ log p(next tokens) against scale: path / single, steered / random."""
    fig, (ax, ax_d) = plotting.new_figure(1, 2, panel_size=(4.6, 3.3))
    colors = {"path": plotting.OKABE_ITO["blue"], "single": plotting.OKABE_ITO["orange"]}
    for mode in MODES:
        rs = [r for r in summary if r["mode"] == mode]
        x = [r["scale"] for r in rs]
        panels = ((ax, "kl", "KL(steered ‖ clean), nats"),
                  (ax_d, "dlogp_next", "Δ log p(tokens after top activations)"))  # fmt: skip
        for a, key, ylab in panels:
            a.plot(x, [r[key] for r in rs], "o-", color=colors[mode], label=f"{mode}: feature")
            a.plot(x, [r[f"{key}_random"] for r in rs], "o--", color=colors[mode], alpha=0.6,
                   label=f"{mode}: random, same norm")  # fmt: skip
            a.set_xscale("log")
            a.set_xlabel("scale α (× folded decoder row θ·W_dec)")
            a.set_ylabel(ylab)
    ax.set_yscale("log")
    plotting.label_axes(ax, x=None, title="Next-token KL")
    plotting.label_axes(ax_d, x=None, title="Log-prob of the feature's tokens", legend=False)
    return fig


def run(cfg: DictConfig) -> dict:
    """Steer along feature paths and at one layer, against same-norm random directions."""
    ctx = Context(cfg)
    opts = ctx.options
    with ctx.recorder as rec:
        layers = list(ctx.layers)
        start = layers[0] if opts.start_layer is None else int(opts.start_layer)
        end = layers[-1] if opts.end_layer is None else int(opts.end_layer)
        if start not in layers or end not in layers or end < start:
            raise ValueError(f"start_layer={start}, end_layer={end}: both must be layers of the "
                             f"SAE set {layers} with start ≤ end")  # fmt: skip
        if not opts.scales or any(s <= 0 for s in opts.scales):
            raise ValueError(f"scales must be positive numbers, got {list(opts.scales)}")
        span = [L for L in layers if start <= L <= end]
        saes = {L: s.to(ctx.lm.device) for L, s in zip(layers, ctx.saes, strict=True)}
        adjacent = [m.perm for m in ctx.matchings()] if len(span) > 1 else []
        feats = ([int(i) for i in opts.features] if opts.features else
                 select_features(activation_frequency(ctx, [start])[start], opts.n_features,
                                 opts.select, opts.seed))  # fmt: skip
        tokens, norms = feature_tokens(ctx, span, start, feats, int(opts.n_tokens))
        batch = ctx.batch
        ids, am, mask = batch.input_ids, batch.attention_mask, batch.metric_mask
        bs = int(cfg.model.batch_size)
        clean = clean_log_probs(ctx.lm, ids, bs, am)
        g = torch.Generator().manual_seed(int(opts.seed))
        rows, samples = [], []
        for i in feats:
            path = layer_path(layers, adjacent, start, i, end) if len(span) > 1 else [(start, i)]
            sets = {k: v for k, v in tokens[i].items() if len(v)}
            for mode in MODES:
                steps = path if mode == "path" else path[:1]
                for scale in opts.scales:
                    add = path_additions(saes, steps, scale)
                    eff = steering_effect(ctx.lm, ids, mask, add, sets, bs, clean, am)
                    rnd = [
                        steering_effect(ctx.lm, ids, mask, random_like(add, g), sets, bs, clean, am)
                        for _ in range(int(opts.n_random))
                    ]
                    row = {"feature": i, "start_layer": start, "mode": mode, "scale": scale,
                           "n_layers": len(steps), "path": " ".join(f"{L}:{j}" for L, j in steps),
                           "rel_norm": float(np.mean([float(add[L].norm()) / norms[L]
                                                      for L, _ in steps])),
                           "kl": eff.kl,
                           "kl_random": float(np.mean([r.kl for r in rnd]))}  # fmt: skip
                    for w in ("top", "next"):
                        row[f"dlogp_{w}"] = eff.delta_logp.get(w, float("nan"))
                        row[f"dlogp_{w}_random"] = (float(np.mean([r.delta_logp[w] for r in rnd]))
                                                    if w in sets else float("nan"))  # fmt: skip
                    rows.append(row)
            if opts.n_generate and len(samples) < 2:
                samples.append(
                    sample_text(ctx, path, saes, max(opts.scales), int(opts.n_generate), g)
                )
        summary = summarise(rows)
        rec.add_table("steering", rows, as_history=False)
        rec.add_table("steering_summary", summary, as_history=False)
        rec.add_figure("steering", plot(summary))
        md = ctx.run_dir / "steering.md"
        md.write_text(markdown(samples))
        rec.add_artifact("steering_md", md, type="text")
        results = {"start_layer": start, "end_layer": end, "features": feats,
                   "summary": summary, "samples": samples}  # fmt: skip
        rec.finish(results)
    return results


def sample_text(ctx: Context, path, saes, scale: float, n_new: int, g) -> dict:
    """Greedy continuations of one prompt: clean, steered along the path, random same norm."""
    tok = ctx.lm.tokenizer
    row = ctx.batch.input_ids[:1, : max(2, min(16, ctx.batch.input_ids.shape[1] // 2))]
    add = path_additions(saes, path, scale)
    out = {"path": " ".join(f"{L}:{j}" for L, j in path), "scale": scale,
           "prompt": tok.decode(row[0].tolist())}  # fmt: skip
    for name, a in (("clean", None), ("steered", add), ("random", random_like(add, g))):
        ids = generate(ctx.lm, row, a, n_new)
        out[name] = tok.decode(ids[0, row.shape[1] :].tolist())
    return out


def markdown(samples: list[dict]) -> str:
    """Generation samples as Markdown."""
    out = ["# Steering samples (greedy)\n"]
    for s in samples:
        out += [f"\n## path {s['path']}, scale {s['scale']:g}\n", f"prompt: `{s['prompt']!r}`\n"]
        out += [f"- {k}: `{s[k]!r}`" for k in ("clean", "steered", "random")]
    return "\n".join(out) + "\n"
