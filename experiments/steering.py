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

from dataclasses import asdict, dataclass

import numpy as np
import torch

from saematch import plotting
from saematch.data.batches import chunks
from saematch.feature_paths import layer_path, select_features
from saematch.flow.steering import (
    clean_log_probs,
    generate,
    path_additions,
    random_like,
    steering_effect,
)
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.activations import activation_frequency

MODES = ("path", "single")
MIN_LAYERS = 1  # a one-layer set steers at that layer only


@dataclass
class Options:
    start_layer: int | None  # null = first layer of the set
    end_layer: int | None  # null = last layer of the set
    n_features: int
    select: str  # first | most_active | random_active (as experiment=paths)
    features: list[int] | None  # explicit start features (overrides select)
    scales: list[float]  # α, × the folded decoder row θ·W_dec
    n_random: int  # random same-norm directions per (feature, mode, scale)
    n_tokens: int  # distinct top-activating (and next) tokens per feature
    n_generate: int  # greedy tokens in the text samples (0 = none)
    seed: int


@dataclass
class SteeringRow:
    feature: int  # start feature
    start_layer: int
    mode: str  # path | single
    scale: float
    n_layers: int  # layers steered
    path: str  # "layer:feature" steps
    rel_norm: float  # mean ‖addition‖ / mean ‖resid_post‖ of the steered layers
    kl: float  # KL(steered ‖ clean), nats, mean over non-BOS positions
    kl_random: float  # the same for random same-norm directions (mean over draws)
    dlogp_top: float  # Δ log p of the feature's top-activating tokens
    dlogp_top_random: float
    dlogp_next: float  # Δ log p of the tokens after its top activations
    dlogp_next_random: float


@dataclass
class SummaryRow:
    mode: str
    scale: float
    n_features: int
    kl: float
    kl_random: float
    dlogp_top: float
    dlogp_top_random: float
    dlogp_next: float
    dlogp_next_random: float
    kl_wins: float  # share of features whose KL beats their random draws'


@torch.no_grad()
def feature_tokens(ctx: Context, layers: list[int], start: int, feats: list[int], n: int):
    """Per feature: its n top-activating distinct tokens and the n distinct tokens after them;
    and the mean residual norm at each layer (for relative steering norms)."""
    sae = ctx.saes[start]
    vals, cur, nxt, norms = [], [], [], []
    for b, rows in zip(chunks(ctx.batch, ctx.batch_size), ctx.activation_rows(layers), strict=True):
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


def summarise(rows: list[SteeringRow]) -> list[SummaryRow]:
    """Per (mode, scale): mean over features of steered and random effects, and the win rate."""
    out = []
    keys = ("kl", "kl_random", "dlogp_top", "dlogp_top_random", "dlogp_next", "dlogp_next_random")
    for mode in MODES:
        for scale in sorted({r.scale for r in rows}):
            rs = [r for r in rows if r.mode == mode and r.scale == scale]
            if rs:
                means = [float(np.nanmean([getattr(r, k) for r in rs])) for k in keys]
                wins = float(np.mean([r.kl > r.kl_random for r in rs]))
                out.append(SummaryRow(mode, scale, len(rs), *means, wins))
    return out


def plot(summary: list[SummaryRow]):
    """KL and Δ log p(next tokens) against scale: path / single, steered / random."""
    fig, (ax, ax_d) = plotting.new_figure(1, 2, panel_size=(4.6, 3.3))
    colors = {"path": plotting.OKABE_ITO["blue"], "single": plotting.OKABE_ITO["orange"]}
    for mode in MODES:
        rs = [r for r in summary if r.mode == mode]
        x = [r.scale for r in rs]
        panels = (
            (ax, "kl", "KL(steered ‖ clean), nats"),
            (ax_d, "dlogp_next", "Δ log p(tokens after top activations)"),
        )
        for a, key, ylab in panels:
            a.plot(
                x, [getattr(r, key) for r in rs], "o-", color=colors[mode], label=f"{mode}: feature"
            )
            a.plot(
                x,
                [getattr(r, f"{key}_random") for r in rs],
                "o--",
                color=colors[mode],
                alpha=0.6,
                label=f"{mode}: random, same norm",
            )
            a.set_xscale("log")
            a.set_xlabel("scale α (× folded decoder row θ·W_dec)")
            a.set_ylabel(ylab)
    ax.set_yscale("log")
    plotting.label_axes(ax, x=None, title="Next-token KL")
    plotting.label_axes(ax_d, x=None, title="Log-prob of the feature's tokens", legend=False)
    return fig


