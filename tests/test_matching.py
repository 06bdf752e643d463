"""match(), pair_cost() and the solvers (docs/method.md §3)."""

import numpy as np
import pytest
import torch
from helpers import random_sae
from scipy.optimize import linear_sum_assignment

import saematch.matching.solvers.bound as bound_mod
import saematch.matching.solvers.quantised as quantised
from saematch.matching import match, pair_cost
from saematch.matching.certificate import check_certificate, features_cost_fn
from saematch.matching.cost import augmented_features
from saematch.matching.solvers import AutoSolver, assign
from saematch.planted.synthetic import synthetic_pair
from saematch.sae import JumpReLUSAE


def _direct_cost(a, b, mode, bias_weight=0.0):
    """(F, F) cost by brute force from the formulas of docs/method.md §3 (float64)."""
    a, b = a.to(dtype=torch.float64), b.to(dtype=torch.float64)
    dec = ((a.W_dec[:, None, :] - b.W_dec[None, :, :]) ** 2).mean(-1)
    enc = ((a.W_enc.T[:, None, :] - b.W_enc.T[None, :, :]) ** 2).mean(-1)
    bias = (a.b_enc[:, None] - b.b_enc[None, :]) ** 2
    both = dec + enc + bias_weight * bias  # the paper's cost at bias_weight 0
    return {"decoder": dec, "encoder": enc, "both": both, "bias": bias}[mode]


