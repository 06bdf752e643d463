"""The numba sparse assignment solver: optimum and LP duals vs scipy, warm starts, infeasibility."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from saematch.matching.solvers.sparse_lap import build_csr, merge_sorted, solve_sparse, sorted_csr


def _check(c, mask, state, csr):
    """state is optimal on the masked graph, with dual feasibility and tight matched edges."""
    n = len(c)
    ref_cost = np.where(mask, c, 1e9)
    ref = linear_sum_assignment(ref_cost)[1]
    assert c[np.arange(n), state.x].sum() == pytest.approx(ref_cost[np.arange(n), ref].sum())
    assert mask[np.arange(n), state.x].all() and np.unique(state.x).size == n
    red = c - state.row_duals(*csr)[:, None] - state.v[None, :]
    assert red[mask].min() > -1e-9
    np.testing.assert_allclose(red[np.arange(n), state.x], 0, atol=1e-9)


@pytest.mark.parametrize("n", [1, 7, 60, 200])
@pytest.mark.parametrize("ties", [False, True])
def test_cold_and_warm_solves_are_optimal(n, ties):
    rng = np.random.default_rng(n)
    c = rng.random((n, n))
    if ties:
        c = np.round(c * 4)
    mask = rng.random((n, n)) < 0.1
    np.fill_diagonal(mask, True)  # a perfect matching exists
    r, k = np.nonzero(mask)
    csr = build_csr(n, r, k, c[r, k])
    state = solve_sparse(*csr)
    _check(c, mask, state, csr)
    mask |= rng.random((n, n)) < 0.3  # add edges, warm start from the previous solution
    r, k = np.nonzero(mask)
    csr = build_csr(n, r, k, c[r, k])
    _check(c, mask, solve_sparse(*csr, state), csr)


def test_no_perfect_matching_raises():
    rows, cols = np.array([0, 1, 2]), np.array([0, 0, 1])  # column 2 has no edge
    with pytest.raises(ValueError, match="no perfect matching"):
        solve_sparse(*build_csr(3, rows, cols, np.ones(3)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_fighting_over_a_hub_column_are_solved(seed):
    """Every row's cheapest column is column 0 (a hub, as large-norm features are in the
    streamed rest) and some rows have no other edge but their diagonal: the row reduction
    moves the hub between rows and the shortest paths finish; the optimum and duals hold."""
    n = 80
    rng = np.random.default_rng(seed)
    c = rng.random((n, n)) + 1.0
    c[:, 0] = rng.random(n) * 0.1
    mask = rng.random((n, n)) < 0.05
    mask[:, 0] = True
    np.fill_diagonal(mask, True)
    mask[rng.random(n) < 0.5, 1:] = False  # half the rows: the hub and the diagonal only
    np.fill_diagonal(mask, True)
    r, k = np.nonzero(mask)
    csr = build_csr(n, r, k, c[r, k])
    _check(c, mask, solve_sparse(*csr), csr)


def test_edges_merged_in_key_order_give_build_csrs_graph():
    rng = np.random.default_rng(3)
    n = 40
    keys = np.unique(rng.integers(0, n * n, 300))
    rest = np.setdiff1d(np.arange(n * n), keys)
    new = rng.permutation(rest)[:120]  # new edges in no order, none already present
    vals, new_vals = rng.random(len(keys)), rng.random(len(new))
    merged, merged_vals = merge_sorted(keys, vals, new, new_vals)
    allk = np.concatenate([keys, new])
    expect = build_csr(n, allk // n, allk % n, np.concatenate([vals, new_vals]))
    for got, want in zip(sorted_csr(n, merged, merged_vals), expect, strict=True):
        np.testing.assert_array_equal(got, want)
