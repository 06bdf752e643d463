"""The streamed solver's device code: on a CUDA GPU (tests marked gpu, skipped without one:
`make gpu-check` runs them) and the same torch code on the CPU (always run, so CI covers its
logic): the certified optimum of scipy, the int8 kernel's small-m padding, where tensors live."""

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import saematch.matching.solvers.candidates as cands
import saematch.matching.solvers.dispatch as dispatch
import saematch.matching.solvers.streamed as streamed
from saematch.matching import check_matching, match
from saematch.matching.certificate import check_certificate, features_cost_fn
from saematch.matching.cost import augmented_features, cost_layout
from saematch.matching.solvers.blocks import LowerBound, int8_matmul
from saematch.planted.synthetic import synthetic_pair

gpu = pytest.mark.gpu


def features(mode: str, d: int, n: int, seed: int, unmatched: float = 0.3):
    a, b, _ = synthetic_pair(d, n, unmatched, 0.6, seed)
    xa = augmented_features(a, mode, "a", fold=True)
    xb = augmented_features(b, mode, "b", fold=True)
    return a, b, xa, xb


def scipy_total(xa, xb) -> float:
    c = xa.astype(np.float64) @ xb.astype(np.float64).T
    r, col = linear_sum_assignment(c)
    return float(c[r, col].sum())


def solve(xa, xb, mode: str, d: int, device: str, gemm=None, **kw):
    """The streamed solver (its certificate checked on every pair) and its float64 total."""
    res = streamed.streamed_certified_assign(
        xa, xb, **cost_layout(d, mode), block=32, device=device, gemm=gemm, **kw
    )
    assert check_certificate(features_cost_fn(xa, xb), res.perm, res.u, res.v, res.tol).ok
    total = float(
        np.einsum("ij,ij->i", xa.astype(np.float64), xb[res.perm].astype(np.float64)).sum()
    )
    return res, total


def rest_route(route: str) -> dict:
    """The streamed solver's option that sends its rest down `route` (dense | sparse), and the
    info key that says which ran: `rest=` where the solver has it (the sparse-rest change),
    else the dense sub-cost's byte limit."""
    if "rest" in inspect.signature(streamed.streamed_certified_assign).parameters:
        return {"rest": route}
    return {"dense_rest_bytes": 0 if route == "sparse" else 2**40}


def rest_ran(info: dict) -> str:
    """dense | sparse: how the streamed solver solved its rest (either info layout)."""
    if "rest_route" in info:
        return info["rest_route"]
    return "dense" if info["rest_solved_dense"] else "sparse"


def test_device_column_topk_equals_the_host_pool():
    """DeviceColumnTopK (the GPU's) keeps the same k smallest per column and the same C_j as
    the host pool, over blocks given by first row or by row indices, with fewer rows than k."""
    g = torch.Generator().manual_seed(0)
    for n, k, rows in ((50, 4, 7), (300, 16, 64), (40, 16, 5)):
        host, dev = cands.ColumnTopK(n, k), cands.DeviceColumnTopK(n, k, "cpu")
        assert host.on_device is None
        order = torch.randperm(rows * 6, generator=g).numpy()
        for t in range(6):
            low = torch.randn((rows, n), generator=g)
            row0 = t * rows if t % 2 else order[t * rows : (t + 1) * rows]
            host.add(low.clone(), row0)
            dev.add(low.clone(), row0)
        (hr, hc, hb), (dr, dc, db) = host.result(), dev.result()
        np.testing.assert_array_equal(hb, db)
        assert sorted(zip(hc, hr, strict=True)) == sorted(zip(dc, dr, strict=True))
        assert host.on_device is None  # CPU blocks: the host pool


@pytest.mark.parametrize("mode", ["decoder", "both"])
def test_streamed_solver_gpu_code_on_the_cpu(mode, monkeypatch):
    """Every torch branch a GPU takes (no numba bound, torch top-2, the column top-k kept on the
    device, the sparse rest guess), run on the CPU: scipy's optimum, certified."""
    d, n = 24, 400
    _, _, xa, xb = features(mode, d, n, seed=5)
    ref = scipy_total(xa, xb)
    monkeypatch.setattr(LowerBound, "_fused", lambda self: None)
    monkeypatch.setattr(cands, "NUMBA_TOP2", False)
    monkeypatch.setattr(cands, "HOST_COLUMN_POOL", False)  # the pool a GPU keeps
    res, total = solve(xa, xb, mode, d, "cpu", gemm="int8", **rest_route("sparse"))  # a GPU's
    assert res.info["bound_gemm"] == "int8"
    assert rest_ran(res.info) == "sparse" and res.info["rest"] > 0
    assert total == pytest.approx(ref, rel=1e-9)


