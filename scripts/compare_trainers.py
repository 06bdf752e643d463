"""Both SAE training recipes on the planted default world, several seeds: what the SAEs recover
and whether their thresholds carry the features' scales (saematch.planted.sae_quality), whether
λ sits at a bound, and the matching accuracy of each mode × fold (pooled over adjacent pairs).

    SAEMATCH_CACHE=... nice -n 5 python scripts/compare_trainers.py --seeds 0,1,2 \
        --out docs/data/trainer_compare.csv

One long-format row per (recipe, seed, layer, metric): layer = "all" for numbers pooled over
layers. Every row carries the size, trainer and generator versions, the matching code version,
the git commit and the run id; the planted configs go beside it (<out>.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from saematch.matching.cache import CODE_VERSION as MATCHING_VERSION
from saematch.planted import ensure_planted, ground_truth_report
from saematch.planted.build import GENERATOR_VERSION, planted_config
from saematch.planted.sae_quality import layer_quality, successor_corr
from saematch.planted.sample import sample_with_codes
from saematch.zoo.train_sae import TRAINER_VERSION

sys.path.insert(0, str(Path(__file__).parent))
from calibrate_lambda import git_commit  # noqa: E402

VARIANTS = [f"{f}_{m}" for m in ("decoder", "encoder", "both") for f in ("folded", "unfolded")]
RECIPES = ("controller", "published")


def measure(recipe: str, seed: int, size: str, knobs: dict) -> tuple[list[tuple], dict]:
    """(layer, metric, value) rows of one built set, and its config."""
    ps = ensure_planted(size, seed=seed, recipe=recipe, progress=False, **knobs)
    saes, world = ps.load_saes(), ps.truth
    cfg = ps.manifest["config"]
    x, codes = sample_with_codes(world, cfg["n_heldout"], seed + 2)  # the build's held-out stream
    out: list[tuple] = []
    for t, sae in enumerate(saes):
        m = ps.manifest["metrics"]["saes"][str(t)]
        for k in ("explained_variance", "l0", "dead_frac", "l0_coeff", "l0_coeff_at_bound"):
            out.append((t, k, m[k]))
        out.extend((t, k, v) for k, v in layer_quality(sae, world, t, x[t], codes[t]).items())
    out.extend(("all", k, v) for k, v in successor_corr(saes, world).items())
    rep = ground_truth_report(saes, world, variants=VARIANTS, composition_variant=None)
    for v, pairs in rep.accuracy.items():
        sup = sum(a.support for a in pairs.values())
        out.append(("all", f"acc_{v}", sum(a.correct for a in pairs.values()) / sup))
    pairs = rep.accuracy[VARIANTS[0]].values()
    ceiling = sum(a.attainable for a in pairs) / sum(a.support for a in pairs)
    out.append(("all", "acc_ceiling", ceiling))
    return out, cfg


def merge(parts: list[Path], out: Path) -> int:
    """Concatenate result CSVs of separate runs (e.g. one per recipe or seed, run in parallel)
    into `out`, and their metadata into out.json under "parts"."""
    rows: list[dict] = []
    for p in parts:
        with open(p, newline="") as fh:
            rows += list(csv.DictReader(fh))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in parts]
    meta = {
        "run_id": ",".join(m["run_id"] for m in metas),
        "git_commit": ",".join(sorted({m["git_commit"] for m in metas})),
        "command": " ; ".join(m["command"] for m in metas),
        "defaults": metas[0]["defaults"],
        "configs": {k: v for m in metas for k, v in m["configs"].items()},
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(f"[compare_trainers] merged {len(parts)} runs ({len(rows)} rows) into {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="default")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=None,
        help="only concatenate these result CSVs (and their .json) into --out",
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    commit = git_commit()
    rows, configs = [], {}
    for recipe in args.recipes.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            got, cfg = measure(recipe, seed, args.size, {})
            configs[f"{recipe}/seed{seed}"] = cfg
            for layer, metric, value in got:
                rows.append({
                    "recipe": recipe, "seed": seed, "size": args.size, "layer": layer,
                    "metric": metric, "value": float(value), "trainer_version": TRAINER_VERSION,
                    "generator_version": GENERATOR_VERSION, "matching_version": MATCHING_VERSION,
                    "git_commit": commit, "run_id": run_id,
                })  # fmt: skip
            print(f"[compare_trainers] {recipe} seed {seed}: {time.perf_counter() - t0:.0f} s",
                  flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    meta = {
        "run_id": run_id, "git_commit": commit, "command": " ".join(sys.argv),
        "defaults": {r: planted_config(args.size, recipe=r).to_dict() for r in RECIPES},
        "configs": configs,
    }  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    for metric in ("recovery", "explained_variance", "l0", "theta_scale_corr", "recall"):
        for recipe in args.recipes.split(","):
            v = [r["value"] for r in rows if r["recipe"] == recipe and r["metric"] == metric]
            print(f"{metric:20s} {recipe:10s} mean {np.nanmean(v):.3f} "
                  f"[{min(v):.3f}, {max(v):.3f}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
