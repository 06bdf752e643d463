"""Per-stage peak memory of compare(): which stage of a comparison allocates what.

    python scripts/compare_stage_memory.py --narrow 2048 --wide 8192 --max-memory 1.5GB

A synthetic pair (d_model 2304, `synthetic_pair`; A cut to its first --narrow features) goes
through `saematch.compare.compare` with each stage function wrapped in bench_matching's
`measure` (the kernel's peak-RSS counter, VmHWM, reset before the stage and read after it), so
each line is that stage's own
peak above the RSS it started from (BLAS buffers included; Linux only). The memory plan
(`compare.memory_plan`) is printed first: a stage's peak should stay within max_memory.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from bench_matching import measure  # VmHWM reset around a call (scripts/ is on sys.path)

STAGES = (
    "match_rect",
    "shared_features",
    "families",
    "cosine_matching",
    "pair_cosines",
)


def wrap(module, name: str, lines: list[str]) -> None:
    """Replace module.name by a version that records its own peak and time in `lines`."""
    fn = getattr(module, name)

    def measured(*args, **kwargs):
        out, wall, cpu, peak = measure(lambda: fn(*args, **kwargs))
        lines.append(f"  {name:16s} +{peak:.2f} GB peak, {wall:.1f} s ({cpu:.1f} s CPU)")
        print(lines[-1], flush=True)
        return out

    setattr(module, name, measured)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--narrow", type=int, default=2048)
    ap.add_argument("--wide", type=int, default=8192)
    ap.add_argument("--d-model", type=int, default=2304)
    ap.add_argument("--mode", default="both", choices=["decoder", "encoder", "both"])
    ap.add_argument("--max-memory", default="1.5GB")
    ap.add_argument("--out", type=Path, default=None, help="also write the lines here")
    args = ap.parse_args()

    from saematch.planted.synthetic import synthetic_pair
    from saematch.sae import JumpReLUSAE

    cmod = importlib.import_module("saematch.compare.compare")
    a, b, _ = synthetic_pair(args.d_model, args.wide, 0.2, 0.5, 0)
    n = args.narrow
    a = JumpReLUSAE(
        W_enc=a.W_enc[:, :n].clone(), b_enc=a.b_enc[:n].clone(), W_dec=a.W_dec[:n].clone(),
        b_dec=a.b_dec.clone(), threshold=a.threshold[:n].clone(), name=f"synthetic-A[:{n}]",
    )  # fmt: skip
    plan = cmod.memory_plan(a, b, args.mode)
    lines = [
        f"compare() stages, {n} x {args.wide}, d_model {args.d_model}, mode {args.mode}, "
        f"max_memory {args.max_memory}; memory plan (MB): "
        + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in plan.items()),
    ]
    print(lines[0], flush=True)
    for name in STAGES:
        wrap(cmod, name, lines)
    c = cmod.compare(a, b, mode=args.mode, certify=False, max_memory=args.max_memory)
    info = c.shared.matching.info
    lines.append(
        f"  shared: route {info.get('candidates')}, {info.get('edges')} candidate pairs, "
        f"objective {info.get('objective'):.9g}"
    )
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
