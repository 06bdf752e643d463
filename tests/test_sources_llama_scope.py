"""Llama Scope loader: published folder layout, and the sae-lens conversion checked numerically."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from saematch.sources.llama_scope import (
    LLAMA_SCOPE_LXR_8X,
    convert_llama_scope,
    llama_scope_folder,
    load_llama_scope,
)

D, F = 16, 32
FOLDER = llama_scope_folder(8)  # Llama3_1-8B-Base-L8R-8x
HP = {  # the fields of a published hyperparams.json (values scaled to a toy d_model)
    "d_model": D,
    "d_sae": F,
    "hook_point_in": "blocks.8.hook_resid_post",
    "hook_point_out": "blocks.8.hook_resid_post",
    "jump_relu_threshold": 0.2,
    "dataset_average_activation_norm": {"in": 3.0, "out": 3.0},
    "norm_activation": "dataset-wise",
    "sparsity_include_decoder_norm": True,
    "top_k": 50,
    "act_fn": "jumprelu",
}


def raw_weights(seed=0, dtype=torch.float32):
    """encoder.weight (F, d), decoder.weight (d, F), as Llama Scope stores them."""
    g = torch.Generator().manual_seed(seed)
    return {
        "encoder.weight": (torch.randn(F, D, generator=g) / D**0.5).to(dtype),
        "encoder.bias": (torch.randn(F, generator=g) * 0.3).to(dtype),
        "decoder.weight": (torch.randn(D, F, generator=g) / F**0.5).to(dtype),
        "decoder.bias": (torch.randn(D, generator=g) * 0.1).to(dtype),
    }


def write_folder(root, state=None, hp=None, folder=FOLDER):
    state = raw_weights() if state is None else state
    (root / folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (root / folder / "hyperparams.json").write_text(json.dumps(HP if hp is None else hp))
    save_file(state, str(root / folder / "checkpoints" / "final.safetensors"))
    return state


def llama_scope_forward(x, state, hp):
    """Native Llama Scope forward, dataset-wise norm, threshold read as sae-lens reads it."""
    keys = ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias")
    E, b_E, D_, b_D = (state[k].double() for k in keys)
    s = math.sqrt(hp["d_model"]) / hp["dataset_average_activation_norm"]["in"]
    pre = (s * x.double()) @ E.T + b_E  # normalised input
    f = pre * (pre > s * hp["jump_relu_threshold"])
    return f, (f @ D_.T + b_D) / s  # back to the model's scale


def sample_x(n=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    return x / x.norm(dim=-1, keepdim=True) * 3.0  # at the dataset's average norm


def test_local_folder_reproduces_llama_scope_forward(tmp_path):
    state = write_folder(tmp_path)
    sae = load_llama_scope(tmp_path, FOLDER)
    assert sae.name == f"{tmp_path}/{FOLDER}" and sae.meta["sae_id"] == FOLDER
    assert (sae.d_model, sae.width) == (D, F)
    x = sample_x()
    f_ref, x_hat_ref = llama_scope_forward(x, state, HP)
    active = (f_ref > 0).double().mean().item()
    assert 0.05 < active < 0.95  # the threshold matters in this test
    torch.testing.assert_close(sae.encode(x).double(), f_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x).double(), x_hat_ref, rtol=1e-5, atol=1e-5)


def test_conversion_factors_match_saelens(tmp_path):
    state = raw_weights(seed=2)
    sae = convert_llama_scope(state, HP, dtype=torch.float64)
    s = 4.0 / 3.0  # sqrt(16) / 3
    torch.testing.assert_close(sae.W_enc, state["encoder.weight"].double().T * s)
    torch.testing.assert_close(sae.b_enc, state["encoder.bias"].double())
    torch.testing.assert_close(sae.W_dec, state["decoder.weight"].double().T / s)
    torch.testing.assert_close(sae.b_dec, state["decoder.bias"].double() / s)
    assert torch.allclose(sae.threshold, torch.full((F,), 0.2 * s, dtype=torch.float64))
    assert sae.meta["norm_scaling_factor"] == pytest.approx(s)
    # folding (eq. 4) is then well defined and keeps the reconstruction
    x = sample_x(seed=3).double()
    torch.testing.assert_close(sae.fold()(x), sae(x))


def test_bfloat16_checkpoint_loads_as_float32(tmp_path):
    state = write_folder(tmp_path, raw_weights(seed=4, dtype=torch.bfloat16))
    sae = load_llama_scope(tmp_path, FOLDER)
    assert sae.dtype == torch.float32
    x = sample_x(seed=5)
    x_hat_ref = llama_scope_forward(x, state, HP)[1]
    torch.testing.assert_close(sae(x).double(), x_hat_ref, rtol=1e-5, atol=1e-5)


def test_reads_hf_cache(tmp_path):
    sha = "f" * 40
    repo_dir = tmp_path / "hub" / f"models--{LLAMA_SCOPE_LXR_8X.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(sha)
    write_folder(repo_dir / "snapshots" / sha)
    sae = load_llama_scope(
        LLAMA_SCOPE_LXR_8X, FOLDER, cache_dir=tmp_path / "hub", local_files_only=True
    )
    assert sae.name == f"{LLAMA_SCOPE_LXR_8X}/{FOLDER}"
    with pytest.raises(FileNotFoundError, match="hyperparams.json"):
        load_llama_scope(
            LLAMA_SCOPE_LXR_8X,
            llama_scope_folder(9),
            cache_dir=tmp_path / "hub",
            local_files_only=True,
        )


def test_missing_weights_file(tmp_path):
    write_folder(tmp_path)
    (tmp_path / FOLDER / "checkpoints" / "final.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="checkpoints/final.safetensors"):
        load_llama_scope(tmp_path, FOLDER)


def test_missing_tensor(tmp_path):
    state = raw_weights()
    del state["decoder.bias"]
    write_folder(tmp_path, state)
    with pytest.raises(ValueError, match=r"lacks tensors \['decoder.bias'\]"):
        load_llama_scope(tmp_path, FOLDER)


def test_gemma_layout_weights_refused(tmp_path):
    state = raw_weights()
    state["encoder.weight"] = state["encoder.weight"].T.contiguous()  # (d, F): wrong orientation
    write_folder(tmp_path, state)
    with pytest.raises(
        ValueError, match=r"encoder.weight has shape \(16, 32\), expected \(32, 16\)"
    ):
        load_llama_scope(tmp_path, FOLDER)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"dataset_average_activation_norm": {"in": 64.0, "out": 3.4}}, "transcoder"),
        ({"dataset_average_activation_norm": {"in": 0.0, "out": 0.0}}, "must be > 0"),
        ({"jump_relu_threshold": None}, "jump_relu_threshold"),
        ({"act_fn": "topk"}, "only JumpReLU"),
    ],
)
def test_bad_hyperparams(tmp_path, change, match):
    write_folder(tmp_path, hp={**HP, **change})
    with pytest.raises(ValueError, match=match):
        load_llama_scope(tmp_path, FOLDER)


def test_hyperparams_without_norm(tmp_path):
    hp = {k: v for k, v in HP.items() if k != "dataset_average_activation_norm"}
    write_folder(tmp_path, hp=hp)
    with pytest.raises(ValueError, match="dataset_average_activation_norm"):
        load_llama_scope(tmp_path, FOLDER)


def test_bad_json(tmp_path):
    write_folder(tmp_path)
    (tmp_path / FOLDER / "hyperparams.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_llama_scope(tmp_path, FOLDER)


def test_nan_weight(tmp_path):
    state = raw_weights()
    state["decoder.weight"][3, 5] = float("nan")
    write_folder(tmp_path, state)
    with pytest.raises(ValueError, match=r"W_dec .*index \(5, 3\)"):
        load_llama_scope(tmp_path, FOLDER)
