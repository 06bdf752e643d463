"""Memory budget and device of match(): parsed, respected, and a clear error before allocating."""

import importlib
import logging

import numpy as np
import pytest
import torch

import saematch.matching.solvers.dispatch as dispatch
from saematch.matching import check_matching, match
from saematch.matching.budget import parse_bytes, resolve_budget, streamed_bytes
from saematch.planted.synthetic import synthetic_pair

match_mod = importlib.import_module("saematch.matching.match")  # the module, not the function


def test_parse_bytes():
    assert parse_bytes("6GB") == 6 * 10**9
    assert parse_bytes("512 MiB") == 512 * 2**20
    assert parse_bytes(6e9) == 6 * 10**9 and parse_bytes("1.5gb") == 1_500_000_000
    for bad in ("lots", "-1GB", 0, "6 parsecs", True):
        with pytest.raises(ValueError, match="max_memory"):
            parse_bytes(bad)


def test_default_budget_is_a_share_of_available_memory_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="saematch.matching.budget"):
        b = resolve_budget(None)
    assert b > 0 and "matching.max_memory not set" in caplog.text


def test_too_small_a_budget_stops_before_allocating(monkeypatch):
    a, b, _ = synthetic_pair(d_model=32, width=300, seed=1)

    def no_features(*args, **kw):
        raise AssertionError("features were built before the budget check")

    monkeypatch.setattr(match_mod, "augmented_features", no_features)
    with pytest.raises(MemoryError) as err:
        match(a, b, mode="decoder", max_memory="100kB")
    msg = str(err.value)
    # what was needed, what the budget was, how to raise it; never "0.00 GB / -0.00 GB"
    assert "300 features" in msg and "matching.max_memory" in msg and "100.0 kB" in msg
    assert "0.00 GB" not in msg and "-0" not in msg
    with pytest.raises(MemoryError, match="dense scipy"):
        match(a, b, mode="decoder", solver="scipy", max_memory="1MB")


@pytest.mark.parametrize("mode", ["decoder", "both"])
def test_a_budget_below_the_stored_estimate_streams_in_row_blocks(mode, monkeypatch):
    monkeypatch.setattr(dispatch, "MAX_STORED_BYTES", 0)  # no stored estimate at any width
    n = 300
    a, b, _ = synthetic_pair(d_model=32, width=n, unmatched=0.2, noise=0.5, seed=2)
    D = 32 if mode == "decoder" else 65
    feats = 2 * n * (D + 2) * 4
    budget = feats + streamed_bytes(n, D, 32)  # row blocks of 32 at most
    m = match(a, b, mode=mode, max_memory=budget, device="cpu")
    assert m.info["method"] == "streamed-certified" and m.info["block"] <= 32
    assert check_matching(a, b, m).ok
    ref = match(a, b, mode=mode, solver="scipy")
    assert m.total_cost == pytest.approx(ref.total_cost, rel=1e-6)  # float32 vs 64 features


def test_streamed_solver_through_the_torch_code_a_gpu_runs(monkeypatch):
    """The decoder's CPU path runs numba kernels (bound_kernels.py); with them off, the same
    matching runs the torch code of a CUDA device (on the CPU) to the same certified optimum."""
    from saematch.matching.solvers import blocks

    monkeypatch.setattr(dispatch, "MAX_STORED_BYTES", 0)
    a, b, _ = synthetic_pair(d_model=32, width=300, unmatched=0.2, noise=0.5, seed=3)
    fast = match(a, b, mode="decoder", device="cpu")
    monkeypatch.setattr(blocks.LowerBound, "_fused", lambda self: None)
    torch_path = match(a, b, mode="decoder", device="cpu")
    assert fast.info["method"] == torch_path.info["method"] == "streamed-certified"
    assert check_matching(a, b, torch_path).ok
    assert torch_path.total_cost == pytest.approx(fast.total_cost, rel=1e-12)


