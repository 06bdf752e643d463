"""Which GEMM computes the solvers' lower bound: int8 (quantised) or float32 (docs/method.md §13).

Both give a rigorous bound c_ij ≥ L_ij, so the certified optimum is the same either way; they
differ in speed and width. int8 (quantised.py, blocks.py) pays off only where torch's int8
GEMM is a fast kernel (oneDNN on VNNI / AMX CPUs, CUDA): on AVX2-only CPUs torch 2.13 runs
a naive loop, 15–180× slower than its float32 GEMM. float32 (fp32.py) is ~30× tighter.

`auto` picks int8 only when torch's int8 GEMM exists, is correct, and a timed probe finds it
clearly faster per multiply-add than the float32 GEMM on this CPU (INT8_MARGIN, robust to a
loaded machine: a tie goes to float32); the answer is cached per process. `use_bound_gemm`
sets the choice for a block of code (match() does, from `matching.bound_gemm`); the solvers
read it with `bound_gemm()` in the calling thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import time

import numpy as np
import torch

log = logging.getLogger(__name__)

BOUND_GEMMS = ("auto", "int8", "fp32")
INT8_MARGIN = 1.3  # auto: int8 only when its probe GEMM is this many times faster
PROBE_SHAPE = (128, 2304, 1024)  # (m, k, n): a row block of d_model 2304 against 1024 columns
SCOUT_ROWS, SCOUT_COLS = 16, 256  # int8 first on a tile 32× smaller: a naive loop shows at once
SCOUT_MARGIN = 4.0  # ... slower per multiply-add than float32 by this much: float32, no more
_CHOICE: contextvars.ContextVar[str] = contextvars.ContextVar("bound_gemm", default="auto")


def check_bound_gemm(name) -> str:
    """name if it is a known backend, else ValueError saying the choices."""
    if not isinstance(name, str) or name not in BOUND_GEMMS:
        raise ValueError(
            f"unknown matching.bound_gemm {name!r}; choose one of {', '.join(BOUND_GEMMS)} "
            "(auto: int8 only where torch's int8 GEMM is measured faster than float32)"
        )
    return name


@functools.cache
def int8_gemm_available() -> bool:
    """torch's int8 GEMM on this build (a private op: checked against numpy, never assumed)."""
    g = np.random.default_rng(0)
    a = g.integers(-127, 128, (17, 64), dtype=np.int8)
    b = g.integers(-127, 128, (24, 64), dtype=np.int8)
    try:
        out = torch._int_mm(torch.from_numpy(a), torch.from_numpy(b).T).numpy()
    except (AttributeError, RuntimeError):
        return False
    return bool(np.array_equal(out, a.astype(np.int64) @ b.astype(np.int64).T))


