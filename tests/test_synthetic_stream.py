"""synthetic_features: synthetic_pair's augmented features, generated in row chunks, bit for bit."""

import numpy as np
import pytest

from saematch.matching.cost import augmented_features
from saematch.planted.synthetic import synthetic_pair
from saematch.planted.synthetic_stream import synthetic_features


@pytest.mark.parametrize("mode", ["decoder", "encoder", "both"])
@pytest.mark.parametrize(
    ("d", "n", "chunk", "unmatched"),
    [(16, 300, 7, 0.2), (48, 700, 128, 0.5), (32, 64, 1000, 0.0), (8, 50, 50, 1.0)],
)
def test_equals_synthetic_pair(mode, d, n, chunk, unmatched):
    """Every value equals the one built from synthetic_pair's SAEs, whatever the chunk (one
    row, one chunk, the fresh rows' stream empty or everything), and the planted perm too."""
    a, b, planted = synthetic_pair(d, n, unmatched, 0.5, seed=3)
    xa, xb, p = synthetic_features(d, n, mode, unmatched, 0.5, seed=3, chunk=chunk, threads=2)
    np.testing.assert_array_equal(xa, augmented_features(a, mode, "a", fold=True))
    np.testing.assert_array_equal(xb, augmented_features(b, mode, "b", fold=True))
    np.testing.assert_array_equal(p, planted)


def test_seed_and_errors():
    x1 = synthetic_features(8, 40, seed=1)[0]
    assert np.array_equal(x1, synthetic_features(8, 40, seed=1, chunk=3, threads=1)[0])
    assert not np.array_equal(x1, synthetic_features(8, 40, seed=2)[0])
    with pytest.raises(ValueError, match="unknown matching mode"):
        synthetic_features(8, 40, mode="bias")
    with pytest.raises(ValueError, match="must be ≥ 1"):
        synthetic_features(8, 0)
