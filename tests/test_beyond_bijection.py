"""Partial matching, confidence, predecessors, splits and the null model (beyond the bijection)."""

import importlib
import itertools

import numpy as np
import pytest
from helpers import random_sae
from scipy.optimize import linear_sum_assignment

from saematch.matching import match, match_beyond, parse_unmatched
from saematch.matching.beyond.confidence import pair_analysis
from saematch.matching.beyond.null import null_kappa, random_rotation
from saematch.matching.beyond.partial import partial_assign, squared_norms
from saematch.matching.beyond.splits import detect_splits
from saematch.matching.cost import augmented_features
from saematch.matching.solvers.gemm import use_bound_gemm
from saematch.planted.planted_pair import planted_pair


def _features(a, b, mode="both"):
    xa = augmented_features(a, mode, "a", np.float32, fold=True)
    xb = augmented_features(b, mode, "b", np.float32, fold=True)
    return xa, xb


def _dense(xa, xb):
    return xa.astype(np.float64) @ xb.astype(np.float64).T


def _padded_optimum(c, ta, tb):
    """Reference for (P): the 2n × 2n LAP with dummy rows/columns at the reject costs."""
    n = c.shape[0]
    big = np.full((2 * n, 2 * n), 0.0)
    big[:n, :n] = c
    big[:n, n:] = np.where(np.eye(n, dtype=bool), ta[:, None], 1e9)  # row i -> its dummy
    big[n:, :n] = np.where(np.eye(n, dtype=bool), tb[None, :], 1e9)  # column j <- its dummy
    r, k = linear_sum_assignment(big)
    return big[r, k].sum()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rho", [0.3, 0.8, 1.0])
@pytest.mark.parametrize("quantised", [True, False])
def test_partial_is_the_exact_optimum_of_the_reject_problem(seed, rho, quantised):
    a, b = random_sae(6, 24, seed=seed), random_sae(6, 24, seed=seed + 50)
    xa, xb = _features(a, b)
    with use_bound_gemm("int8"):  # the int8 route's candidates (fp32: the float32 pass)
        perm, pair, info = partial_assign(xa, xb, rho, 5, 1, (6,), quantised=quantised)
    assert info["candidates"] == ("int8-bound" if quantised else "float32-pass")
    r, s = squared_norms(xa, xb)
    ta, tb = rho * r, rho * s
    c = _dense(xa, xb)
    want = _padded_optimum(c, ta, tb)
    assert info["objective"] == pytest.approx(want, rel=1e-7)  # c: distance vs dot form
    # ... and equals the bijection on the clamped cost (docs/method.md §10's equivalence)
    clamped = np.minimum(c, ta[:, None] + tb[None, :])
    rr, kk = linear_sum_assignment(clamped)
    assert clamped[rr, kk].sum() == pytest.approx(want, rel=1e-9)
    m = perm >= 0
    np.testing.assert_allclose(pair[m], c[np.flatnonzero(m), perm[m]], rtol=1e-5)
    assert np.isnan(pair[~m]).all()
    assert len(np.unique(perm[m])) == m.sum()


def test_dense_route_when_most_pairs_beat_rejection(monkeypatch):
    import saematch.matching.beyond.partial as partial_mod

    a, b = random_sae(6, 40, seed=5), random_sae(6, 40, seed=6)
    xa, xb = _features(a, b)
    want = partial_assign(xa, xb, 0.9)
    monkeypatch.setattr(partial_mod, "MAX_EDGES_PER_ROW", 0)  # every graph counts as dense
    got = partial_assign(xa, xb, 0.9)
    assert got[2]["candidates"] == "dense-clamped" and got[2]["proven"]
    np.testing.assert_array_equal(got[0], want[0])
    assert got[2]["objective"] == pytest.approx(want[2]["objective"], rel=1e-9)


