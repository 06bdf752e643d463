"""The planted world (docs/method.md §9): a generator whose true features and their fate across
layers are known, the truth file, and the scores of SAEs and matchings against it."""

from saematch.planted.build import SIZES, PlantedConfig, planted_config
from saematch.planted.evaluate import VARIANTS, GroundTruthReport, ground_truth_report
from saematch.planted.metrics import (
    REPRESENT_COS,
    Accuracy,
    matching_accuracy,
    represented,
    sae_recovery,
)
from saematch.planted.sample import sample_activations, sample_codes, signal_rms
from saematch.planted.store import PlantedSet, ensure_planted, planted_dir
from saematch.planted.truth import TRUTH, load_truth, save_truth
from saematch.planted.world import World, WorldConfig, descendants, make_world

__all__ = [
    "REPRESENT_COS",
    "SIZES",
    "TRUTH",
    "VARIANTS",
    "GroundTruthReport",
    "PlantedConfig",
    "PlantedSet",
    "ensure_planted",
    "ground_truth_report",
    "load_truth",
    "planted_config",
    "planted_dir",
    "save_truth",
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
