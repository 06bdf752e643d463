"""Beyond the bijection: unmatched features, per-pair confidence and splits, against the truth.

1. Planted pairs (known fates; `planted_cases` is the one place to swap in the planted world
   of SPEC §9): for each mode, direction noise and seed, the bijection and the partial
   matching (`unmatched`, default auto) are scored with saematch.matching.validation:
   precision / recall of "unmatched" (A: died; B: born, split children not scored), pair
   accuracy, AUROC of the
   confidence for correct vs wrong pairs (raw, and relative to ‖z_i‖² + ‖z'_p(i)‖²), split
   precision / recall.
2. The SAE set of the config (the zoo by default): each adjacent pair matched with the same
   setting; the unmatched share per layer pair, κ*, splits; one match file per pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from omegaconf import DictConfig

from experiments.context import Context, plain
from saematch import plotting
from saematch.matchfile import save_match_file
from saematch.matching.beyond import match_beyond, parse_unmatched
from saematch.matching.cost import augmented_features
from saematch.matching.partial import squared_norms
from saematch.matching.planted_pair import planted_pair
from saematch.matching.validation import score_matching


@dataclass
class Options:
    unmatched: str = "auto"  # none | auto | a number ρ (relative reject cost)
    modes: list[str] = field(default_factory=lambda: ["decoder", "both"])
    noises: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 3.0])
    seeds: int = 2
    d_model: int = 128
    width: int = 2048
    died: float = 0.2  # share of A's features without a successor
    split: float = 0.05  # share of A's features that split in two
    top_k: int = 5
    zoo: bool = True  # also match the config's SAE set and report its unmatched share


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


def planted_rows(opts: Options, setting, fold: bool) -> tuple[list[dict], dict]:
    """Score rows over modes × cases × {bijection, partial}; and confidences for a histogram."""
    rows, hist = [], {}
    for mode in opts.modes:
        for label, a, b, succ, known in planted_cases(opts):
            for name, un in (("bijection", None), ("partial", setting)):
                m = match_beyond(a, b, mode=mode, fold=fold, unmatched=un, top_k=opts.top_k)
                rel = _relative(a, b, mode, m.perm)
                # B side: a one-to-one matching must leave one child of each split unmatched
                # (the split detector reports it), so split children are not scored there
                known_b = np.ones(b.width, dtype=bool)
                known_b[succ[(succ >= 0).all(1)].ravel()] = False
                sc = score_matching(
                    m.perm, succ, m.confidence, m.split_children, known, known_b, rel
                )
                rows.append(
                    {"mode": mode, **label, "matching": name, "kappa": m.info["null"]["kappa"],
                     "rho": m.info.get("rho"), **sc, "seconds": m.seconds}
                )  # fmt: skip
                if label["seed"] == 0 and name == "bijection":
                    ok = (m.perm[:, None] == succ).any(1)
                    hist[(mode, label["noise"])] = (m.confidence / rel, ok)
    return rows, hist


def zoo_rows(ctx: Context, setting, opts: Options) -> list[dict]:
    """Match every adjacent SAE pair of the set; unmatched share per pair; write match files."""
    mc = ctx.cfg.matching
    mode, fold, solver = plain(mc.mode), bool(mc.fold), plain(mc.solver)
    saes = [s.to("cpu") for s in ctx.saes]
    rows = []
    for t, (a, b) in enumerate(zip(saes[:-1], saes[1:], strict=True)):
        la, lb = ctx.layers[t], ctx.layers[t + 1]
        m = match_beyond(
            a, b, mode=mode, fold=fold, solver=solver, unmatched=setting, top_k=opts.top_k
        )
        save_match_file(m, ctx.run_dir / "matchings" / f"beyond_L{la}-L{lb}", a, b)
        b_unmatched = 1 - len(np.unique(m.perm[m.perm >= 0])) / b.width
        matched = m.perm >= 0
        rows.append(
            {
                "from": la,
                "to": lb,
                "mode": mode,
                "fold": fold,
                "unmatched_share": float((~matched).mean()),
                "unmatched_share_b": b_unmatched,
                "kappa": m.info["null"]["kappa"],
                "null_median": m.info["null"]["null_median"],
                "rho": m.info.get("rho"),
                "splits": m.info.get("splits"),
                "median_confidence": float(np.median(m.confidence[matched]))
                if matched.any()
                else float("nan"),
                "proven": m.proven,
                "seconds": m.seconds,
            }
        )
    return rows


def plot_planted(rows: list[dict], hist: dict, modes: list[str]):
    """Per mode: unmatched precision/recall and confidence AUROC vs noise; histograms."""
    fig, axes = plotting.new_figure(2, len(modes), panel_size=(4.2, 3.2), squeeze=False)
    for c, mode in enumerate(modes):
        ax = axes[0, c]
        sel = [r for r in rows if r["mode"] == mode]
        noises = sorted({r["noise"] for r in sel})

        def mean(key, which, noise, sel=sel):
            v = [r[key] for r in sel if r["matching"] == which and r["noise"] == noise]
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


def plot_zoo(rows: list[dict]):
    """Unmatched share per layer pair (A and B side)."""
    fig, ax = plotting.new_figure(1, 1, panel_size=(5.0, 3.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["unmatched_share"] for r in rows], 0.4, label="layer t features")
    ax.bar(x + 0.2, [r["unmatched_share_b"] for r in rows], 0.4, label="layer t+1 features")
    ax.set_xticks(x, [f"{r['from']}→{r['to']}" for r in rows])
    ax.set_ylim(0, 1.05)
    plotting.label_axes(
        ax, x="layer pair", y="unmatched share", title="unmatched=auto on the SAE set"
    )
    return fig


def run(cfg: DictConfig) -> dict:
    """Score partial matching, confidence, splits on planted pairs; unmatched share of the set."""
    ctx = Context(cfg)
    opts = ctx.options
    setting = parse_unmatched(opts.unmatched)
    fold = bool(cfg.matching.fold)
    with ctx.recorder as rec:
        rows, hist = planted_rows(opts, setting, fold)
        rec.add_table("planted_scores", rows)
        rec.add_figure("beyond_bijection_planted", plot_planted(rows, hist, list(opts.modes)))
        results = {"unmatched": setting, "planted": rows}
        if opts.zoo:
            zrows = zoo_rows(ctx, setting, opts)
            rec.add_table("unmatched_per_layer_pair", zrows)
            rec.add_figure("beyond_bijection_unmatched_share", plot_zoo(zrows))
            results["sae_set"] = zrows
        rec.finish(results)
    return results