def test_devices():
    a, b, _ = synthetic_pair(d_model=16, width=80, seed=3)
    with pytest.raises(ValueError, match="unknown matching device"):
        match(a, b, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            match(a, b, device="cuda")
    assert match(a, b, device="auto").info["method"] == "stored-certified"


def test_plans_at_published_widths():
    """What the dispatcher picks for Gemma Scope widths (d_model 2304, decoder), no allocation."""
    assert dispatch.plan(16384, 2304, "auto", 6 * 10**9) == ("stored", None)
    path, block = dispatch.plan(65536, 2304, "auto", 6 * 10**9)
    assert path == "streamed" and block >= 16
    path, block = dispatch.plan(131072, 2304, "auto", 12 * 10**9)
    assert path == "streamed"
    assert dispatch.plan(16384, 2304, "auto", 6 * 10**9, device="cuda")[0] == "streamed"
    with pytest.raises(MemoryError, match="1048576 features"):
        dispatch.plan(2**20, 2304, "auto", 2 * 10**9)


@pytest.mark.parametrize("mode", ["decoder", "both"])
def test_streamed_bound_holds_on_every_pair(mode):
    """blocks.LowerBound (the torch code both devices run) never exceeds an exact cost."""
    from saematch.matching.cost import augmented_features
    from saematch.matching.solvers.blocks import LowerBound

    a, b, _ = synthetic_pair(d_model=40, width=300, unmatched=0.3, noise=0.6, seed=9)
    both = mode == "both"
    xa, xb = (
        augmented_features(t, mode, side, fold=True, bias_weight=float(both))
        for t, side in ((a, "a"), (b, "b"))
    )
    lb = LowerBound(xa, xb, exact_tail=int(both), head_splits=(40,) * both)
    exact = xa.astype(np.float64) @ xb.astype(np.float64).T
    low = lb.block(slice(0, 300)).double().numpy()
    assert (exact >= low).all()
    assert np.median(exact - low) < 0.2 * np.median(np.abs(exact))  # loose, not absurd
    g = lb.block(torch.arange(300), norms=False).double().numpy()
    assert (exact - lb.r[:, None] - lb.s[None, :] >= g).all()  # the g frame too


def test_candidate_top2_numba_and_torch_agree(monkeypatch):
    """The CPU kernels (bound_kernels.py) and the torch code a GPU runs give the same
    candidates, bounds R_i and C_j, and estimates' top-2."""
    import saematch.matching.solvers.candidates as cands
    from saematch.matching.cost import augmented_features
    from saematch.matching.solvers.blocks import LowerBound

    a, b, _ = synthetic_pair(d_model=40, width=300, unmatched=0.3, noise=0.6, seed=4)
    xa, xb = (augmented_features(t, "decoder", side, fold=True) for t, side in ((a, "a"), (b, "b")))
    lb = LowerBound(xa, xb)
    fast = cands.stream_candidates(lb, 8, 64)
    monkeypatch.setattr(cands, "NUMBA_TOP2", False)
    slow = cands.stream_candidates(lb, 8, 64)
    for f, s in zip(fast.top2, slow.top2, strict=True):
        np.testing.assert_allclose(f, s, rtol=1e-5)
    assert np.array_equal(fast.rows, slow.rows) and np.array_equal(fast.cols, slow.cols)
    np.testing.assert_array_equal(fast.row_bound, slow.row_bound)  # the same L, bit for bit
    np.testing.assert_array_equal(fast.col_bound, slow.col_bound)


def test_proof_scan_numba_and_torch_agree():
    """The proof's scan (streamed._suspects): the CPU kernel (bound_kernels.below_margin) and the
    torch code a GPU runs find the same pairs below the margin, and cap the same rows."""
    from saematch.matching.cost import augmented_features
    from saematch.matching.solvers.blocks import LowerBound
    from saematch.matching.solvers.streamed import _suspects

    a, b, _ = synthetic_pair(d_model=40, width=300, unmatched=0.3, noise=0.6, seed=4)
    xa, xb = (augmented_features(t, "decoder", side, fold=True) for t, side in ((a, "a"), (b, "b")))
    fused, plain = LowerBound(xa, xb), LowerBound(xa, xb)
    plain.fused = None
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(300, 70, replace=False))
    u = fused.r[rows] + rng.normal(0, 0.3, 70)  # duals loose enough that some rows hit the cap
    v = fused.s + rng.normal(0, 0.3, 300)
    scale = float(np.abs(fused.r).max() + np.abs(fused.s).max())
    got = [_suspects(lb, rows, u, v, scale, cap=12) for lb in (fused, plain)]
    (i1, j1, m1, c1), (i2, j2, m2, c2) = got
    assert m1 == m2 and 0 < c1.sum() < len(rows)
    np.testing.assert_array_equal(c1, c2)
    pairs = [set(zip(i.tolist(), j.tolist(), strict=True)) for i, j in ((i1, j1), (i2, j2))]
    assert pairs[0] == pairs[1]


def test_proof_graph_within_its_byte_budget():
    """The proof's graph of exact costs grows only as far as proof_bytes allows (the share of
    the budget the dense rest would have had): a tight one costs rounds, not the optimum; one
    too small for the rows left stops with a MemoryError that names the setting."""
    from saematch.matching.certificate import check_certificate
    from saematch.matching.cost import augmented_features
    from saematch.matching.solvers.streamed import EDGE_BYTES, streamed_certified_assign

    a, b, _ = synthetic_pair(d_model=32, width=400, unmatched=0.3, noise=0.6, seed=5)
    xa, xb = (augmented_features(t, "decoder", side, fold=True) for t, side in ((a, "a"), (b, "b")))
    free = streamed_certified_assign(xa, xb, k=4, rest_k=8, block=64)
    tight = streamed_certified_assign(
        xa, xb, k=4, rest_k=8, block=64, proof_bytes=16_000 * EDGE_BYTES
    )  # free, the proof adds 23k edges; here 16.5k: more exact costs, the same optimum
    assert tight.info["exact"] > free.info["exact"]
    cost = lambda sl: xa[sl].astype(np.float64) @ xb.astype(np.float64).T  # noqa: E731
    assert check_certificate(cost, tight.perm, tight.u, tight.v, tight.tol).ok
    total = lambda r: cost(slice(None))[np.arange(400), r.perm].sum()  # noqa: E731
    assert total(tight) == pytest.approx(total(free), rel=1e-12)
    with pytest.raises(MemoryError, match="matching.max_memory"):
        streamed_certified_assign(xa, xb, k=4, rest_k=8, block=64, proof_bytes=-(10**12))


def test_smallest_per_row_keeps_each_rows_smallest_and_the_first_left_out():
    from saematch.matching.solvers.streamed import _smallest_per_row

    i = np.array([2, 0, 2, 2, 0, 5])
    red = np.array([0.3, 0.5, -0.1, 0.2, 0.4, 0.9])
    slack = np.full(6, np.inf)
    keep = _smallest_per_row(i, red, 2, slack)
    assert keep.tolist() == [False, True, True, True, True, True]
    assert slack[2] == 0.3 and np.isinf(slack[[0, 1, 3, 4, 5]]).all()
