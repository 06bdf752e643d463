"""The dual proof on costs where a scalar offset dominates (unfolded mode both on trained SAEs).

There the cost is nearly a 1-D quadratic (b_enc_i − b_enc'_j)², shortest paths in the proof's
graph are long chains, and heap-ordered label correcting from the column minima rescanned each
column 800–8,000 times: past its 50·n budget, so every solver called an optimal assignment
"not optimal" (found on the converged default zoo, layers 0 → 1).
"""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from saematch.matching import check_certificate, match
from saematch.matching.solvers.proof import dense_duals, graph_duals, label_duals
from saematch.matching.solvers.sparse_lap import build_csr
from saematch.sae import JumpReLUSAE


def offset_dominated_cost(n: int, seed: int, d: int = 128) -> np.ndarray:
    """(b_i − b'_j)² plus the mean squared difference of unit vectors in d dims (≈ 2/d)."""
    rng = np.random.default_rng(seed)
    b, b2 = rng.normal(-1, 1, n), rng.normal(-0.7, 1, n)
    w = rng.normal(size=(n, d))
    w2 = rng.normal(size=(n, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    w2 /= np.linalg.norm(w2, axis=1, keepdims=True)
    return (b[:, None] - b2[None, :]) ** 2 + 2 * (1 - w @ w2.T) / d


def optimum(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = linear_sum_assignment(C)
    x = np.empty(len(rows), dtype=np.int64)
    x[rows] = cols
    y = np.empty_like(x)
    y[x] = np.arange(len(x))
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_assignment_is_proven_on_an_offset_dominated_cost(seed):
    C = offset_dominated_cost(128, seed)
    x, _ = optimum(C)
    duals = dense_duals(C, x)
    assert duals is not None, "an optimal assignment must be proven optimal"
    u, v, tol = duals
    cert = check_certificate(lambda rows: C[rows], x, u, v, tol=4 * tol)
    assert cert.ok


def test_graph_duals_prove_the_same_on_the_complete_graph():
    n = 128
    C = offset_dominated_cost(n, 0)
    x, y = optimum(C)
    r, c = np.divmod(np.arange(n * n), n)
    csr = build_csr(n, r, c, C.ravel())
    v = C.min(axis=0).astype(np.float64)
    assert graph_duals(*csr, x, y, v, v.copy(), 1e-12, 50 * n) >= 0
    u = C[np.arange(n), x] - v[x]
    assert (C - u[:, None] - v[None, :]).min() >= -1e-9


def test_a_suboptimal_assignment_is_refuted_not_timed_out():
    n = 64
    C = offset_dominated_cost(n, 1)
    x, _ = optimum(C)
    i, k = 0, int(np.argmax(np.abs(C[0, x] - C[0, x[0]])))  # a swap that costs a lot
    x[[i, k]] = x[[k, i]]
    y = np.empty_like(x)
    y[x] = np.arange(n)
    assert C[np.arange(n), x].sum() > C[np.arange(n), optimum(C)[0]].sum() + 1e-6
    v = C.min(axis=0).astype(np.float64)
    assert label_duals(C, v.copy(), x, y, v, 1e-12, 10**7) == -2  # a negative cycle, proven
    assert dense_duals(C, x) is None


def _offset_sae(seed: int, width: int = 192, d: int = 64) -> JumpReLUSAE:
    g = torch.Generator().manual_seed(seed)
    w = torch.nn.functional.normalize(torch.randn(width, d, generator=g), dim=1)
    return JumpReLUSAE(
        W_enc=w.T.contiguous(),
        b_enc=torch.randn(width, generator=g) - 1.0,
        W_dec=w,
        b_dec=torch.zeros(d),
        threshold=0.5 + torch.rand(width, generator=g),
        name=f"offset-{seed}",
    )


@pytest.mark.parametrize("solver", ["auto", "lapjv", "scipy"])
def test_every_solver_matches_offset_dominated_saes_unfolded(solver):
    a, b = _offset_sae(0), _offset_sae(1)
    m = match(a, b, mode="both", fold=False, solver=solver)
    ref = match(a, b, mode="both", fold=False, solver="scipy")
    assert np.isclose(m.total_cost, ref.total_cost, rtol=1e-6)
