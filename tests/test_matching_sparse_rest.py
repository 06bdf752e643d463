"""The streamed solver's rest without its dense sub-cost (rest.py, docs/method.md §13): the
sparse route by pricing must return the scipy optimum with a valid certificate, also where
most features have no partner and where the rest's first sparse graph has no perfect
matching; the routes are chosen within the budget, with clear errors."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from saematch.matching import check_certificate
from saematch.matching.budget import EDGE_BYTES, sparse_rest_bytes
from saematch.matching.cost import augmented_features
from saematch.matching.solvers import AutoSolver, assign, streamed
from saematch.matching.solvers.rest import completing_pairs
from saematch.matching.solvers.streamed import streamed_certified_assign
from saematch.planted.synthetic import synthetic_pair

SMALL = {"k": 4, "rest_k": 8, "block": 64}  # small graphs: the pricing must do the work


def features(d: int, n: int, **kw):
    a, b, _ = synthetic_pair(d_model=d, width=n, **kw)
    return (augmented_features(t, "decoder", side, fold=True) for t, side in ((a, "a"), (b, "b")))


def assert_scipy_optimum(xa, xb, res):
    """res is certified on every pair (float64) and costs what scipy's optimum costs."""
    c = xa.astype(np.float64) @ xb.astype(np.float64).T
    assert check_certificate(lambda r: c[r], res.perm, res.u, res.v, res.tol).ok
    ref = assign(xa, xb, "scipy")
    rows = np.arange(len(c))
    assert c[rows, res.perm].sum() == pytest.approx(c[rows, ref.perm].sum(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_rest_returns_the_scipy_optimum(seed, monkeypatch):
    # a reservoir of 16 pairs per row (not 256, more than these rests' columns): the rows it
    # does not prove are passed over again
    monkeypatch.setattr(streamed, "RESERVOIR", 16)
    xa, xb = features(32, 600, unmatched=0.3, noise=0.7, seed=seed)
    res = streamed_certified_assign(xa, xb, rest="sparse", **SMALL)
    assert res.info["rest_route"] == "sparse" and res.info["rest"] > 50
    passes, rows = res.info["rest_passes"], res.info["rest_pass_rows"]
    assert passes >= 2 and rows < passes * res.info["rest"]  # later passes: unproven rows
    assert_scipy_optimum(xa, xb, res)


def test_sparse_rest_with_most_features_partner_less():
    xa, xb = features(48, 1024, unmatched=0.7, noise=0.5, seed=7)
    res = streamed_certified_assign(xa, xb, rest="sparse", **SMALL)
    assert res.info["rest"] > 0.5 * 1024
    assert res.info["rest_guess_optimal"] > 0.9  # the pricing, not the proof, found the rest
    assert_scipy_optimum(xa, xb, res)


def test_sparse_rest_whose_first_graph_has_no_perfect_matching():
    """Ten copies of one feature in A share every cheapest column: with one pair per row and
    per column the first graph cannot match them all, so pairs that complete a matching join
    it and the pricing replaces them."""
    xa, xb = features(32, 400, unmatched=0.4, noise=0.8, seed=3)
    xa[:10] = xa[0]
    res = streamed_certified_assign(xa, xb, rest="sparse", k=2, rest_k=1, block=64)
    assert res.info["rest_fallback"] > 0
    assert_scipy_optimum(xa, xb, res)


def test_completing_pairs_give_the_graph_a_perfect_matching_and_add_nothing_to_one():
    m = 50
    rng = np.random.default_rng(0)
    hub = np.concatenate([np.arange(m) * m + rng.integers(0, 5, m), np.arange(5) * m + 7])
    keys = np.unique(hub)  # every row on columns 0-4 (and 7): at most 6 rows can be matched
    extra = completing_pairs(m, keys, seed=1)
    graph = np.unique(np.concatenate([keys, extra]))
    full = csr_matrix((np.ones(len(graph)), (graph // m, graph % m)), shape=(m, m))
    assert (maximum_bipartite_matching(full, perm_type="column") >= 0).all()
    assert len(extra) == m - 6 and len(np.unique(extra // m)) == len(np.unique(extra % m))
    perfect = np.unique(np.concatenate([keys, np.arange(m) * m + rng.permutation(m)]))
    assert len(completing_pairs(m, perfect, seed=1)) == 0
    # with a pool (each row's reservoir columns) that holds a perfect matching, its pairs do it
    pool = np.stack([rng.permutation(m) for _ in range(3)], axis=1)
    extra = completing_pairs(m, keys, seed=1, pool=pool)
    graph = np.unique(np.concatenate([keys, extra]))
    full = csr_matrix((np.ones(len(graph)), (graph // m, graph % m)), shape=(m, m))
    assert (maximum_bipartite_matching(full, perm_type="column") >= 0).all()
    assert all(j in pool[a] for a, j in zip(extra // m, extra % m, strict=True))


def test_dense_and_sparse_rest_agree_and_auto_picks_dense_when_it_fits():
    xa, xb = features(32, 500, unmatched=0.3, noise=0.6, seed=11)
    dense = streamed_certified_assign(xa, xb, rest="dense", rest_bytes=10**9, **SMALL)
    auto = streamed_certified_assign(xa, xb, rest_bytes=10**9, **SMALL)
    sparse = streamed_certified_assign(xa, xb, rest="sparse", rest_bytes=10**9, **SMALL)
    assert dense.info["rest_route"] == auto.info["rest_route"] == "dense"
    assert sparse.info["rest_route"] == "sparse"
    np.testing.assert_array_equal(dense.perm, sparse.perm)
    assert_scipy_optimum(xa, xb, sparse)
    # through the dispatcher and the solver object (the config's route)
    res = AutoSolver(max_dense_bytes=0, rest="sparse", k=4, rest_k=8)(xa, xb)
    assert res.info["rest_route"] == "sparse"
    np.testing.assert_array_equal(res.perm, dense.perm)


def test_rest_routes_out_of_budget_name_the_setting():
    xa, xb = features(24, 300, unmatched=0.4, seed=5)
    with pytest.raises(MemoryError, match=r"rest=dense.*matching\.max_memory"):
        streamed_certified_assign(xa, xb, rest="dense", rest_bytes=1000, **SMALL)
    with pytest.raises(MemoryError, match=r"sparse.*matching\.max_memory"):
        streamed_certified_assign(xa, xb, rest="sparse", proof_bytes=1000, **SMALL)
    with pytest.raises(ValueError, match="auto, dense, sparse"):
        streamed_certified_assign(xa, xb, rest="dence", **SMALL)
    with pytest.raises(ValueError, match="rest='dence'"):
        AutoSolver(rest="dence")


def test_sparse_rest_capped_by_its_budget_is_still_optimal():
    """A proof room just above twice the first graph: the pricing stops when its half is
    spent (rest_capped) and the proof repairs the rest: the same optimum, certified."""
    xa, xb = features(32, 600, unmatched=0.3, noise=0.7, seed=0)
    free = streamed_certified_assign(xa, xb, rest="sparse", **SMALL)
    m = free.info["rest"]
    first = sparse_rest_bytes(m, SMALL["rest_k"])
    tight = streamed_certified_assign(
        xa, xb, rest="sparse", proof_bytes=2 * first + 400 * EDGE_BYTES, **SMALL
    )
    assert tight.info["rest_capped"] and not free.info["rest_capped"]
    assert tight.info["rest_edges"] < free.info["rest_edges"]
    assert_scipy_optimum(xa, xb, tight)