@pytest.mark.parametrize("dense", [False, True])
def test_rectangular_partial_equals_the_padded_square(monkeypatch, dense):
    import saematch.matching.beyond.partial as partial_mod

    a, b = random_sae(6, 40, seed=7), random_sae(6, 40, seed=8)
    xa, xb = _features(a, b)
    narrow = xa[:15]
    padded = np.zeros_like(xa)  # zero features: r = 0, rejected at cost 0, never kept
    padded[:15], padded[15:, -1] = narrow, 1.0
    if dense:
        monkeypatch.setattr(partial_mod, "MAX_EDGES_PER_ROW", 0)
    perm, pair, info = partial_assign(narrow, xb, 0.8)
    want, _, winfo = partial_assign(padded, xb, 0.8)
    assert info["candidates"] == ("dense-clamped" if dense else "float32-pass")
    assert perm.shape == (15,) and info["proven"]
    assert info["objective"] == pytest.approx(winfo["objective"], rel=1e-9)
    np.testing.assert_array_equal(perm, want[:15])
    assert (want[15:] == -1).all()
    with pytest.raises(ValueError, match="no wider than side b"):
        partial_assign(xb, narrow, 0.8)


def test_float32_pass_stays_sparse_for_features_of_small_norm():
    """The pass's error bound scales with the features, not with the cost's constant columns:
    where ‖z‖² ≪ γ a bound by ‖x‖‖y‖ (x = [z, r, 1]: ≈ 1) let most pairs through (dense route)."""
    a, b = random_sae(32, 200, seed=3), random_sae(32, 200, seed=4)
    xa, xb = _features(a, b, "decoder")
    D = xa.shape[1] - 2
    for x, col in ((xa, D), (xb, D + 1)):  # scale z by 1e-3: ‖z‖² by 1e-6
        x[:, :D] *= 1e-3
        x[:, col] *= 1e-6
    perm, _, info = partial_assign(xa, xb, 0.5)
    assert info["candidates"] == "float32-pass" and info["edges"] <= 4 * len(xa)
    r, s = squared_norms(xa, xb)
    assert info["objective"] == pytest.approx(_padded_optimum(_dense(xa, xb), 0.5 * r, 0.5 * s))


def test_partial_extremes():
    a, b = random_sae(6, 20, seed=1), random_sae(6, 20, seed=2)
    xa, xb = _features(a, b)
    assert (partial_assign(xa, xb, 0.0)[0] == -1).all()  # free to leave: nothing is matched
    perm, _, _ = partial_assign(xa, xb, 2.0)  # c ≤ 2(r + s): every pair beats rejection
    bij = match(a, b)
    assert (perm >= 0).all()
    assert np.isclose(_dense(xa, xb)[np.arange(20), perm].sum(), bij.total_cost, rtol=1e-5)
    with pytest.raises(ValueError, match="reject cost"):
        partial_assign(xa, xb, -1.0)


def test_parse_unmatched():
    assert parse_unmatched(None) is None and parse_unmatched("none") is None
    assert parse_unmatched("auto") == "auto" and parse_unmatched("0.4") == 0.4
    for bad in ("sometimes", -0.1, True, float("nan")):
        with pytest.raises(ValueError, match="matching.unmatched must be"):
            parse_unmatched(bad)


def _true_regret(c, perm, i):
    """Brute force: optimum with pair (i, perm[i]) forbidden − optimum."""
    forb = c.copy()
    forb[i, perm[i]] = 1e9
    r, k = linear_sum_assignment(forb)
    return forb[r, k].sum() - c[np.arange(len(perm)), perm].sum()


def _lp_duals(c):
    """Optimal (u, v) of the assignment LP via scipy's HiGHS (small n only)."""
    from scipy.optimize import linprog

    n = c.shape[0]
    # max Σu + Σv s.t. u_i + v_j ≤ c_ij
    a_ub = np.zeros((n * n, 2 * n))
    for i, j in itertools.product(range(n), range(n)):
        a_ub[i * n + j, i] = a_ub[i * n + j, n + j] = 1
    res = linprog(-np.ones(2 * n), A_ub=a_ub, b_ub=c.ravel(), bounds=(None, None), method="highs")
    return res.x[:n], res.x[n:]


