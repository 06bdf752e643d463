"""Permutation: identity, compose, inverse, apply, save/load (docs/method.md §3, Sec. 3.2)."""

import numpy as np
import pytest
import torch
from helpers import random_sae

from saematch.matching import Permutation, compose_chain, feature_path, match


def test_identity_inverse_compose():
    p = Permutation([2, 0, 3, 1])
    q = Permutation([1, 3, 0, 2])
    assert p.compose(Permutation.identity(4)) == p
    assert Permutation.identity(4).compose(p) == p
    assert p.compose(p.inverse()) == Permutation.identity(4)
    assert p.inverse().compose(p) == Permutation.identity(4)
    # perm_AC = perm_BC[perm_AB]: feature i goes to p[i] in B, then q[p[i]] in C
    assert p.compose(q).perm.tolist() == [q.perm[p.perm[i]] for i in range(4)]
    assert compose_chain([p, q, p]).perm.tolist() == p.perm[q.perm[p.perm]].tolist()
    assert feature_path([p, q], 1) == [1, 0, 1]


def test_apply_to_activations_numpy_and_torch():
    p = Permutation([2, 0, 1])
    f = np.array([[10.0, 20.0, 30.0], [1.0, 2.0, 3.0]])
    out = p.apply_to_activations(f)
    assert out.tolist() == [[20.0, 30.0, 10.0], [2.0, 3.0, 1.0]]  # out[..., perm[i]] = f[..., i]
    assert torch.equal(p.apply_to_activations(torch.as_tensor(f)), torch.as_tensor(out))
    with pytest.raises(ValueError, match="features"):
        p.apply_to_activations(np.zeros((2, 4)))


def test_apply_to_sae_lines_up_features():
    a = random_sae(6, 8, seed=0)
    p = Permutation(np.random.default_rng(0).permutation(8))
    b = p.apply_to_sae(a)
    x = torch.randn(5, 6)
    # encoding with the permuted SAE equals permuting the activations
    assert torch.allclose(b.encode(x), p.apply_to_activations(a.encode(x)))
    assert match(a, b, mode="both", solver="scipy").perm.tolist() == p.perm.tolist()


def test_save_load_roundtrip(tmp_path):
    p = Permutation(np.random.default_rng(1).permutation(50))
    p.save(tmp_path / "p.npy")
    assert Permutation.load(tmp_path / "p.npy") == p
    np.save(tmp_path / "bad.npy", np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="bijection"):
        Permutation.load(tmp_path / "bad.npy")


@pytest.mark.parametrize(
    "bad, msg",
    [
        ([0, 1, 1], "bijection"),
        ([0, 3, 1], r"\[0, 3\)"),
        ([[0, 1]], "1-D"),
        ([0.0, 1.0], "integer"),
    ],
)
def test_rejects_non_bijections(bad, msg):
    with pytest.raises(ValueError, match=msg):
        Permutation(np.asarray(bad))


def test_width_mismatch():
    with pytest.raises(ValueError, match="width"):
        Permutation.identity(3).compose(Permutation.identity(4))