def span_of(opts: Options, layers: list[int]) -> tuple[int, int, list[int]]:
    """(start, end, the set's layers from start to end); ValueError on a bad span or scales."""
    start = layers[0] if opts.start_layer is None else opts.start_layer
    end = layers[-1] if opts.end_layer is None else opts.end_layer
    if start not in layers or end not in layers or end < start:
        raise ValueError(
            f"experiment.start_layer={start}, end_layer={end}: both must be layers "
            f"of the SAE set {layers} with start ≤ end"
        )
    if not opts.scales or any(s <= 0 for s in opts.scales):
        raise ValueError(f"experiment.scales must be positive numbers, got {list(opts.scales)}")
    return start, end, [L for L in layers if start <= L <= end]


def start_features(opts: Options, ctx: Context, start: int) -> list[int]:
    """experiment.features, or n_features chosen by activation frequency (experiment.select)."""
    if opts.features:
        return [int(i) for i in opts.features]
    freq = activation_frequency(ctx, [start])[start]
    return select_features(freq, opts.n_features, opts.select, opts.seed)


def effect_row(
    ctx: Context, i: int, mode: str, scale: float, steps, tokens, norms, clean, g, n_random: int
) -> SteeringRow:
    """One SteeringRow: steer feature i's `steps` ([(layer, feature)]) at `scale`; the baseline
    is n_random same-norm random directions drawn from g. tokens: {"top"/"next": token ids};
    norms: {layer: mean ‖resid_post‖}; clean: the unsteered log-probs."""
    b, bs = ctx.batch, ctx.batch_size
    ids, am, mask = b.input_ids, b.attention_mask, b.metric_mask

    def effect(add):
        return steering_effect(ctx.lm, ids, mask, add, tokens, bs, clean, am)

    add = path_additions(ctx.saes, steps, scale)
    eff = effect(add)
    rnd = [effect(random_like(add, g)) for _ in range(n_random)]
    dl = {
        w: (
            eff.delta_logp.get(w, np.nan),
            float(np.mean([r.delta_logp[w] for r in rnd])) if w in tokens else np.nan,
        )
        for w in ("top", "next")
    }
    rel = float(np.mean([float(add[L].norm()) / norms[L] for L, _ in steps]))
    start = steps[0][0]
    path = " ".join(f"{L}:{j}" for L, j in steps)
    kl_random = float(np.mean([r.kl for r in rnd]))
    return SteeringRow(
        i, start, mode, scale, len(steps), path, rel, eff.kl, kl_random, *dl["top"], *dl["next"]
    )


def run(opts: Options, ctx: Context) -> Results:
    """Steer along feature paths and at one layer, against same-norm random directions."""
    start, end, span = span_of(opts, ctx.layers)
    adjacent = ctx.perms() if len(span) > 1 else {}
    feats = start_features(opts, ctx, start)
    tokens, norms = feature_tokens(ctx, span, start, feats, opts.n_tokens)
    clean = clean_log_probs(ctx.lm, ctx.batch.input_ids, ctx.batch_size, ctx.batch.attention_mask)
    g = torch.Generator().manual_seed(opts.seed)  # every random direction, in this order
    rows, samples = [], []
    for i in feats:
        path = layer_path(ctx.layers, adjacent, start, i, end) if len(span) > 1 else [(start, i)]
        sets = {k: v for k, v in tokens[i].items() if len(v)}
        for mode in MODES:
            steps = path if mode == "path" else path[:1]
            for scale in opts.scales:
                row = effect_row(ctx, i, mode, scale, steps, sets, norms, clean, g, opts.n_random)
                rows.append(row)
        if opts.n_generate and len(samples) < 2:
            samples.append(sample_text(ctx, path, ctx.saes, max(opts.scales), opts.n_generate, g))
    summary = summarise(rows)
    res = Results(texts={"steering.md": markdown(samples)}, headline=summary)
    res.table("steering", rows, history=False)
    res.table("steering_summary", summary, history=False)
    res.figures["steering"] = plot(summary)
    res.summary = {
        "start_layer": start,
        "end_layer": end,
        "features": feats,
        "summary": [asdict(r) for r in summary],
        "samples": samples,
    }
    return res


def sample_text(ctx: Context, path, saes, scale: float, n_new: int, g) -> dict:
    """Greedy continuations of one prompt: clean, steered along the path, random same norm."""
    tok = ctx.lm.tokenizer
    row = ctx.batch.input_ids[:1, : max(2, min(16, ctx.batch.input_ids.shape[1] // 2))]
    add = path_additions(saes, path, scale)
    out = {
        "path": " ".join(f"{L}:{j}" for L, j in path),
        "scale": scale,
        "prompt": tok.decode(row[0].tolist()),
    }
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
