"""The published JumpReLU recipe, oracle SAEs and SAE-quality metrics of the planted world."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saematch.planted import (
    ground_truth_report,
    make_world,
    planted_config,
    represented,
    sae_recovery,
    sample_activations,
)
from saematch.planted.oracle import oracle_saes
from saematch.planted.sae_quality import layer_quality, successor_corr
from saematch.planted.sample import sample_with_codes
from saematch.planted.world import WorldConfig
from saematch.zoo.progress import Progress
from saematch.zoo.train_published import lambda_at, published_lr
from saematch.zoo.train_sae import train_saes

SMALL = WorldConfig(n_layers=3, d_model=32, n_features=60, l0=3.0)


def test_lambda_warms_up_linearly_then_stays_fixed():
    assert lambda_at(0, 1000, 0.01, 0.1) == 0.0
    assert lambda_at(50, 1000, 0.01, 0.1) == pytest.approx(0.005)
    assert lambda_at(100, 1000, 0.01, 0.1) == pytest.approx(0.01)
    assert lambda_at(999, 1000, 0.01, 0.1) == pytest.approx(0.01)
    assert lambda_at(0, 1000, 0.01, 0.0) == 0.01  # no warm-up


def test_published_lr_warms_up_from_a_tenth():
    assert published_lr(0, 1000, 1.0, decay=False) == pytest.approx(0.1)
    assert published_lr(500, 1000, 1.0, decay=False) == 1.0
    assert published_lr(999, 1000, 1.0, decay=True) == pytest.approx(0.1, abs=1e-3)


def test_recipe_errors_say_what_to_set():
    acts = torch.randn(1, 64, 8)
    with pytest.raises(ValueError, match="unknown SAE training recipe 'adam'"):
        train_saes(acts, acts, [2], 16, steps=2, batch=8, lr=1e-2, bandwidth=None, seed=0,
                   progress=Progress(False), recipe="adam")  # fmt: skip
    with pytest.raises(ValueError, match="fixed sparsity coefficient l0_coeff > 0"):
        train_saes(acts, acts, [2], 16, steps=2, batch=8, lr=1e-2, bandwidth=None, seed=0,
                   progress=Progress(False), recipe="published")  # fmt: skip
    with pytest.raises(ValueError, match="unknown recipe 'fancy'"):
        planted_config("test", recipe="fancy")
    with pytest.raises(ValueError, match="no calibrated λ"):
        planted_config("16k", recipe="published").sparsity_coeff()
    assert planted_config("test", recipe="published", l0_coeff=0.02).sparsity_coeff() == 0.02
    assert planted_config("test").sparsity_coeff() == 0.01  # the calibrated default
    ctrl = planted_config("test", recipe="controller", l0_coeff=0.5)
    assert ctrl.sparsity_coeff() is None and ctrl.l0_coeff is None  # it steers λ itself


def test_published_recipe_keeps_lambda_fixed_and_reports_no_bound():
    world = make_world(SMALL, 0)
    acts = sample_activations(world, 2048, 1)
    res = train_saes(acts, acts[:, :512], [1, 1], 64, steps=30, batch=128, lr=1e-2,
                     bandwidth=None, seed=0, progress=Progress(False), recipe="published",
                     l0_coeff=[0.01, 0.03])  # fmt: skip
    for t in range(SMALL.n_layers):
        assert [m["l0_coeff"] for m in res.metrics[t]] == pytest.approx([0.01, 0.03])
        assert all(m["l0_coeff_at_bound"] == 0.0 for m in res.metrics[t])
        for sae in res.saes[t]:
            assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)


def test_sample_with_codes_gives_the_same_tokens():
    world = make_world(SMALL, 2)
    x, codes = sample_with_codes(world, 300, 5, chunk=128)
    assert torch.equal(x, sample_activations(world, 300, 5, chunk=128))
    assert [c.shape for c in codes] == [(300, len(u)) for u in world.directions]
    # the tokens are the codes through the truth, plus small noise
    rebuilt = (codes[1] * world.scales[1]) @ world.directions[1]
    assert float((x[1] - rebuilt).pow(2).mean() / x[1].pow(2).mean()) < 0.01


def test_oracle_saes_carry_the_truth():
    world = make_world(SMALL, 3)
    width = max(len(u) for u in world.directions) + 5
    for theta in ("scale", "layer"):
        saes = oracle_saes(world, theta, width=width)
        for t, sae in enumerate(saes):
            n = len(world.directions[t])
            assert sae.width == width and sae_recovery(sae.W_dec, world.directions[t]) == 1.0
            rep = represented(sae.W_dec, world.directions[t])
            assert rep[:n].tolist() == list(range(n)) and (rep[n:] == -1).all()  # pads: none
            if theta == "scale":
                assert torch.equal(sae.threshold[:n], world.scales[t].float())
            else:
                assert torch.allclose(sae.threshold, sae.threshold[0].expand(width))
    with pytest.raises(ValueError, match="oracle θ 'median' unknown"):
        oracle_saes(world, "median")


def test_one_theta_per_layer_makes_folding_a_no_op():
    """With one θ per layer, folded decoder and encoder LAPs equal the unfolded ones."""
    world = make_world(WorldConfig(n_layers=3, d_model=32, n_features=60, l0=3.0, drift=1.5), 4)
    variants = [f"{f}_{m}" for m in ("decoder", "encoder") for f in ("folded", "unfolded")]
    rep = ground_truth_report(oracle_saes(world, "layer"), world, variants=variants,
                              composition_variant=None)  # fmt: skip
    for m in ("decoder", "encoder"):
        for pair, acc in rep.accuracy[f"folded_{m}"].items():
            assert acc.correct == rep.accuracy[f"unfolded_{m}"][pair].correct


def test_quality_of_oracle_saes():
    world = make_world(SMALL, 5)
    saes = oracle_saes(world, "scale")
    x, codes = sample_with_codes(world, 2000, 7)
    q = layer_quality(saes[1], world, 1, x[1], codes[1])
    assert q["recovery"] == 1.0 and q["duplicates"] == 0.0
    assert q["theta_scale_corr"] == pytest.approx(1.0) and q["theta_over_scale"] == 1.0
    assert 0.3 < q["recall"] < 0.8  # θ = s cuts activations a·s with a < 1 (median a = 1)
    sc = successor_corr(saes, world)
    assert sc["succ_pairs"] > 50
    assert sc["theta_succ_corr"] == pytest.approx(sc["scale_succ_corr"])
    assert np.isfinite(sc["scale_succ_corr"])


@pytest.mark.slow
def test_published_recipe_recovers_the_test_world():
    """The published recipe with the test preset's calibrated λ: recovery ≥ 0.9 on every layer
    (about 4-5 min of CPU on one core; marked slow)."""
    cfg = planted_config("test", recipe="published")
    world = make_world(cfg.world, 0)
    acts = sample_activations(world, cfg.n_train, 1)
    held = sample_activations(world, cfg.n_heldout, 2)
    res = train_saes(acts, held, [cfg.l0_target], cfg.width, steps=cfg.steps, batch=cfg.batch,
                     lr=cfg.lr, bandwidth=cfg.bandwidth, seed=0, progress=Progress(False),
                     recipe="published", l0_coeff=cfg.sparsity_coeff(),
                     lambda_warmup=cfg.lambda_warmup, lr_decay=cfg.lr_decay)  # fmt: skip
    rec = [sae_recovery(res.saes[t][0].W_dec, world.directions[t]) for t in range(4)]
    assert min(rec) >= 0.9, rec
    assert all(res.metrics[t][0]["explained_variance"] > 0.85 for t in range(4))


def test_trainer_docs_are_generated_from_result_files(tmp_path):
    """scripts/make_trainer_docs.py writes both docs from CSVs; its numbers are the CSVs'."""
    import csv
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parent.parent / "scripts" / "make_trainer_docs.py"
    spec = importlib.util.spec_from_file_location("make_trainer_docs", path)
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    rows = []
    for recipe, rec in (("controller", 0.95), ("published", 0.99)):
        for seed in range(3):
            for layer, metric, value in [(0, "recovery", rec), (1, "recovery", rec - 0.01),
                                         (0, "l0_coeff_at_bound", 1.0 if recipe == "controller"
                                          else 0.0), (0, "l0_coeff", 4.0),
                                         (0, "explained_variance", 0.9),
                                         (0, "theta_scale_corr", 0.1 * seed)]:  # fmt: skip
                rows.append({"recipe": recipe, "seed": seed, "size": "default", "layer": layer,
                             "metric": metric, "value": value})  # fmt: skip
    with open(tmp_path / "trainer_compare.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "trainer_compare.json").write_text(json.dumps({"run_id": "R1"}))
    text = docs.trainer_doc(tmp_path)
    assert "0.945 ± 0.000 [0.940, 0.950] (3)" in text  # controller recovery: layers averaged
    assert "on 3 of 3 (layer, seed) SAEs" in text  # the controller's λ at its bound
    assert "Run `R1`" in text
    assert "No sweep results yet" in docs.sweep_doc(tmp_path)
