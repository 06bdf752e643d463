"""Benchmark: dense scipy matching pipeline vs saematch's `auto` solver on synthetic SAE pairs.

    python scripts/bench_matching.py --widths 4096 16384 --mode decoder
    python scripts/bench_matching.py --widths 4096 16384 --mode both
    python scripts/bench_matching.py --widths 16384 --mode both --beyond

For each width: a synthetic pair (d_model 2304, folded decoder rows of varied norm, B a
permuted noisy copy of A with a share of partner-less features); wall time and peak RSS above
the two SAEs (from /proc, which sees BLAS buffers; tracemalloc does not) of

* scipy: fold, features, float32 GEMM (numpy BLAS), float64 copy, column reduction,
  scipy.optimize.linear_sum_assignment;
* auto:  saematch.matching.match(a, b, solver="auto").

Both are scored with the same float64 pair cost; the totals must agree.

--beyond adds, against the `auto` time of the same run: the exact partial matching
(`unmatched=auto`: features, rotation null, candidate pass, sparse LAP) and the pass that gives
every pair's confidence, top-5 predecessors and best successors (confidence.py).
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from saematch.matching import match
from saematch.matching.cost import augmented_features, pair_cost_features
from saematch.matching.synthetic import synthetic_pair


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn):
    """(result, wall s, CPU s of this process, peak RSS in GB above the RSS at the start).

    CPU seconds are reported too: other jobs sharing the cores inflate wall time.
    """
    gc.collect()
    base = _rss_kb("VmRSS")
    ok = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = (_rss_kb("VmHWM") - base) / 1e6 if ok else float("nan")
    return out, dt, cpu, peak


def dense_scipy(a, b, mode: str):
    """The dense reference pipeline; returns (perm, pair cost)."""
    xa = augmented_features(a, mode, "a", fold=True)
    xb = augmented_features(b, mode, "b", fold=True)
    cost = (xa @ xb.T).astype(np.float64)  # float32 GEMM, then the float64 copy scipy needs
    cost -= cost.min(axis=0, keepdims=True)  # column reduction (MEASURED.md trap)
    rows, cols = linear_sum_assignment(cost)
    del cost
    return cols.astype(np.int64), pair_cost_features(xa, xb, cols)


def bench_beyond(a, b, mode: str, t_auto: float, perm: np.ndarray) -> None:
    """Partial matching and confidence times, as ratios against the bijection's t_auto."""
    from saematch.matching.beyond import match_beyond
    from saematch.matching.confidence import pair_analysis

    run = lambda: match_beyond(  # noqa: E731
        a, b, mode=mode, unmatched="auto", confidence=False, top_k=0, splits=False
    )
    mp, t_part, u_part, m_part = measure(run)
    xa = augmented_features(a, mode, "a", fold=True)
    xb = augmented_features(b, mode, "b", fold=True)
    pa, t_conf, u_conf, m_conf = measure(lambda: pair_analysis(xa, xb, perm, top_k=5))
    print(
        f"  partial (unmatched=auto, rho {mp.info['rho']:.3f}, {mp.info['unmatched_a']} unmatched, "
        f"{mp.info['edges']} candidate pairs): {t_part:.1f} s wall, {u_part:.1f} s CPU, "
        f"+{m_part:.2f} GB = {t_part / t_auto:.2f}x the bijection\n"
        f"  confidence + top-5 predecessors of every pair: {t_conf:.1f} s wall, "
        f"{u_conf:.1f} s CPU, "
        f"+{m_conf:.2f} GB = {t_conf / t_auto:.2f}x the bijection "
        f"(median confidence {np.nanmedian(pa.confidence):.3g})",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--d-model", type=int, default=2304)
    ap.add_argument("--mode", default="decoder", choices=["decoder", "encoder", "both"])
    ap.add_argument("--unmatched", type=float, default=0.2)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beyond", action="store_true", help="also time partial matching + confidence")
    args = ap.parse_args()
    # numba kernels load from their on-disk cache (or compile, first run ever): time it apart
    a, b, _ = synthetic_pair(32, 256, args.unmatched, args.noise, args.seed)
    t0 = time.perf_counter()
    m = match(a, b, mode=args.mode)
    print(f"warm-up (numba load/compile) {time.perf_counter() - t0:.2f} s [{m.info['method']}]")
    for n in args.widths:
        a, b, planted = synthetic_pair(args.d_model, n, args.unmatched, args.noise, args.seed)
        sae_gb = 2 * sum(t.numel() * t.element_size() for t in a.state_dict().values()) / 1e9
        (p_ref, c_ref), t_ref, u_ref, m_ref = measure(lambda a=a, b=b: dense_scipy(a, b, args.mode))
        m, t_auto, u_auto, m_auto = measure(lambda a=a, b=b: match(a, b, mode=args.mode))
        tot_ref, tot_auto = float(c_ref.astype(np.float64).sum()), m.total_cost
        has = planted >= 0
        rec = (m.perm[has] == planted[has]).mean()
        print(
            f"width {n} mode {args.mode} (SAEs {sae_gb:.2f} GB)\n"
            f"  scipy: {t_ref:.1f} s wall, {u_ref:.1f} s CPU, +{m_ref:.2f} GB peak RSS\n"
            f"  auto [{m.info['method']}]: {t_auto:.1f} s wall, {u_auto:.1f} s CPU, "
            f"+{m_auto:.2f} GB peak RSS\n"
            f"  speed-up {t_ref / t_auto:.2f}x wall, {u_ref / u_auto:.2f}x CPU\n"
            f"  total cost scipy {tot_ref:.9g} auto {tot_auto:.9g} "
            f"(rel diff {abs(tot_auto - tot_ref) / tot_ref:.1e}); same pairs "
            f"{(p_ref == m.perm).mean():.4f}; planted partners recovered {rec:.4f}\n"
            f"  auto details: { {k: v for k, v in m.info.items() if k != 'method'} }",
            flush=True,
        )
        if args.beyond:
            bench_beyond(a, b, args.mode, t_auto, m.perm)
        del a, b, m, p_ref, c_ref


if __name__ == "__main__":
    main()
