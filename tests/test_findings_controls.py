"""The controls behind docs/findings.md (issue 20): the bias variant by one override of the
default experiment, the activation-scale rescaling, the truth permutation and its shuffles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from experiment_helpers import compose_cfg, run, run_dir_of
from helpers import random_sae
from test_planted_set import _FakeZoo

from saematch.matching import match
from saematch.planted import ground_truth_report, matching_accuracy, represented
from saematch.planted.controls import corrupt_permutation, rescale_units, truth_permutation
from saematch.planted.world import descendants


def _cfg(planted, tmp_path: Path, *extra: str):
    cache = Path(planted.root).parent.parent
    return compose_cfg(
        "ground_truth", ["saes.size=test", "experiment.composition_variant=folded_both", *extra],
        _FakeZoo(cache), tmp_path,
    )  # fmt: skip


def test_bias_variant_is_one_override_of_the_default_experiment(test_planted, tmp_path):
    """`saematch matching.bias_weight=1` scores mode both with the b_enc term, and its match
    files say so; the default run scores the paper's cost (no b_enc term)."""
    plain = run(_cfg(test_planted, tmp_path / "plain"))
    cfg = _cfg(test_planted, tmp_path / "bias", "matching.bias_weight=1")
    biased = run(cfg)
    saes, world = test_planted.load_saes(), test_planted.truth

    def want(w: float) -> dict:
        def matcher(a, b, mode, fold):
            return match(a, b, mode=mode, fold=fold, bias_weight=w).perm

        rep = ground_truth_report(
            saes, world, variants=["folded_both", "unfolded_both", "folded_decoder"],
            composition_variant=None, matcher=matcher,
        )  # fmt: skip
        return {v: {p: a.accuracy for p, a in per.items()} for v, per in rep.accuracy.items()}

    for res, w in ((plain, 0.0), (biased, 1.0)):
        expect = want(w)
        for v, per in expect.items():
            assert res["accuracy"][v] == pytest.approx(per), (w, v)
    # the option changes mode both only, and here it changes its matchings
    assert biased["accuracy"]["folded_decoder"] == plain["accuracy"]["folded_decoder"]
    assert want(1.0)["unfolded_both"] != want(0.0)["unfolded_both"]
    index = json.loads((run_dir_of(cfg) / "matchings" / "folded_both.json").read_text())
    meta = json.loads((run_dir_of(cfg) / "matchings" / index["pairs"][0]["file"]).read_text())
    assert meta["bias_weight"] == 1.0


def test_rescaled_units_are_the_same_map():
    a = random_sae(16, 24, seed=0)
    x = torch.randn(40, 16)
    for c in (0.1, 7.0):
        b = rescale_units(a, c)
        np.testing.assert_allclose(b(c * x).numpy(), c * a(x).numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(b.encode(c * x).numpy(), c * a.encode(x).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="c > 0"):
        rescale_units(a, 0.0)


def test_truth_permutation_reaches_the_ceiling_and_shuffles_lower_it(test_planted):
    saes, world = test_planted.load_saes(), test_planted.truth
    rep_a = represented(saes[1].W_dec, world.directions[1])
    rep_b = represented(saes[2].W_dec, world.directions[2])
    truth = descendants(world.successor, 1, 1)
    rng = np.random.default_rng(0)
    tiebreak = rng.random((saes[1].width, saes[2].width))
    best = truth_permutation(rep_a, rep_b, truth, tiebreak)
    assert sorted(best.tolist()) == list(range(saes[2].width))
    acc = matching_accuracy(best, rep_a, rep_b, truth)
    assert acc.correct == acc.attainable and acc.support > 50
    # the tie-break only chooses among equally right pairings
    assert matching_accuracy(truth_permutation(rep_a, rep_b, truth), rep_a, rep_b, truth).correct \
        == acc.correct  # fmt: skip
    previous = acc.accuracy
    for q in (0.25, 0.5, 1.0):
        shuffled = corrupt_permutation(best, q, seed=3)
        assert sorted(shuffled.tolist()) == list(range(len(best)))
        assert (shuffled != best).sum() == round(q * len(best))
        now = matching_accuracy(shuffled, rep_a, rep_b, truth).accuracy
        assert now < previous
        previous = now
    with pytest.raises(ValueError, match="share"):
        corrupt_permutation(best, 1.5, seed=0)
