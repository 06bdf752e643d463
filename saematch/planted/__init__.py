"""The planted world (SPEC §9): a generator whose true features and their fate across layers are
known, the truth file, and the scores of SAEs and matchings against it."""

from saematch.planted.metrics import (
    REPRESENT_COS,
    Accuracy,
    matching_accuracy,
    represented,
    sae_recovery,
)
from saematch.planted.sample import sample_activations, sample_codes, signal_rms
from saematch.planted.world import World, WorldConfig, descendants, make_world

__all__ = [
    "REPRESENT_COS",
    "Accuracy",
    "World",
    "WorldConfig",
    "descendants",
    "make_world",
    "matching_accuracy",
    "represented",
    "sae_recovery",
    "sample_activations",
    "sample_codes",
    "signal_rms",
]
