"""experiment=beyond_bijection on planted pairs and the test zoo: scores, tables, match files."""

import json

import pytest
from experiment_helpers import compose_cfg, context, run, run_dir_of

import saematch


@pytest.fixture(scope="module")
def beyond(test_zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("beyond")
    over = ["experiment.noises=[0.5,3.0]", "experiment.seeds=1", "experiment.width=512",
            "experiment.d_model=64"]  # fmt: skip
    cfg = compose_cfg("beyond_bijection", over, test_zoo, out)
    return cfg, run(cfg), run_dir_of(cfg)


def test_planted_scores(beyond):
    _, res, run_dir = beyond
    rows = json.loads((run_dir / "results.json").read_text())["tables"]["planted_scores"]
    assert {r["mode"] for r in rows} == {"decoder", "both"} and len(rows) == 2 * 2 * 2
    easy = [r for r in rows if r["mode"] == "decoder" and r["noise"] == 0.5]
    part = next(r for r in easy if r["matching"] == "partial")
    bij = next(r for r in easy if r["matching"] == "bijection")
    assert bij["unmatched_share"] == 0 and bij["unmatched_precision"] is None  # NaN: none left
    assert part["unmatched_precision"] > 0.9 and part["unmatched_recall"] > 0.9
    assert part["pair_accuracy"] > bij["pair_accuracy"]  # the forced pairs of dead features
    assert bij["confidence_auroc"] > 0.8
    assert res["planted"]["decoder/noise=0.5/partial"]["unmatched_recall"] > 0.9


def test_sae_set_unmatched_share_and_match_files(beyond):
    cfg, res, run_dir = beyond
    ctx = context(cfg)
    assert sorted(int(t) for t in res["layers"]) == ctx.layers[:-1]
    for t, u in ctx.next_layer.items():
        row = res["layers"][str(t)]
        m = saematch.load_matching(
            run_dir / "matchings" / f"beyond_L{t}-L{u}", ctx.saes[t], ctx.saes[u]
        )
        assert row["unmatched_share"] == pytest.approx(float((m.perm < 0).mean()))
        assert m.unmatched == "auto" and m.proven and m.info["rho"] == pytest.approx(row["rho"])
        assert m.predecessors.shape == (ctx.saes[u].width, 5)
    assert (run_dir / "beyond_bijection_planted.png").exists()
    index = json.loads((run_dir / "matchings" / "beyond.json").read_text())
    assert [p["from"] for p in index["pairs"]] == ctx.layers[:-1]


def test_other_experiments_refuse_a_partial_matching(test_zoo, tmp_path):
    cfg = compose_cfg("mse_curves", ["matching.unmatched=auto"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="needs a bijection"):
        run(cfg)


def test_a_bad_unmatched_setting_fails_before_any_work(test_zoo, tmp_path):
    from experiments.registry import check_config

    cfg = compose_cfg("beyond_bijection", ["matching.unmatched=sometimes"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="matching.unmatched must be none, auto, or a number"):
        check_config(cfg)
