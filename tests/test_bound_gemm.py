"""The bound's GEMM backend (solvers/gemm.py) and the float32 bound (solvers/fp32.py,
docs/method.md §13): the bound holds on every pair, random and adversarial, stored and
streamed; either backend gives scipy's optimum with a valid certificate; the choice is
overridable and checked."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import saematch.matching.solvers.gemm as gemm
from saematch.matching import match
from saematch.matching.certificate import check_certificate, features_cost_fn
from saematch.matching.cost import augmented_features
from saematch.matching.options import MatchOptions
from saematch.matching.solvers import assign
from saematch.matching.solvers.blocks import LowerBound
from saematch.matching.solvers.bound import stored_bound
from saematch.matching.solvers.fp32 import fp32_bound, gamma
from saematch.planted.synthetic import synthetic_pair

INT8 = pytest.mark.skipif(not gemm.int8_gemm_available(), reason="torch has no int8 GEMM")


def _features(mode="both", d=40, n=300, seed=9, bias_weight=1.0, **kw):
    a, b, _ = synthetic_pair(d_model=d, width=n, seed=seed, **kw)
    bw = bias_weight if mode == "both" else 0.0
    xa = augmented_features(a, mode, "a", fold=True, bias_weight=bw)
    xb = augmented_features(b, mode, "b", fold=True, bias_weight=bw)
    layout = {"exact_tail": int(bw > 0), "head_splits": (d,) * (mode == "both")}
    return xa, xb, layout


def _stored_lower(bound) -> np.ndarray:
    """L_ij (n, n) float64 from the stored bound's arrays, as proof.py reads them."""
    G16, gmin, step, E1, F1, E2, F2, rowc, colc = bound
    return (
        gmin[:, None] + G16 * step[:, None] - np.outer(E1, F1) - np.outer(E2, F2)
        + rowc[:, None] + colc[None, :]
    )  # fmt: skip


def _adversarial(kind: str):
    """Features built to stress the bound: huge norms, near-ties, parts of very different
    scale with a large exact tail."""
    xa, xb, lay = _features("both", d=32, n=256, seed=4, unmatched=0.2, noise=0.3)
    D = xa.shape[1] - 2
    g = np.random.default_rng(7)
    if kind == "large":  # norms ~1e6: products ~1e12 in float32
        xa, xb = xa.copy(), xb.copy()
        xa[:, :D] *= 1e6
        xb[:, :D] *= 1e6
    elif kind == "ties":  # B's rows are A's plus a relative 1e-6: every cost near a tie
        xb = xb.copy()
        xb[:, :D] = -2 * xa[:, :D] * (1 + 1e-6 * g.standard_normal(xa[:, :D].shape))
    elif kind == "scales":  # decoder 1e3, encoder 1e-3, b_enc tail 1e4
        xa, xb = xa.copy(), xb.copy()
        for x in (xa, xb):
            x[:, :32] *= 1e3
            x[:, 32:64] *= 1e-3
            x[:, 64:D] *= 1e4
    for x, k in ((xa, D), (xb, D + 1)):  # the norm column: ‖z‖² of the changed z
        z = x[:, :D].astype(np.float64) / (1.0 if x is xa else -2.0)
        x[:, k] = (z * z).sum(1)
    return np.ascontiguousarray(xa), np.ascontiguousarray(xb), lay


@pytest.fixture(params=gemm.FP32_LIBS)
def fp32_lib(request, monkeypatch):
    """Each CPU float32 GEMM library in turn (gemm.cpu_fp32_lib), forced by its variable."""
    monkeypatch.setenv("SAEMATCH_CPU_FP32_LIB", request.param)
    gemm.cpu_fp32_lib.cache_clear()
    yield request.param
    gemm.cpu_fp32_lib.cache_clear()


