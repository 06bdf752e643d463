"""Hypothesis 2 with ground truth: where does folding θ into the weights help matching?

    SAEMATCH_CACHE=... nice -n 5 python scripts/folding_sweep.py --out figures/folding_sweep \
        [--jobs 3] [--seeds 0,1,2] [--learned-size test] [--oracle-sizes test,default]
    python scripts/folding_sweep.py --out figures/folding_sweep --plot-only \
        --csv docs/data/folding_sweep.csv

Cells vary one world knob at a time around the default (drift δ, per-feature log-scale change
σ_g, shared growth g per layer, including the Gemma-like g = 10^(1/(L−1)): hidden norms growing
~10× over the network's depth as over Gemma 2's 26 layers), plus interaction cells where
direction alone fails (δ ≥ 1). Each cell and seed scores, for modes decoder / encoder / both
(the matching module's cost) folded and unfolded, pooled over adjacent layer pairs:
  oracle_scale     oracle SAEs, θ = the true scales (saematch.planted.oracle)
  oracle_layer     oracle SAEs, one θ per layer (folding can change nothing here)
  controller       SAEs trained with the controller recipe      (learned size only)
  published        SAEs trained with the published recipe       (learned size only)
  <recipe>_true_theta   the same trained SAEs, θ of each represented latent replaced by its true
                   feature's scale (oracle.with_true_scales): trained directions, true θ
One row per (size, cell, seed, SAE kind, mode) in folding_sweep.csv (finished units are kept in
parts.jsonl, so a killed sweep resumes); folding_sweep.png plots folded − unfolded with the
spread over seeds. saematch.planted.sweep_summary turns the CSV into tables and verdicts.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from calibrate_lambda import git_commit  # noqa: E402

MODES = ("decoder", "encoder", "both")
VARIANTS = [f"{f}_{m}" for m in MODES for f in ("folded", "unfolded")]
BASE = {"drift": 0.2, "growth_spread": 0.1, "growth": 1.2}  # the world's defaults
ORACLES = ("oracle_scale", "oracle_layer")
TRAINED = ("controller", "published")


def gemma_growth(n_layers: int) -> float:
    """g with g^(L−1) = 10: norms grow 10× over the world's depth, as over Gemma 2's layers."""
    return round(10 ** (1 / (n_layers - 1)), 4)


def cells(n_layers: int) -> list[dict]:
    """The sweep's cells, most informative first: around the default, one axis at a time, and
    interactions at δ ≥ 1 (where direction alone stops identifying the successor)."""
    gg = gemma_growth(n_layers)
    pts = [
        (0.2, 0.1, 1.2), (1.0, 0.1, 1.2), (1.5, 0.1, 1.2), (1.0, 0.1, gg), (1.0, 0.3, 1.2),
        (1.0, 0.0, 1.2), (0.5, 0.1, 1.2), (0.2, 0.1, gg), (1.0, 0.6, 1.2), (1.5, 0.0, 1.2),
        (0.2, 0.3, 1.2), (0.2, 0.6, 1.2), (0.2, 0.0, 1.2), (0.2, 0.1, 1.0), (1.0, 0.1, 1.0),
        (1.5, 0.3, gg),
    ]  # fmt: skip
    return [{"drift": d, "growth_spread": s, "growth": g} for d, s, g in pts]


def _pooled(report) -> dict:
    """Per mode: folded / unfolded accuracy pooled over pairs (Σ correct / Σ support), ceiling."""
    out = {}
    for mode in MODES:
        f, u = report.accuracy[f"folded_{mode}"], report.accuracy[f"unfolded_{mode}"]
        sup = sum(a.support for a in f.values())
        out[mode] = {
            "folded": sum(a.correct for a in f.values()) / sup if sup else float("nan"),
            "unfolded": sum(a.correct for a in u.values()) / sup if sup else float("nan"),
            "ceiling": sum(a.attainable for a in f.values()) / sup if sup else float("nan"),
            "support": sup,
        }
    return out


def run_unit(unit: dict) -> list[dict]:
    """Score one (size, cell, seed, kind) unit; kind "oracle" scores both oracle rows."""
    import torch

    from saematch.planted import ensure_planted, ground_truth_report, make_world, planted_config
    from saematch.planted.oracle import oracle_saes, with_true_scales
    from saematch.planted.sae_quality import layer_quality, successor_corr
    from saematch.planted.sample import sample_with_codes

    torch.set_num_threads(1)
    size, seed, kind, cell = unit["size"], unit["seed"], unit["kind"], unit["cell"]
    t0 = time.perf_counter()
    common = {"size": size, **cell, "seed": seed}
    rows = []
    if kind == "oracle":
        world = make_world(planted_config(size, **cell).world, seed)
        for theta, name in (("scale", "oracle_scale"), ("layer", "oracle_layer")):
            rep = ground_truth_report(oracle_saes(world, theta, seed=seed), world,
                                      variants=VARIANTS, composition_variant=None)  # fmt: skip
            for mode, acc in _pooled(rep).items():
                rows.append({**common, "sae": name, "mode": mode, **acc})
    else:
        ps = ensure_planted(size, seed=seed, recipe=kind, progress=False, **cell)
        saes, world = ps.load_saes(), ps.truth
        met = ps.manifest["metrics"]["saes"]
        x, codes = sample_with_codes(world, ps.manifest["config"]["n_heldout"], seed + 2)
        tsc = [layer_quality(s, world, t, x[t], codes[t])["theta_scale_corr"]
               for t, s in enumerate(saes)]  # fmt: skip
        extra = {
            "min_recovery": min(m["sae_recovery"] for m in met.values()),
            "mean_ev": float(np.mean([m["explained_variance"] for m in met.values()])),
            "mean_l0": float(np.mean([m["l0"] for m in met.values()])),
            "lambda_at_bound": max(m.get("l0_coeff_at_bound", 0.0) for m in met.values()),
            "theta_scale_corr": float(np.nanmean(tsc)),
            "theta_succ_corr": successor_corr(saes, world)["theta_succ_corr"],
            "steps": ps.manifest["config"]["steps"],
        }
        for name, use in ((kind, saes), (f"{kind}_true_theta", with_true_scales(saes, world))):
            rep = ground_truth_report(use, world, variants=VARIANTS, composition_variant=None)
            for mode, acc in _pooled(rep).items():
                rows.append({**common, "sae": name, "mode": mode, **acc, **extra})
    for r in rows:
        r["diff"] = r["folded"] - r["unfolded"]
        r["unit_s"] = round(time.perf_counter() - t0, 1)
    return rows


def plan(seeds: list[int], learned_size: str | None, oracle_sizes: list[str]) -> list[dict]:
    """Every unit in run order: the oracle rows first (cheap), then the trained SAEs cell by
    cell (both recipes, every seed), so a sweep cut short leaves complete cells."""
    from saematch.planted import planted_config

    units = []
    for size in oracle_sizes:
        L = planted_config(size).world.n_layers
        units += [{"size": size, "cell": c, "seed": s, "kind": "oracle"}
                  for c in cells(L) for s in seeds]  # fmt: skip
    if learned_size:
        L = planted_config(learned_size).world.n_layers
        units += [{"size": learned_size, "cell": c, "seed": s, "kind": k}
                  for c in cells(L) for s in seeds for k in TRAINED]  # fmt: skip
    return units


def _key(unit: dict) -> str:
    return json.dumps([unit["size"], unit["cell"], unit["seed"], unit["kind"]], sort_keys=True)


def run(out: Path, units: list[dict], jobs: int) -> None:
    """Run the units not yet in out/parts.jsonl, `jobs` processes, appending as they finish."""
    parts = out / "parts.jsonl"
    done = set()
    if parts.exists():
        done = {json.loads(line)["key"] for line in parts.read_text().splitlines() if line}
    todo = [u for u in units if _key(u) not in done]
    print(f"[folding_sweep] {len(todo)} of {len(units)} units to run", flush=True)
    stamp = {"git_commit": git_commit(), "run_id": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
    with get_context("spawn").Pool(jobs) as pool, open(parts, "a") as fh:
        for unit, rows in zip(todo, pool.imap(run_unit, todo), strict=True):
            fh.write(json.dumps({"key": _key(unit), "rows": rows, **stamp}) + "\n")
            fh.flush()
            r = rows[0]
            print(f"[folding_sweep] {unit['size']} {unit['kind']} {unit['cell']} seed "
                  f"{unit['seed']}: {r['unit_s']} s", flush=True)  # fmt: skip


def write_csv(out: Path) -> list[dict]:
    """folding_sweep.csv from parts.jsonl, every row stamped with the code versions."""
    from saematch.matching.cache import CODE_VERSION
    from saematch.planted.build import GENERATOR_VERSION
    from saematch.zoo.train_sae import TRAINER_VERSION

    rows = []
    for line in (out / "parts.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for r in rec["rows"]:
            rows.append({**r, "git_commit": rec["git_commit"], "run_id": rec["run_id"],
                         "trainer_version": TRAINER_VERSION, "matching_version": CODE_VERSION,
                         "generator_version": GENERATOR_VERSION})  # fmt: skip
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "folding_sweep.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--learned-size", default="test", help="'' = no trained SAEs")
    ap.add_argument("--oracle-sizes", default="test,default")
    ap.add_argument("--cells", default="", help="indices into cells() to run (default: all)")
    ap.add_argument("--plot-only", action="store_true", help="plot --csv (or out's CSV)")
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        with open(args.csv or args.out / "folding_sweep.csv") as fh:
            rows = list(csv.DictReader(fh))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
        oracle = [s for s in args.oracle_sizes.split(",") if s]
        units = plan(seeds, args.learned_size or None, oracle)
        if args.cells:
            from saematch.planted import planted_config

            keep = [int(i) for i in args.cells.split(",")]
            size = args.learned_size or oracle[0]
            chosen = [cells(planted_config(size).world.n_layers)[i] for i in keep]
            units = [u for u in units if u["cell"] in chosen]
        run(args.out, units, args.jobs)
        rows = write_csv(args.out)
    from saematch.planted.sweep_summary import plot_sweep

    fig = plot_sweep(rows)
    fig.savefig(args.out / "folding_sweep.png", dpi=130, bbox_inches="tight")
    fig.savefig(args.out / "folding_sweep.pdf", bbox_inches="tight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