@pytest.mark.parametrize("bias_weight", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("mode", ["decoder", "encoder", "both", "bias"])
def test_pair_cost_matches_direct(mode, bias_weight):
    a, b = random_sae(5, 7, seed=1), random_sae(5, 7, seed=2)
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    w = bias_weight if mode == "both" else 0.0  # the b_enc term exists only in mode both
    want = _direct_cost(a, b, mode, w)[torch.arange(7), torch.as_tensor(perm)].numpy()
    got = pair_cost(a, b, perm, mode, bias_weight=bias_weight)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("bias_weight", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("mode", ["decoder", "encoder", "both"])
def test_augmented_features_give_the_cost(mode, bias_weight):
    a, b = random_sae(6, 9, seed=3), random_sae(6, 9, seed=4)
    xa, xb = (
        augmented_features(s, mode, side, np.float64, bias_weight=bias_weight)
        for s, side in ((a, "a"), (b, "b"))
    )
    w = bias_weight if mode == "both" else 0.0
    np.testing.assert_allclose(xa @ xb.T, _direct_cost(a, b, mode, w).numpy(), atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["decoder", "encoder", "both"])
def test_folded_features_equal_features_of_the_folded_sae(mode, dtype):
    a = random_sae(6, 9, seed=3)
    for side in "ab":
        direct = augmented_features(a, mode, side, dtype, fold=True)
        assert direct.dtype == dtype
        np.testing.assert_array_equal(direct, augmented_features(a.fold(), mode, side, dtype))
    relu = random_sae(6, 9, seed=2, theta_range=(0.0, 0.0))
    with pytest.raises(ValueError, match=r"threshold\[0\]"):
        augmented_features(relu, mode, "a", fold=True)


@pytest.mark.parametrize("mode", ["decoder", "encoder", "both"])
def test_match_pair_mse_and_total(mode):
    a, b = random_sae(8, 12, seed=5), random_sae(8, 12, seed=6)
    m = match(a, b, mode=mode, fold=True, solver="scipy")
    assert m.perm.dtype == np.int64 and m.pair_mse.dtype == np.float32
    np.testing.assert_allclose(m.pair_mse, pair_cost(a.fold(), b.fold(), m.perm, mode), rtol=1e-6)
    assert m.total_cost == pytest.approx(float(m.pair_mse.sum()), rel=1e-6)
    assert (m.mode, m.fold, m.solver) == (mode, True, "scipy") and m.seconds >= 0
    # optimal: no single swap of two pairs lowers the cost
    c = _direct_cost(a.fold(), b.fold(), mode).numpy()
    base = c[np.arange(12), m.perm].sum()
    for i in range(12):
        for j in range(i + 1, 12):
            p = m.perm.copy()
            p[[i, j]] = p[[j, i]]
            assert c[np.arange(12), p].sum() >= base - 1e-9


def test_planted_permutation_is_recovered():
    a, b, planted = synthetic_pair(d_model=128, width=300, unmatched=0.2, noise=0.2, seed=0)
    m = match(a, b, mode="both")
    has = planted >= 0
    assert (m.perm[has] == planted[has]).mean() > 0.97
    vanilla = pair_cost(a.fold(), b.fold(), np.arange(300), "both")
    assert m.total_cost < 0.5 * vanilla.sum()


def _sae(w_dec, theta, d):
    f = len(theta)
    return JumpReLUSAE(
        W_enc=torch.zeros(d, f),
        b_enc=torch.zeros(f),
        W_dec=torch.as_tensor(w_dec),
        b_dec=torch.zeros(d),
        threshold=torch.as_tensor(theta),
    )


def test_folding_separates_same_direction_different_threshold():
    # A0 and A1 share one direction; A0 fires at θ = 0.2, A1 at θ = 2. B has the same two
    # features swapped. Raw rows tilt by ±ε so unfolded matching prefers the wrong pairing;
    # folded rows (θ·W_dec) differ by 10x in norm, which identifies the partners.
    d, eps = 16, 0.05
    g = torch.Generator().manual_seed(0)
    u, w = torch.randn(2, d, generator=g)
    a = _sae(torch.stack([u + eps * w, u]), [0.2, 2.0], d)
    b = _sae(torch.stack([u + eps * w, u - eps * w]), [2.0, 0.2], d)
    folded = match(a, b, mode="decoder", fold=True).perm
    unfolded = match(a, b, mode="decoder", fold=False).perm
    assert folded.tolist() == [1, 0]
    assert unfolded.tolist() == [0, 1]


def _run(*args, **kw):
    """assign(...) as (perm, info); every answer's certificate is checked on the way."""
    res = assign(*args, **kw)
    cert = check_certificate(features_cost_fn(args[0], args[1]), res.perm, res.u, res.v, res.tol)
    assert cert.ok, cert
    return res.perm, res.info


def _optimum(xa, xb, x):
    return float((xa.astype(np.float64) @ xb.astype(np.float64).T)[np.arange(len(x)), x].sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("width", [40, 150, 400])
def test_auto_and_lapjv_equal_scipy_optimum(seed, width):
    a, b, _ = synthetic_pair(d_model=32, width=width, unmatched=0.3, noise=1.0, seed=seed)
    a, b = a.fold(), b.fold()
    xa, xb = augmented_features(a, "both", "a"), augmented_features(b, "both", "b")
    ref = _optimum(xa, xb, _run(xa, xb, "scipy")[0])
    dense = _optimum(xa, xb, _run(xa, xb, "lapjv")[0])
    # force the streamed certified path with a tiny k, so the proof must repair the guess
    x, info = _run(xa, xb, "auto", dense_below=0, max_dense_bytes=0, k=2)
    assert info["method"] == "streamed-certified"
    assert np.unique(x).size == width
    assert dense == pytest.approx(ref, rel=1e-6)
    assert _optimum(xa, xb, x) == pytest.approx(ref, rel=1e-6)


def test_auto_widens_when_candidates_are_too_few():
    a, b = random_sae(24, 300, seed=7), random_sae(24, 300, seed=8)
    xa, xb = (
        augmented_features(a.fold(), "decoder", "a"),
        augmented_features(b.fold(), "decoder", "b"),
    )
    x, info = _run(xa, xb, "auto", dense_below=0, max_dense_bytes=0, k=1)
    assert info["rounds"] >= 1 and info["exact"] > 0
    ref = _run(xa, xb, "scipy")[0]
    assert _optimum(xa, xb, x) == pytest.approx(_optimum(xa, xb, ref), rel=1e-6)


def test_auto_on_random_square_costs():
    # any cost matrix C is reachable: z_A = I, z_B = −C/2 gives c = C + row/column constants
    rng = np.random.default_rng(0)
    for n in (30, 120):
        c = rng.random((n, n)).astype(np.float32)
        xa = np.hstack(
            [np.eye(n, dtype=np.float32), np.ones((n, 1), np.float32), np.ones((n, 1), np.float32)]
        )
        xb = np.hstack([c.T, np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32)])
        x, _ = _run(xa, xb, "auto", dense_below=0, max_dense_bytes=0, k=3)
        ref = _run(xa, xb, "scipy")[0]
        assert c[np.arange(n), x].sum() == pytest.approx(c[np.arange(n), ref].sum(), rel=1e-6)


def test_errors():
    a = random_sae(8, 12, seed=0)
    with pytest.raises(ValueError, match="widths differ"):
        match(a, random_sae(8, 10, seed=1))
    with pytest.raises(ValueError, match="d_model"):
        match(a, random_sae(6, 12, seed=1))
    with pytest.raises(ValueError, match="unknown matching mode"):
        match(a, a, mode="sideways")
    with pytest.raises(ValueError, match="unknown solver 'greedy'; choose one of auto"):
        match(a, a, solver="greedy")
    with pytest.raises(ValueError, match="unknown solver"):
        match(a, a, solver=lambda xa, xb: None)  # not a Solver object
    with pytest.raises(ValueError, match=r"AutoSolver: k=0 must be a number ≥ 1"):
        AutoSolver(k=0)
    with pytest.raises(ValueError, match="bijection"):
        pair_cost(a, a, np.zeros(12, dtype=np.int64), "decoder")
    relu = random_sae(8, 12, seed=2, theta_range=(0.0, 0.0))
    with pytest.raises(ValueError, match="fold"):
        match(relu, relu, fold=True)
    assert match(relu, relu, fold=False).perm.tolist() == list(range(12))


def _square_cost_features(c):
    n = len(c)
    ones = np.ones((n, 1), np.float32)
    xa = np.hstack([np.eye(n, dtype=np.float32), ones, ones])
    return xa, np.hstack([c.T, ones, np.zeros((n, 1), np.float32)])


@pytest.mark.parametrize("safe_rest", [None, 0])  # 0: start at the narrow margin (as at 16k)
@pytest.mark.parametrize("mode", ["decoder", "encoder", "both"])
@pytest.mark.parametrize("width", [100, 500])
def test_int8_certified_equals_scipy_optimum(mode, width, safe_rest, monkeypatch):
    import saematch.matching.solvers.stored as certified

    if safe_rest is not None:
        monkeypatch.setattr(certified, "SAFE_REST", safe_rest)
    a, b, _ = synthetic_pair(d_model=48, width=width, unmatched=0.25, noise=0.7, seed=width)
    both = mode == "both"  # with the optional b_enc term: the solvers keep it exact
    xa = augmented_features(a.fold(), mode, "a", bias_weight=float(both))
    xb = augmented_features(b.fold(), mode, "b", bias_weight=float(both))
    x, info = _run(xa, xb, "auto", exact_tail=int(both), head_splits=(48,) * both)
    assert info["method"] == "stored-certified" and info["tries"][-1]["scans"] > 0
    first = info["tries"][0]["margin"]
    assert first == (0.25 if safe_rest == 0 else 1.0)  # small rests: the wider margin first
    ref = _run(xa, xb, "scipy")[0]
    assert _optimum(xa, xb, x) == pytest.approx(_optimum(xa, xb, ref), rel=1e-9)


def test_int8_certified_on_random_square_costs():
    rng = np.random.default_rng(5)
    for n in (70, 300):
        c = rng.random((n, n)).astype(np.float32)
        x, info = _run(*_square_cost_features(c), "auto")
        assert info["method"] == "stored-certified"
        ref = linear_sum_assignment(c.astype(np.float64))[1]
        assert c[np.arange(n), x].sum(dtype=np.float64) == pytest.approx(
            c[np.arange(n), ref].sum(dtype=np.float64), rel=1e-9
        )


def test_int8_bound_holds_on_every_pair():
    """The stored cost minus the error bound never exceeds the exact cost (all n² pairs)."""
    from saematch.matching.solvers.quantised import EPS, int8_cost

    a, b, _ = synthetic_pair(d_model=40, width=300, unmatched=0.3, noise=0.6, seed=9)
    xa, xb = (
        augmented_features(a, "both", "a", fold=True, bias_weight=1.0),
        augmented_features(b, "both", "b", fold=True, bias_weight=1.0),
    )
    D = xa.shape[1] - 2
    (G16, gmin, step), (da, qa, _), (db, qb, zb), top = int8_cost(xa, xb, D - 1, (40,), 64)
    exact = xa.astype(np.float64) @ xb.astype(np.float64).T
    tail = np.abs(xa[:, D - 1 : D]).astype(np.float64) @ np.abs(xb[:, D - 1 : D]).max(0)
    lb = (
        gmin[:, None]
        + G16 * step[:, None]
        - da[:, None] * zb[None, :]
        - qa[:, None] * (db + 8 * EPS * qb)[None, :]
        + xa[:, D, None]
        + xb[None, :, D + 1]
        - 8 * EPS * tail[:, None]
    )
    assert (exact >= lb).all()
    width = exact - lb  # the bound is loose (Cauchy–Schwarz) but not absurd
    assert np.median(width) < 0.2 * np.median(np.abs(exact))
    rv, ri, cv, ci = top  # top-2 per row and column of the estimate, best first
    est = gmin[:, None] + G16 * step[:, None] + xa[:, D, None] + xb[None, :, D + 1]
    assert (ri[:, 0] == exact.argmin(1)).mean() > 0.95
    assert (ci[:, 0] == exact.argmin(0)).mean() > 0.95
    assert (rv[:, 0] <= rv[:, 1]).all() and np.isfinite(est).all()


def test_int8_falls_back_when_the_bound_fails(monkeypatch):

    monkeypatch.setattr(quantised, "bound_holds", lambda *a, **k: False)
    monkeypatch.setattr(bound_mod, "bound_holds", lambda *a, **k: False)  # the fp32 backend's
    a, b, _ = synthetic_pair(d_model=48, width=200, seed=1)
    xa, xb = (
        augmented_features(a.fold(), "decoder", "a"),
        augmented_features(b.fold(), "decoder", "b"),
    )
    x, info = _run(xa, xb, "auto")
    assert info["method"] == "streamed-certified"
    assert _optimum(xa, xb, x) == pytest.approx(
        _optimum(xa, xb, _run(xa, xb, "scipy")[0]), rel=1e-9
    )


def test_auto_runs_the_fp32_bound_without_the_int8_gemm(monkeypatch):
    import saematch.matching.solvers.gemm as gemm

    monkeypatch.setattr(gemm, "int8_gemm_available", lambda: False)
    monkeypatch.setattr(gemm, "probe", gemm.probe.__wrapped__)  # uncached: sees no int8 GEMM
    a, b, _ = synthetic_pair(d_model=48, width=150, seed=2)
    xa, xb = (
        augmented_features(a, "both", "a", fold=True, bias_weight=1.0),
        augmented_features(b, "both", "b", fold=True, bias_weight=1.0),
    )
    x, info = _run(xa, xb, "auto", exact_tail=1, head_splits=(48,))
    assert info["method"] == "stored-certified" and info["bound_gemm"] == "fp32"
    assert _optimum(xa, xb, x) == pytest.approx(_optimum(xa, xb, _run(xa, xb, "scipy")[0]))


def test_int8_duals_cancel_the_cycles_of_a_wrong_assignment():
    from saematch.matching.solvers.proof import bound_duals

    n = 120
    c = np.random.default_rng(6).random((n, n)).astype(np.float32)
    xa, xb = _square_cost_features(c)  # c_ij = xa_i · xb_j exactly; zero-width bound
    G16 = np.zeros((n, n), dtype=np.uint16)  # lower bound 0 ≤ c_ij: every pair gets exact
    zero = np.zeros(n)
    cost = lambda p: c[np.arange(n), p].sum(dtype=np.float64)  # noqa: E731
    ref = linear_sum_assignment(c.astype(np.float64))[1]
    for max_cycles, want in ((0, -2), (10_000, None)):
        x = np.arange(n)  # the identity: far from optimal
        bound = (G16, zero, zero, zero, zero, zero, zero, zero, zero)
        scans, _, cycles = bound_duals(
            bound, xa, xb, zero, x, x.copy(), zero.copy(), 1e-12, 100 * n,
            np.full(n, -1, dtype=np.int64), max_cycles,
        )  # fmt: skip
        assert np.array_equal(np.sort(x), np.arange(n)) and cost(x) < cost(np.arange(n))
        if want is not None:  # stopped after the first cancellation round: cheaper already
            assert scans == want and cycles == 1
        else:  # cancelled until optimal, then proven
            assert scans > 0 and cycles > 1
            assert cost(x) == pytest.approx(cost(ref), rel=1e-9)


def test_int8_repairs_a_wrong_guess_by_cancelling_cycles(monkeypatch):
    import saematch.matching.solvers.stored as certified

    real = certified.guess

    def worse(*args, **kw):  # the real guess with kept pairs swapped: not optimal
        x, v, rest = real(*args, **kw)
        x[[0, 1, 2, 3, 4, 5]] = x[[1, 2, 0, 4, 5, 3]]
        return x, v, rest

    monkeypatch.setattr(certified, "guess", worse)
    monkeypatch.setattr(certified, "SAFE_REST", 0)
    a, b, _ = synthetic_pair(d_model=48, width=400, unmatched=0.2, noise=0.5, seed=3)
    xa, xb = (
        augmented_features(t, "both", side, fold=True, bias_weight=1.0)
        for t, side in ((a, "a"), (b, "b"))
    )
    x, info = _run(xa, xb, "auto", exact_tail=1, head_splits=(48,))
    assert info["method"] == "stored-certified" and len(info["tries"]) == 1  # no wider margin
    assert info["tries"][0]["cycles"] >= 1 and info["tries"][0]["scans"] > 0
    ref = _run(xa, xb, "scipy")[0]
    assert _optimum(xa, xb, x) == pytest.approx(_optimum(xa, xb, ref), rel=1e-9)


@pytest.mark.parametrize("threads", [1, 3])
def test_int8_result_does_not_depend_on_the_worker_count(threads):
    a, b, _ = synthetic_pair(d_model=40, width=300, unmatched=0.2, noise=0.5, seed=11)
    xa, xb = (
        augmented_features(s, "both", side, fold=True, bias_weight=1.0)
        for s, side in ((a, "a"), (b, "b"))
    )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, info = _run(xa, xb, "auto", exact_tail=1, head_splits=(40,))
    finally:
        torch.set_num_threads(before)
    assert info["method"] == "stored-certified" and torch.get_num_threads() == before
    ref = _run(xa, xb, "scipy")[0]
    assert _optimum(xa, xb, x) == pytest.approx(_optimum(xa, xb, ref), rel=1e-9)


def test_int8_path_within_its_budget_then_the_streamed_solver(monkeypatch):

    a, b, _ = synthetic_pair(d_model=32, width=200, unmatched=0.2, noise=0.5, seed=4)
    xa, xb = (augmented_features(t, "decoder", side, fold=True) for t, side in ((a, "a"), (b, "b")))
    from saematch.matching.budget import stored_bytes

    budget = stored_bytes(200)  # just fits the stored estimate
    x, info = _run(xa, xb, "auto", max_dense_bytes=budget)
    assert info["method"] == "stored-certified"
    ref = _optimum(xa, xb, _run(xa, xb, "scipy")[0])
    assert _optimum(xa, xb, x) == pytest.approx(ref, rel=1e-9)
    monkeypatch.setattr(quantised, "bound_holds", lambda *a, **k: False)
    monkeypatch.setattr(bound_mod, "bound_holds", lambda *a, **k: False)
    x, info = _run(xa, xb, "auto", max_dense_bytes=budget)
    assert info["method"] == "streamed-certified"
    assert _optimum(xa, xb, x) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("mode", ["decoder", "both"])
def test_int8_handles_dead_and_duplicate_features(mode):
    """Real SAEs have dead features (all-zero weights) and near-copies: ties everywhere."""
    a, b, _ = synthetic_pair(d_model=64, width=600, unmatched=0.2, noise=0.5, seed=5)

    def edited(s):
        W_enc, b_enc, W_dec = s.W_enc.clone(), s.b_enc.clone(), s.W_dec.clone()
        th = s.threshold.clone()
        W_enc[:, :50], W_dec[:50], b_enc[:50] = 0, 0, 0  # dead
        W_enc[:, 100:200], W_dec[100:200] = W_enc[:, :100], W_dec[:100]  # exact copies
        b_enc[100:200], th[100:200] = b_enc[:100], th[:100]
        return JumpReLUSAE(W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, b_dec=s.b_dec, threshold=th)

    both = mode == "both"
    xa = augmented_features(edited(a), mode, "a", fold=True, bias_weight=float(both))
    xb = augmented_features(edited(b), mode, "b", fold=True, bias_weight=float(both))
    x, info = _run(xa, xb, "auto", exact_tail=int(both), head_splits=(64,) * both)
    assert info["method"] == "stored-certified"
    ref = _run(xa, xb, "scipy")[0]
    assert _optimum(xa, xb, x) == pytest.approx(_optimum(xa, xb, ref), rel=1e-9)
