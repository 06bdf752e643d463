"""Certificates: the checker on hand-made 4×4 cases, and on every solver's output."""

import numpy as np
import pytest
from helpers import random_sae

from saematch.matching import check_certificate, check_matching, match, match_layers
from saematch.matching.budget import scan_bytes, streamed_bytes
from saematch.matching.cost import augmented_features
from saematch.matching.solvers import assign
from saematch.matching.solvers.streamed import streamed_certified_assign
from saematch.planted.synthetic import synthetic_pair

# Rows 0, 1 prefer column 0 and rows 2, 3 column 2: the optimum [1, 0, 3, 2] costs 2+1+6+5 = 14
C = np.array([[1, 2, 9, 9], [1, 3, 9, 9], [9, 9, 4, 6], [9, 9, 5, 8]], dtype=np.float64)
PERM = np.array([1, 0, 3, 2])
V = np.array([0.0, 1.0, 0.0, 2.0])  # by hand: u_i = c_iσ(i) − v_σ(i)
U = np.array([1.0, 1.0, 4.0, 5.0])


def _fn(c):
    return lambda rows: c[rows]


def _all_perms(n):
    from itertools import permutations

    return [np.array(p) for p in permutations(range(n))]


def test_hand_made_certificate_holds():
    cert = check_certificate(_fn(C), PERM, U, V)
    assert cert.ok and cert.min_reduced == 0.0 and cert.max_slack == 0.0 and cert.gap_bound == 0
    assert U.sum() + V.sum() == C[np.arange(4), PERM].sum() == 14
    best = min(C[np.arange(4), p].sum() for p in _all_perms(4))  # brute force agrees
    assert best == 14
    for block in (1, 3, 100):  # streamed in row blocks of any size
        assert check_certificate(_fn(C), PERM, U, V, block=block) == cert


def test_infeasible_or_loose_duals_are_rejected():
    u = U.copy()
    u[2] += 0.5  # c_22 − u_2 − v_2 = −0.5
    cert = check_certificate(_fn(C), PERM, u, V)
    assert not cert.ok and cert.min_reduced == -0.5
    assert check_certificate(_fn(C), PERM, u, V, tol=0.5).ok  # within a stated tolerance
    u = U.copy()
    u[0] -= 1.0  # feasible but not tight on row 0
    cert = check_certificate(_fn(C), PERM, u, V)
    assert not cert.ok and cert.min_reduced >= 0 and cert.max_slack == 1.0


def test_no_duals_prove_a_wrong_permutation():
    wrong = np.arange(4)  # the identity costs 1+3+4+8 = 16
    for v in (V, np.zeros(4), C.min(0)):
        u = C[np.arange(4), wrong] - v[wrong]  # tight on the identity
        cert = check_certificate(_fn(C), wrong, u, v)
        assert not cert.ok
        assert cert.gap_bound >= 16 - 14  # the bound on cost − optimum is never too small


def test_identity_is_optimal_on_a_diagonal_dominant_cost():
    c = np.array([[1, 4, 6, 3], [5, 2, 7, 4], [6, 5, 3, 8], [4, 6, 7, 2]], dtype=np.float64)
    assert check_certificate(_fn(c), np.arange(4), np.array([1.0, 2, 3, 2]), np.zeros(4)).ok


def test_malformed_input_is_an_error():
    with pytest.raises(ValueError, match="bijection"):
        check_certificate(_fn(C), np.array([0, 0, 1, 2]), U, V)
    with pytest.raises(ValueError, match="shape"):
        check_certificate(_fn(C), PERM, U[:3], V)
    with pytest.raises(ValueError, match="finite"):
        check_certificate(_fn(C), PERM, np.array([1.0, np.nan, 4, 5]), V)
    with pytest.raises(ValueError, match="cost_fn returned"):
        check_certificate(lambda rows: C[rows, :3], PERM, U, V)


@pytest.mark.parametrize("mode", ["decoder", "encoder", "both"])
@pytest.mark.parametrize("solver", ["scipy", "lapjv", "auto"])
@pytest.mark.parametrize("width", [40, 300])  # 40: auto's small-width dense path
def test_every_solver_returns_a_certificate(mode, solver, width):
    a, b, _ = synthetic_pair(d_model=24, width=width, unmatched=0.3, noise=0.8, seed=width)
    m = match(a, b, mode=mode, solver=solver)
    cert = check_matching(a, b, m)
    assert cert.ok, cert
    u, v = m.duals
    # LP duality: Σu + Σv = the optimum (within n·tol)
    assert u.sum() + v.sum() == pytest.approx(m.total_cost, rel=1e-5, abs=width * m.info["tol"])
    ref = match(a, b, mode=mode, solver="scipy")
    assert m.total_cost == pytest.approx(ref.total_cost, rel=1e-6)


