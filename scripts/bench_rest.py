"""Benchmark: the streamed solver's rest forced dense against forced sparse (issue 24).

    python scripts/bench_rest.py --widths 8192 16384            # runs, appends to --out
    python scripts/bench_rest.py --table                        # the markdown table of --out

For each width and route (`rest=dense`: lapx on the rest's float32 sub-cost; `rest=sparse`:
the pricing loop of saematch/matching/solvers/rest.py), in a fresh process each (so the peaks
are apart): synthetic_pair(2304, n) as in bench_matching.py, decoder mode, folded; the streamed
solver (streamed_certified_assign, no memory limit) timed by stage; its peak RSS above the
features (VmHWM from /proc); the proof's rounds, row scans and exact costs; the share of rest
rows whose guess was already their optimal partner; the certificate checked on 1,024 sampled
rows against every column (float64). The two routes of a width must give the same total cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_matching import KIB, _rss_kb  # /proc reads (scripts/ is on sys.path)

OUT = Path(__file__).resolve().parents[1] / "docs" / "data" / "bench_rest.jsonl"
ROUTES = ("dense", "sparse")


def one(n: int, route: str, seed: int) -> dict:
    """One width and route, in this process: the row of the table."""
    from saematch.matching.cost import augmented_features
    from saematch.matching.solvers.streamed import streamed_certified_assign
    from saematch.planted.synthetic import synthetic_pair

    a, b, _ = synthetic_pair(2304, n, seed=seed)
    xa = augmented_features(a, "decoder", "a", fold=True)
    xb = augmented_features(b, "decoder", "b", fold=True)
    del a, b
    base = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak from here
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    res = streamed_certified_assign(xa, xb, rest=route, rest_bytes=2**62)
    wall = time.perf_counter() - t0
    peak = (_rss_kb("VmHWM") - base) * KIB / 1e9
    idx = np.sort(np.random.default_rng(0).choice(n, min(n, 1024), replace=False))
    red = xa[idx].astype(np.float64) @ xb.astype(np.float64).T - res.u[idx, None] - res.v
    cost = float(np.einsum("ij,ij->", xa.astype(np.float64), xb[res.perm].astype(np.float64)))
    info = res.info
    return {
        "width": n,
        "route": route,
        "seed": seed,
        "wall_s": round(wall, 2),
        "seconds": info["seconds"],
        "peak_gb": round(peak, 3),
        "rest": info["rest"],
        "rest_guess_optimal": info.get("rest_guess_optimal"),
        "rest_passes": info.get("rest_passes"),
        "rest_rounds": info.get("rest_rounds"),
        "rest_edges": info.get("rest_edges"),
        "rest_completed": info.get("rest_fallback"),  # rows completed (first graph unmatched)
        "commit": _commit(),
        "rounds": info["rounds"],
        "scanned_rows": info["scanned_rows"],
        "exact": info["exact"],
        "cost": cost,
        "certificate_min_reduced": float(red.min()),
        "tol": res.tol,
        "certified_on_sample": bool(red.min() >= -res.tol),
        "load": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def _commit() -> str:
    """The short hash of the checkout the run used (with + when it had local changes)."""
    git = ["git", "-C", str(OUT.parents[2])]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "saematch"]).returncode
    return head.stdout.strip() + ("+" if dirty else "")


def table(rows: list[dict]) -> str:
    """The markdown table of the runs (one line per width and route)."""
    head = (
        "| width | rest | rest rows | guess optimal | passes / LAPs | guess | proof | "
        "proof rounds | row scans | exact costs | peak | load | completed rows | commit |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        sec = r["seconds"]
        laps = f"{r['rest_passes']} / {r['rest_rounds']}" if r["rest_passes"] else "–"
        lines.append(
            f"| {r['width']:,} | {r['route']} | {r['rest']:,} | {r['rest_guess_optimal']:.1%} | "
            f"{laps} | {sec['guess']:.1f} s | {sec['proof']:.1f} s | {r['rounds']} | "
            f"{r['scanned_rows']:,} | {r['exact'] / 1e6:.2f} M | +{r['peak_gb']:.2f} GB | "
            f"{r['load'][0]:.1f} → {r['load'][1]:.1f} | {_or_dash(r.get('rest_completed'))} | "
            f"{r.get('commit', '–')} |"
        )
    return head + "\n".join(lines)


def _or_dash(x) -> str:
    return "–" if x is None else f"{x:,}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[8192, 16384])
    ap.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--table", action="store_true", help="print the table of --out and stop")
    ap.add_argument("--one", nargs=2, metavar=("WIDTH", "ROUTE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.seed)))
        return
    if args.table:
        print(table([json.loads(x) for x in args.out.read_text().splitlines() if x.strip()]))
        return
    for n in args.widths:
        costs = {}
        for route in args.routes:
            cmd = [sys.executable, __file__, "--one", str(n), route, "--seed", str(args.seed)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            costs[route] = row["cost"]
            print(json.dumps(row), flush=True)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
        if len(costs) == 2:
            gap = abs(costs["dense"] - costs["sparse"]) / abs(costs["dense"])
            print(f"width {n}: relative cost difference of the routes {gap:.2e}")


if __name__ == "__main__":
    main()
