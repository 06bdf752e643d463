"""From the command line, on folders this test writes: SAELens SAEs (a local folder, and a repo
in the Hugging Face cache layout, offline) on a tiny GPT-2-style model (model=hf), through
mse_curves and layer_pruning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from saelens_layout import hub_cache_repo, write_release
from tiny_hf import D, save_tiny_model

N_LAYERS, WIDTH = 4, 64
# gpt2-small-res-jb's layout: one folder per hook, blocks.L.hook_resid_pre for L = 0..n_layers
HOOKS = [f"blocks.{L}.hook_resid_pre" for L in range(N_LAYERS + 1)]
REPO = "jbloom/GPT2-Small-SAEs-Reformatted"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("anymodel")
    model = save_tiny_model("gpt2", root / "tiny-gpt2", n_layers=N_LAYERS)
    local = write_release(root / "saes", "jumprelu", HOOKS, D, WIDTH, style="5")
    write_release(hub_cache_repo(root / "hub", REPO), "standard", HOOKS, D, WIDTH, style="5")
    write_release(root / "topk", "topk", HOOKS, D, WIDTH)
    return {
        "root": root,
        "model": model,
        "local": local,
        "hub": root / "hub",
        "topk": root / "topk",
    }


def saematch(world, *args: str) -> subprocess.CompletedProcess:
    """The `saematch` command, offline, run from a folder outside the repository."""
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(world["hub"]), "PYTHONUNBUFFERED": "1"}
    cmd = [str(Path(sys.executable).parent / "saematch"), *args]
    common = [
        "model=hf",
        f"model.name={world['model']}",
        "model.batch_size=4",
        "saes=saelens",
        "saes.pattern=blocks.*.hook_resid_pre",
        "data.n_examples=4",
        "data.seq_len=32",
        "logger=none",
        f"paths.output_root={world['root'] / 'out'}",
        f"paths.cache_dir={world['root'] / 'cache'}",
    ]
    return subprocess.run(
        [*cmd, *common], cwd=world["root"], env=env, capture_output=True, text=True, timeout=600
    )


def results(world, experiment: str) -> dict:
    (path,) = sorted((world["root"] / "out" / experiment).glob("*/results.json"))[-1:]
    return json.loads(path.read_text())["results"]


def test_mse_curves_on_a_saelens_folder(world):
    proc = saematch(world, "experiment=mse_curves", f"saes.release={world['local']}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = results(world, "mse_curves")
    # blocks.0.hook_resid_pre (the embeddings) is left out; resid_pre of L is layer L − 1
    assert sorted(out["layers"]) == ["0", "1", "2"]
    assert out["sae_set"]["layers"]["0"][0]["sae_id"] == "blocks.1.hook_resid_pre"
    for row in out["layers"].values():  # SAE Match minimises the folded objective
        assert row["folded"]["objective"] <= row["vanilla"]["objective"] + 1e-9
        assert row["folded"]["objective"] <= row["matched"]["objective"] + 1e-9


def test_layer_pruning_on_the_hub_cache_layout(world):
    """ReLU SAEs from the HF cache, offline: matching.fold=false, raw transfer only."""
    proc = saematch(
        world, "experiment=layer_pruning", f"saes.release={REPO}", "matching.fold=false"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = results(world, "layer_pruning")
    assert sorted(out["layers"]) == ["0", "1", "2"]
    for row in out["layers"].values():
        methods = row["methods"]
        assert "sae_match_folded_transfer" not in methods  # no θ: no folded units
        assert all(abs(m["delta_loss"]) < 50 for m in methods.values())
        assert methods["layer_drop"]["delta_loss"] != methods["sae_match"]["delta_loss"]
    assert out["sae_set"]["name"] == f"saelens/{REPO}"


def test_topk_with_folding_fails_before_any_work(world):
    proc = saematch(world, "experiment=mse_curves", f"saes.release={world['topk']}")
    assert proc.returncode != 0
    assert "topk SAE" in proc.stderr and "matching.fold=false" in proc.stderr
    # Hydra makes its run folder first; no run claimed it (.saematch-run) or wrote results
    from saematch_experiments.harness.cli import CLAIM

    for run in (world["root"] / "out" / "mse_curves").glob("*"):
        if not (run / "results.json").exists():
            assert not (run / CLAIM).exists() and not (run / "matchings").exists()
