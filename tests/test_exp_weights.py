"""Weight-space experiments on the test zoo: folding_stats (Fig. 1), mse_curves (Fig. 3),
matching_modes (Fig. 12). Each runs once per module; tests check properties that must hold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from experiment_helpers import compose_cfg, context, run, run_dir_of

from saematch.matching import MODES

TOL = 1e-6  # relative slack for float32 costs summed in float64


def _run(name, test_zoo, tmp_path_factory, overrides=()):
    out = tmp_path_factory.mktemp(name)
    cfg = compose_cfg(name, list(overrides), test_zoo, out)
    res = run(cfg)
    return cfg, res, run_dir_of(cfg)


@pytest.fixture(scope="module")
def folding(test_zoo, tmp_path_factory):
    return _run("folding_stats", test_zoo, tmp_path_factory)


@pytest.fixture(scope="module")
def curves(test_zoo, tmp_path_factory):
    return _run("mse_curves", test_zoo, tmp_path_factory)


@pytest.fixture(scope="module")
def modes(test_zoo, tmp_path_factory):
    return _run("matching_modes", test_zoo, tmp_path_factory)


def test_folding_stats_numbers(folding):
    cfg, res, run_dir = folding
    ctx = context(cfg)
    layers = list(ctx.layers)
    assert sorted(int(k) for k in res["layers"]) == layers
    assert sorted(int(k) for k in res["pairs"]) == layers[:-1]
    for L, sae in ctx.saes.items():
        row = res["layers"][str(L)]
        assert row["hidden_norm"] > 0
        assert row["theta_mean"] == pytest.approx(float(sae.threshold.double().mean()), rel=1e-9)
        folded = sae.fold().W_dec.double().norm(dim=1).mean()
        assert row["folded_dec_norm"] == pytest.approx(float(folded), rel=1e-9)
    for t, nxt in zip(layers[:-1], layers[1:], strict=True):
        p, a, b = res["pairs"][str(t)], res["layers"][str(t)], res["layers"][str(nxt)]
        # a bijection cannot change the mean of the differences: Δ of the layer means
        want = b["folded_dec_norm"] - a["folded_dec_norm"]
        assert p["dec_norm_diff"] == pytest.approx(want, rel=1e-6, abs=1e-9)
        assert p["hidden_norm_change"] == pytest.approx(b["hidden_norm"] - a["hidden_norm"])
        assert abs(p["dec_norm_diff"]) <= p["dec_norm_absdiff"] + 1e-12
        # the triangle inequality: ‖x_t+1 − x_t‖ ≥ |‖x_t+1‖ − ‖x_t‖| per token, so on average
        assert p["hidden_step_norm"] >= abs(p["hidden_norm_change"]) - 1e-9
    r = res["correlation"]["norm_change_vs_dec_norm_diff"]
    assert r["n"] == len(layers) - 1
    assert r["pearson"] is None or -1 - 1e-9 <= r["pearson"] <= 1 + 1e-9
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["status"] == "ok"
    for f in (
        "folding_stats_layers.csv",
        "folding_stats_pairs.csv",
        "folding_stats_norms.png",
        "folding_stats_norm_change.png",
    ):
        assert (run_dir / f).is_file(), f


def test_mse_curves_folded_matching_is_optimal(curves):
    cfg, res, run_dir = curves
    ctx = context(cfg)
    assert sorted(int(k) for k in res["layers"]) == list(ctx.layers)[:-1]
    n_better_than_vanilla = 0
    for t, e in res["layers"].items():
        f, m, v = e["folded"]["objective"], e["matched"]["objective"], e["vanilla"]["objective"]
        assert f <= m * (1 + TOL), f"pair {t}: folded+matched {f} > matched {m}"
        assert f <= v * (1 + TOL), f"pair {t}: folded+matched {f} > vanilla {v}"
        n_better_than_vanilla += m <= v
        for var in ("vanilla", "matched", "folded"):
            terms = e[var]
            # mode both: the paper's cost, decoder + encoder; b_enc is scored, not matched on
            total = terms["encoder_mse"] + terms["decoder_mse"]
            assert terms["objective"] == pytest.approx(total, rel=1e-12)
            assert terms["bias_mse"] >= 0
        assert e["vanilla"]["fixed_points"] == 1.0
    assert n_better_than_vanilla >= len(res["layers"]) // 2  # "matched ≤ vanilla" usually
    # scored on folded weights: recompute one vanilla decoder term by hand
    t0 = ctx.layers[0]
    a, b = ctx.saes[t0].fold(), ctx.saes[ctx.next_layer[t0]].fold()
    want = float((a.W_dec.double() - b.W_dec.double()).pow(2).mean())
    assert res["layers"][str(t0)]["vanilla"]["decoder_mse"] == pytest.approx(want, rel=1e-5)
    assert (run_dir / "mse_curves.csv").is_file() and (run_dir / "mse_curves.png").is_file()


def test_matching_modes_each_perm_optimal_for_its_mode(modes):
    cfg, res, run_dir = modes
    ctx = context(cfg)
    layers = list(ctx.layers)
    t = res["pair"]
    assert t == layers[(len(layers) - 1) // 2]
    per = res["modes"]
    assert set(per) == {*MODES, "vanilla"}
    for m in MODES:
        own = per[m][f"cost_in_{m}"]
        for other in per:
            assert own <= per[other][f"cost_in_{m}"] * (1 + TOL), (m, other)
    for name, row in per.items():
        assert row["method"] == name and row["layer"] == t
        assert 0.0 <= row["matching_score"] <= 1.0, name
        assert np.isfinite(row["delta_loss"]) and row["explained_variance"] <= 1.0
    agree = res["agreement"]
    assert set(agree) == {"encoder~decoder", "encoder~both", "decoder~both"}
    assert all(0.0 <= v <= 1.0 for v in agree.values())
    assert (run_dir / "matching_modes.png").is_file()
    assert (run_dir / "matching_modes_agreement.csv").is_file()


def test_matching_modes_bad_pair(test_zoo, tmp_path):
    cfg = compose_cfg("matching_modes", ["experiment.pair=99"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="experiment.pair=99"):
        run(cfg)