@pytest.mark.parametrize("seed", range(3))
def test_confidence_brackets_the_true_regret(seed):
    a, b = random_sae(5, 9, seed=seed), random_sae(5, 9, seed=seed + 10)
    xa, xb = _features(a, b, "decoder")
    c = _dense(xa, xb)
    rr, perm = linear_sum_assignment(c)
    u, v = _lp_duals(c)
    pa = pair_analysis(xa, xb, perm, top_k=3, duals=(u, v), block=4)  # several blocks
    n = len(perm)
    swap = [
        min(
            c[i, perm[k]] + c[k, perm[i]] - c[i, perm[i]] - c[k, perm[k]]
            for k in range(n)
            if k != i
        )
        for i in range(n)
    ]
    np.testing.assert_allclose(pa.confidence, np.maximum(swap, 0), atol=1e-5)
    for i in range(n):
        true = _true_regret(c, perm, i)
        assert pa.confidence_lower[i] <= true + 1e-5 <= pa.confidence[i] + 2e-5
    # predecessors: each column's cheapest rows; successors: each row's cheapest columns
    np.testing.assert_array_equal(pa.predecessors[:, 0], c.argmin(0))
    np.testing.assert_allclose(pa.predecessor_cost, np.sort(c, 0)[:3].T, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(pa.successors[:, 0], c.argmin(1))


def test_partial_confidence_includes_the_drop_move():
    a, b = random_sae(6, 16, seed=3), random_sae(6, 16, seed=4)
    xa, xb = _features(a, b)
    rho = 0.9
    perm, _, _ = partial_assign(xa, xb, rho)
    r, s = squared_norms(xa, xb)
    pa = pair_analysis(xa, xb, perm, tau=(rho * r, rho * s), block=5)
    c = _dense(xa, xb)
    m = np.flatnonzero(perm >= 0)
    assert m.size and np.isnan(pa.confidence[perm < 0]).all()
    drop = rho * r[m] + rho * s[perm[m]] - c[m, perm[m]]
    assert (pa.confidence[m] <= drop + 1e-5).all() and (pa.confidence[m] >= 0).all()


def test_null_rotation_and_kappa():
    q = random_rotation(12, 0)
    np.testing.assert_allclose(q @ q.T, np.eye(12), atol=1e-5)
    a, b, _ = planted_pair(32, 256, seed=1)
    xa, xb = _features(a, b, "decoder")
    null = null_kappa(xa, xb, [(0, 32)], alpha=0.05, seed=0)
    assert -1 <= null["null_median"] < null["kappa"] < 1
    # a stricter quantile gives a higher threshold
    assert null_kappa(xa, xb, [(0, 32)], alpha=0.01, seed=0)["kappa"] >= null["kappa"]
    with pytest.raises(ValueError, match="alpha"):
        null_kappa(xa, xb, [(0, 32)], alpha=1.5)


def test_planted_pair_truth_and_recovery():
    a, b, succ = planted_pair(64, 512, died=0.2, split=0.05, noise=0.4, seed=0)
    children = succ[succ >= 0]
    assert len(np.unique(children)) == len(children)  # each B feature has at most one parent
    m = match_beyond(a, b, mode="decoder", unmatched="auto", top_k=3)
    truly_unmatched, pred_unmatched = succ[:, 0] < 0, m.perm < 0
    tp = (truly_unmatched & pred_unmatched).sum()
    assert tp / pred_unmatched.sum() > 0.9 and tp / truly_unmatched.sum() > 0.9
    split_true = succ[:, 1] >= 0
    split_pred = m.split_children[:, 0] >= 0
    assert (split_true & split_pred).sum() / split_true.sum() > 0.8
    assert (split_true & split_pred).sum() / max(split_pred.sum(), 1) > 0.8
    ok = (m.perm >= 0) & ((m.perm == succ[:, 0]) | (m.perm == succ[:, 1]))
    assert ok[m.perm >= 0].mean() > 0.95
    assert m.predecessors.shape == (512, 3) and m.confidence.shape == (512,)
    with pytest.raises(ValueError, match="unmatched"):
        _ = m.permutation


def test_detect_splits_needs_both_children_close_and_the_same_parent():
    succ = np.array([[0, 1], [2, 3]])
    cost = np.array([[0.1, 0.2], [0.1, 0.9]])
    preds = np.array([[0], [0], [1], [0]])
    r, s = np.ones(2), np.ones(4)
    out = detect_splits(succ, cost, preds, r, s, kappa=0.5)
    np.testing.assert_array_equal(out, [[0, 1], [-1, -1]])
    preds[1, 0] = 1  # B's 1 now prefers A's 1: A's 0 is no longer its parent
    assert (detect_splits(succ, cost, preds, r, s, kappa=0.5) == -1).all()


def test_match_and_match_layers_go_beyond_through_the_cache(tmp_path):
    from saematch.matching import match_layers

    saes = [planted_pair(32, 128, seed=s)[k] for s, k in ((0, 0), (0, 1))]
    m = match(*saes, mode="decoder", confidence=True, top_k=2)  # bijection + confidence
    assert not m.is_partial and m.duals is not None
    ok = m.confidence_lower[~np.isnan(m.confidence_lower)]
    assert (ok <= m.confidence[~np.isnan(m.confidence)] + 1e-4).all()
    kw = dict(mode="decoder", cache_dir=tmp_path, progress=False, unmatched="auto", top_k=2)
    first = match_layers(saes, **kw)[0]
    assert first.is_partial and first.info["cached"] is False
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    again = match_layers(saes, **kw)[0]
    assert again.info["cached"] is True
    np.testing.assert_array_equal(again.perm, first.perm)
    np.testing.assert_array_equal(again.predecessors, first.predecessors)
    # the plain bijection keeps its own cache entry
    assert not match_layers(saes, mode="decoder", cache_dir=tmp_path, progress=False)[0].is_partial


@pytest.mark.parametrize("seed", range(3))
def test_partial_has_a_dual_certificate_on_the_clamped_cost(seed):
    """Independent proof: LP duals of the clamped bijection, checked by check_certificate."""
    from saematch.matching import check_certificate
    from saematch.matching.beyond.confidence import complete
    from saematch.matching.solvers.proof import dense_duals

    a, b, _ = planted_pair(16, 96, died=0.3, split=0.05, noise=1.0, seed=seed)
    xa, xb = _features(a, b, "decoder")
    perm, _, info = partial_assign(xa, xb, 0.7)
    assert 0 < info["unmatched_a"] < 96
    r, s = squared_norms(xa, xb)
    clamped = np.minimum(_dense(xa, xb), 0.7 * (r[:, None] + s[None, :]))
    full = complete(perm, 96)
    duals = dense_duals(clamped, full)
    assert duals is not None
    u, v, tol = duals
    cert = check_certificate(lambda rows: clamped[rows], full, u, v, tol=max(tol, 1e-9))
    assert cert.ok, cert
    assert clamped[np.arange(96), full].sum() == pytest.approx(info["objective"], rel=1e-7)


def test_sae_level_truth_and_scores():
    from saematch.planted.validation import auroc, sae_level_truth, score_matching

    successor = np.array([[0, -1], [1, 2], [-1, -1]])  # true 0 persists, 1 splits, 2 dies
    rep_a = np.array([2, 0, -1, 1])  # SAE A features -> true features at t
    rep_b = np.array([1, -1, 0, 2, 0])  # SAE B features -> true features at t+1 (0 twice)
    succ, known, known_b = sae_level_truth(rep_a, rep_b, successor)
    np.testing.assert_array_equal(succ, [[-1, -1], [2, -1], [-1, -1], [0, 3]])
    np.testing.assert_array_equal(known, [True, True, False, True])
    perm = np.array([-1, 2, 1, 3])
    sc = score_matching(perm, succ, np.array([np.nan, 2.0, 0.5, 1.0]), None, known, known_b)
    assert sc["unmatched_precision"] == 1 and sc["unmatched_recall"] == 1
    assert sc["pair_accuracy"] == 1 and np.isnan(sc["confidence_auroc"])  # no wrong pair
    assert auroc(np.array([1, 2, 3, 4.0]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert auroc(np.array([1, 1, 1, 1.0]), np.array([0, 0, 1, 1], bool)) == 0.5


def test_partial_matching_keeps_to_max_memory(monkeypatch):
    """The budget picks the route (int8 → float32 pass in smaller blocks) and stops first."""
    import saematch.matching.beyond.partial as partial_mod
    from saematch.matching import budget

    match_mod = importlib.import_module("saematch.matching.match")

    n = 200
    a, b, _ = planted_pair(32, n, died=0.3, noise=0.5, seed=3)
    want = match_beyond(a, b, mode="decoder", unmatched=0.5, confidence=False, top_k=0,
                        splits=False, bound_gemm="int8")  # fmt: skip
    assert want.info["candidates"] == "int8-bound"
    feats = 2 * n * 34 * 4
    room = feats + budget.partial_pass_bytes(n, 32)  # the float32 pass in blocks of 32 rows
    assert room < feats + budget.bound_bytes(n, 32, partial_mod.MAX_WORKERS)
    got = match_beyond(a, b, mode="decoder", unmatched=0.5, confidence=False, top_k=0,
                       splits=False, max_memory=room)  # fmt: skip
    assert got.info["candidates"] == "float32-pass" and got.info["block"] <= 32
    np.testing.assert_array_equal(got.perm, want.perm)

    def no_features(*args, **kw):
        raise AssertionError("features were built before the budget check")

    monkeypatch.setattr(match_mod, "augmented_features", no_features)
    with pytest.raises(MemoryError) as err:
        match_beyond(a, b, mode="decoder", unmatched="auto", max_memory="100kB")
    assert f"{n} features" in str(err.value) and "matching.max_memory" in str(err.value)
    # the dense route (most pairs beat rejection) refuses before its n×n cost
    xa, xb = _features(a, b, "decoder")
    monkeypatch.setattr(partial_mod, "MAX_EDGES_PER_ROW", 0)
    monkeypatch.setattr(budget, "MAX_EDGES_PER_ROW", 0)  # the estimates' edge buffers too
    small = budget.partial_pass_bytes(n, 16) + 1
    assert small < budget.dense_clamped_bytes(n)
    with pytest.raises(MemoryError, match="dense clamped cost"):
        partial_assign(xa, xb, 0.9, block=16, work_bytes=small)


def _swap_regret(c, perm, ta, tb):
    """Definition (1) in float64 from the dense cost (clamped when τ is given)."""
    from saematch.matching.beyond.confidence import complete

    n = len(perm)
    pf = complete(perm, n)
    cp = np.minimum(c, ta[:, None] + tb[None, :])[:, pf]  # C'[i, k] = c'_i,p(k)
    dg = np.diag(cp).copy()
    delta = cp + cp.T - dg[:, None] - dg[None, :]
    np.fill_diagonal(delta, np.inf)
    out = np.maximum(np.minimum(delta.min(1), ta + tb[pf] - dg), 0)
    return np.where(perm >= 0, out, np.nan)


@pytest.mark.parametrize("gemm", ["int8", "fp32"])
@pytest.mark.parametrize(
    ("mode", "rho"), [("both", None), ("decoder", None), ("both", 0.1), ("decoder", 0.7)]
)
def test_screen_equals_the_exact_swap_regret(mode, rho, gemm):
    """screen.py: conf = (1) exactly (float64) here, conf_low ≤ (1), top-k as the dense cost."""
    from saematch.matching.beyond.screen import screened_analysis

    d, n = 16, 150
    a, b, _ = planted_pair(d, n, died=0.2, split=0.05, noise=1.0, seed=4)
    xa, xb = _features(a, b, mode)
    c = _dense(xa, xb)
    r, s = squared_norms(xa, xb)
    inf = np.full(n, np.inf)
    if rho is None:
        perm, tau, (ta, tb) = linear_sum_assignment(c)[1], None, (inf, inf)
        duals = _lp_duals(c)
    else:
        perm, tau, duals = partial_assign(xa, xb, rho)[0], (rho * r, rho * s), None
        ta, tb = tau
        assert (perm < 0).any()
    both = mode == "both"
    pa, low, info = screened_analysis(
        xa,
        xb,
        perm,
        tau,
        3,
        duals,
        int(both),
        (d,) * both,
        block=64,  # several block pairs
        gemm=gemm,
    )
    want = _swap_regret(c, perm, ta, tb)
    np.testing.assert_allclose(pa.confidence, want, rtol=1e-6, atol=1e-9)  # stored float32
    ok = perm >= 0
    assert (low[ok] <= want[ok] * (1 + 1e-6) + 1e-9).all() and np.isnan(low[~ok]).all()
    np.testing.assert_array_equal(pa.predecessors, np.argsort(c, 0, kind="stable")[:3].T)
    np.testing.assert_allclose(pa.predecessor_cost, np.sort(c, 0)[:3].T, rtol=1e-6)
    np.testing.assert_array_equal(pa.successors, np.argsort(c, 1, kind="stable")[:, :2])
    if duals is not None:  # the dual regret stays below the true regret
        for i in range(0, n, 15):
            assert pa.confidence_lower[i] <= _true_regret(c, perm, i) + 1e-6
    assert set(info) == {"prepare_seconds", "pass_seconds", "exact_seconds"}


def test_confidence_pass_keeps_to_max_memory():
    from saematch.matching.beyond.screen import SCREEN, WORKERS, analyse_pairs
    from saematch.matching.budget import screen_bytes

    a, b, _ = planted_pair(16, 300, died=0.2, noise=0.5, seed=1)
    xa, xb = _features(a, b, "decoder")
    perm = linear_sum_assignment(_dense(xa, xb))[1]
    with use_bound_gemm("int8"):
        full, info = analyse_pairs(xa, xb, perm, top_k=3)
        small, info_small = analyse_pairs(
            xa, xb, perm, top_k=3, work_bytes=screen_bytes(300, 18, 64, WORKERS, SCREEN)
        )
    assert info["block"] == 2048 and info_small["block"] == 64  # several block pairs
    np.testing.assert_array_equal(small.confidence, full.confidence)
    np.testing.assert_array_equal(small.predecessors, full.predecessors)
    with pytest.raises(MemoryError, match="confidence pass"), use_bound_gemm("int8"):
        analyse_pairs(xa, xb, perm, work_bytes=10_000)
    # the float32 backend (solvers/gemm.py): the same exact swaps, its own budget
    with use_bound_gemm("fp32"):
        f32, info32 = analyse_pairs(xa, xb, perm, top_k=3)
        f32_small, info32_small = analyse_pairs(
            xa, xb, perm, top_k=3,
            work_bytes=screen_bytes(300, 18, 64, WORKERS, SCREEN, fp32=True),
        )  # fmt: skip
    assert info32["analysis"] == "fp32-screen" and info["analysis"] == "int8-screen"
    assert info32_small["block"] == 64
    np.testing.assert_array_equal(f32.confidence, full.confidence)
    np.testing.assert_array_equal(f32_small.predecessors, full.predecessors)
    # ... and within float32 rounding of confidence.py's float32 pass
    ref = pair_analysis(xa, xb, perm, top_k=3)
    np.testing.assert_allclose(f32.confidence, ref.confidence, rtol=2e-3, atol=1e-6)
