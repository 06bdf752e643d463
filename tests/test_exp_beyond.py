"""experiment=beyond_bijection on planted pairs and the test zoo: scores, tables, match files."""

import json

import numpy as np
import pytest
from experiment_helpers import compose_cfg

import saematch
from experiments import beyond_bijection
from experiments.context import Context


@pytest.fixture(scope="module")
def beyond(test_zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("beyond")
    over = ["experiment.noises=[0.5,3.0]", "experiment.seeds=1", "experiment.width=512",
            "experiment.d_model=64"]  # fmt: skip
    cfg = compose_cfg("beyond_bijection", over, test_zoo, out)
    return cfg, beyond_bijection.run(cfg), Context(cfg).run_dir


def test_planted_scores(beyond):
    _, res, _ = beyond
    rows = res["planted"]
    assert {r["mode"] for r in rows} == {"decoder", "both"} and len(rows) == 2 * 2 * 2
    easy = [r for r in rows if r["mode"] == "decoder" and r["noise"] == 0.5]
    part = next(r for r in easy if r["matching"] == "partial")
    bij = next(r for r in easy if r["matching"] == "bijection")
    assert bij["unmatched_share"] == 0 and np.isnan(bij["unmatched_precision"])
    assert part["unmatched_precision"] > 0.9 and part["unmatched_recall"] > 0.9
    assert part["pair_accuracy"] > bij["pair_accuracy"]  # the forced pairs of dead features
    assert bij["confidence_auroc"] > 0.8


def test_sae_set_unmatched_share_and_match_files(beyond):
    cfg, res, run_dir = beyond
    ctx = Context(cfg)
    rows = res["sae_set"]
    assert [r["from"] for r in rows] == list(ctx.layers[:-1])
    for r, a, b in zip(rows, ctx.saes[:-1], ctx.saes[1:], strict=True):
        m = saematch.load_matching(run_dir / "matchings" / f"beyond_L{r['from']}-L{r['to']}", a, b)
        assert r["unmatched_share"] == pytest.approx(float((m.perm < 0).mean()))
        assert m.unmatched == "auto" and m.proven
        assert m.predecessors.shape == (b.width, 5)
    saved = json.loads((run_dir / "results.json").read_text())
    assert "unmatched_per_layer_pair" in saved["tables"]
    assert (run_dir / "beyond_bijection_planted.png").exists()
