"""Experiments that need only SAEs and activations run on the planted world (issue 10, item 3):
activations come from its generator, pruning reports EV and says ΔL is not defined."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from experiment_helpers import compose_cfg, context, run
from test_planted_set import _FakeZoo

from saematch.metrics import MatchingScoreAccumulator
from saematch.pruning import permute_codes


def _ev(x_hat, x) -> float:
    return 1 - (x_hat - x).pow(2).sum().item() / (x - x.mean(0)).pow(2).sum().item()


def _cfg(experiment: str, planted, tmp_path: Path, *extra: str):
    cache = Path(planted.root).parent.parent
    return compose_cfg(experiment, ["saes=planted", "saes.size=test", *extra], _FakeZoo(cache),
                       tmp_path)  # fmt: skip


def test_layer_pruning_on_the_planted_world_is_ev_of_the_generator(test_planted, tmp_path):
    cfg = _cfg("layer_pruning", test_planted, tmp_path)
    res = run(cfg)
    assert res["delta_loss_defined"] is False and res["data"] == "planted generator"
    # recompute every EV by hand from the planted set's files and its generator
    ctx = context(cfg)
    n = cfg.data.n_examples * (cfg.data.seq_len - 1)
    x = test_planted.activations(n)  # (L, n, d), the held-out stream
    saes = test_planted.load_saes()
    perms = {t: m.perm for t, m in ctx.matchings().items()}
    for t in range(test_planted.n_layers - 1):
        methods = res["layers"][str(t)]["methods"]
        assert all(math.isnan(v["delta_loss"]) for v in methods.values())
        match = saes[t + 1].decode(permute_codes(saes[t].encode(x[t]), perms[t]))
        ev = {
            "sae_match": _ev(match, x[t + 1]),
            "layer_drop": _ev(x[t], x[t + 1]),
            "encdec_current": _ev(saes[t + 1](x[t + 1]), x[t + 1]),
        }
        for name, want in ev.items():
            assert methods[name]["explained_variance"] == pytest.approx(want, abs=1e-4), name
        # the matching carries the transfer: the identity pairing explains far less
        identity = _ev(saes[t + 1].decode(saes[t].encode(x[t])), x[t + 1])
        assert ev["sae_match"] > identity + 0.3, (t, ev, identity)
        assert ev["encdec_current"] > ev["sae_match"]


def test_matching_score_and_modes_on_the_planted_world(test_planted, tmp_path):
    res = run(_cfg("matching_score", test_planted, tmp_path))
    ctx = context(_cfg("matching_score", test_planted, tmp_path / "again"))
    x = next(ctx.activation_rows([0, 1]))
    saes = test_planted.load_saes()
    acc = MatchingScoreAccumulator(ctx.matchings()[0].perm)
    for rows in ctx.activation_rows([0, 1]):
        acc.update(saes[0].encode(rows[0]), saes[1].encode(rows[1]))
    assert x.shape[0] == 2
    assert res["layers"]["0"]["folded"]["score"] == pytest.approx(acc.result()[0])
    for t, entry in res["layers"].items():
        assert entry["folded"]["score"] > 3 * entry["vanilla"]["score"], t
    modes = run(_cfg("matching_modes", test_planted, tmp_path, "experiment.pair=1"))
    per = modes["modes"]
    assert modes["delta_loss_defined"] is False
    assert all(math.isnan(per[m]["delta_loss"]) for m in per)
    assert per["decoder"]["explained_variance"] > per["vanilla"]["explained_variance"]
    assert per["decoder"]["matching_score"] > 3 * per["vanilla"]["matching_score"]


def test_quantile_ablation_and_persistence_on_the_planted_world(test_planted, tmp_path):
    q = run(_cfg("quantile_ablation", test_planted, tmp_path, "experiment.quantiles=[0.0,1.0]"))
    assert q["delta_loss_defined"] is False
    assert all(math.isfinite(v["explained_variance"]) for v in q["mean"].values())
    p = run(_cfg("persistence", test_planted, tmp_path, "experiment.matching_score=true"))
    assert p  # ran on the generator's activations without asking for an LM


def test_an_lm_experiment_on_the_planted_world_says_why_it_cannot_run(test_planted, tmp_path):
    ctx = context(_cfg("steering", test_planted, tmp_path))
    with pytest.raises(ValueError, match="ΔL is not defined"):
        _ = ctx.lm


def test_explorer_on_the_planted_world_needs_no_zoo(test_planted, tmp_path, monkeypatch):
    """saes=planted experiment=explorer used to build the 10-minute LM zoo (for the zoo's
    descriptions, then its matching score asked for the LM); now the score is computed on the
    planted world's activations and the descriptions are skipped with a note."""
    from saematch_experiments.harness.context import Context

    def no_zoo(self):
        raise AssertionError("the explorer on the planted world asked for the LM zoo")

    monkeypatch.setattr(Context, "zoo", property(no_zoo))
    monkeypatch.setattr(Context, "lm", property(no_zoo))
    cfg = _cfg("explorer", test_planted, tmp_path, "experiment.exact_starts=[]")
    res = run(cfg)
    assert "descriptions=zoo describes the built-in zoo's SAEs" in res["descriptions_skipped"]
    ctx = context(_cfg("explorer", test_planted, tmp_path / "again"))
    for t, score in res["matching_score"].items():  # recomputed from the generator's x_t
        t = int(t)
        acc = MatchingScoreAccumulator(ctx.matchings()[t].perm)
        saes = test_planted.load_saes()
        for rows in ctx.activation_rows([t, t + 1]):
            acc.update(saes[t].encode(rows[0]) > 0, saes[t + 1].encode(rows[1]) > 0)
        assert score == pytest.approx(float(acc.result()[0]), abs=1e-6)
