"""Gemma Scope loader on files in the published layout: HF cache (offline), local dir, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_sae
from huggingface_hub import constants as hf_constants

from saematch.sources.gemma_scope import fetch_file, load_gemma_scope

REPO = "google/gemma-scope-2b-pt-res"
SAE_ID = "layer_20/width_16k/average_l0_71"
SHA = "0123456789abcdef0123456789abcdef01234567"


def write_params(path, sae=None, drop=(), **override):
    """Write a Gemma Scope params.npz (float32 arrays) for `sae` at `path`."""
    sae = sae or random_sae(d_model=8, width=12, seed=1)
    arrays = {k: v.numpy().astype(np.float32) for k, v in sae.state_dict().items()}
    arrays.update(override)
    for k in drop:
        del arrays[k]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return sae


def fake_hf_cache(hub_dir, repo=REPO, sae_id=SAE_ID, sha=SHA):
    """A hub cache tree: models--org--name/{refs/main, snapshots/<sha>/<sae_id>/params.npz}."""
    repo_dir = hub_dir / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(sha)
    return write_params(repo_dir / "snapshots" / sha / sae_id / "params.npz")


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """HF_HOME/HF_HUB_CACHE in tmp_path, offline. huggingface_hub reads both at import time,
    so its constants are patched too (hf_hub_download reads them at call time)."""
    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return hub


def assert_same_weights(loaded, ref):
    for k, v in ref.state_dict().items():
        assert torch.equal(getattr(loaded, k), v), k


def test_reads_hf_cache_offline_via_env(offline_hub):
    ref = fake_hf_cache(offline_hub)
    sae = load_gemma_scope(REPO, SAE_ID)
    assert_same_weights(sae, ref)
    assert sae.name == f"{REPO}/{SAE_ID}"
    assert sae.meta["repo_id"] == REPO and sae.meta["sae_id"] == SAE_ID
    assert (sae.d_model, sae.width, sae.dtype) == (8, 12, torch.float32)


def test_reads_hf_cache_with_explicit_cache_dir(tmp_path):
    ref = fake_hf_cache(tmp_path / "elsewhere")
    sae = load_gemma_scope(REPO, SAE_ID, cache_dir=tmp_path / "elsewhere", local_files_only=True)
    assert_same_weights(sae, ref)
    # a pinned commit resolves to the same snapshot
    sae = load_gemma_scope(
        REPO, SAE_ID, revision=SHA, cache_dir=tmp_path / "elsewhere", local_files_only=True
    )
    assert sae.meta["revision"] == SHA


def test_missing_in_offline_cache_says_where(offline_hub):
    fake_hf_cache(offline_hub)
    with pytest.raises(FileNotFoundError) as e:
        load_gemma_scope(REPO, "layer_21/width_16k/average_l0_70")
    msg = str(e.value)
    assert REPO in msg and "layer_21/width_16k/average_l0_70/params.npz" in msg
    assert "offline" in msg.lower() and str(offline_hub) in msg


def test_local_directory_and_dtype(tmp_path):
    ref = write_params(tmp_path / "mirror" / SAE_ID / "params.npz")
    sae = load_gemma_scope(tmp_path / "mirror", SAE_ID, dtype=torch.float64)
    assert sae.dtype == torch.float64
    torch.testing.assert_close(sae.W_dec, ref.W_dec.double())
    assert sae.name == f"{tmp_path / 'mirror'}/{SAE_ID}"
    # trailing params.npz in the id is tolerated
    assert load_gemma_scope(tmp_path / "mirror", SAE_ID + "/params.npz").width == 12


def test_local_directory_missing_file(tmp_path):
    (tmp_path / "mirror").mkdir()
    with pytest.raises(FileNotFoundError, match="local directory"):
        load_gemma_scope(tmp_path / "mirror", SAE_ID)
    with pytest.raises(FileNotFoundError, match="x/y"):
        fetch_file(tmp_path / "mirror", "x/y")


def test_missing_key(tmp_path):
    write_params(tmp_path / SAE_ID / "params.npz", drop=("threshold",))
    with pytest.raises(ValueError, match=r"lacks arrays \['threshold'\]"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_transposed_weights(tmp_path):
    sae = random_sae(d_model=8, width=12, seed=2)
    write_params(tmp_path / SAE_ID / "params.npz", sae, W_dec=sae.W_dec.numpy().T.copy())
    with pytest.raises(ValueError, match="W_dec has shape .*transposed"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_nan_names_tensor_and_index(tmp_path):
    sae = random_sae(d_model=8, width=12, seed=3)
    b_enc = sae.b_enc.numpy().copy()
    b_enc[5] = np.nan
    write_params(tmp_path / SAE_ID / "params.npz", sae, b_enc=b_enc)
    with pytest.raises(ValueError, match=r"b_enc .*index \(5,\)"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_integer_array_refused(tmp_path):
    write_params(tmp_path / SAE_ID / "params.npz", threshold=np.ones(12, dtype=np.int64))
    with pytest.raises(ValueError, match="threshold has dtype int64"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_zero_threshold_loads_but_cannot_fold(tmp_path):
    sae = random_sae(d_model=8, width=12, seed=4)
    th = sae.threshold.numpy().copy()
    th[7] = 0.0
    write_params(tmp_path / SAE_ID / "params.npz", sae, threshold=th)
    loaded = load_gemma_scope(tmp_path, SAE_ID)
    with pytest.raises(ValueError, match=r"threshold\[7\] = 0.0"):
        loaded.fold()


def test_negative_threshold_refused_at_load(tmp_path):
    # JumpReLUSAE allows θ = 0 (a ReLU SAE) but not θ < 0.
    th = np.full(12, 0.5, dtype=np.float32)
    th[3] = -0.1
    write_params(tmp_path / SAE_ID / "params.npz", threshold=th)
    with pytest.raises(ValueError, match=r"threshold\[3\].*negative"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_pickled_object_array_refused(tmp_path):
    path = tmp_path / SAE_ID / "params.npz"
    write_params(path, W_enc=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="refusing to unpickle"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_corrupt_file(tmp_path):
    path = tmp_path / SAE_ID / "params.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="npz"):
        load_gemma_scope(tmp_path, SAE_ID)


def test_path_that_is_neither_dir_nor_repo_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing local directory"):
        load_gemma_scope(str(tmp_path / "no" / "such" / "dir"), SAE_ID)