def test_streamed_solver_returns_a_certificate():
    a, b, _ = synthetic_pair(d_model=24, width=200, unmatched=0.3, noise=0.8, seed=1)
    xa, xb = (
        augmented_features(a, "decoder", "a", fold=True),
        augmented_features(b, "decoder", "b", fold=True),
    )
    res = assign(xa, xb, "auto", max_dense_bytes=0, k=4)  # its options no longer leak
    assert res.info["method"] == "streamed-certified"
    xa64, xb64 = xa.astype(np.float64), xb.astype(np.float64)
    assert check_certificate(lambda r: xa64[r] @ xb64.T, res.perm, res.u, res.v, res.tol).ok
    assert assign(xa, xb, "auto", k=64).info["method"] == "stored-certified"  # was a TypeError
    with pytest.raises(TypeError, match="unknown options"):
        assign(xa, xb, "auto", kk=3)


def test_streamed_proof_with_capped_suspects_is_still_optimal():
    # a cap of 1 exact check per row and round: rows are cut short, rounds repeat with a
    # doubled cap until every suspect is checked; the certificate and optimum must not change
    a, b, _ = synthetic_pair(d_model=24, width=300, unmatched=0.4, noise=1.0, seed=3)
    xa, xb = (
        augmented_features(a, "decoder", "a", fold=True),
        augmented_features(b, "decoder", "b", fold=True),
    )
    res = assign(xa, xb, "auto", max_dense_bytes=0, k=2, rest_k=2, suspect_cap=1)
    assert res.info["capped_rows"] > 0
    xa64, xb64 = xa.astype(np.float64), xb.astype(np.float64)
    assert check_certificate(lambda r: xa64[r] @ xb64.T, res.perm, res.u, res.v, res.tol).ok
    ref = assign(xa, xb, "scipy")
    c = xa64 @ xb64.T
    n = np.arange(len(res.perm))
    assert c[n, res.perm].sum() == pytest.approx(c[n, ref.perm].sum(), rel=1e-9)


@pytest.mark.parametrize("rest_fits", [True, False])
def test_streamed_rest_dense_within_the_budget_else_sparse(rest_fits):
    """Within the budget the rest is solved on its dense sub-cost (which may use the scan
    temporaries, free by then). Without it the sparse rest guess would run, but its proof
    keeps more exact costs (EDGE_BYTES each) than the dense rest needs floats: below the
    dense rest's need the dispatcher stops with the clear error, and the sparse guess is
    checked directly, without a budget."""
    a, b, _ = synthetic_pair(d_model=24, width=400, unmatched=0.3, noise=0.8, seed=4)
    xa, xb = (
        augmented_features(a, "decoder", "a", fold=True),
        augmented_features(b, "decoder", "b", fold=True),
    )
    n, D = xa.shape[0], xa.shape[1] - 2
    if rest_fits:
        budget = streamed_bytes(n, D, 256) - scan_bytes(n, 256) + 4 * n * n
        res = assign(xa, xb, "auto", max_dense_bytes=0, work_bytes=budget)
    else:
        with pytest.raises(MemoryError, match="matching.max_memory"):
            budget = streamed_bytes(n, D, 256) - scan_bytes(n, 256)
            assign(xa, xb, "auto", max_dense_bytes=0, work_bytes=budget)
        res = streamed_certified_assign(xa, xb, dense_rest_bytes=0)
    assert res.info["rest"] > 0 and res.info["rest_solved_dense"] is rest_fits
    xa64, xb64 = xa.astype(np.float64), xb.astype(np.float64)
    assert check_certificate(lambda r: xa64[r] @ xb64.T, res.perm, res.u, res.v, res.tol).ok
    ref = assign(xa, xb, "scipy")
    assert res.u.sum() + res.v.sum() == pytest.approx(ref.u.sum() + ref.v.sum(), rel=1e-9)


def test_wrong_duals_fail_the_matching_check():
    a, b = random_sae(8, 70, seed=1), random_sae(8, 70, seed=2)
    m = match(a, b, mode="both")
    assert check_matching(a, b, m).ok
    u, v = m.duals
    m.duals = (u + 1e-3, v)  # every pair's reduced cost drops by 1e-3: the optimum's too
    assert not check_matching(a, b, m).ok


def test_cached_matchings_keep_their_duals(tmp_path):
    saes = [random_sae(8, 70, seed=s) for s in range(2)]
    first = match_layers(saes, cache_dir=tmp_path, progress=False)[0]
    again = match_layers(saes, cache_dir=tmp_path, progress=False)[0]
    assert again.info["cached"] and again.info["tol"] == first.info["tol"]
    for d0, d1 in zip(first.duals, again.duals, strict=True):
        np.testing.assert_array_equal(d0, d1)
    assert check_matching(*saes, again).ok