def test_int8_matmul_small_m_on_the_cpu():
    """int8_matmul is exact for every m (the CUDA padding path is exercised by the gpu test)."""
    g = torch.Generator().manual_seed(1)
    bt = torch.randint(-127, 128, (40, 24), dtype=torch.int8, generator=g)
    for m in (1, 16, 17, 33):
        a = torch.randint(-127, 128, (m, 40), dtype=torch.int8, generator=g)
        out = int8_matmul(a, bt)
        assert out.shape == (m, 24) and out.dtype == torch.int32
        assert torch.equal(out.long(), a.long() @ bt.long())


def test_a_gpu_bounds_with_int8(monkeypatch):
    """bound_gemm=auto: the CPU's probe decides for the CPU only; on a CUDA device auto is int8
    wherever its int8 GEMM works (tensor cores), float32 where it does not."""
    from saematch.matching.solvers import gemm

    monkeypatch.setattr(gemm, "cuda_int8_gemm_available", lambda: True)
    assert gemm.bound_gemm("auto", "cuda") == "int8"
    assert gemm.bound_gemm("auto", torch.device("cuda", 0)) == "int8"
    assert gemm.bound_gemm("auto", "cpu") == gemm.probe()["auto"]
    with gemm.use_bound_gemm("auto"):
        assert gemm.bound_gemm(None, "cuda") == "int8"
    assert gemm.bound_gemm("fp32", "cuda") == "fp32"  # asked for: kept
    monkeypatch.setattr(gemm, "cuda_int8_gemm_available", lambda: False)
    assert gemm.bound_gemm("auto", "cuda") == "fp32"
    with pytest.raises(ValueError, match="does not work on this GPU"):
        gemm.bound_gemm("int8", "cuda")


def test_plan_never_picks_the_stored_path_on_cuda():
    """The stored 16-bit estimate is a CPU path; a GPU streams at every width it can."""
    assert dispatch.plan(4096, 2304, "auto", 6 * 10**9, "cuda")[0] == "streamed"
    assert dispatch.plan(4096, 2304, "auto", 6 * 10**9, "cpu")[0] == "stored"


def test_gpu_memory_plan():
    """On a GPU the row block also fits its free memory: 1M wide fits 80 GB in blocks of 256,
    a small GPU gets smaller blocks, and one too small a MemoryError that says GPU."""
    from saematch.matching.budget import streamed_gpu_bytes

    n, D, host = 2**20, 2304, 64 * 10**9
    assert dispatch.plan(n, D, "auto", host, "cuda", gpu_bytes=80 * 10**9) == ("streamed", 256)
    assert streamed_gpu_bytes(n, D, 256, gemm="fp32") > streamed_gpu_bytes(n, D, 256) + 14e9
    small = streamed_gpu_bytes(n, D, 64)
    assert dispatch.plan(n, D, "auto", host, "cuda", gpu_bytes=small) == ("streamed", 64)
    with pytest.raises(MemoryError, match="on the GPU needs about .* free on it"):
        dispatch.plan(n, D, "auto", host, "cuda", gpu_bytes=8 * 10**9)
    assert dispatch.plan(n, D, "auto", host, "cpu", gpu_bytes=1)[0] == "streamed"  # CPU: unused


# -- on a CUDA GPU ------------------------------------------------------------------------------
@gpu
@pytest.mark.parametrize("m", [1, 7, 16, 17, 64])
def test_cuda_int8_matmul_pads_m_up_to_16(m):
    """torch._int_mm on CUDA needs m > 16 (k, n multiples of 8): int8_matmul pads and slices;
    its int32 products are exact."""
    g = torch.Generator().manual_seed(m)
    a = torch.randint(-127, 128, (m, 2312), dtype=torch.int8, generator=g)
    bt = torch.randint(-127, 128, (2312, 64), dtype=torch.int8, generator=g)
    out = int8_matmul(a.cuda(), bt.cuda())
    assert out.is_cuda and out.shape == (m, 64) and out.dtype == torch.int32
    assert torch.equal(out.cpu().long(), a.long() @ bt.long())


