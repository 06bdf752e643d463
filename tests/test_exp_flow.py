"""experiment=flow and experiment=steering end to end on the test zoo (small settings)."""

from __future__ import annotations

import json

import pytest
from experiment_helpers import compose_cfg, run, run_dir_of

from saematch.flow import ORIGINS, load_flow_graph


def test_flow_writes_graph_shares_and_validation(test_zoo, tmp_path):
    cfg = compose_cfg("flow", ["experiment.n_edges=60"], test_zoo, tmp_path)
    out = run(cfg)
    d = run_dir_of(cfg)
    for f in ("flow_shares.png", "flow_shares.csv", "flow_validation.png", "results.json"):
        assert (d / f).is_file(), f
    graph = load_flow_graph(d / "matchings" / "flow_graph.json")
    meta = json.loads((d / "matchings" / "flow_graph.json").read_text())
    assert meta["format"] == "saematch-flow-graph/1" and meta["saes"]["att/1"]["site"] == "attn_z"
    assert [fl.layer for fl in graph.layers] == [1, 2, 3]
    assert sorted(out["layers"]) == ["1", "2", "3"]
    for row in out["layers"].values():
        assert sum(row[o] for o in ORIGINS) == pytest.approx(1.0)
        assert row["null_res_mean"] < row["best_res_mean"]  # trained SAEs beat the chance level
    # best res candidates co-fire more than random pairs (measured on the test zoo: ~0.1 vs 0.0)
    v = out["validation"]
    assert v["res/top1_any"] > v["res/random"] + 0.03, v


def test_steering_writes_effects_and_samples(test_zoo, tmp_path):
    over = ["experiment.n_features=2", "experiment.scales=[4.0]", "experiment.n_random=1",
            "experiment.n_generate=2", "saes.layers=[1,2]"]  # fmt: skip
    cfg = compose_cfg("steering", over, test_zoo, tmp_path)
    out = run(cfg)
    for f in ("steering.png", "steering.csv", "steering_summary.csv", "steering.md"):
        assert (run_dir_of(cfg) / f).is_file(), f
    modes = {r["mode"]: r for r in out["summary"]}
    assert set(modes) == {"path", "single"}
    assert modes["path"]["kl"] > modes["single"]["kl"] > 0  # two layers steer more than one
    assert out["samples"] and "steered" in out["samples"][0]


def test_flow_bad_similarity_is_a_clear_error(test_zoo, tmp_path):
    cfg = compose_cfg("flow", ["experiment.similarity=euclid"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="similarity must be one of"):
        run(cfg)
