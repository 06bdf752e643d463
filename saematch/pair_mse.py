"""The cost of a given permutation between two SAEs, pair by pair and term by term.

For SAEs A and B and a permutation perm (feature i of A paired with perm[i] of B), the
matching cost's terms (docs/method.md §3), averaged over the F pairs:

    encoder_mse = mean_i mean_d (W_enc,A[:, i] − W_enc,B[:, perm[i]])²
    decoder_mse = mean_i mean_d (W_dec,A[i] − W_dec,B[perm[i]])²
    bias_mse    = mean_i (b_enc,A[i] − b_enc,B[perm[i]])²

Experiments score every permutation on folded weights (eq. 4), whatever it was matched on.
"""

from __future__ import annotations

import numpy as np

from saematch.feature_paths import perm_array
from saematch.matching import pair_cost

TERMS = {"encoder_mse": "encoder", "decoder_mse": "decoder", "bias_mse": "bias"}  # -> cost mode


def folded_mse(sae_a, sae_b, perm, mode: str) -> np.ndarray:
    """Per-pair cost (F,) of pairing i with perm[i] on folded weights (eq. 3-4), in `mode`."""
    return pair_cost(sae_a.fold(), sae_b.fold(), perm_array(perm), mode)


def mse_terms(a, b, perm) -> dict[str, float]:
    """{encoder_mse, decoder_mse, bias_mse}: each cost term of perm between a and b (as given,
    folded or not), mean over the F pairs."""
    return {k: float(pair_cost(a, b, perm, m).astype(np.float64).mean()) for k, m in TERMS.items()}


def mode_cost(terms: dict[str, float], mode: str, bias_weight: float = 0.0) -> float:
    """The matching cost of `mode` from mse_terms' terms: encoder_mse, decoder_mse, or for
    `both` their sum (+ bias_weight · bias_mse, a departure from the paper, off by default)."""
    if mode == "both":
        return terms["encoder_mse"] + terms["decoder_mse"] + bias_weight * terms["bias_mse"]
    return terms[f"{mode}_mse"]
