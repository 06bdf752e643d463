"""Folded decoder MSE of matched pairs, split by the judge's label (Fig. 6, Sec. 5.2).

For each chosen layer pair t -> t+1 (folded matching, cfg.matching's mode and solver), a seeded
sample of `n_pairs` matched pairs (i, perm[i]) whose two descriptions exist is judged, and each
pair's decoder MSE on folded weights, mean_d (θ_i W_dec^t[i] − θ'_j W_dec^{t+1}[j])² with
j = perm[i] (docs/method.md §3, eq. 3-4), is grouped by label. Results: per-label quantiles and the
Spearman correlation of label and MSE (the paper's claim: lower MSE, more often SAME).
Pairs are examined in a seeded random order until `n_pairs` are found; `missing`/`dead` count
the pairs passed over on the way (a side without a usable description).
Judge failures are handled as in `judge_by_layer` (partial results, then re-raise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import spearmanr

from saematch import plotting
from saematch.judge import LABEL_NAMES
from saematch.judge.labelling import judge_items, skip_reason, summarize
from saematch.matching import pair_cost
from saematch.metrics import describe, quantiles
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.support.judging import judged

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


@dataclass
class JudgedPair:
    """A sampled matched pair (feature at layer, next_feature = perm[feature] at next_layer)."""

    layer: int
    next_layer: int
    feature: int
    next_feature: int
    mse: float  # folded decoder MSE of the pair
    label: int | str | None = None  # 1 DIFFERENT .. 3 SAME; None unparseable; "pending"
    raw: str | None = None  # the judge's answer
    desc_a: str | None = None
    desc_b: str | None = None
    skip: ClassVar[None] = None  # sampled pairs always have both descriptions


@dataclass
class MseStats:
    """describe() of a set of MSEs plus the 5 % and 95 % quantiles (NaN when n = 0)."""

    n: int
    mean: float
    std: float
    min: float
    q05: float
    q25: float
    median: float
    q75: float
    q95: float
    max: float

    @classmethod
    def of(cls, values) -> MseStats:
        out = describe(values)
        q = quantiles(values, QS) if out["n"] else [float("nan")] * len(QS)
        return cls(**out, q05=float(q[0]), q95=float(q[-1]))


@dataclass
class LabelRow:
    layer: int
    label: str  # DIFFERENT | MAYBE | SAME
    mse: MseStats  # of the pairs with this label


@dataclass
class PairScore:
    layer: int
    gpt_score: float | None
    spearman: float  # rank correlation of label and MSE


def sample_pairs(src_a, src_b, perm: np.ndarray, mse: np.ndarray, t: int, u: int, opts: Options):
    """Seeded matched pairs (i, perm[i]) with both descriptions, up to opts.n_pairs; and the
    skip reasons of the pairs passed over."""
    order = np.random.default_rng(opts.seed).permutation(len(perm)).tolist()
    picked, skipped = [], []
    for i in order:
        j = int(perm[i])
        a, b = src_a.get(i), src_b.get(j)
        why = skip_reason(a, b, opts.exclude_dead)
        if why is None:
            picked.append(JudgedPair(t, u, i, j, float(mse[i]), desc_a=a, desc_b=b))
            if opts.n_pairs is not None and len(picked) == opts.n_pairs:
                break
        else:
            skipped.append(why)
    return picked, skipped


def spearman(labels, values) -> float:
    """Spearman rank correlation of label (1-3) and MSE; NaN under 3 pairs or a constant side."""
    x, y = np.asarray(labels, dtype=float), np.asarray(values, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def plot(samples: dict[int, list[JudgedPair]]):
    """Per layer pair: box plot (and points) of folded decoder MSE for each judge label."""
    n = len(samples)
    fig, axes = plotting.new_figure(1, n, panel_size=(4.0, 2.8), squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, (t, items) in zip(axes[0], samples.items(), strict=True):
        names = [LABEL_NAMES[k] for k in sorted(LABEL_NAMES)]
        for y, name in enumerate(names):
            xs = [p.mse for p in items if LABEL_NAMES.get(p.label) == name]
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
        counts = [sum(LABEL_NAMES.get(p.label) == nm for p in items) for nm in names]
        ax.set_yticks(
            range(len(names)), [f"{nm}\n(n={c})" for nm, c in zip(names, counts, strict=True)]
        )
        ax.set_ylim(-0.6, len(names) - 0.4)
        plotting.label_axes(ax, x="decoder_mse", y=None, title=f"Layers {t} → {t + 1} (folded)")
    return fig


def first_layers(opts: Options, ctx: Context) -> list[int]:
    """opts.pairs (default: default_pairs), each the first layer of an adjacent pair."""
    firsts = list(opts.pairs) if opts.pairs is not None else default_pairs(ctx.layers)
    bad = [t for t in firsts if t not in ctx.next_layer]
    if bad:
        raise ValueError(
            f"pairs {bad} are not first layers of an adjacent pair; use {list(ctx.next_layer)}"
        )
    return firsts


def by_label(pairs: list[JudgedPair]) -> dict[str, MseStats]:
    """MseStats of the judged pairs per label name, DIFFERENT first."""
    return {
        name: MseStats.of([p.mse for p in pairs if p.label == k]) for k, name in LABEL_NAMES.items()
    }


def run(opts: Options, ctx: Context) -> Results:
    """Judge a sample of folded-matched pairs per layer pair; folded decoder MSE per label."""
    firsts, perms = first_layers(opts, ctx), ctx.perms(fold=True)
    samples, skipped, per_pair = {}, {}, {}
    for t in firsts:
        u, a, b = ctx.next_layer[t], ctx.descriptions(t), ctx.descriptions(ctx.next_layer[t])
        mse = pair_cost(ctx.saes[t].fold(), ctx.saes[u].fold(), np.asarray(perms[t]), "decoder")
        samples[t], skipped[t] = sample_pairs(a, b, perms[t], mse, t, u, opts)  # mse: (F,)
        per_pair[str(t)] = {"next_layer": u, "mse_all_features": asdict(MseStats.of(mse))}
    error = judge_items(ctx.judge, [p for t in firsts for p in samples[t]])
    rows, scores = [], []
    for t in firsts:
        labelled = [p for p in samples[t] if p.label in LABEL_NAMES]
        rho = spearman([p.label for p in labelled], [p.mse for p in labelled])
        stats = by_label(labelled)
        summ = summarize([p.label for p in samples[t]], skipped[t])
        per_pair[str(t)] |= {**summ, "spearman_label_mse": rho}
        per_pair[str(t)]["mse_by_label"] = {k: asdict(v) for k, v in stats.items()}
        rows += [LabelRow(t, name, st) for name, st in stats.items()]
        scores.append(PairScore(t, summ["gpt_score"], rho))
    res = Results(metrics=scores, headline=scores)
    res.table("mse_by_label", rows)
    res.table("mse_by_label_pairs", [p for t in firsts for p in samples[t]])
    res.figures["mse_by_label"] = plot(samples)
    res.summary = {"pairs": firsts, "layers": per_pair}
    return judged(ctx, res, error)
