"""Compare two SAEs of one stream: exact matching, PW-MCC, shared / unshared, families.

A and B are references (saematch.compare.refs: planted, zoo, Gemma Scope, Llama Scope, SAELens,
a local folder); same d_model, any widths. The matching's mode and solver come from
cfg.matching (the paper's folded MSE of decoder + encoder by default). Writes
matchings/compare.safetensors + .json (version 2: the exact rectangular matching with its
duals, the shared pairs and the families; `saematch.load_matching` reads it), a per-feature
table, the |cos| distributions, the side-by-side page `compare.html` (+ compare_data/, opened
from disk: saematch.explorer.compare_view), and prints PW-MCC, the share above |cos| 0.7 and the
counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saematch.compare import compare
from saematch.compare.plots import cosine_figure
from saematch.compare.refs import load_pair
from saematch.explorer.compare_view import view_from_comparison, write_compare_page
from saematch_experiments.harness.context import Context, plain
from saematch_experiments.harness.results import Results

MIN_LAYERS = 0  # the references name the SAEs; the config's SAE set is not matched


@dataclass
class Options:
    a: str  # reference of SAE A (saematch.compare.refs)
    b: str  # reference of SAE B
    fold: str  # auto | true | false
    parts: list[str]  # decoder | encoder: directions of PW-MCC and |cos|
    null_alpha: float  # the rotation null's α
    certify: bool  # check the rectangular certificate from the costs
    unfolded: bool  # where both SAEs were folded, also the unfolded MSE matching's numbers


def parse_fold(value: str) -> bool | str:
    """auto | true | false (as text or bool) -> "auto" or a bool; ValueError otherwise."""
    text = str(value).strip().lower()
    if text in ("auto", "true", "false"):
        return "auto" if text == "auto" else text == "true"
    raise ValueError(f"experiment.fold must be auto, true or false; got {value!r}")


def feature_rows(c) -> list[dict]:
    """One row per feature of A: its exact partner, cost, cosines, shared partner, family."""
    m = c.matching
    fam = c.families
    rows = []
    wide_a = fam.wide == "a"
    size_n = fam.sizes(min(c.a["width"], c.b["width"]))
    for i in range(c.a["width"]):
        j = int(m.perm[i])
        row = {
            "feature_a": i,
            "partner_b": j,
            "pair_cost": float(m.pair_mse[i]),
            "shared_partner_b": int(m.shared_perm[i]),
        }
        for part, cos in c.mse_pair_cos.items():
            row[f"cos_{part}"] = float(cos[i])
        if wide_a:
            row["family_of_b"] = int(fam.parent[i])
            row["family_confidence"] = float(fam.confidence[i])
        else:
            row["family_size"] = int(size_n[i])
        rows.append(row)
    return rows


def run(opts: Options, ctx: Context) -> Results:
    cfg = ctx.cfg
    fold = parse_fold(opts.fold)  # before loading anything
    a, b = load_pair(opts.a, opts.b, ctx.cache_dir)
    c = compare(
        a,
        b,
        mode=plain(cfg.matching.mode),
        fold=fold,
        solver=ctx.solver,
        parts=tuple(opts.parts),
        null_alpha=float(opts.null_alpha),
        seed=int(cfg.seed),
        certify=bool(opts.certify),
        max_memory=cfg.matching.get("max_memory"),
        device=plain(cfg.matching.get("device", "auto")),
    )
    console = c.console()
    summary = c.summary()
    if opts.unfolded and c.matching.fold:  # the same comparison without folding θ
        u = compare(
            a, b, mode=plain(cfg.matching.mode), fold=False, solver=ctx.solver, parts=(),
            null_alpha=float(opts.null_alpha), seed=int(cfg.seed), certify=bool(opts.certify),
            max_memory=cfg.matching.get("max_memory"),
            device=plain(cfg.matching.get("device", "auto")),
        )  # fmt: skip
        us = u.summary()
        keys = ("mse_total_cost", "mse_certified", "kappa_star", "shared_pairs", "shared_share",
                "unshared_a", "unshared_b", "family_members", "family_splits")  # fmt: skip
        summary.update({f"unfolded_{k}": us[k] for k in keys})
        console += "\n  unfolded: " + "; ".join(
            line.strip() for line in u.console().splitlines()[1:]
        )
    from saematch.matchfile import save_match_file

    out = ctx.run_dir / "matchings"
    out.mkdir(parents=True, exist_ok=True)
    path = save_match_file(
        c.matching, out / "compare", a, b, extra={"a": opts.a, "b": opts.b}
    )  # the two references as given, beside the SAEs' ids and fingerprints
    page = write_compare_page(view_from_comparison(c, refs=(opts.a, opts.b)), ctx.run_dir)
    res = Results()
    res.summary = {
        **summary,
        "match_file": str(path.relative_to(ctx.run_dir)),
        "page": str(page.relative_to(ctx.run_dir)),
    }
    res.table("compare_features", feature_rows(c), history=False)
    res.table("compare_summary", [summary])
    res.figures["compare_cosines"] = cosine_figure(c)
    res.console = console + f"\n  match file: {path}\n  side by side: {page}"
    res.metrics.append({k: v for k, v in summary.items() if isinstance(v, int | float)})
    if not np.isfinite(c.matching.total_cost):
        raise RuntimeError("compare: the matching's total cost is not finite")
    return res
