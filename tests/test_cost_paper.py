"""The paper's cost (docs/method.md §3): `both` = decoder + encoder, the b_enc term only as an
explicit option, and what a global activation scale does to each folded mode."""

import numpy as np
import pytest
import torch
from helpers import random_sae

from saematch.matching import match, pair_cost
from saematch.matching.cost import augmented_features, check_bias_weight
from saematch.planted.controls import rescale_units


def test_rescaled_sae_is_the_same_map_in_new_units():
    a = random_sae(16, 24, seed=0)
    x = torch.randn(50, 16)
    np.testing.assert_allclose(
        rescale_units(a, 3.0).forward(3.0 * x).numpy(),
        3.0 * a.forward(x).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )


def test_bias_weight_adds_exactly_its_term():
    a, b = random_sae(12, 20, seed=1), random_sae(12, 20, seed=2)
    perm = np.random.default_rng(0).permutation(20)
    plain = pair_cost(a, b, perm, "both").astype(np.float64)
    bias = pair_cost(a, b, perm, "bias").astype(np.float64)
    for w in (0.5, 1.0, 4.0):
        np.testing.assert_allclose(
            pair_cost(a, b, perm, "both", bias_weight=w), plain + w * bias, rtol=1e-5
        )
    # the feature vectors gain exactly one dimension, and only in mode both
    for mode, extra in (("both", 1), ("decoder", 0), ("encoder", 0)):
        x0 = augmented_features(a, mode, "a", fold=True)
        x1 = augmented_features(a, mode, "a", fold=True, bias_weight=2.0)
        assert x1.shape[1] - x0.shape[1] == extra


def test_match_with_bias_weight_is_optimal_for_its_own_cost():
    a, b = random_sae(10, 30, seed=3), random_sae(10, 30, seed=4)
    plain = match(a, b, mode="both", fold=True, solver="scipy")
    biased = match(a, b, mode="both", fold=True, solver="scipy", bias_weight=50.0)
    assert plain.bias_weight == 0.0 and biased.bias_weight == 50.0
    assert biased.settings()["bias_weight"] == 50.0 and "bias_weight" not in plain.settings()
    fa, fb = a.fold(), b.fold()
    cost = lambda m, w: float(pair_cost(fa, fb, m.perm, "both", bias_weight=w).sum())  # noqa: E731
    assert cost(plain, 0.0) <= cost(biased, 0.0) + 1e-5
    assert cost(biased, 50.0) <= cost(plain, 50.0) + 1e-5
    assert not np.array_equal(plain.perm, biased.perm)  # a heavy b_enc term changes the answer


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "abc", True])
def test_bias_weight_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="bias_weight"):
        check_bias_weight(bad, "both")


@pytest.mark.parametrize("solver", ["scipy", "auto"])
def test_folded_decoder_and_encoder_matching_ignore_the_activation_scale(solver):
    """Control of docs/method.md §9: multiplying every activation by c scales the folded
    decoder cost by c² and the folded encoder cost by 1/c², so their matchings do not move."""
    a, b = random_sae(24, 60, seed=5), random_sae(24, 60, seed=6)
    for mode in ("decoder", "encoder"):
        ref = match(a, b, mode=mode, fold=True, solver=solver)
        for c in (0.1, 3.0, 100.0):
            m = match(rescale_units(a, c), rescale_units(b, c), mode=mode, fold=True, solver=solver)
            np.testing.assert_array_equal(m.perm, ref.perm)
            k = c**2 if mode == "decoder" else c**-2
            assert m.total_cost == pytest.approx(k * ref.total_cost, rel=1e-4)


def test_folded_both_depends_on_the_activation_scale():
    """`both` adds a cost that scales by c² to one that scales by 1/c²: its matching depends on
    the units of the activations. Reported, not hidden: the decoder share of the folded cost
    moves from ~0 to ~1 as c grows."""
    a, b = random_sae(24, 60, seed=5), random_sae(24, 60, seed=6)
    shares = []
    for c in (0.01, 1.0, 100.0):
        ac, bc = rescale_units(a, c).fold(), rescale_units(b, c).fold()
        m = match(ac, bc, mode="both", fold=False, solver="scipy")
        dec = float(pair_cost(ac, bc, m.perm, "decoder").sum())
        shares.append(dec / m.total_cost)
    assert shares[0] < 0.01 and shares[2] > 0.99
    small = match(
        rescale_units(a, 0.01), rescale_units(b, 0.01), mode="both", fold=True, solver="scipy"
    )
    large = match(
        rescale_units(a, 100.0), rescale_units(b, 100.0), mode="both", fold=True, solver="scipy"
    )
    enc = match(a, b, mode="encoder", fold=True, solver="scipy")
    dec = match(a, b, mode="decoder", fold=True, solver="scipy")
    np.testing.assert_array_equal(small.perm, enc.perm)  # both → encoder-only at small c
    np.testing.assert_array_equal(large.perm, dec.perm)  # both → decoder-only at large c