@pytest.mark.parametrize("kind", ["random", "large", "ties", "scales"])
def test_fp32_bound_holds_on_every_pair(kind, fp32_lib):
    """Exact float64 c ≥ L for all n² pairs, stored (16-bit, rounded down) and streamed, with
    either library's float32 GEMM."""
    if kind == "random":
        xa, xb, lay = _features("both", unmatched=0.3, noise=0.6)
    else:
        xa, xb, lay = _adversarial(kind)
    exact = xa.astype(np.float64) @ xb.astype(np.float64).T
    bound, top2 = fp32_bound(xa, xb, lay["exact_tail"], lay["head_splits"], block=64)
    low = _stored_lower(bound)
    assert (exact >= low).all()
    lb = LowerBound(xa, xb, lay["exact_tail"], lay["head_splits"], "cpu", gemm="fp32")
    streamed = lb.block(slice(0, len(xa))).double().numpy()
    assert (exact >= streamed).all()
    g_frame = lb.block(slice(0, len(xa)), norms=False).double().numpy()
    assert (exact - lb.r[:, None] - lb.s[None, :] >= g_frame).all()
    # not vacuous: the bound is within a small share of the cost's scale
    scale = np.abs(exact).max()
    assert np.median(exact - low) < 1e-3 * scale and np.median(exact - streamed) < 1e-3 * scale
    rv, ri, _, _ = top2
    assert (ri[:, 0] == exact.argmin(1)).mean() > 0.9


@INT8
def test_fp32_bound_is_tighter_than_int8():
    """Measured, not assumed: the float32 bound's width (c − L) is far below the int8 one's."""
    xa, xb, lay = _features("both", unmatched=0.3, noise=0.6)
    exact = xa.astype(np.float64) @ xb.astype(np.float64).T
    widths = {}
    for name in ("fp32", "int8"):
        bound, _, backend = stored_bound(xa, xb, **lay, gemm=name)
        assert backend == name
        widths[name] = np.median(exact - _stored_lower(bound))
    assert widths["int8"] > 10 * widths["fp32"] > 0


def test_gamma_and_three_parts():
    """γ_h as Higham's, rounded up; more than two head parts fold into the bound's two terms."""
    assert gamma(4608) >= 4608 * 2.0**-24 / (1 - 4608 * 2.0**-24)
    with pytest.raises(ValueError, match="2\\^23"):
        gamma(2**23)
    xa, xb, _ = _features("both", d=24, n=200, seed=2)
    exact = xa.astype(np.float64) @ xb.astype(np.float64).T
    bound, _ = fp32_bound(xa, xb, 1, (10, 24, 40), block=32)
    assert (exact >= _stored_lower(bound)).all()


def _scipy_optimum(xa, xb) -> float:
    c = xa.astype(np.float64) @ xb.astype(np.float64).T
    return float(c[linear_sum_assignment(c)].sum())


@pytest.mark.parametrize("backend", ["fp32", pytest.param("int8", marks=INT8)])
@pytest.mark.parametrize("path", ["stored", "streamed"])
@pytest.mark.parametrize("mode", ["decoder", "both"])
def test_auto_with_either_backend_is_scipys_optimum(backend, path, mode, fp32_lib):
    xa, xb, lay = _features(mode, d=32, n=400, seed=5, unmatched=0.25, noise=0.5)
    extra = {"max_dense_bytes": 0} if path == "streamed" else {}
    res = assign(xa, xb, "auto", bound_gemm=backend, **lay, **extra)
    assert res.info["method"] == f"{path}-certified" and res.info["bound_gemm"] == backend
    cert = check_certificate(features_cost_fn(xa, xb), res.perm, res.u, res.v, res.tol)
    assert cert.ok, cert
    c = xa.astype(np.float64) @ xb.astype(np.float64).T
    got = float(c[np.arange(len(c)), res.perm].sum())
    assert got == pytest.approx(_scipy_optimum(xa, xb), rel=1e-9)


