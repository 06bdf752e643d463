"""Beyond the bijection: unmatched features, per-pair confidence and splits, against the truth.

1. Planted pairs (known fates; `planted_cases` is the one place to swap in the planted world
   of docs/method.md §9): for each mode, direction noise and seed, the bijection and the partial
   matching (`unmatched`, default auto) are scored with saematch.planted.validation:
   precision / recall of "unmatched" (A: died; B: born, split children not scored), pair
   accuracy, AUROC of the
   confidence for correct vs wrong pairs (raw, and relative to ‖z_i‖² + ‖z'_p(i)‖²), split
   precision / recall.
2. The SAE set of the config (the zoo by default): each adjacent pair matched with the same
   setting (cfg.matching otherwise); the unmatched share per layer pair, κ*, splits; the
   match files (matchings/beyond_L<t>-L<next>.*) are written by the skeleton.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from saematch import plotting
from saematch.matching import match_beyond, parse_unmatched
from saematch.matching.beyond.partial import squared_norms
from saematch.matching.cost import augmented_features
from saematch.planted.planted_pair import planted_pair
from saematch.planted.validation import sae_level_truth, score_matching, unambiguous
from saematch_experiments.harness.context import Context
from saematch_experiments.harness.results import Results
from saematch_experiments.harness.sae_sets import is_planted_set


@dataclass
class Options:
    unmatched: str  # none | auto | a number ρ (relative reject cost)
    modes: list[str]  # matching modes scored on the planted pairs
    noises: list[float]  # direction noise of persisting features
    seeds: int  # planted pairs per (mode, noise)
    d_model: int  # planted pairs' residual width
    width: int  # planted pairs' SAE width
    died: float  # share of A's features without a successor
    split: float  # share of A's features that split in two
    top_k: int  # predecessors kept per feature of B
    zoo: bool  # also match the config's SAE set (match files, unmatched share per pair)


@dataclass
class PlantedRow:
    """Scores of one matching of one planted pair (saematch.planted.validation)."""

    mode: str
    noise: float
    seed: int
    matching: str  # bijection | partial
    kappa: float  # κ* of the rotation null
    rho: float | None  # relative reject cost (partial)
    n: int
    matched: int
    unmatched_precision: float
    unmatched_recall: float
    unmatched_share: float
    unmatched_b_precision: float
    unmatched_b_recall: float
    pair_accuracy: float
    confidence_auroc: float
    confidence_auroc_relative: float
    split_precision: float
    split_recall: float
    split_children_exact: float
    splits_true: int
    splits_detected: int
    seconds: float


PLANTED_FIELDS = {f.name for f in fields(PlantedRow)}


@dataclass
class PairRow:
    """One adjacent pair of the SAE set matched with the experiment's `unmatched`."""

    layer: int
    next_layer: int
    unmatched_share: float  # share of layer-t features left unmatched
    unmatched_share_b: float  # share of next-layer features left unmatched
    kappa: float | None  # κ* of the rotation null (threshold similarity)
    null_median: float | None
    rho: float | None
    splits: int | None
    median_confidence: float
    proven: bool


def planted_cases(opts: Options):
    """(label, A, B, successors (n, 2), known (n,) | None) for every planted setting."""
    for noise in opts.noises:
        for seed in range(int(opts.seeds)):
            a, b, succ = planted_pair(
                opts.d_model, opts.width, opts.died, opts.split, noise, seed=seed
            )
            yield {"noise": noise, "seed": seed}, a, b, succ, None


def _relative(a, b, mode: str, perm: np.ndarray) -> np.ndarray:
    """‖z_i‖² + ‖z'_perm[i]‖² (NaN where unmatched): the scale of pair i's cost."""
    xa = augmented_features(a, mode, "a", np.float32, fold=True)
    xb = augmented_features(b, mode, "b", np.float32, fold=True)
    r, s = squared_norms(xa, xb)
    return np.where(perm >= 0, r + s[np.maximum(perm, 0)], np.nan)


def planted_rows(opts: Options, setting, fold: bool, limits: dict) -> tuple[list[PlantedRow], dict]:
    """Score rows over modes × cases × {bijection, partial}; and confidences for a histogram.

    limits: max_memory and device of every matching (Context.matching_limits)."""
    rows, hist = [], {}
    for mode in opts.modes:
        for label, a, b, succ, known in planted_cases(opts):
            for name, un in (("bijection", None), ("partial", setting)):
                m = match_beyond(
                    a, b, mode=mode, fold=fold, unmatched=un, top_k=opts.top_k, **limits
                )
                rel = _relative(a, b, mode, m.perm)
                # B side: a one-to-one matching must leave one child of each split unmatched
                # (the split detector reports it), so split children are not scored there
                known_b = np.ones(b.width, dtype=bool)
                known_b[succ[(succ >= 0).all(1)].ravel()] = False
                sc = score_matching(
                    m.perm, succ, m.confidence, m.split_children, known, known_b, rel
                )
                sc = {k: v for k, v in sc.items() if k in PLANTED_FIELDS}
                rows.append(
                    PlantedRow(
                        mode=mode,
                        **label,
                        matching=name,
                        kappa=m.info["null"]["kappa"],
                        rho=m.info.get("rho"),
                        **sc,
                        seconds=m.seconds,
                    )
                )
                if label["seed"] == 0 and name == "bijection":
                    ok = (m.perm[:, None] == succ).any(1)
                    hist[(mode, label["noise"])] = (m.confidence / rel, ok)
    return rows, hist


