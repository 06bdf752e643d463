"""Benchmark: the int8 and the float32 bound of `solver=auto` (docs/method.md §13), side by side.

    python scripts/bench_bound_gemm.py --width 4096 --mode decoder --paths stored streamed
    python scripts/bench_bound_gemm.py --width 16384 --mode both --paths streamed --gemms fp32

On a synthetic pair (d_model 2304, as bench_matching.py): the bound's width c − L on sampled
rows (every column; exact float64 c) for each backend, then `assign(..., bound_gemm=...)` on
each path with its time and proof work (exact costs, scans or rounds). The int8 backend on a
CPU without a fast int8 GEMM (AVX2) is slow by design of this comparison: that is the point.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from saematch.matching.cost import augmented_features, cost_layout
from saematch.matching.solvers import assign
from saematch.matching.solvers.blocks import LowerBound
from saematch.matching.solvers.gemm import cpu_description
from saematch.planted.synthetic import synthetic_pair

KEEP = ("method", "tries", "rounds", "exact", "scanned_rows", "per_round", "seconds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--d-model", type=int, default=2304)
    ap.add_argument("--mode", default="decoder", choices=["decoder", "encoder", "both"])
    ap.add_argument("--paths", nargs="*", default=["stored", "streamed"])
    ap.add_argument("--gemms", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--rows", type=int, default=256, help="rows sampled for the bound width")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}; {cpu_description()}", flush=True)
    n = args.width
    a, b, _ = synthetic_pair(args.d_model, n, 0.2, 0.5, 0)
    xa = augmented_features(a, args.mode, "a", fold=True)
    xb = augmented_features(b, args.mode, "b", fold=True)
    lay = cost_layout(args.d_model, args.mode)
    rows = np.arange(0, n, max(1, n // args.rows))
    exact = xa[rows].astype(np.float64) @ xb.astype(np.float64).T  # (rows, n)
    for g in args.gemms:
        c0 = time.process_time()
        lb = LowerBound(xa, xb, lay["exact_tail"], lay["head_splits"], "cpu", gemm=g)
        width = exact - lb.block(torch.as_tensor(rows)).double().numpy()
        if (width < 0).any():
            raise AssertionError(f"{g}: the bound exceeds an exact cost")
        print(
            f"{g}: bound width c − L on {len(rows)} rows × {n}: median {np.median(width):.3e}, "
            f"p99 {np.quantile(width, 0.99):.3e} (median |c| {np.median(np.abs(exact)):.3e}; "
            f"{time.process_time() - c0:.1f} s CPU)",
            flush=True,
        )
    for path in args.paths:
        for g in args.gemms:
            t0, c0 = time.perf_counter(), time.process_time()
            extra = {"max_dense_bytes": 0} if path == "streamed" else {}
            res = assign(xa, xb, "auto", bound_gemm=g, **lay, **extra)
            info = {k: v for k, v in res.info.items() if k in KEEP or k.endswith("_seconds")}
            print(
                f"{path} {g}: {time.perf_counter() - t0:.1f} s wall, "
                f"{time.process_time() - c0:.1f} s CPU; {info}",
                flush=True,
            )


if __name__ == "__main__":
    main()