def test_the_probe_decides_auto_and_is_overridable(monkeypatch):
    """auto follows the probe; use_bound_gemm / bound_gemm= / match(bound_gemm=) override it."""
    for pick in ("int8", "fp32"):
        monkeypatch.setattr(gemm, "probe", lambda pick=pick: {"auto": pick})
        assert gemm.bound_gemm() == pick
        with gemm.use_bound_gemm("fp32"):
            assert gemm.bound_gemm() == "fp32"
        assert gemm.bound_gemm("fp32") == "fp32"
        for works, want in ((True, "int8"), (False, "fp32")):  # a GPU: its own int8 check
            monkeypatch.setattr(gemm, "cuda_int8_gemm_available", lambda w=works: w)
            assert gemm.bound_gemm("auto", "cuda") == want  # tensor cores: no CPU probe there
        if gemm.int8_gemm_available():
            with gemm.use_bound_gemm("int8"):
                assert gemm.bound_gemm() == "int8"
    monkeypatch.undo()
    a, b, _ = synthetic_pair(d_model=24, width=120, seed=1)
    ms = {g: match(a, b, mode="decoder", bound_gemm=g, confidence=False, top_k=0,
                   splits=False) for g in ("fp32", "auto")}  # fmt: skip
    assert ms["fp32"].info["bound_gemm"] == "fp32"
    assert ms["auto"].info["bound_gemm"] == gemm.probe()["auto"]
    np.testing.assert_array_equal(ms["fp32"].perm, ms["auto"].perm)


def test_probe_without_int8_gemm_picks_fp32(monkeypatch):
    monkeypatch.setattr(gemm, "int8_gemm_available", lambda: False)
    out = gemm.probe.__wrapped__()
    assert out["auto"] == "fp32" and out["why"] == "no int8 GEMM"
    with pytest.raises(ValueError, match="no working int8 GEMM"):
        gemm.bound_gemm("int8")


def test_probe_times_both_gemms():
    """The real probe on this machine: both timings measured, auto = int8 only if faster."""
    out = gemm.probe()
    if out["why"] == "no int8 GEMM":
        pytest.skip("torch has no int8 GEMM")
    assert out["int8_s"] > 0 and out["fp32_s"] > 0
    assert out["auto"] == ("int8" if gemm.INT8_MARGIN * out["int8_s"] < out["fp32_s"] else "fp32")
    desc = gemm.cpu_description()
    assert desc["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="bound_gemm 'bf16'.*auto, int8, fp32"):
        MatchOptions(bound_gemm="bf16")
    xa, xb, lay = _features("decoder", n=100)
    with pytest.raises(ValueError, match="unknown matching.bound_gemm"):
        assign(xa, xb, "auto", bound_gemm="int4")
    with pytest.raises(ValueError, match="unknown matching.bound_gemm"), gemm.use_bound_gemm("x"):
        pass


def test_cpu_fp32_lib_is_measured_or_set(monkeypatch):
    """Unset: the probe picks a library it timed (logged); set: the variable, checked."""
    monkeypatch.delenv("SAEMATCH_CPU_FP32_LIB", raising=False)
    gemm.cpu_fp32_lib.cache_clear()
    assert gemm.cpu_fp32_lib() in gemm.FP32_LIBS
    a = torch.randn(70, 33)
    b = torch.randn(33, 50)
    want = a.double() @ b.double()
    for lib in gemm.FP32_LIBS:
        monkeypatch.setenv("SAEMATCH_CPU_FP32_LIB", lib)
        gemm.cpu_fp32_lib.cache_clear()
        assert gemm.cpu_fp32_lib() == lib
        out = torch.empty(70, 50)
        assert gemm.fp32_mm(a, b, out=out) is out
        for got in (out, gemm.fp32_mm(a, b), gemm.fp32_mm(a[:, :20], b[:20])):
            assert got.dtype == torch.float32
        np.testing.assert_allclose(out.double().numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
        strided = gemm.fp32_mm(a[:, :20], b.T[:, :20].T)  # views read in place
        np.testing.assert_allclose(strided.numpy(), (a[:, :20] @ b[:20]).numpy(), atol=1e-4)
    monkeypatch.setenv("SAEMATCH_CPU_FP32_LIB", "mkl")
    gemm.cpu_fp32_lib.cache_clear()
    with pytest.raises(ValueError, match="SAEMATCH_CPU_FP32_LIB='mkl': choose one of numpy"):
        gemm.cpu_fp32_lib()
    gemm.cpu_fp32_lib.cache_clear()
