"""The planted SAE set: SAEs trained with the zoo's trainer recover the truth, the build is cached
with checksums, and experiment=ground_truth can be recomputed from the files alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from experiment_helpers import compose_cfg, run, run_dir_of

from saematch.planted import ensure_planted, ground_truth_report, planted_config, sae_recovery
from saematch.planted.report import saved_matcher
from saematch.zoo.manifest import verify


def test_trained_saes_recover_the_truth(test_planted):
    truth = test_planted.truth
    for t, sae in enumerate(test_planted.load_saes()):
        rec = sae_recovery(sae.W_dec, truth.directions[t])
        recorded = test_planted.manifest["metrics"]["saes"][str(t)]["sae_recovery"]
        assert rec == pytest.approx(recorded)
        assert rec >= 0.9, f"layer {t}: the trainer recovered only {rec:.2f} of the true features"


def test_cache_is_reused_and_corruption_detected(test_planted, tmp_path):
    cache = test_planted.root.parent.parent
    again = ensure_planted("test", cache_dir=cache, seed=0, progress=False)
    assert again.root == test_planted.root
    copy = tmp_path / "copy"
    shutil.copytree(test_planted.root, copy)
    assert verify(copy) == []
    (copy / "saes" / "layer_1" / "sae.safetensors").write_bytes(b"broken")
    assert any("layer_1" in p for p in verify(copy))


def test_stale_code_version_rebuilds_the_planted_set(test_planted, tmp_path, monkeypatch):
    """The cache key covers code, not only config: a set whose manifest names another generator
    or trainer version is rebuilt (here by a stand-in build that copies the real files)."""
    import saematch.planted.store as store
    from saematch.planted.build import code_version

    assert test_planted.manifest["code_version"] == code_version()
    cfg = planted_config("test")
    root = store.planted_dir(cfg, 0, tmp_path)
    shutil.copytree(test_planted.root, root)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["code_version"]["generator"] -= 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    built = []

    def fake_build(cfg, seed, out, progress, max_threads=2):
        built.append(out)
        shutil.copytree(test_planted.root, out, dirs_exist_ok=True)

    monkeypatch.setattr(store, "build_planted", fake_build)
    again = ensure_planted("test", cache_dir=tmp_path, seed=0, progress=False)
    assert len(built) == 1 and again.manifest["code_version"] == code_version()
    ensure_planted("test", cache_dir=tmp_path, seed=0, progress=False)  # now current: no build
    assert len(built) == 1


def test_knobs_name_the_bad_key():
    assert planted_config("test", drift=0.5).world.drift == 0.5
    with pytest.raises(ValueError, match="drfit"):
        planted_config("test", drfit=0.5)
    with pytest.raises(ValueError, match="l0_target"):
        planted_config("test", l0_target=500)
    with pytest.raises(ValueError, match="unknown planted size"):
        planted_config("huge")


@pytest.fixture(scope="module")
def ground_truth_run(test_planted, tmp_path_factory):
    """(results, run folder) of experiment=ground_truth on the test planted set."""
    cache = Path(test_planted.root).parent.parent
    cfg = compose_cfg(
        "ground_truth",
        ["saes.size=test", "experiment.print_summary=false"],
        _FakeZoo(cache),
        tmp_path_factory.mktemp("ground_truth"),
    )
    res = run(cfg)
    return res, run_dir_of(cfg)


def test_ground_truth_experiment_recomputes_from_files(test_planted, ground_truth_run):
    res, run_dir = ground_truth_run
    on_disk = json.loads((run_dir / "results.json").read_text())["results"]
    assert on_disk["sae_recovery"] == res["sae_recovery"]
    assert set(res["accuracy"]) >= {"vanilla", "folded_both", "unfolded_decoder"}
    assert max(res["accuracy"]["vanilla"].values()) < 0.1
    assert min(res["accuracy"]["folded_decoder"].values()) > 0.8
    comp = res["composition"]
    assert all(c["composed"] <= c["exact"] + 0.1 for c in comp.values())
    # recompute from truth.safetensors, the SAE files and the run's match files alone
    saes = test_planted.load_saes()
    again = ground_truth_report(
        saes,
        test_planted.truth,
        variants=list(res["accuracy"]),
        matcher=saved_matcher(run_dir / "matchings", {id(s): t for t, s in enumerate(saes)}),
    ).to_results()
    for v, per in res["accuracy"].items():
        for p, a in per.items():
            assert np.isclose(again["accuracy"][v][p], a, equal_nan=True)
    assert again["composition"] == res["composition"]


class _FakeZoo:
    """Just enough of a Zoo for compose_cfg: the cache root, size and seed."""

    def __init__(self, cache: Path) -> None:
        self.root = cache / "zoo" / "test-seed0"
        self.manifest = {"size": "test", "seed": 0}


def test_default_experiment_console_is_one_summary_and_the_folder(test_planted, tmp_path, capsys):
    """The ground-truth summary table replaces the headline rows (it used to print both)."""
    from saematch_experiments.harness.cli import run_experiment

    cache = Path(test_planted.root).parent.parent
    cfg = compose_cfg("ground_truth", ["saes.size=test"], _FakeZoo(cache), tmp_path)
    run_experiment(cfg, run_dir=tmp_path / "run", console=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ground_truth:" and out[-1].startswith(f"files: {tmp_path / 'run'}")
    assert sum("Matching accuracy" in ln for ln in out) == 1
    assert not any(ln.split()[:3] == ["variant", "pair", "accuracy"] for ln in out)
    assert (tmp_path / "run" / "ground_truth_summary.txt").read_text().strip() in "\n".join(out)


def test_saved_matcher_checks_the_files_belong_to_the_saes(
    test_planted, ground_truth_run, tmp_path
):
    """Layer 1→2's match files copied over 0→1's used to score as a (terrible) matching of
    0→1 with no error; the SAEs' fingerprints and the file's mode and fold now refuse them."""
    from saematch.matchfile import MatchFileError
    from saematch.planted.report import RecordingMatcher

    _, run_dir = ground_truth_run
    saes = test_planted.load_saes()
    layer_of = {id(s): t for t, s in enumerate(saes)}
    copy = tmp_path / "matchings"
    shutil.copytree(run_dir / "matchings", copy)
    for suffix in (".json", ".safetensors"):
        shutil.copy(copy / f"folded_decoder_L1-L2{suffix}", copy / f"folded_decoder_L0-L1{suffix}")
    matcher = saved_matcher(copy, layer_of)
    assert matcher(saes[1], saes[2], "decoder", True).shape == (saes[1].width,)  # untouched
    with pytest.raises(MatchFileError, match="folded_decoder_L0-L1.json: SAE A given"):
        matcher(saes[0], saes[1], "decoder", True)
    for suffix in (".json", ".safetensors"):  # another mode's file at the same pair
        shutil.copy(copy / f"folded_both_L0-L1{suffix}", copy / f"folded_decoder_L0-L1{suffix}")
    with pytest.raises(MatchFileError, match="a both matching with fold=True, listed as"):
        saved_matcher(copy, layer_of)(saes[0], saes[1], "decoder", True)

    recorder = RecordingMatcher(layer_of)  # a RecordingMatcher.save file: same checks
    perm = recorder(saes[0], saes[1], "decoder", True)
    path = recorder.save(tmp_path / "perms.safetensors")
    assert (saved_matcher(path, layer_of)(saes[0], saes[1], "decoder", True) == perm).all()
    with pytest.raises(MatchFileError, match="was computed on SAEs with fingerprints"):
        saved_matcher(path, {id(saes[0]): 0, id(saes[2]): 1})(saes[0], saes[2], "decoder", True)