def pair_rows(ctx: Context, setting) -> tuple[list[PairRow], dict]:
    """Match every adjacent SAE pair of the set (cfg.matching, with `setting` as unmatched)."""
    ms = ctx.matchings(unmatched=setting, partial_ok=True)
    rows = []
    for t, m in ms.items():
        matched = m.perm >= 0
        null = m.info.get("null") or {}
        conf = m.confidence[matched] if m.confidence is not None else np.empty(0)
        split = m.split_children
        rows.append(
            PairRow(
                layer=t,
                next_layer=ctx.next_layer[t],
                unmatched_share=float((~matched).mean()),
                unmatched_share_b=1 - len(np.unique(m.perm[matched])) / len(m.perm),
                kappa=null.get("kappa"),
                null_median=null.get("null_median"),
                rho=m.info.get("rho"),
                splits=None if split is None else int((split[:, 0] >= 0).sum()),
                median_confidence=float(np.median(conf)) if conf.size else float("nan"),
                proven=bool(m.proven),
            )
        )
    return rows, ms


def plot_planted(rows: list[PlantedRow], hist: dict, modes: list[str]):
    """Per mode: unmatched precision/recall and confidence AUROC vs noise; histograms."""
    fig, axes = plotting.new_figure(2, len(modes), panel_size=(4.2, 3.2), squeeze=False)
    for c, mode in enumerate(modes):
        ax = axes[0, c]
        sel = [r for r in rows if r.mode == mode]
        noises = sorted({r.noise for r in sel})

        def mean(key, which, noise, sel=sel):
            v = [getattr(r, key) for r in sel if r.matching == which and r.noise == noise]
            return float(np.nanmean(v)) if v else float("nan")

        for key, which, style in (
            ("unmatched_precision", "partial", "-o"),
            ("unmatched_recall", "partial", "-s"),
            ("pair_accuracy", "partial", "--o"),
            ("confidence_auroc", "bijection", ":^"),
            ("split_recall", "bijection", ":v"),
        ):
            ax.plot(noises, [mean(key, which, x) for x in noises], style, label=f"{key} ({which})")
        ax.set_ylim(0, 1.05)
        plotting.label_axes(
            ax, x="direction noise", y="score", title=f"planted pairs, mode {mode}", legend=c == 0
        )
        ax = axes[1, c]
        noise = sorted(k[1] for k in hist if k[0] == mode)[len(noises) // 2]
        conf, ok = hist[(mode, noise)]
        bins = np.linspace(0, np.nanquantile(conf, 0.99) or 1.0, 40)
        ax.hist(conf[ok], bins, alpha=0.6, label="correct pair")
        ax.hist(conf[~ok], bins, alpha=0.6, label="wrong pair")
        plotting.label_axes(
            ax, x="confidence / (‖z‖² + ‖z'‖²)", y="pairs", title=f"bijection, noise {noise}"
        )
    return fig


def plot_pairs(rows: list[PairRow]):
    """Unmatched share per layer pair (A and B side)."""
    fig, ax = plotting.new_figure(1, 1, panel_size=(5.0, 3.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r.unmatched_share for r in rows], 0.4, label="layer t features")
    ax.bar(x + 0.2, [r.unmatched_share_b for r in rows], 0.4, label="next layer's features")
    ax.set_xticks(x, [f"{r.layer}→{r.next_layer}" for r in rows])
    ax.set_ylim(0, 1.05)
    plotting.label_axes(
        ax, x="layer pair", y="unmatched share", title="unmatched=auto on the SAE set"
    )
    return fig


@dataclass
class TruthRow:
    """One adjacent pair of the planted world's SAE set, one mode, scored against its truth."""

    layer: int
    next_layer: int
    mode: str
    support: str  # known (represents a true feature) | unambiguous (validation.unambiguous)
    n: int  # SAE features of layer t in the support
    kappa: float  # κ* of the rotation null
    unmatched_share: float  # of all layer-t features, partial matching
    unmatched_precision: float  # partial matching; A side: died
    unmatched_recall: float
    unmatched_b_precision: float  # B side: born
    unmatched_b_recall: float
    pair_accuracy: float  # partial matching, matched features of the support
    pair_accuracy_bijection: float
    confidence_auroc: float  # the bijection's confidence, correct vs wrong pairs
    split_precision: float  # the bijection's split detector
    split_recall: float
    unmatched_tp: int  # counts behind the A-side precision / recall (pooled in the summary)
    unmatched_pred: int
    unmatched_true: int


def pooled_truth(rows: list[TruthRow]) -> dict:
    """A-side precision / recall of "unmatched" pooled over layer pairs, per mode and support."""
    out: dict = {}
    for r in rows:
        c = out.setdefault(f"{r.mode}/{r.support}", {"tp": 0, "pred": 0, "true": 0})
        c["tp"], c["pred"], c["true"] = (
            c["tp"] + r.unmatched_tp,
            c["pred"] + r.unmatched_pred,
            c["true"] + r.unmatched_true,
        )
    for c in out.values():
        c["precision"] = c["tp"] / c["pred"] if c["pred"] else float("nan")
        c["recall"] = c["tp"] / c["true"] if c["true"] else float("nan")
    return out


def truth_rows(ctx: Context, setting, modes: list[str], fold: bool) -> list[TruthRow]:
    """Score every adjacent pair of the planted set against its truth (saes=planted only):
    per mode, the partial matching (`setting`) and the bijection, on two supports."""
    from saematch.planted import represented

    world = ctx.planted.truth
    rows = []
    for t in ctx.layers[:-1]:
        u = ctx.next_layer[t]
        a, b = ctx.saes[t], ctx.saes[u]
        rep_a = represented(a.W_dec.cpu(), world.directions[t]).numpy()
        rep_b = represented(b.W_dec.cpu(), world.directions[u]).numpy()
        successor = world.successor[t].numpy()
        succ, known, known_b = sae_level_truth(rep_a, rep_b, successor)
        ua, ub = unambiguous(rep_a, rep_b, successor)
        for mode in modes:
            kw = {"mode": mode, "fold": fold, **ctx.matching_limits}
            part = match_beyond(a, b, unmatched=setting, top_k=0, **kw)
            bij = match_beyond(a, b, unmatched=None, top_k=1, **kw)
            for support, ka, kb in (("known", known, known_b), ("unambiguous", ua, ub)):
                sp = score_matching(part.perm, succ, None, None, ka, kb)
                sb = score_matching(bij.perm, succ, bij.confidence, bij.split_children, ka, kb)
                rows.append(
                    TruthRow(
                        t,
                        u,
                        mode,
                        support,
                        sp["n"],
                        part.info["null"]["kappa"],
                        sp["unmatched_share"],
                        sp["unmatched_precision"],
                        sp["unmatched_recall"],
                        sp["unmatched_b_precision"],
                        sp["unmatched_b_recall"],
                        sp["pair_accuracy"],
                        sb["pair_accuracy"],
                        sb["confidence_auroc"],
                        sb["split_precision"],
                        sb["split_recall"],
                        sp["unmatched_tp"],
                        sp["unmatched_pred"],
                        sp["unmatched_true"],
                    )
                )
    return rows


def _planted_summary(rows: list[PlantedRow]) -> dict:
    """Mean of each score per (mode, noise, matching), for results.json."""
    out: dict = {}
    for r in rows:
        out.setdefault(f"{r.mode}/noise={r.noise}/{r.matching}", []).append(asdict(r))
    keys = (
        "unmatched_precision",
        "unmatched_recall",
        "pair_accuracy",
        "confidence_auroc",
        "confidence_auroc_relative",
        "split_precision",
        "split_recall",
    )
    return {k: {s: _nanmean([v[s] for v in vs]) for s in keys} for k, vs in out.items()}


def _nanmean(values: list[float]) -> float:
    ok = [v for v in values if v == v]  # NaN (e.g. no wrong pair to rank) is left out
    return float(np.mean(ok)) if ok else float("nan")


def run(opts: Options, ctx: Context) -> Results:
    """Score partial matching, confidence, splits on planted pairs; unmatched share of the set."""
    setting = parse_unmatched(opts.unmatched)
    fold = bool(ctx.cfg.matching.fold)
    rows, hist = planted_rows(opts, setting, fold, ctx.matching_limits)
    res = Results(metrics=rows)
    res.table("planted_scores", rows)
    res.figures["beyond_bijection_planted"] = plot_planted(rows, hist, list(opts.modes))
    res.summary = {"unmatched": setting, "planted": _planted_summary(rows)}
    if opts.zoo:
        prow, ms = pair_rows(ctx, setting)
        res.table("unmatched_per_layer_pair", prow)
        res.figures["beyond_bijection_unmatched_share"] = plot_pairs(prow)
        res.matchings["beyond"] = ms
        res.headline = prow
        res.summary["layers"] = {str(r.layer): asdict(r) for r in prow}
        if is_planted_set(ctx.cfg):  # the planted world: score against its truth
            trows = res.table("truth_scores", truth_rows(ctx, setting, list(opts.modes), fold))
            for r in trows:
                res.summary["layers"][str(r.layer)].setdefault("truth", []).append(asdict(r))
            res.summary["truth_pooled"] = pooled_truth(trows)
    return res
