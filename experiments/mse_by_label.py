"""Folded decoder MSE of matched pairs, split by the judge's label (Fig. 6, Sec. 5.2).

For each chosen layer pair t -> t+1 (folded matching, cfg.matching's mode and solver), a seeded
sample of `n_pairs` matched pairs (i, perm[i]) whose two descriptions exist is judged, and each
pair's decoder MSE on folded weights, mean_d (θ_i W_dec^t[i] − θ'_j W_dec^{t+1}[j])² with
j = perm[i] (SPEC §3, eq. 3-4), is grouped by label. Results: per-label quantiles and the
Spearman correlation of label and MSE (the paper's claim: lower MSE, more often SAME).
Pairs are examined in a seeded random order until `n_pairs` are found; `missing`/`dead` count
the pairs passed over on the way (a side without a usable description).
Judge failures are handled as in `judge_by_layer` (partial results, then re-raise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from experiments.common import Results
from experiments.context import Context
from experiments.judge_by_layer import judge_pairs, judged, skip_reason, summarize
from saematch import plotting
from saematch.judge import LABEL_NAMES
from saematch.matching import pair_cost
from saematch.metrics import describe, quantiles

QS = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class Options:
    # First layers t of the pairs t -> t+1. null = 3 pairs evenly spread over the set.
    # The paper (Gemma 2 2B) uses 11, 19 and 23.
    pairs: list[int] | None
    n_pairs: int | None  # matched pairs judged per layer pair; null = every described one
    seed: int
    exclude_dead: bool  # treat the zoo's "never active" description as missing


def default_pairs(layers: list[int], n: int = 3) -> list[int]:
    """n first layers spread evenly over layers[:-1] (fewer if the set is short)."""
    firsts = layers[:-1]
    idx = np.unique(np.round(np.linspace(0, len(firsts) - 1, min(n, len(firsts)))).astype(int))
    return [firsts[k] for k in idx]


def sample_pairs(src_a, src_b, perm: np.ndarray, n: int | None, seed: int, exclude_dead: bool):
    """Seeded matched pairs (i, perm[i]) with both descriptions; also counts the skipped ones."""
    order = np.random.default_rng(seed).permutation(len(perm)).tolist()
    picked, skipped = [], []
    for i in order:
        j = int(perm[i])
        a, b = src_a.get(i), src_b.get(j)
        why = skip_reason(a, b, exclude_dead)
        if why is None:
            picked.append({"feature": i, "next_feature": j, "desc_a": a, "desc_b": b})
            if n is not None and len(picked) == n:
                break
        else:
            skipped.append(why)
    return picked, skipped


def mse_stats(values) -> dict:
    """describe() plus the 5 % and 95 % quantiles."""
    out = describe(values)
    if out["n"]:
        q = quantiles(values, QS)
        out |= {f"q{int(100 * a):02d}": float(v) for a, v in zip(QS, q, strict=True)}
    return out


def spearman(labels, values) -> float:
    """Spearman rank correlation of label (1-3) and MSE; NaN under 3 pairs or a constant side."""
    x, y = np.asarray(labels, dtype=float), np.asarray(values, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def plot(samples: dict[int, list[dict]]):
    """Per layer pair: box plot (and points) of folded decoder MSE for each judge label."""
    n = len(samples)
    fig, axes = plotting.new_figure(1, n, panel_size=(4.0, 2.8), squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, (t, items) in zip(axes[0], samples.items(), strict=True):
        names = [LABEL_NAMES[k] for k in sorted(LABEL_NAMES)]
        for y, name in enumerate(names):
            xs = [it["mse"] for it in items if LABEL_NAMES.get(it["label"]) == name]
            if not xs:
                continue
            color = plotting.method_color(name)
            ax.boxplot(
                [xs],
                positions=[y],
                vert=False,
                widths=0.5,
                showfliers=False,
                boxprops={"color": color},
                medianprops={"color": color},
                whiskerprops={"color": color},
                capprops={"color": color},
            )
            ax.scatter(xs, y + rng.uniform(-0.18, 0.18, len(xs)), s=6, alpha=0.5, color=color)
        counts = [sum(LABEL_NAMES.get(it["label"]) == nm for it in items) for nm in names]
        ax.set_yticks(
            range(len(names)), [f"{nm}\n(n={c})" for nm, c in zip(names, counts, strict=True)]
        )
        ax.set_ylim(-0.6, len(names) - 0.4)
        plotting.label_axes(ax, x="decoder_mse", y=None, title=f"Layers {t} → {t + 1} (folded)")
    return fig


def run(opts: Options, ctx: Context) -> Results:
    """Judge a sample of folded-matched pairs per layer pair; folded decoder MSE per label."""
    firsts = list(opts.pairs) if opts.pairs is not None else default_pairs(ctx.layers)
    bad = [t for t in firsts if t not in ctx.next_layer]
    if bad:
        raise ValueError(
            f"pairs {bad} are not first layers of an adjacent pair; use {list(ctx.next_layer)}"
        )
    perms, by, nxt = ctx.perms(fold=True), ctx.saes, ctx.next_layer
    samples, skipped, all_mse = {}, {}, {}
    for t in firsts:
        mse = pair_cost(by[t].fold(), by[nxt[t]].fold(), np.asarray(perms[t]), "decoder")  # (F,)
        da, db = ctx.descriptions(t), ctx.descriptions(nxt[t])
        samples[t], skipped[t] = sample_pairs(
            da, db, perms[t], opts.n_pairs, opts.seed, opts.exclude_dead
        )
        for it in samples[t]:
            it |= {"layer": t, "next_layer": nxt[t], "mse": float(mse[it["feature"]])}
        all_mse[t] = mse_stats(mse)
    flat = [it for t in firsts for it in samples[t]]
    answers, error = judge_pairs(ctx.judge, [(it["desc_a"], it["desc_b"]) for it in flat])
    for it, r in zip(flat, answers, strict=True):
        it["label"], it["raw"] = ("pending", None) if r is None else (r.label, r.raw)
    per_pair, rows, metrics = {}, [], []
    for t in firsts:
        summ = summarize([it["label"] for it in samples[t]], skipped[t])
        labelled = [(it["label"], it["mse"]) for it in samples[t] if it["label"] in LABEL_NAMES]
        rho = spearman([lab for lab, _ in labelled], [m for _, m in labelled])
        by_label = {
            LABEL_NAMES[k]: mse_stats([m for lab, m in labelled if lab == k])
            for k in sorted(LABEL_NAMES)
        }
        per_pair[str(t)] = {
            **summ,
            "next_layer": nxt[t],
            "spearman_label_mse": rho,
            "mse_by_label": by_label,
            "mse_all_features": all_mse[t],
        }
        rows += [{"layer": t, "label": name, **st} for name, st in by_label.items()]
        metrics.append({"layer": t, "gpt_score": summ["gpt_score"], "spearman": rho})
    res = Results(metrics=metrics, headline=metrics)
    res.table("mse_by_label", rows)
    cols = (
        "layer",
        "next_layer",
        "feature",
        "next_feature",
        "mse",
        "label",
        "raw",
        "desc_a",
        "desc_b",
    )
    res.table("mse_by_label_pairs", [{k: it.get(k) for k in cols} for it in flat])
    res.figures["mse_by_label"] = plot(samples)
    res.summary = {"pairs": firsts, "layers": per_pair}
    return judged(ctx, res, error)
