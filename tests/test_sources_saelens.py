"""SAELens SAEs read from the published on-disk layout, without sae-lens; the set built on them."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from saelens_layout import (
    hub_cache_repo,
    saelens_cfg,
    saelens_forward,
    saelens_weights,
    write_release,
    write_saelens_sae,
)

from saematch.sources.saelens import hook_site, load_saelens, load_saelens_folder
from saematch.sources.saelens_set import saelens_set


@pytest.mark.parametrize(
    "arch,style",
    [
        ("jumprelu", "6"),
        ("standard", "6"),
        ("topk", "6"),
        ("standard", "5"),
        ("topk", "5"),
        ("jumprelu", "5"),
    ],
)
def test_forward_matches_saelens(tmp_path, arch, style):
    cfg = saelens_cfg(arch, "blocks.3.hook_resid_post", d_in=8, d_sae=24, style=style)
    w = saelens_weights(8, 24, arch, seed=1)
    write_saelens_sae(tmp_path / "sae", cfg, w)
    sae = load_saelens_folder(tmp_path, "sae")
    x = torch.randn(50, 8)
    torch.testing.assert_close(sae(x), saelens_forward(cfg, w, x), rtol=1e-5, atol=1e-5)
    assert sae.meta["architecture"] == arch and sae.meta["hook_name"] == "blocks.3.hook_resid_post"
    assert (sae.k is not None) == (arch == "topk")
    if arch == "jumprelu":
        folded = sae.fold()  # eq. 4 keeps the function
        torch.testing.assert_close(folded(x), sae(x), rtol=1e-5, atol=1e-5)
    else:
        with pytest.raises(ValueError, match="fold"):
            sae.fold()


def test_topk_cannot_fold_and_says_so(tmp_path):
    write_release(tmp_path, "topk", ["blocks.1.hook_resid_post"], 8, 16)
    sae = load_saelens_folder(tmp_path, "blocks.1.hook_resid_post")
    with pytest.raises(ValueError, match=r"TopK SAE \(k = 4\).*matching.fold=false"):
        sae.fold()
    assert sae.permute_features(torch.arange(16).flip(0)).k == 4  # k survives a permutation


def test_scaling_factor_and_decoder_norm_are_folded_in(tmp_path):
    cfg = saelens_cfg("topk", "blocks.0.hook_resid_post", 8, 16) | {
        "rescale_acts_by_decoder_norm": True
    }
    w = saelens_weights(8, 16, "topk", seed=2)
    w["scaling_factor"] = 0.5 + torch.rand(16)
    write_saelens_sae(tmp_path / "s", cfg, w)
    sae = load_saelens_folder(tmp_path, "s")
    x = torch.randn(30, 8)
    n = w["W_dec"].norm(dim=1)
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    vals, idx = (pre * n).topk(4, dim=-1)  # sae-lens: topk of pre·‖W_dec‖, then ÷‖W_dec‖, ⊙ s
    f = torch.zeros_like(pre).scatter(-1, idx, vals.relu()) / n * w["scaling_factor"]
    torch.testing.assert_close(sae(x), f @ w["W_dec"] + w["b_dec"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"normalize_activations": "layer_norm"}, "normalize_activations='layer_norm'"),
        ({"architecture": "gated"}, "architecture 'gated' is not supported"),
        ({"d_in": 9}, r"W_enc has shape \(8, 16\) but cfg.json says"),
    ],
)
def test_unsupported_configs_are_named(tmp_path, change, match):
    cfg = saelens_cfg("jumprelu", "blocks.0.hook_resid_post", 8, 16) | change
    write_saelens_sae(tmp_path / "s", cfg, saelens_weights(8, 16, "jumprelu", 0))
    with pytest.raises(ValueError, match=match):
        load_saelens_folder(tmp_path, "s")


def test_missing_threshold_is_named(tmp_path):
    w = saelens_weights(8, 16, "jumprelu", 0)
    del w["threshold"]
    write_saelens_sae(tmp_path / "s", saelens_cfg("jumprelu", "blocks.0.hook_resid_post", 8, 16), w)
    with pytest.raises(ValueError, match=r"lacks tensors \['threshold'\]"):
        load_saelens_folder(tmp_path, "s")


def test_hook_sites():
    assert hook_site("blocks.5.hook_resid_pre") == ("resid_post", 4)
    assert hook_site("blocks.5.hook_resid_post") == ("resid_post", 5)
    assert hook_site("blocks.2.attn.hook_z") == ("attn_z", 2)
    assert hook_site("blocks.2.hook_mlp_out") == ("mlp_out", 2)
    with pytest.raises(ValueError, match="embeddings"):
        hook_site("blocks.0.hook_resid_pre")
    with pytest.raises(ValueError, match="not a site"):
        hook_site("blocks.2.ln1.hook_normalized")


GPT2_HOOKS = [f"blocks.{L}.hook_resid_pre" for L in range(5)]


def test_set_from_local_folder_by_pattern(tmp_path):
    write_release(tmp_path, "standard", GPT2_HOOKS, 8, 16, style="5")
    s = saelens_set(str(tmp_path), pattern="blocks.{layer}.hook_resid_pre")
    assert s.layers == (0, 1, 2, 3)  # resid_pre of L = resid_post of L − 1; blocks.0 left out
    assert s.specs(0)[0].sae_id == "blocks.1.hook_resid_pre"
    assert "left out" in s.description and s.unfoldable() == dict.fromkeys(range(4), "standard")
    saes = s.load_all()
    assert saes[2].meta["hook_name"] == "blocks.3.hook_resid_pre"
    with pytest.raises(ValueError, match="embeddings"):
        saelens_set(str(tmp_path), ids=["blocks.0.hook_resid_pre"])
    with pytest.raises(ValueError, match="matches no SAE"):
        saelens_set(str(tmp_path), pattern="layer_{layer}")
    with pytest.raises(ValueError, match="exactly one of"):
        saelens_set(str(tmp_path))
    star = saelens_set(str(tmp_path), pattern="blocks.*.hook_resid_pre")  # no quotes needed
    assert star.entries == s.entries
    with pytest.raises(ValueError, match="one \\{layer\\} or one \\*"):
        saelens_set(str(tmp_path), pattern="blocks.1.hook_resid_pre")


def test_set_from_hub_cache_layout_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    repo = "jbloom/GPT2-Small-SAEs-Reformatted"
    write_release(hub_cache_repo(tmp_path / "hub", repo), "jumprelu", GPT2_HOOKS[1:4], 8, 16)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    s = saelens_set(repo, pattern="blocks.{layer}.hook_resid_pre")
    assert s.layers == (0, 1, 2) and s.unfoldable() == {}
    sae = s.load(1)
    assert sae.name == f"{repo}/blocks.2.hook_resid_pre" and sae.width == 16
    s2 = saelens_set(repo, ids=["blocks.3.hook_resid_pre"])
    assert s2.layers == (2,)


def test_release_name_needs_sae_lens(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sae_lens", None)  # `import sae_lens` fails
    with pytest.raises(ImportError, match="pip install sae-lens"):
        load_saelens("gpt2-small-res-jb", "blocks.8.hook_resid_pre")


def test_release_name_through_sae_lens_table(monkeypatch, tmp_path):
    root = write_release(tmp_path / "repo", "standard", ["blocks.2.hook_resid_pre"], 8, 16)
    lookup = types.SimpleNamespace(
        repo_id=str(root),
        conversion_func=None,
        saes_map={"blocks.2.hook_resid_pre": "blocks.2.hook_resid_pre"},
    )
    other = types.SimpleNamespace(
        repo_id="google/gemma-scope-2b-pt-res", conversion_func="gemma_2", saes_map={}
    )
    table = types.ModuleType("sae_lens.loading.pretrained_saes_directory")
    table.get_pretrained_saes_directory = lambda: {
        "my-release": lookup,
        "gemma-scope-2b-pt-res": other,
    }
    monkeypatch.setitem(sys.modules, "sae_lens", types.ModuleType("sae_lens"))
    monkeypatch.setitem(sys.modules, "sae_lens.loading.pretrained_saes_directory", table)
    sae = load_saelens("my-release", "blocks.2.hook_resid_pre")
    assert sae.meta["release"] == "my-release" and sae.width == 16
    assert saelens_set("my-release", pattern="blocks.{layer}.hook_resid_pre").layers == (1,)
    with pytest.raises(ValueError, match="not stored in SAELens' format"):
        saelens_set("gemma-scope-2b-pt-res", ids=["x"])
    with pytest.raises(ValueError, match="no SAELens release 'nope'"):
        load_saelens("nope", "x")
