"""Calibrate the published recipe's fixed λ on a planted preset: train one SAE per (layer, λ) in
one batched run and report held-out L0, EV, dead share and recovery per λ.

    python scripts/calibrate_lambda.py --size default --lambdas 3e-4,1e-3,3e-3,1e-2 \
        --out docs/data/lambda_calibration.csv

The default λ of a preset (saematch.planted.build.PUBLISHED_L0_COEFF) is the one whose mean
held-out L0 over layers lies nearest the preset's l0_target (the world's true L0), among those
reaching recovery ≥ 0.9 on every layer when any does; docs/trainer.md gives the numbers.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from saematch.planted import planted_config, sae_recovery
from saematch.planted.sample import sample_activations
from saematch.planted.world import make_world
from saematch.zoo.progress import Progress
from saematch.zoo.threads import pick_threads, torch_threads
from saematch.zoo.train_sae import TRAINER_VERSION, train_saes


def git_commit() -> str:
    """The worktree's HEAD (with -dirty when it has uncommitted changes), or 'unknown'."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="default")
    ap.add_argument("--lambdas", default="3e-4,1e-3,3e-3,1e-2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--bandwidth", type=float, default=None, help="default: the recipe's")
    ap.add_argument("--lr", type=float, default=None, help="default: the preset's")
    ap.add_argument("--no-lr-decay", action="store_true")
    ap.add_argument("--out", type=Path, required=True, help="CSV (appended to when it exists)")
    args = ap.parse_args(argv)
    lams = [float(x) for x in args.lambdas.split(",")]
    over = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v is not None}
    cfg = planted_config(args.size, recipe="published", **over)
    t0 = time.perf_counter()
    with torch_threads(pick_threads(2)):
        world = make_world(cfg.world, args.seed)
        acts = sample_activations(world, cfg.n_train, args.seed + 1)
        held = sample_activations(world, cfg.n_heldout, args.seed + 2)
        res = train_saes(acts, held, lams, cfg.width, steps=cfg.steps, batch=cfg.batch,
                         lr=cfg.lr, bandwidth=args.bandwidth, seed=args.seed,
                         progress=Progress(False), recipe="published", l0_coeff=lams,
                         lambda_warmup=cfg.lambda_warmup,
                         lr_decay=not args.no_lr_decay)  # fmt: skip
    wall = time.perf_counter() - t0
    rows = []
    for t in range(world.n_layers):
        for k, lam in enumerate(lams):
            sae, m = res.saes[t][k], res.metrics[t][k]
            rows.append({
                "size": args.size, "seed": args.seed, "steps": cfg.steps, "lr": cfg.lr,
                "bandwidth": args.bandwidth if args.bandwidth is not None else "recipe",
                "lr_decay": not args.no_lr_decay, "lambda": lam, "layer": t,
                "l0": m["l0"], "l0_target": cfg.l0_target,
                "explained_variance": m["explained_variance"], "dead_frac": m["dead_frac"],
                "sae_recovery": sae_recovery(sae.W_dec, world.directions[t]),
                "trainer_version": TRAINER_VERSION, "git_commit": git_commit(),
                "wall_s": round(wall, 1),
            })  # fmt: skip
    new = not args.out.exists()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)
    for lam in lams:
        sel = [r for r in rows if r["lambda"] == lam]
        print(f"λ {lam:g}: L0 {np.mean([r['l0'] for r in sel]):.2f} "
              f"EV {np.mean([r['explained_variance'] for r in sel]):.3f} "
              f"dead {np.mean([r['dead_frac'] for r in sel]):.2f} "
              f"recovery min {min(r['sae_recovery'] for r in sel):.3f} "
              f"mean {np.mean([r['sae_recovery'] for r in sel]):.3f}")  # fmt: skip
    print(f"({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
