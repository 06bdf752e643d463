"""Benchmark: saematch's `auto` solver against references on synthetic SAE pairs.

    python scripts/bench_matching.py --widths 4096 16384 --mode both
    python scripts/bench_matching.py --widths 65536 131072 --mode decoder --max-memory 6GB 12GB
    python scripts/bench_matching.py --widths 65536 262144 1048576 --device cuda --chunked
    python scripts/bench_matching.py --widths 16384 --mode both --beyond
    python scripts/bench_matching.py --widths 16384 --rect 65536 --max-memory 6GB --compare

For each width: a synthetic pair (d_model 2304, folded decoder rows of varied norm, B a
permuted noisy copy of A with a share of partner-less features); wall time and peak RSS (from
/proc, which sees BLAS buffers; tracemalloc does not) of

* gemm:  the float32 GEMM of the same features (numpy BLAS, row blocks, outputs dropped), what
  any exact method must at least compute or bound. Timed in full by default; above
  --gemm-full-below it is timed on --gemm-rows rows and scaled by n / rows (printed as such).
  Scaled references ran 14-37 % slow on the 2-core machine (131k: 461 s from 4,096 rows and
  553 s from 2,048 rows, against 404 s in full), so a scaled ratio flatters `auto`;
* scipy (widths up to --scipy-below): fold, features, float32 GEMM, float64 copy, column
  reduction, scipy.optimize.linear_sum_assignment;
* auto:  saematch.matching.match(a, b, solver="auto"), its certificate checked on sampled rows.

Totals of scipy and auto are scored with the same float64 pair cost and must agree.

--chunked: the pair's augmented features are generated in row chunks (planted/synthetic_stream,
equal bit for bit to those of synthetic_pair's SAEs), never the SAEs: 1,048,576 × 2304 needs
19.3 GB of host memory (decoder) instead of ~60 GB. `auto` is then the solver on those features
(dispatch.assign with match()'s budget and cost layout), without match()'s fold.

--device cuda: the solver's row blocks run on the GPU (matching.device), and the reference is
the fp32 GEMM of the same features ON THE GPU (torch.matmul, TF32 off, timed with
cudaDeviceSynchronize, features already on the device; in full below --gemm-full-below, else
on the first --gemm-rows rows and scaled); the certificate is checked in float64 on the GPU;
the GPU's peak (torch.cuda.max_memory_allocated) is printed beside the host's peak RSS.

--beyond adds, against the `auto` time of the same run: the exact partial matching
(`unmatched=auto`: features, rotation null, candidate pass, sparse LAP), the pass that gives
every pair's confidence, dual regret, top-5 predecessors and best successors as match() runs it
(the screen on the bound's estimate, screen.py), the float32 pass of confidence.py for
reference, and both against the exact float64 swap regret on 256 sampled rows.

--rect W: two SAEs of different widths (saematch.compare): A = the first n features of a
synthetic pair's A of width W (n from --widths; n = W compares two equal widths), B that pair's
B (width W); times the fp32 GEMM of the same n × W pair, the exact rectangular matching
(compare.match_rect: padded square, certified; the certificate checked on 2,048 sampled rows),
or with --compare the whole compare() instead (rectangular matching, partial matching with the
null, families, PW-MCC of decoder and encoder; its matching's certificate checked the same
way), scipy's rectangular linear_sum_assignment while n·W ≤ --scipy-below², each as a ratio to
that GEMM in the same run (wall and CPU), and the process peak RSS. The issue's two figures
(an idle machine; see docs/compare.md):

    python scripts/bench_matching.py --widths 131072 --rect 131072 --mode both --compare \
        --max-memory 12GB
    python scripts/bench_matching.py --widths 16384 --rect 65536 --mode both --compare \
        --max-memory 6GB
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from saematch.matching import match
from saematch.matching.cost import augmented_features, pair_cost_features
from saematch.matching.solvers import resolve_device
from saematch.matching.solvers.gemm import BOUND_GEMMS, PROBE_SHAPE, bound_gemm, cpu_description
from saematch.planted.synthetic import synthetic_pair

SOLVE_ONLY = {"confidence": False, "top_k": 0, "splits": False}  # the solver alone, timed


def _ms(seconds) -> str:
    return "n/a" if seconds is None else f"{1e3 * seconds:.1f} ms"


KIB = 1024  # /proc's "kB" are KiB; GB here are 10^9 bytes, as max_memory's (before 2026-12-06
# the bench divided kB by 1e6: its peaks read 2.4 % low)


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
    hwm = _rss_kb("VmHWM")
    # VmHWM is reset per stage: keep the max
    PROCESS_PEAK[0] = max(PROCESS_PEAK[0], hwm * KIB / 1e9)
    peak = (hwm - base) * KIB / 1e9 if ok else float("nan")
    return out, dt, cpu, peak


PROCESS_PEAK = [0.0]  # GB: the largest VmHWM any measured stage reached (the process's peak)


def gemm_reference(xa, xb, full_below: int, rows: int, block: int = 2048):
    """(wall s, CPU s, extrapolated?) of the float32 GEMM xa @ xb.T (numpy BLAS, no output)."""
    n = len(xa)
    m = n if n < full_below else min(n, rows)
    out = np.empty((min(block, m), n), dtype=np.float32)
    t0, c0 = time.perf_counter(), time.process_time()
    for s in range(0, m, block):
        np.matmul(xa[s : min(m, s + block)], xb.T, out=out[: min(m, s + block) - s])
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dt * n / m, cpu * n / m, m < n


def gemm_reference_cuda(xa, xb, full_below: int, rows: int, block: int = 4096) -> dict:
    """The fp32 GEMM xa @ xb.T on the GPU: torch.matmul in row blocks into one (block, n)
    output, TF32 off (true fp32), after a warm-up block, synchronised; the features are moved
    to the GPU first (not timed). Returns {"seconds", "scaled", "rows", "gpu_peak_gb"} and,
    where it is timed in full on more than `rows` rows, "scaled_seconds": the same timing
    taken from its first `rows` rows and scaled by n / rows (the bias check of a scaled
    reference)."""
    torch.backends.cuda.matmul.allow_tf32 = False  # and the precision setting that implies it
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    n = len(xa)
    m = n if n < full_below else min(n, rows)
    block = min(block, rows)  # the scaled check's mark falls on a block's end
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    tb = torch.from_numpy(xb).to(dev)  # (n, D + 2)
    ta = torch.from_numpy(xa[:m]).to(dev)
    out = torch.empty((min(block, m), n), dtype=torch.float32, device=dev)
    torch.matmul(ta[: len(out)], tb.T, out=out)  # warm-up: cuBLAS handle, kernel choice
    torch.cuda.synchronize()
    marks = []
    t0 = time.perf_counter()
    for s in range(0, m, block):
        torch.matmul(ta[s : s + block], tb.T, out=out[: min(m, s + block) - s])
        if s + block >= rows and not marks and m > rows:
            torch.cuda.synchronize()
            marks.append((min(m, s + block), time.perf_counter() - t0))
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    res = {"seconds": dt * n / m, "scaled": m < n, "rows": m}
    res["gpu_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    if marks:
        r, t = marks[0]
        res["scaled_seconds"], res["scaled_rows"] = t * n / r, r
    del ta, tb, out
    torch.cuda.empty_cache()
    return res


def sampled_certificate(xa, xb, m, rows: int = 2048, seed: int = 0, device: str = "cpu"):
    """The certificate checked on random rows (every column) in float64, xb in column blocks
    (no float64 copy of it): (ok, min reduced cost, max slack). On `device` (torch)."""
    dev = torch.device(device)
    n = len(xa)
    idx = np.sort(np.random.default_rng(seed).choice(n, min(rows, n), replace=False))
    u, v = m.duals
    a64 = torch.as_tensor(xa[idx], device=dev).double()  # (r, D + 2)
    ui = torch.as_tensor(u[idx], device=dev)[:, None]
    vt = torch.as_tensor(v, device=dev)
    p = torch.as_tensor(m.perm[idx], device=dev)
    lo, slack, cols = np.inf, -np.inf, 16384
    for c0 in range(0, n, cols):
        c1 = min(n, c0 + cols)
        red = a64 @ torch.as_tensor(xb[c0:c1], device=dev).double().T  # (r, c) exact costs
        red.sub_(ui).sub_(vt[None, c0:c1])
        lo = min(lo, float(red.min()))
        hit = torch.nonzero((p >= c0) & (p < c1), as_tuple=True)[0]
        if len(hit):
            slack = max(slack, float(red[hit, p[hit] - c0].max()))
    tol = m.info["tol"]
    return lo >= -tol and slack <= tol, lo, slack


def dense_scipy(a, b, mode: str):
    """The dense reference pipeline; returns (perm, pair cost)."""
    xa = augmented_features(a, mode, "a", fold=True)
    xb = augmented_features(b, mode, "b", fold=True)
    cost = (xa @ xb.T).astype(np.float64)  # float32 GEMM, then the float64 copy scipy needs
    cost -= cost.min(axis=0, keepdims=True)  # column reduction (MEASURED.md trap)
    rows, cols = linear_sum_assignment(cost)
    del cost
    return cols.astype(np.int64), pair_cost_features(xa, xb, cols)


def sampled_swap_regret(xa, xb, perm, rows) -> np.ndarray:
    """Definition (1) of the bijection in float64 for the given rows (two GEMVs per row)."""
    from saematch.matching.beyond.confidence import complete

    pf = complete(perm, len(perm))
    xa64, xb64 = xa.astype(np.float64), xb.astype(np.float64)
    dd = np.einsum("ij,ij->i", xa64, xb64[pf])  # c_k,p(k)
    out = np.empty(len(rows))
    for t, i in enumerate(rows):
        delta = xb64[pf] @ xa64[i] + xa64 @ xb64[pf[i]] - dd[i] - dd  # over k
        delta[i] = np.inf
        out[t] = max(delta.min(), 0.0)
    return out


def bench_beyond(a, b, mode: str, t_auto: float, m) -> None:
    """Partial matching and confidence times, as ratios against the bijection's t_auto."""
    from saematch.matching import match_beyond
    from saematch.matching.beyond.confidence import pair_analysis
    from saematch.matching.beyond.screen import analyse_pairs

    run = lambda: match_beyond(  # noqa: E731
        a, b, mode=mode, unmatched="auto", confidence=False, top_k=0, splits=False
    )
    mp, t_part, u_part, m_part = measure(run)
    xa = augmented_features(a, mode, "a", fold=True)
    xb = augmented_features(b, mode, "b", fold=True)
    both = mode == "both"
    (pa, info), t_conf, u_conf, m_conf = measure(
        lambda: analyse_pairs(xa, xb, m.perm, None, 5, m.duals, int(both), (a.d_model,) * both)
    )
    ref, t_ref, u_ref, _ = measure(lambda: pair_analysis(xa, xb, m.perm, top_k=5))
    rows = np.random.default_rng(0).choice(len(m.perm), 256, replace=False)
    exact = sampled_swap_regret(xa, xb, m.perm, rows)

    def worst(conf):
        return float(np.max(np.abs(conf[rows] - exact) / np.maximum(exact, 1e-30)))

    same_pred = float((pa.predecessors == ref.predecessors).mean())
    print(
        f"  partial (unmatched=auto, rho {mp.info['rho']:.3f}, {mp.info['unmatched_a']} unmatched, "
        f"{mp.info['edges']} candidate pairs): {t_part:.1f} s wall, {u_part:.1f} s CPU, "
        f"+{m_part:.2f} GB = {t_part / t_auto:.2f}x the bijection\n"
        f"  confidence + dual regret + top-5 predecessors of every pair [{info['analysis']}]: "
        f"{t_conf:.1f} s wall, {u_conf:.1f} s CPU, +{m_conf:.2f} GB = "
        f"{t_conf / t_auto:.2f}x the bijection "
        f"({ {k: round(v, 2) for k, v in info.items() if k.endswith('seconds')} })\n"
        f"  reference float32 pass (confidence.py): {t_ref:.1f} s wall, {u_ref:.1f} s CPU = "
        f"{t_ref / t_auto:.2f}x the bijection\n"
        f"  against exact float64 swap regret on 256 sampled rows: max rel diff "
        f"{worst(pa.confidence):.1e} ({info['analysis']}), {worst(ref.confidence):.1e} (float32 "
        f"pass); same top-5 predecessors as the float32 pass {same_pred:.4f}; median "
        f"confidence {np.nanmedian(pa.confidence):.3g}",
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
    ap.add_argument("--scipy-below", type=int, default=20000, help="dense reference up to here")
    ap.add_argument("--gemm-full-below", type=int, default=2**40, help="time the GEMM in full")
    ap.add_argument("--gemm-rows", type=int, default=8192)
    ap.add_argument(
        "--max-memory", nargs="+", default=None,
        help='e.g. "6GB", or one per width: 6GB 12GB (default: half the available memory)',
    )  # fmt: skip
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument(
        "--bound-gemm", default="auto", choices=list(BOUND_GEMMS),
        help="the GEMM of auto's bound (auto: int8 only where measured faster than float32)",
    )  # fmt: skip
    ap.add_argument("--beyond", action="store_true", help="also time partial matching + confidence")
    ap.add_argument(
        "--chunked", action="store_true",
        help="generate the features in row chunks (no SAEs; 1M wide fits), time the solver on them",
    )  # fmt: skip
    ap.add_argument("--rect", type=int, default=None, help="wide width W: n × W rectangular")
    ap.add_argument("--compare", action="store_true", help="with --rect: time compare() too")
    ap.add_argument(
        "--stages", action="store_true",
        help="log the solver's stages as they end (timestamps on stderr), for long runs",
    )  # fmt: skip
    args = ap.parse_args()
    if args.stages:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.chunked and (args.beyond or args.rect):
        ap.error("--chunked has no SAEs: not with --beyond or --rect")
    if args.device == "cuda":
        if not torch.cuda.is_available():  # a GPU run must not quietly become a CPU one
            raise SystemExit(
                f"--device cuda: torch {torch.__version__} (CUDA build: {torch.version.cuda}) "
                "sees no GPU. Install a CUDA build of torch (make install TORCH=torch) on a "
                "machine with a GPU, or run with --device cpu."
            )
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    cpu = cpu_description()  # the bound's backend depends on the CPU (docs/benchmarks.md)
    dev = resolve_device(args.device)
    print(
        f"CPU: {cpu['cpu']}; torch {torch.__version__}, CPU capability "
        f"{cpu['torch_cpu_capability']}, {torch.get_num_threads()} threads; the bound's float32 "
        f"GEMM on the CPU by {cpu['fp32_lib']} (gemm.cpu_fp32_lib; SAEMATCH_CPU_FP32_LIB "
        f"{os.environ.get('SAEMATCH_CPU_FP32_LIB', 'unset: measured')})\n"
        f"bound GEMM on {dev}: {bound_gemm(args.bound_gemm, dev)} (--bound-gemm "
        f"{args.bound_gemm}; a GPU's auto is int8; the CPU's probe "
        f"{cpu['why']}: int8 {_ms(cpu['int8_s'])}, float32 {_ms(cpu['fp32_s'])} per "
        f"{'x'.join(map(str, PROBE_SHAPE))} GEMM -> auto = {cpu['auto']})",
        flush=True,
    )
    limits = {"device": args.device, "bound_gemm": args.bound_gemm}
    # numba kernels load from their on-disk cache (or compile, first run ever): time it apart
    a, b, _ = synthetic_pair(32, 256, args.unmatched, args.noise, args.seed)
    t0 = time.perf_counter()
    m = match(a, b, mode=args.mode, **limits, **SOLVE_ONLY)
    from saematch.matching.solvers.streamed import streamed_certified_assign

    xa, xb = (augmented_features(t, args.mode, side, fold=True) for t, side in ((a, "a"), (b, "b")))
    streamed_certified_assign(xa, xb, k=4, block=64, gemm=args.bound_gemm)  # its numba kernels
    print(f"warm-up (numba load/compile) {time.perf_counter() - t0:.2f} s [{m.info['method']}]")
    budgets = args.max_memory or [None]
    if len(budgets) not in (1, len(args.widths)):
        ap.error(f"--max-memory: give one budget, or one per width ({len(args.widths)})")
    if args.rect:
        for n, budget in zip(
            args.widths, budgets * (len(args.widths) // len(budgets)), strict=True
        ):
            bench_rect(args, n, args.rect, budget)
        return
    for n, budget in zip(args.widths, budgets * (len(args.widths) // len(budgets)), strict=True):
        bench_width(args, n, budget)


def features_of(a, b, mode: str):
    """(xa, xb): the folded augmented features of both SAEs (cost.py)."""
    return augmented_features(a, mode, "a", fold=True), augmented_features(b, mode, "b", fold=True)


def solve_features(xa, xb, d_model: int, mode: str, budget, device: str, gemm: str = "auto"):
    """solver=auto on augmented features as match() runs it (its budget, cost layout, plan
    check, bound GEMM, Matching), without building the features (--chunked)."""
    from saematch.matching.budget import Budget, features_bytes
    from saematch.matching.cost import cost_layout
    from saematch.matching.match import bijection
    from saematch.matching.options import MatchOptions
    from saematch.matching.solvers import get_solver
    from saematch.matching.solvers.gemm import use_bound_gemm

    opts = MatchOptions(mode=mode, max_memory=budget, device=device, bound_gemm=gemm, **SOLVE_ONLY)
    solver, dev = get_solver("auto"), resolve_device(device)
    n, D = xa.shape[0], xa.shape[1] - 2
    mem = Budget.resolve(budget, features_bytes(n, D), f"matching {n} features (length {D})")
    with use_bound_gemm(gemm):
        try:
            solver.plan(n, D, mem.work, dev)
        except MemoryError as e:
            raise mem.explain(e) from None
        res = solver(xa, xb, **cost_layout(d_model, mode), work_bytes=mem.work, device=dev)
    return bijection(xa, xb, res, opts, solver)


def bench_width(args, n: int, budget) -> None:
    """One width of the main benchmark (module doc)."""
    cuda = args.device == "cuda"
    if args.chunked:
        from saematch.planted.synthetic_stream import synthetic_features

        (xa, xb, planted), t_gen, _, m_gen = measure(
            lambda: synthetic_features(
                args.d_model, n, args.mode, args.unmatched, args.noise, args.seed
            )
        )
        a = b = None
        made = f"features generated in chunks in {t_gen:.1f} s (+{m_gen:.2f} GB)"
    else:
        a, b, planted = synthetic_pair(args.d_model, n, args.unmatched, args.noise, args.seed)
        xa, xb = features_of(a, b, args.mode)  # dropped before match(), which builds its own
        sae_gb = 2 * sum(t.numel() * t.element_size() for t in a.state_dict().values()) / 1e9
        made = f"SAEs {sae_gb:.2f} GB"
    print(
        f"width {n} mode {args.mode} device {args.device}, max_memory {budget or 'default'} "
        f"({made}, features {2 * xa.nbytes / 1e9:.2f} GB, "
        f"RSS {_rss_kb('VmRSS') * KIB / 1e9:.2f} GB)",
        flush=True,
    )
    if cuda:
        g = gemm_reference_cuda(xa, xb, args.gemm_full_below, args.gemm_rows)
        t_gemm = g["seconds"]
        print(
            f"  fp32 GEMM of the same features on the GPU (TF32 off): {t_gemm:.2f} s"
            + (f" (timed on {g['rows']} rows, scaled by n/rows)" if g["scaled"] else " (in full)")
            + (
                f"; scaled from its first {g['scaled_rows']} rows it would read "
                f"{g['scaled_seconds']:.2f} s ({g['scaled_seconds'] / t_gemm:.3f}x the full)"
                if "scaled_seconds" in g
                else ""
            )
            + f"; GPU peak {g['gpu_peak_gb']:.2f} GB",
            flush=True,
        )
    else:
        t_gemm, u_gemm, extrap = gemm_reference(xa, xb, args.gemm_full_below, args.gemm_rows)
        print(
            f"  fp32 GEMM of the same features: {t_gemm:.1f} s ({u_gemm:.1f} s CPU)"
            + (f" (timed on {args.gemm_rows} rows, scaled by n/rows)" if extrap else ""),
            flush=True,
        )
    ref = None
    if n <= args.scipy_below and not args.chunked:
        ref, t_ref, u_ref, m_ref = measure(lambda: dense_scipy(a, b, args.mode))
        print(f"  scipy: {t_ref:.1f} s wall, {u_ref:.1f} s CPU, +{m_ref:.2f} GB peak RSS")
    if not args.chunked:
        del xa, xb  # as before this change: match()'s peak is measured without a spare copy
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if args.chunked:
        run = lambda: solve_features(  # noqa: E731
            xa, xb, args.d_model, args.mode, budget, args.device, args.bound_gemm
        )
    else:
        run = lambda: match(  # noqa: E731
            a,
            b,
            mode=args.mode,
            max_memory=budget,
            device=args.device,
            bound_gemm=args.bound_gemm,
            **SOLVE_ONLY,
        )
    m, t_auto, u_auto, m_auto = measure(run)
    peak_total = _rss_kb("VmHWM") * KIB / 1e9
    gpu = f", GPU peak {torch.cuda.max_memory_allocated() / 1e9:.2f} GB" if cuda else ""
    has = planted >= 0
    rec = (m.perm[has] == planted[has]).mean()
    if not args.chunked:
        xa, xb = features_of(a, b, args.mode)
    ok, lo, slack = sampled_certificate(xa, xb, m, device=args.device if cuda else "cpu")
    what = "solver on the features" if args.chunked else "match(), folding included"
    cpu_ratio = "" if cuda else f", {u_auto / u_gemm:.2f}x CPU"
    print(
        f"  auto [{m.info['method']}, {what}]: {t_auto:.1f} s wall, {u_auto:.1f} s CPU, "
        f"+{m_auto:.2f} GB peak RSS (process peak {peak_total:.2f} GB){gpu}\n"
        f"  auto / fp32 GEMM: {t_auto / t_gemm:.2f}x wall{cpu_ratio}; "
        "certificate on 2048 sampled rows: "
        f"{'ok' if ok else 'FAILED'} (min reduced cost {lo:.2e}, max slack {slack:.2e}, "
        f"tol {m.info['tol']:.1e}); planted partners recovered {rec:.4f}",
        flush=True,
    )
    if ref is not None:
        p_ref, c_ref = ref
        tot_ref, tot_auto = float(c_ref.astype(np.float64).sum()), m.total_cost
        print(
            f"  speed-up over scipy {t_ref / t_auto:.2f}x wall, {u_ref / u_auto:.2f}x CPU; "
            f"total cost scipy {tot_ref:.9g} auto {tot_auto:.9g} "
            f"(rel diff {abs(tot_auto - tot_ref) / tot_ref:.1e}); same pairs "
            f"{(p_ref == m.perm).mean():.4f}"
        )
    info = {k: v for k, v in m.info.items() if k not in ("method", "tol")}
    print(f"  auto details: {info}", flush=True)
    if args.beyond:
        bench_beyond(a, b, args.mode, t_auto, m)
    if not ok:
        raise SystemExit(f"width {n}: the certificate FAILED on sampled rows")


def narrow_of(sae, n: int):
    """The SAE of sae's first n features (a narrower dictionary of the same stream)."""
    from saematch.sae import JumpReLUSAE

    return JumpReLUSAE(
        W_enc=sae.W_enc[:, :n].contiguous(), b_enc=sae.b_enc[:n].clone(),
        W_dec=sae.W_dec[:n].contiguous(), b_dec=sae.b_dec.clone(),
        threshold=sae.threshold[:n].clone(), name=f"{sae.name}[:{n}]",
    )  # fmt: skip


def rect_gemm(a, b, mode: str, block: int = 2048) -> float:
    """Seconds of the float32 GEMM xa @ xb.T of the n × W pair (row blocks, output dropped)."""
    xa = augmented_features(a, mode, "a", fold=True)
    xb = augmented_features(b, mode, "b", fold=True)
    out = np.empty((min(block, len(xa)), len(xb)), dtype=np.float32)
    t0 = time.perf_counter()
    for s in range(0, len(xa), block):
        np.matmul(xa[s : s + block], xb.T, out=out[: min(len(xa), s + block) - s])
    return time.perf_counter() - t0


def bench_rect(args, n: int, wide: int, budget) -> None:
    """The --rect benchmark of one n × W pair (module doc). With --compare the exact matching
    is compare()'s own (timed once, its certificate checked on sampled rows); ratios are to the
    fp32 GEMM of the same pair in this run, in wall and in CPU seconds (a busy machine inflates
    wall time); the process peak is the largest VmHWM of any stage, SAEs included."""
    from saematch.compare import compare
    from saematch.compare.compare import memory_plan
    from saematch.compare.rect import check_rect_certificate, match_rect
    from saematch.matching.budget import resolve_budget, show_bytes

    if wide < n:
        raise SystemExit(f"--rect {wide} must be at least the narrow width {n}")
    A, b, _ = synthetic_pair(args.d_model, wide, args.unmatched, args.noise, args.seed)
    a = narrow_of(A, n)
    del A
    mem = resolve_budget(budget)
    sae_gb = sum(t.numel() * t.element_size() for s in (a, b) for t in s.state_dict().values())
    plan = memory_plan(a, b, args.mode)
    t_gemm, _, c_gemm, _ = measure(lambda: rect_gemm(a, b, args.mode))
    print(
        f"rectangular {n} x {wide}, d_model {args.d_model}, mode {args.mode}, max_memory "
        f"{budget or 'default'} ({mem / 1e9:.1f} GB); SAEs {sae_gb / 1e9:.2f} GB; memory plan "
        f"beyond the SAEs: {', '.join(f'{k} {show_bytes(v)}' for k, v in plan.items())}\n"
        f"  fp32 GEMM of the same pair: {t_gemm:.1f} s wall, {c_gemm:.1f} s CPU",
        flush=True,
    )
    ratio = lambda t, c: f"{t / t_gemm:.2f}x wall, {c / c_gemm:.2f}x CPU"  # noqa: E731
    if args.compare:
        c, t_c, u_c, m_c = measure(
            lambda: compare(a, b, mode=args.mode, certify=False, max_memory=mem, device=args.device)
        )
        m = c.matching
        print(
            f"  compare() in full: {t_c:.1f} s wall, {u_c:.1f} s CPU, +{m_c:.2f} GB peak RSS; "
            f"/ fp32 GEMM: {ratio(t_c, u_c)}; parts (wall s) "
            + ", ".join(f"{k} {v:.1f}" for k, v in c.seconds.items()),
            flush=True,
        )
        print("  " + c.console().replace("\n", "\n  "), flush=True)
        what = "compare()'s exact matching"
    else:
        m, t_r, u_r, m_r = measure(
            lambda: match_rect(a, b, mode=args.mode, max_memory=mem, device=args.device)
        )
        print(
            f"  rectangular exact: {t_r:.1f} s wall, {u_r:.1f} s CPU, +{m_r:.2f} GB peak RSS; "
            f"/ fp32 GEMM: {ratio(t_r, u_r)}",
            flush=True,
        )
        what = "rectangular exact"
    xa = augmented_features(a, args.mode, "a", fold=True)
    xb = augmented_features(b, args.mode, "b", fold=True)
    idx = np.sort(np.random.default_rng(0).choice(n, min(n, 2048), replace=False))
    # float64 costs of the sampled rows in column blocks (no float64 copy of B); the dot's
    # order differs from the padded features the solver proved on: widen tol by its rounding
    norm_a = np.sqrt(np.einsum("ij,ij->i", xa, xa, dtype=np.float64).max())
    norm_b = np.sqrt(np.einsum("ij,ij->i", xb, xb, dtype=np.float64).max())
    tol = m.info["tol"] + 4 * xa.shape[1] * np.finfo(np.float64).eps * norm_a * norm_b
    cost = lambda sl: sampled_rows_cost(xa[idx[sl]], xb)  # noqa: E731
    cert = check_rect_certificate(cost, m.perm[idx], m.duals[0][idx], m.duals[1], tol, block=256)
    # the column conditions from the whole matching (the sampled rows leave most columns free)
    v, free = m.duals[1], np.ones(wide, dtype=bool)
    free[m.perm[m.perm >= 0]] = False
    max_v, min_free = float(v.max()), float(v[free].min()) if free.any() else 0.0
    ok = cert.min_reduced >= -tol and cert.max_slack <= tol and max_v <= tol and min_free >= -tol
    tries = m.info.get("tries") or []  # the stored solver's guesses: its dense rest each
    rests = "; dense rest " + ", ".join(str(t["dense_rest"]) for t in tries) if tries else ""
    print(
        f"  {what} [{m.info.get('method')}, {m.info.get('route')}, {m.info.get('columns', wide)} "
        f"of {wide} wide features solved on{rests}]: certificate on {len(idx)} sampled rows: "
        f"{'ok' if ok else 'FAILED'} (min reduced {cert.min_reduced:.2e}, max slack "
        f"{cert.max_slack:.2e}, max v {max_v:.2e}, min v of free columns {min_free:.2e}, "
        f"tol {tol:.1e})",
        flush=True,
    )
    if n * wide <= args.scipy_below**2:

        def scipy_rect():
            C = xa.astype(np.float64) @ xb.astype(np.float64).T
            r, c = linear_sum_assignment(C)
            return float(C[r, c].sum())

        ref, t_s, u_s, m_s = measure(scipy_rect)
        print(
            f"  scipy rectangular: {t_s:.1f} s wall, {u_s:.1f} s CPU, +{m_s:.2f} GB; total cost "
            f"scipy {ref:.9g} exact {m.total_cost:.9g} "
            f"(rel diff {abs(m.total_cost - ref) / abs(ref):.1e})",
            flush=True,
        )
    print(
        f"  process peak RSS over the run: {PROCESS_PEAK[0]:.2f} GB (SAEs {sae_gb / 1e9:.2f} GB "
        f"of it; max_memory {mem / 1e9:.1f} GB counts what the matching allocates beyond "
        f"them); load average at the end: {os.getloadavg()}",
        flush=True,
    )


def sampled_rows_cost(rows: np.ndarray, xb: np.ndarray, block: int = 8192) -> np.ndarray:
    """(len(rows), W) float64 costs rows · xb.T, B converted to float64 a column block at a time."""
    r64 = rows.astype(np.float64)
    out = np.empty((len(rows), len(xb)))
    for s0 in range(0, len(xb), block):
        out[:, s0 : s0 + block] = r64 @ xb[s0 : s0 + block].astype(np.float64).T
    return out


if __name__ == "__main__":
    main()
