"""experiment=beyond_bijection on planted pairs and the test zoo: scores, tables, match files."""

import json
import subprocess
import sys

import numpy as np
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


PLAIN_READER = """
import json, math, sys
from safetensors.numpy import load_file
meta = json.load(open(sys.argv[1] + ".json"))
if meta["format"] != "saematch.match" or meta["format_version"] != 2:
    raise SystemExit("unknown format")
arr = load_file(sys.argv[1] + ".safetensors")
print(json.dumps({"perm": arr["perm"].tolist(), "setting": meta["unmatched"]["setting"],
                  "fingerprint_a": meta["a"]["fingerprint"],
                  "confidence_nan": int(sum(math.isnan(x) for x in arr["confidence"]))}))
"""


def _plain_read(stem) -> dict:
    """A run's match file read by a script that imports only safetensors and json."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_READER, str(stem)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


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
        # the same file with nothing but safetensors and json, in a fresh interpreter
        plain = _plain_read(run_dir / "matchings" / f"beyond_L{t}-L{u}")
        assert plain["perm"] == m.perm.tolist() and plain["setting"] == "auto"
        assert plain["fingerprint_a"] == ctx.saes[t].fingerprint()
        assert plain["confidence_nan"] == int(np.isnan(m.confidence).sum())
    assert (run_dir / "beyond_bijection_planted.png").exists()
    index = json.loads((run_dir / "matchings" / "beyond.json").read_text())
    assert [p["from"] for p in index["pairs"]] == ctx.layers[:-1]


def test_other_experiments_refuse_a_partial_matching(test_zoo, tmp_path):
    cfg = compose_cfg("mse_curves", ["matching.unmatched=auto"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="needs a bijection"):
        run(cfg)


def test_a_bad_unmatched_setting_fails_before_any_work(test_zoo, tmp_path):
    from saematch_experiments.harness.registry import check_config

    cfg = compose_cfg("beyond_bijection", ["matching.unmatched=sometimes"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="matching.unmatched must be none, auto, or a number"):
        check_config(cfg)


def test_unambiguous_support():
    from saematch.planted.validation import unambiguous

    successor = np.array([[0, -1], [1, 2], [-1, -1], [3, -1]])  # 0 persists, 1 splits, 2 dies
    rep_a = np.array([0, 0, 1, 2, 3, -1])  # true 0 has two SAE features (twins)
    rep_b = np.array([0, 1, 2, 2, 3, 4])  # child 2 of true 1 has twins; 4 is born
    ua, ub = unambiguous(rep_a, rep_b, successor)
    np.testing.assert_array_equal(ua, [False, False, False, True, True, False])
    np.testing.assert_array_equal(ub, [False, True, False, False, True, True])


def test_planted_world_truth_scores(test_planted, tmp_path):  # noqa: F811 (fixture)
    from pathlib import Path

    from test_planted_set import _FakeZoo

    cache = Path(test_planted.root).parent.parent
    over = ["saes=planted", "saes.size=test", "experiment.modes=[decoder,both]",
            "experiment.noises=[0.5]", "experiment.seeds=1", "experiment.width=256",
            "experiment.d_model=32"]  # fmt: skip
    cfg = compose_cfg("beyond_bijection", over, _FakeZoo(cache), tmp_path)
    run(cfg)
    res = json.loads((run_dir_of(cfg) / "results.json").read_text())
    rows = res["tables"]["truth_scores"]
    layers = len(test_planted.load_saes())
    assert len(rows) == (layers - 1) * 2 * 2  # pairs × modes × supports
    for known, unamb in zip(rows[::2], rows[1::2], strict=True):
        assert known["support"] == "known" and unamb["support"] == "unambiguous"
        assert 0 < unamb["n"] <= known["n"]
        assert 0 <= known["unmatched_share"] <= 1
    dec = [r for r in rows if r["mode"] == "decoder" and r["support"] == "unambiguous"]
    assert min(r["pair_accuracy"] for r in dec) > 0.8  # what the partial matching keeps is right
    assert all("truth" in v for v in res["results"]["layers"].values())
    pooled = res["results"]["truth_pooled"]["decoder/unambiguous"]
    tp = sum(r["unmatched_tp"] for r in dec)
    want = tp / pooled["true"] if pooled["true"] else None
    assert pooled["tp"] == tp and pooled["recall"] == want
