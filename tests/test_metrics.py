"""Metrics (docs/method.md §5) against hand computations on tiny tensors."""

import math

import numpy as np
import pytest
import torch
from helpers import random_sae

from saematch.metrics import (
    MatchingScoreAccumulator,
    below_quantile,
    describe,
    explained_variance,
    gpt_score,
    label_counts,
    matching_score,
    quantile_mix_decode,
    quantiles,
)


# -- explained variance ------------------------------------------------------
def test_ev_hand_computed():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 6.0]])  # mean (2, 2)
    x_hat = torch.tensor([[1.0, 0.0], [2.0, 0.0], [4.0, 4.0]])
    # total = (4+4) + (0+4) + (4+16) = 32; resid = 1 + 0 + 4 = 5
    assert explained_variance(x_hat, x) == pytest.approx(1 - 5 / 32)


def test_ev_ends():
    x = torch.randn(3, 7, 5)
    assert explained_variance(x, x) == pytest.approx(1.0)
    mean = x.reshape(-1, 5).mean(0).expand_as(x)
    assert explained_variance(mean, x) == pytest.approx(0.0, abs=1e-6)


def test_ev_mask_excludes_bos():
    x = torch.randn(2, 4, 3)
    x_hat = x.clone()
    x_hat[:, 0] += 100.0  # a terrible BOS reconstruction
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[:, 0] = False
    assert explained_variance(x_hat, x, mask) == pytest.approx(1.0)
    assert explained_variance(x_hat, x) < 0
    with pytest.raises(ValueError, match="mask has shape"):
        explained_variance(x_hat, x, mask[:, :3])
    with pytest.raises(ValueError, match="shape"):
        explained_variance(x_hat[:, :3], x)


# -- matching score -----------------------------------------------------------
def test_matching_score_hand_computed():
    # 3 tokens, 3 features; perm maps A0->B2, A1->B0, A2->B1
    f_a = torch.tensor([[1.0, 0.0, 2.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    f_b = torch.tensor([[0.0, 0.0, 5.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    perm = [2, 0, 1]
    # A0 active on t0,t1; B2 active on t0,t2 -> both 1 of 2
    # A1 active on t1; B0 active on t2 -> 0 of 1
    # A2 active on t0; B1 active on t1,t2 -> 0 of 1
    score, per = matching_score(f_a, f_b, perm)
    assert score == pytest.approx(1 / 4)
    np.testing.assert_allclose(per, [0.5, 0.0, 0.0])
    # masking out token 1 leaves A0: 1 of 1, A1 never active, A2: 0 of 1
    score, per = matching_score(f_a, f_b, perm, mask=torch.tensor([True, False, True]))
    assert score == pytest.approx(1 / 2)
    assert per[0] == 1.0 and math.isnan(per[1]) and per[2] == 0.0


def test_matching_score_identity_and_range():
    f = torch.relu(torch.randn(4, 10, 16))
    score, per = matching_score(f, f, np.arange(16))
    assert score == 1.0
    assert np.all(per[~np.isnan(per)] == 1.0)
    g = torch.relu(torch.randn(4, 10, 16))
    score, per = matching_score(f, g, np.random.permutation(16))
    assert 0.0 <= score <= 1.0
    assert np.all((per[~np.isnan(per)] >= 0) & (per[~np.isnan(per)] <= 1))


def test_accumulator_equals_one_shot():
    f_a = torch.relu(torch.randn(6, 20, 12))
    f_b = torch.relu(torch.randn(6, 20, 12))
    mask = torch.rand(6, 20) > 0.2
    perm = np.random.permutation(12)
    score, per = matching_score(f_a, f_b, perm, mask)
    acc = MatchingScoreAccumulator(perm)
    for i in range(0, 6, 2):
        acc.update(f_a[i : i + 2], f_b[i : i + 2], mask[i : i + 2])
    s2, per2 = acc.result()
    assert s2 == score
    np.testing.assert_array_equal(per2, per)
    with pytest.raises(ValueError, match="equal shapes"):
        acc.update(f_a[..., :5], f_b[..., :5])


# -- quantile ablation (eq. 6) ------------------------------------------------
def test_below_quantile_ends_and_middle():
    mse = np.array([0.5, 0.1, 0.3, 0.1, 0.9])
    assert not below_quantile(mse, 0.0).any()
    assert below_quantile(mse, 1.0).all()
    # 40 % of 5 = 2 smallest: the two 0.1 pairs
    np.testing.assert_array_equal(below_quantile(mse, 0.4), [False, True, False, True, False])
    np.testing.assert_array_equal(below_quantile(mse, 0.7), [False, True, True, True, False])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        below_quantile(mse, 1.5)


def _setup():
    prev, cur = random_sae(8, 6, seed=1), random_sae(8, 6, seed=2)
    x = torch.randn(3, 5, 8)
    f = prev.encode(x)  # (3, 5, 6)
    perm = np.array([3, 0, 5, 1, 2, 4])
    mse = np.array([0.2, 0.9, 0.1, 0.5, 0.4, 0.3])
    return prev, cur, f, perm, mse


def test_quantile_mix_ends():
    prev, cur, f, perm, mse = _setup()
    pf = torch.zeros_like(f)
    pf[..., torch.as_tensor(perm)] = f  # (P f)[perm[i]] = f[i]
    q1 = quantile_mix_decode(f, perm, mse, prev, cur, 1.0)
    torch.testing.assert_close(q1, cur.decode(pf))  # SAE Match decoding
    q0 = quantile_mix_decode(f, perm, mse, prev, cur, 0.0)
    torch.testing.assert_close(q0, prev.decode(f) - prev.b_dec + cur.b_dec)


def test_quantile_mix_middle_by_hand():
    prev, cur, f, perm, mse = _setup()
    # q = 0.5 -> the 3 lowest-MSE pairs: features 2 (0.1), 0 (0.2), 5 (0.3)
    out = quantile_mix_decode(f, perm, mse, prev, cur, 0.5)
    expected = cur.b_dec.clone().expand(3, 5, 8).clone()
    for i in range(6):
        if i in (0, 2, 5):
            expected += f[..., i : i + 1] * cur.W_dec[perm[i]]
        else:
            expected += f[..., i : i + 1] * prev.W_dec[i]
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="must all agree"):
        quantile_mix_decode(f[..., :5], perm, mse, prev, cur, 0.5)


# -- judge and stats ------------------------------------------------------------
def test_label_counts_and_gpt_score():
    labels = [1, 3, "3", " 2 ", None, "n/a", 7, 3.0, True]
    assert label_counts(labels) == {1: 1, 2: 1, 3: 3}
    assert gpt_score(labels) == pytest.approx((1 + 2 + 9) / 5)
    assert math.isnan(gpt_score([None, "x"]))


def test_quantiles_and_describe():
    v = [1.0, 2.0, np.nan, 3.0, 4.0]
    np.testing.assert_allclose(quantiles(v, [0.0, 0.5, 1.0]), [1.0, 2.5, 4.0])
    d = describe(v)
    assert d["n"] == 4 and d["mean"] == 2.5 and d["median"] == 2.5
    assert describe([np.nan])["n"] == 0
