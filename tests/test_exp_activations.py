"""matching_score, persistence, paths and match_examples on the test zoo (Fig. 5, 7R, 8, 18)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from experiment_helpers import compose_cfg, context, run, run_dir_of

from saematch import feature_paths


def _run(name, test_zoo, tmp_path_factory, overrides=()):
    out = tmp_path_factory.mktemp(name)
    cfg = compose_cfg(name, list(overrides), test_zoo, out)
    return run(cfg), cfg


def _csv(cfg, name):
    path = run_dir_of(cfg) / f"{name}.csv"
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def score_run(test_zoo, tmp_path_factory):
    return _run("matching_score", test_zoo, tmp_path_factory)


@pytest.fixture(scope="module")
def persistence_run(test_zoo, tmp_path_factory):
    return _run("persistence", test_zoo, tmp_path_factory, ["experiment.start_layers=[0,1]"])


def test_matching_scores_are_fractions_and_folded_beats_vanilla(score_run):
    res, cfg = score_run
    layers = res["layers"]
    assert len(layers) == len(context(cfg).layers) - 1
    for entry in layers.values():
        for m in ("folded", "unfolded", "vanilla"):
            assert 0.0 <= entry[m]["score"] <= 1.0
    mean = res["mean_over_pairs"]
    assert mean["folded"] >= mean["vanilla"]
    for entry in layers.values():
        assert entry["folded"]["score"] >= entry["vanilla"]["score"]


def test_matching_score_is_the_ratio_of_the_per_feature_counts(score_run):
    res, cfg = score_run
    rows = _csv(cfg, "matching_score_per_feature")
    for t, entry in res["layers"].items():
        sel = [r for r in rows if r["layer"] == t and r["method"] == "folded"]
        both = sum(int(r["n_both"]) for r in sel)
        act = sum(int(r["n_active"]) for r in sel)
        assert entry["folded"]["score"] == pytest.approx(both / act)
        assert sorted(int(r["matched_feature"]) for r in sel) == list(range(len(sel)))


def test_persistence_one_step_composition_is_the_exact_matching(persistence_run):
    res, cfg = persistence_run
    rows = _csv(cfg, "persistence")
    assert {int(r["start_layer"]) for r in rows} == {0, 1}
    for r in rows:
        if int(r["distance"]) == 1:
            assert float(r["agreement"]) == 1.0
            assert float(r["mse_exact"]) == pytest.approx(float(r["mse_composition"]))
        # the exact LAP minimises the folded cost, so composition can only cost more
        assert float(r["mse_exact"]) <= float(r["mse_composition"]) * (1 + 1e-5)
        for k in ("exact", "composition"):
            assert 0.0 <= float(r[f"matching_score_{k}"]) <= 1.0
    n_layers = len(context(cfg).layers)
    assert len(res["layers"]["0"]) == n_layers - 1


def test_composed_perms_follow_perm_bc_of_perm_ab():
    ab, bc = np.array([1, 2, 0]), np.array([2, 0, 1])
    out = feature_paths.composed_perms([3, 4, 5], {3: ab, 4: bc}, 3)
    assert out[4].tolist() == ab.tolist()
    assert out[5].tolist() == bc[ab].tolist() == [0, 1, 2]
    assert feature_paths.layer_path([3, 4, 5], {3: ab, 4: bc}, 3, 0) == [(3, 0), (4, 1), (5, 0)]
    assert feature_paths.agreement(ab, bc) == 0.0


def test_paths_follow_the_composed_matchings(test_zoo, tmp_path_factory):
    res, cfg = _run("paths", test_zoo, tmp_path_factory, ["experiment.n_paths=3"])
    ctx = context(cfg)
    layers = list(ctx.layers)
    matchings = ctx.matchings()
    assert len(res["paths"]) == 3
    freq0 = [p[0]["act_freq"] for p in res["paths"]]
    assert freq0 == sorted(freq0, reverse=True) and freq0[-1] > 0  # most_active
    for path in res["paths"]:
        assert [r["layer"] for r in path] == layers
        for k in range(1, len(path)):
            prev, cur = path[k - 1]["feature"], path[k]["feature"]
            assert cur == int(matchings[layers[k - 1]].perm[prev])
            # folded matching: its pair cost is the step MSE recomputed on folded weights
            assert path[k]["step_mse"] == pytest.approx(
                float(matchings[layers[k - 1]].pair_mse[prev]), rel=1e-4, abs=1e-7
            )
            assert 0.0 <= path[k]["act_freq"] <= 1.0
    assert "| layer | feature |" in (run_dir_of(cfg) / "paths.md").read_text()
    assert (run_dir_of(cfg) / "paths.png").exists()


def test_match_examples_span_the_mse_range(test_zoo, tmp_path_factory):
    res, cfg = _run("match_examples", test_zoo, tmp_path_factory, ["experiment.n_examples=2"])
    ex = res["examples"]
    assert [e["group"] for e in ex] == ["lowest"] * 2 + ["middle"] * 2 + ["highest"] * 2
    mse = [e["decoder_mse"] for e in ex]
    assert mse == sorted(mse)
    all_mse = [float(r["decoder_mse"]) for r in _csv(cfg, "match_examples_all_pairs")]
    assert mse[0] == pytest.approx(min(all_mse)) and mse[-1] == pytest.approx(max(all_mse))
    t = res["pair"]["from"]
    perm = context(cfg).matchings()[t].perm
    assert all(e["feature_b"] == int(perm[e["feature_a"]]) for e in ex)


def test_bad_options_fail_clearly(test_zoo, tmp_path):
    cfg = compose_cfg("matching_score", ["experiment.methods=[folded,bogus]"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="subset"):
        run(cfg)
    cfg = compose_cfg("persistence", ["experiment.start_layers=[99]"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="start_layers"):
        run(cfg)
