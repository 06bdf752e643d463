"""Build (or load) the built-in tiny zoo and print its metrics.

python scripts/build_zoo.py --size default --cache-dir ~/.cache/saematch --seed 0 [--force]
"""

from __future__ import annotations

import argparse
import time

from saematch.zoo import ensure_zoo


def summary(manifest: dict) -> str:
    """A few lines: LM quality, per-sparsity SAE quality (mean / worst over layers), timings."""
    lm = manifest["metrics"]["lm"]
    lines = [
        f"zoo {manifest['size']} seed {manifest['seed']}: {manifest['n_layers']} layers, "
        f"d_model {manifest['d_model']}, SAE width {manifest['width']}, "
        f"default sparsity {manifest['default_sparsity']}",
        f"LM: held-out CE {lm['heldout_ce']:.3f} nats, unigram entropy "
        f"{lm['unigram_entropy']:.3f} (ratio {lm['ce_over_entropy']:.3f}), "
        f"{lm['n_params']:,} params, {lm['train_tokens']:,} training tokens",
    ]
    for level, per_layer in manifest["metrics"]["saes"].items():
        ms = list(per_layer.values())
        ev = [m["explained_variance"] for m in ms]
        l0 = [m["l0"] for m in ms]
        dead = [m["dead_frac"] for m in ms]
        lines.append(
            f"SAE {level:>6}: l0 {min(l0):5.1f}..{max(l0):5.1f}  EV {min(ev):.3f}..{max(ev):.3f}  "
            f"dead {max(dead) * 100:4.1f}% max"
        )
    for layer, g in manifest["metrics"].get("seed_agreement", {}).items():
        lines.append(
            f"layer {layer} second seed: agreement {g['agreement']:.2f} (decoder cos > 0.7 after "
            f"LAP; mean {g['mean_cos']:.2f}), transfer EV {g['transfer_ev']:.3f} vs own "
            f"{g['ev_a']:.3f} / {g['ev_b']:.3f}"
        )
    t = manifest["timings"]
    cpu, threads = t.get("cpu_s", {}), t.get("threads", {})
    stages = [k for k, v in t.items() if isinstance(v, (int, float)) and not k.startswith("total")]
    lines.append(
        "stage seconds (wall / cpu / threads): "
        + ", ".join(f"{k} {t[k]:.1f}/{cpu.get(k, 0):.1f}/{threads.get(k, 1)}" for k in stages)
        + f"; total {t['total_wall_s']:.1f}/{t.get('total_cpu_s', 0):.1f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, ensure the zoo, print the summary."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="default", choices=["default", "test"])
    ap.add_argument(
        "--cache-dir", default=None, help="default: $SAEMATCH_CACHE or ~/.cache/saematch"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="rebuild even if a valid zoo is cached")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument(
        "--all-sparsities",
        action="store_true",
        help="also train the levels the build leaves to first use (default zoo: l0_16, l0_32)",
    )
    args = ap.parse_args(argv)
    t = time.perf_counter()
    zoo = ensure_zoo(
        args.size, args.cache_dir, args.seed, progress=not args.quiet, force=args.force
    )
    print(f"{zoo.root}  (ready in {time.perf_counter() - t:.1f}s)")
    print(summary(zoo.manifest))
    lazy = [lv for lv in zoo.sparsities if lv not in zoo.built_sparsities]
    for level in lazy if args.all_sparsities else []:
        ms = list(zoo.sae_metrics(level).values())  # trains the level on first use
        ev, l0 = [m["explained_variance"] for m in ms], [m["l0"] for m in ms]
        print(f"SAE {level:>6}: l0 {min(l0):5.1f}..{max(l0):5.1f}  EV {min(ev):.3f}..{max(ev):.3f}")
    if lazy and not args.all_sparsities:
        print(f"levels {lazy}: trained on first use (or now with --all-sparsities)")


if __name__ == "__main__":
    main()