def _best_time(fn, repeats: int, give_up: float) -> float:
    """The fastest of `repeats` timed calls; stops early once a call takes over `give_up` s."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if best > give_up:
            break
    return best


@functools.cache
def probe() -> dict:
    """Seconds of one float32 and one int8 GEMM of PROBE_SHAPE (best of 3 each), and the
    backend `auto` picks: int8 when INT8_MARGIN × faster. The int8 GEMM runs on a small tile
    first: SCOUT_MARGIN× slower per multiply-add (torch's naive loop on AVX2 CPUs: ~16×)
    decides at once, in ms. Cached per process; logged."""
    m, k, n = PROBE_SHAPE
    if not int8_gemm_available():
        return {"int8_s": None, "fp32_s": None, "auto": "fp32", "why": "no int8 GEMM"}
    g = torch.Generator().manual_seed(0)
    fa, fb = torch.randn((m, k), generator=g), torch.randn((n, k), generator=g)
    qa, qb = (torch.randint(-127, 128, t.shape, generator=g, dtype=torch.int8) for t in (fa, fb))
    torch.mm(fa, fb.T)  # first calls: library set-up, not timed
    torch._int_mm(qa[:32, :64], qb[:32, :64].T)
    t32 = _best_time(lambda: torch.mm(fa, fb.T), 3, float("inf"))
    sa, sb = qa[:SCOUT_ROWS], qb[:SCOUT_COLS]
    scout = _best_time(lambda: torch._int_mm(sa, sb.T), 2, float("inf"))
    t8 = scout * (m * n) / (SCOUT_ROWS * SCOUT_COLS)  # per multiply-add, scaled to the probe's
    out = {"int8_s": t8, "fp32_s": t32, "why": "scout"}
    if t8 <= SCOUT_MARGIN * t32:
        out.update(int8_s=_best_time(lambda: torch._int_mm(qa, qb.T), 3, 10 * t32), why="probe")
    out["auto"] = "int8" if INT8_MARGIN * out["int8_s"] < t32 else "fp32"
    log.info("bound GEMM probe %s: int8 %.4f s, float32 %.4f s per %s -> auto = %s",
             out["why"], out["int8_s"], t32, PROBE_SHAPE, out["auto"])  # fmt: skip
    return out


@functools.cache
def cuda_int8_gemm_available() -> bool:
    """torch's int8 GEMM on the current CUDA device (cuBLASLt's int8 tensor-core kernel: m > 16,
    k and n multiples of 8), checked against numpy once per process."""
    if not torch.cuda.is_available():
        return False
    g = np.random.default_rng(0)
    a = g.integers(-127, 128, (32, 64), dtype=np.int8)
    b = g.integers(-127, 128, (24, 64), dtype=np.int8)
    try:
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        out = torch._int_mm(ta, tb.T).cpu().numpy()
    except (AttributeError, RuntimeError):
        return False
    return bool(np.array_equal(out, a.astype(np.int64) @ b.astype(np.int64).T))


def bound_gemm(name: str | None = None, device="cpu") -> str:
    """The backend to run on `device`: "int8" or "fp32". name None: the one `use_bound_gemm`
    set (default auto); auto: on the CPU the probe's choice, on a CUDA device int8 whenever its
    int8 GEMM works (a tensor-core kernel there, ~2x the float32 GEMM's throughput even with
    TF32; the probe times the CPU, so it does not decide for a GPU). ValueError for an unknown
    name or int8 without one."""
    name = check_bound_gemm(_CHOICE.get() if name is None else name)
    cuda = torch.device(device).type == "cuda"
    if name == "auto":
        if cuda:
            return "int8" if cuda_int8_gemm_available() else "fp32"
        return probe()["auto"]
    if name == "int8" and cuda and not cuda_int8_gemm_available():
        raise ValueError(
            "matching.bound_gemm=int8 but torch's int8 GEMM does not work on this GPU; use "
            "bound_gemm=auto or fp32"
        )
    if name == "int8" and not cuda and not int8_gemm_available():
        raise ValueError(
            "matching.bound_gemm=int8 but this torch build has no working int8 GEMM "
            "(torch._int_mm); use bound_gemm=auto or fp32"
        )
    return name


@contextlib.contextmanager
def use_bound_gemm(name: str):
    """Within the block, bound_gemm() (no name) resolves `name` (auto | int8 | fp32)."""
    token = _CHOICE.set(check_bound_gemm(name))
    try:
        yield
    finally:
        _CHOICE.reset(token)


FP32_LIBS = ("numpy", "torch")
FP32_PROBE_SHAPE = (256, 2304, 2048)  # (m, k, n): big enough for both libraries' threads
FP32_MARGIN = 1.1  # numpy only when this many times faster: a tie keeps torch


@functools.cache
def cpu_fp32_lib() -> str:
    """The library whose float32 GEMM the bound runs on the CPU: numpy's BLAS (OpenBLAS in the
    numpy wheels) or torch's (MKL in torch's x86 wheels), the faster on FP32_PROBE_SHAPE with
    each one's default threads (best of 3). Measured, not assumed: on an AMD EPYC (AVX2, torch
    2.13) MKL ran ~35 GFLOP/s per thread where OpenBLAS ran ~55, one thread each under the
    same load (docs/benchmarks.md). Either
    computes fl32 dots in some order, which is all the float32 bound assumes (fp32.py).
    The environment variable SAEMATCH_CPU_FP32_LIB=numpy|torch sets it instead (benchmarks).
    Cached per process; logged."""
    forced = os.environ.get("SAEMATCH_CPU_FP32_LIB")
    if forced:
        if forced not in FP32_LIBS:
            raise ValueError(
                f"SAEMATCH_CPU_FP32_LIB={forced!r}: choose one of {', '.join(FP32_LIBS)}, or unset "
                "it to let saematch measure which is faster here"
            )
        return forced
    m, k, n = FP32_PROBE_SHAPE
    g = np.random.default_rng(0)
    a, b = g.standard_normal((m, k), dtype=np.float32), g.standard_normal((n, k), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    t_torch, t_numpy = float("inf"), float("inf")
    with ieee_fp32():
        torch.mm(ta, tb.T)  # first calls: library set-up, not timed
        np.matmul(a, b.T)
        for _ in range(3):  # interleaved: a loaded machine slows both alike
            t_torch = min(t_torch, _best_time(lambda: torch.mm(ta, tb.T), 1, float("inf")))
            t_numpy = min(t_numpy, _best_time(lambda: np.matmul(a, b.T), 1, float("inf")))
    lib = "numpy" if FP32_MARGIN * t_numpy < t_torch else "torch"
    log.info("float32 GEMM probe: numpy %.4f s, torch %.4f s per %s -> %s",
             t_numpy, t_torch, FP32_PROBE_SHAPE, lib)  # fmt: skip
    return lib


def fp32_mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b in IEEE float32 (no TF32): on the CPU by cpu_fp32_lib()'s library (strided views
    read in place by either), elsewhere by torch. out: a float32 tensor to write into."""
    if a.device.type == "cpu" and cpu_fp32_lib() == "numpy":
        if out is None:
            return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
        np.matmul(a.numpy(), b.numpy(), out=out.numpy())
        return out
    with ieee_fp32():
        return a @ b if out is None else torch.mm(a, b, out=out)


@contextlib.contextmanager
def ieee_fp32():
    """float32 matmuls in full IEEE float32 within the block (no TF32 / bf16 passes, which a
    user's `set_float32_matmul_precision("high")` would allow): the fp32 bound assumes it."""
    old = torch.get_float32_matmul_precision()
    if old == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def cpu_description() -> dict:
    """The CPU model (/proc/cpuinfo), torch's CPU capability, and the probe: for bench headers."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), model)
    return {"cpu": model, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "fp32_lib": cpu_fp32_lib(), **probe()}  # fmt: skip