@gpu
@pytest.mark.parametrize(("mode", "n"), [("decoder", 600), ("both", 600), ("decoder", 301)])
def test_cuda_streamed_solver_equals_scipy(mode, n):
    """The streamed solver on the GPU (n not a multiple of 8: B's int8 copy padded) reaches
    scipy's optimum, certified on every pair, with the rest dense or sparse."""
    d = 48
    _, _, xa, xb = features(mode, d, n, seed=7)
    ref = scipy_total(xa, xb)
    for route in ("dense", "sparse"):
        res, total = solve(xa, xb, mode, d, "cuda", **rest_route(route))
        assert res.info["device"].startswith("cuda") and rest_ran(res.info) == route
        assert res.info["bound_gemm"] == "int8"
        assert total == pytest.approx(ref, rel=1e-9)


@gpu
def test_cuda_memory_stays_within_the_plan():
    """The GPU's peak (torch's allocator) over a streamed solve at d_model 2304, the rest dense
    and sparse, stays under budget.streamed_gpu_bytes, the estimate plan() checks."""
    from saematch.matching.budget import streamed_gpu_bytes
    from saematch.planted.synthetic_stream import synthetic_features

    n, d = 16384, 2304
    xa, xb, _ = synthetic_features(d, n, "decoder", seed=1)
    for route in ("dense", "sparse"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        res = streamed.streamed_certified_assign(
            xa, xb, block=256, device="cuda", **rest_route(route)
        )
        peak = torch.cuda.max_memory_allocated() - base
        assert res.info["bound_gemm"] == "int8"
        assert peak <= streamed_gpu_bytes(n, d, 256), (route, peak, streamed_gpu_bytes(n, d, 256))


@gpu
def test_cuda_placement_and_match():
    """The bound's int8 copies and per-row terms live on the GPU, its blocks come back there,
    the bound holds on every pair; match(device="cuda") streams and certifies."""
    a, b, xa, xb = features("decoder", 32, 256, seed=2)
    lb = LowerBound(xa, xb, device="cuda")
    assert lb.gemm == "int8" and lb.fused is None  # auto on a GPU: the int8 tensor-core route
    assert all(t.is_cuda and t.dtype == torch.int8 for t in (*lb.qa, *lb.qbt))
    assert lb.E1.is_cuda and lb.rho.is_cuda
    low = lb.block(slice(0, 256))
    assert low.is_cuda and low.dtype == torch.float32
    exact = xa.astype(np.float64) @ xb.astype(np.float64).T
    assert (exact >= low.double().cpu().numpy()).all()
    m = match(a, b, mode="decoder", device="cuda", confidence=False, top_k=0, splits=False)
    assert m.info["method"] == "streamed-certified" and m.info["device"].startswith("cuda")
    assert m.info["bound_gemm"] == "int8"
    assert check_matching(a, b, m).ok
    cpu = match(a, b, mode="decoder", device="cpu", confidence=False, top_k=0, splits=False)
    assert m.total_cost == pytest.approx(cpu.total_cost, rel=1e-12)


# -- the benchmark's GPU route (scripts/bench_matching.py) --------------------------------------
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_matching", SCRIPTS / "bench_matching.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_solves_chunked_features_and_checks_the_certificate():
    """--chunked's route on the CPU: the solver on generated features (match()'s budget and
    layout), the sampled float64 certificate passes, and fails once a dual is nudged."""
    from saematch.planted.synthetic_stream import synthetic_features

    bench = _bench()
    xa, xb, planted = synthetic_features(32, 300, "both", seed=4)
    m = bench.solve_features(xa, xb, 32, "both", "1GB", "cpu")
    a, b, _ = synthetic_pair(32, 300, 0.2, 0.5, 4)
    ref = match(a, b, mode="both", solver="scipy", confidence=False, top_k=0, splits=False)
    assert m.total_cost == pytest.approx(ref.total_cost, rel=1e-6)
    ok, lo, slack = bench.sampled_certificate(xa, xb, m, rows=100)
    assert ok and lo >= -m.info["tol"] and slack <= m.info["tol"]
    m.duals[0][np.flatnonzero(planted >= 0)] += 1e-3  # u too high: reduced costs go negative
    assert not bench.sampled_certificate(xa, xb, m, rows=300)[0]


@gpu
def test_bench_on_cuda_runs_end_to_end(tmp_path):
    """The bench's --device cuda --chunked route at small widths (one GEMM in full with its
    scaled check, one scaled): exits 0 and prints a certified ratio per width."""
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_matching.py"), "--device", "cuda", "--chunked",
         "--widths", "512", "1024", "--d-model", "64", "--gemm-full-below", "600",
         "--gemm-rows", "256"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("certificate on 2048 sampled rows: ok") == 2
    assert "scaled from its first 256 rows" in out.stdout and "GPU peak" in out.stdout
