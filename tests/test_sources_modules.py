"""Module-site SAE sets (Gemma Scope att/mlp, Llama Scope LXA/LXM) on published-layout files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import random_sae
from safetensors.torch import save_file

from saematch.sources import resolve_set
from saematch.sources.module_sets import gemma_scope_module_set, llama_scope_module_set


def write_gemma(root, sae_id, sae):
    path = root / sae_id / "params.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, **{k: v.numpy().astype(np.float32) for k, v in sae.state_dict().items()})


def test_gemma_scope_att_and_mlp_read_the_published_layout(tmp_path):
    # att SAEs read attn_z (n_heads·head_dim wide, 12 here); mlp SAEs read mlp_out (d_model 8)
    att, mlp = random_sae(d_model=12, width=20, seed=1), random_sae(d_model=8, width=20, seed=2)
    write_gemma(tmp_path / "att", "layer_3/width_16k/canonical", att)
    write_gemma(tmp_path / "mlp", "layer_3/width_16k/canonical", mlp)
    a = gemma_scope_module_set("att", [3], repo_id=str(tmp_path / "att")).load(3)
    m = resolve_set("gemma_scope_mlp", [3], repo_id=str(tmp_path / "mlp")).load(3)
    assert a.meta["site"] == "attn_z" and m.meta["site"] == "mlp_out"
    assert torch.equal(a.W_dec, att.W_dec) and torch.equal(m.threshold, mlp.threshold)
    assert a.d_model == 12 and m.d_model == 8


def test_gemma_scope_module_defaults_name_the_canonical_repos():
    s = gemma_scope_module_set("att", [0, 25])
    spec = s.specs(25)[0]
    assert spec.repo_id == "google/gemma-scope-2b-pt-att-canonical"
    assert spec.sae_id == "layer_25/width_16k/canonical" and spec.site == "attn_z"
    assert gemma_scope_module_set("mlp").layers == tuple(range(26))
    with pytest.raises(ValueError, match="att"):
        gemma_scope_module_set("res")


@pytest.mark.parametrize(
    ("module", "letter", "site"), [("lxa", "A", "attn_out"), ("lxm", "M", "mlp_out")]
)
def test_llama_scope_lxa_lxm_read_the_published_layout(tmp_path, module, letter, site):
    d, F = 8, 16
    g = torch.Generator().manual_seed(0)
    state = {
        "encoder.weight": torch.randn(F, d, generator=g),
        "encoder.bias": torch.randn(F, generator=g),
        "decoder.weight": torch.randn(d, F, generator=g),
        "decoder.bias": torch.randn(d, generator=g),
    }
    hook = "hook_attn_out" if letter == "A" else "hook_mlp_out"
    hp = {
        "d_model": d,
        "d_sae": F,
        "hook_point_in": f"blocks.5.{hook}",
        "hook_point_out": f"blocks.5.{hook}",
        "jump_relu_threshold": 0.3,
        "dataset_average_activation_norm": {"in": 2.0, "out": 2.0},
        "act_fn": "jumprelu",
    }
    folder = tmp_path / f"Llama3_1-8B-Base-L5{letter}-8x"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "hyperparams.json").write_text(json.dumps(hp))
    save_file(state, str(folder / "checkpoints" / "final.safetensors"))
    sset = llama_scope_module_set(module, [5], repo_id=str(tmp_path))
    sae = sset.load(5)
    s = d**0.5 / 2.0
    assert sae.meta["site"] == site and sae.meta["hook_point_in"] == f"blocks.5.{hook}"
    torch.testing.assert_close(sae.W_dec, state["decoder.weight"].T / s)
    torch.testing.assert_close(sae.threshold, torch.full((F,), 0.3 * s))
    assert llama_scope_module_set(module).specs(0)[0].repo_id.endswith(f"LX{letter}-8x")
