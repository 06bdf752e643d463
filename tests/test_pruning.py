"""Layer pruning (docs/method.md §5) on a tiny random Gemma 2 with random and exact SAEs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_sae
from test_lm import N_LAYERS, D, batch, tiny_gemma2

from saematch.lm import ce_loss
from saematch.metrics import explained_variance
from saematch.pruning import (
    _EVAccumulator,
    layer_pruning,
    permute_codes,
    pruning_table,
)
from saematch.sae import JumpReLUSAE

METHODS = {"sae_match", "layer_drop", "encdec_current", "encdec_previous"}


def exact_sae(d: int = D, perm=None) -> JumpReLUSAE:
    """x̂ = relu_θ(x) − relu_θ(−x) = x (up to |x| < θ = 1e-7): width 2d, W = [I, −I]."""
    eye = torch.eye(d)
    sae = JumpReLUSAE(
        W_enc=torch.cat([eye, -eye], 1),
        b_enc=torch.zeros(2 * d),
        W_dec=torch.cat([eye, -eye], 0),
        b_dec=torch.zeros(d),
        threshold=torch.full((2 * d,), 1e-7),
    )
    return sae if perm is None else sae.permute_features(perm)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads; 2 threads on a busy 2-core box run ~100× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def lm():
    return tiny_gemma2()


def test_permute_codes_convention():
    f = torch.tensor([[10.0, 20.0, 30.0]])
    perm = np.array([2, 0, 1])
    out = permute_codes(f, perm)
    for i in range(3):
        assert out[0, perm[i]] == f[0, i]  # f̂[perm[i]] = f[i]
    with pytest.raises(ValueError, match="permutation"):
        permute_codes(f, [0, 0, 1])


def test_ev_accumulator_matches_metrics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=g) * 3 + 5
    x_hat = x + torch.randn(50, 8, generator=g)
    acc = _EVAccumulator()
    for s in (slice(0, 7), slice(7, 30), slice(30, 50)):
        acc.update(x_hat[s], x[s])
    assert abs(acc.result() - explained_variance(x_hat, x)) < 1e-12


def test_matches_naive_hook_replacement(lm):
    """Every method's ΔL and EV equal a direct full-forward computation (chunked run)."""
    ids, am, mask = batch(B=5)
    saes = [random_sae(D, 48, seed=s) for s in range(N_LAYERS)]
    rng = np.random.default_rng(0)
    perms = [rng.permutation(48) for _ in range(N_LAYERS - 1)]
    rows = layer_pruning(lm, saes, perms, ids, mask, attention_mask=am, batch_size=2)
    assert [r["layer"] for r in rows] == list(range(N_LAYERS - 1))
    r = lm.resid_post(ids, am)
    clean = ce_loss(lm.logits(ids, am), ids, mask)
    for row in rows:
        t = row["layer"]
        assert abs(row["clean_loss"] - clean) < 1e-5 and set(row["methods"]) == METHODS
        x_hat = {
            "sae_match": saes[t + 1].decode(permute_codes(saes[t].encode(r[t]), perms[t])),
            "layer_drop": r[t],
            "encdec_current": saes[t + 1](r[t + 1]),
            "encdec_previous": saes[t](r[t]),
        }
        for m, xh in x_hat.items():
            patched = ce_loss(lm.logits_with_replacement(t + 1, xh, ids, am), ids, mask)
            got = row["methods"][m]
            assert abs(got["delta_loss"] - (patched - clean)) < 1e-5, (t, m)
            assert abs(got["explained_variance"] - explained_variance(xh, r[t + 1], mask)) < 1e-6
        assert row["delta_loss"] == row["methods"]["sae_match"]["delta_loss"]
    assert len(pruning_table(rows)) == 4 * (N_LAYERS - 1)


def test_exact_saes(lm):
    """Exact SAEs: encdec_current is lossless; SAE Match with the right perm = layer drop."""
    ids, am, mask = batch()
    rng = np.random.default_rng(1)
    perms = [rng.permutation(2 * D) for _ in range(N_LAYERS - 1)]
    saes = [exact_sae()]
    for t in range(N_LAYERS - 1):  # SAE t+1's features are SAE t's, reordered by perms[t]
        saes.append(saes[-1].permute_features(perms[t]))
    rows = layer_pruning(lm, saes, perms, ids, mask, attention_mask=am, batch_size=3)
    r = lm.resid_post(ids, am)
    for row in rows:
        m, t = row["methods"], row["layer"]
        assert abs(m["encdec_current"]["delta_loss"]) < 1e-5
        assert m["encdec_current"]["explained_variance"] > 1 - 1e-9
        drop_ev = explained_variance(r[t], r[t + 1], mask)
        for k in ("sae_match", "encdec_previous"):
            assert abs(m[k]["delta_loss"] - m["layer_drop"]["delta_loss"]) < 1e-5
            assert abs(m[k]["explained_variance"] - drop_ev) < 1e-6
        assert abs(m["layer_drop"]["explained_variance"] - drop_ev) < 1e-9
        assert m["layer_drop"]["delta_loss"] != 0
    wrong = layer_pruning(
        lm, saes, [np.arange(2 * D)] * (N_LAYERS - 1), ids, mask, attention_mask=am,
        baselines=False, layers=[1],
    )  # fmt: skip
    assert wrong[0]["layer"] == 1 and set(wrong[0]["methods"]) == {"sae_match"}
    assert wrong[0]["explained_variance"] < rows[1]["explained_variance"] - 0.1


def test_bad_inputs(lm):
    ids, am, mask = batch()
    saes = [random_sae(D, 16, seed=s) for s in range(N_LAYERS)]
    perms = [np.arange(16)] * (N_LAYERS - 1)
    with pytest.raises(ValueError, match="one SAE per layer"):
        layer_pruning(lm, saes[:-1], perms, ids, mask)
    with pytest.raises(ValueError, match="perms"):
        layer_pruning(lm, saes, perms[:-1], ids, mask)
    with pytest.raises(ValueError, match="0 ≤ t"):
        layer_pruning(lm, saes, perms, ids, mask, layers=[N_LAYERS - 1])


def test_ev_sweep_scores_activations_without_a_model():
    """ev_sweep (the planted world's pruning): EV from activation chunks alone, pooled over
    chunks; no model, so loss and ΔL are NaN."""
    from saematch.pruning import ev_sweep

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 500, 8, generator=g)  # (L, n, d)
    x[1] = 0.8 * x[0] + 0.2 * x[1]
    reps = {"layer_drop": lambda t, r: r[t], "zero": lambda t, r: torch.zeros_like(r[t + 1])}
    rows = ev_sweep(reps, (x[:, i : i + 128] for i in range(0, 500, 128)), [0, 1])
    assert [r["layer"] for r in rows] == [0, 1] and rows[0]["n_tokens"] == 500
    for r in rows:
        t = r["layer"]
        want = explained_variance(x[t], x[t + 1])
        got = r["methods"]["layer_drop"]
        assert got["explained_variance"] == pytest.approx(float(want), abs=1e-5)
        assert np.isnan(got["delta_loss"]) and np.isnan(r["clean_loss"])
        zero = 1 - x[t + 1].pow(2).sum() / (x[t + 1] - x[t + 1].mean(0)).pow(2).sum()
        assert r["methods"]["zero"]["explained_variance"] == pytest.approx(float(zero), abs=1e-5)
    with pytest.raises(ValueError, match="no token"):
        ev_sweep(reps, iter([]), [0])
    with pytest.raises(ValueError, match="t \\+ 1 <"):
        ev_sweep(reps, [x], [2])
