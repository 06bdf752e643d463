"""Module sites of the runner: the residual stream is the sum of the captured sublayer outputs."""

from __future__ import annotations

import pytest
import torch
from test_lm import batch, tiny_gemma2, tiny_llama

from saematch.lm.sites import adding_to_resid, o_proj_map, site_hook_point, z_to_residual


def randomise_norms(lm):
    g = torch.Generator().manual_seed(3)
    for name, p in lm.model.named_parameters():
        if "norm" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.3


@pytest.mark.parametrize("make", [tiny_gemma2, tiny_llama])
def test_resid_is_sum_of_attn_out_and_mlp_out(make):
    lm = make()
    randomise_norms(lm)
    ids, am, _ = batch()
    want = [(s, layer) for layer in (1, 2) for s in ("resid_post", "attn_out", "mlp_out", "attn_z")]
    acts = lm.site_activations(ids, am, want)
    torch.testing.assert_close(
        acts[("resid_post", 2)],
        acts[("resid_post", 1)] + acts[("attn_out", 2)] + acts[("mlp_out", 2)],
        atol=1e-5, rtol=1e-5,
    )  # fmt: skip
    torch.testing.assert_close(acts[("resid_post", 2)], lm.resid_post(ids, am, layers=[2])[0])
    # attn_z -> attn_out: W_O, then (Gemma 2) the post-attention RMSNorm = gain ⊙ v / rms(v)
    W_O, gain = o_proj_map(lm.layers[2])
    z = acts[("attn_z", 2)]  # (B, T, heads·head_dim)
    v = z_to_residual(z.reshape(-1, z.shape[-1]), W_O)  # (B·T, d)
    out = acts[("attn_out", 2)].reshape(v.shape)
    if gain is None:  # Llama: o_proj output is the attention output
        torch.testing.assert_close(out, v, atol=1e-5, rtol=1e-5)
    else:
        eps = lm.model.config.rms_norm_eps
        rms = (v.pow(2).mean(-1, keepdim=True) + eps).sqrt()
        torch.testing.assert_close(out, v * gain / rms, atol=1e-4, rtol=1e-4)


def test_llama_attn_out_is_not_its_pre_mlp_norm():
    # Llama's post_attention_layernorm is the pre-MLP norm: attn_out must be self_attn's output
    lm = tiny_llama()
    module, read_input = site_hook_point(lm.layers[0], "attn_out")
    assert module is lm.layers[0].self_attn and not read_input
    with pytest.raises(ValueError, match="activation site"):
        site_hook_point(lm.layers[0], "resid_pre")


def test_adding_to_resid_shifts_the_block_output_and_is_removed():
    lm = tiny_gemma2()
    ids, am, _ = batch()
    v = torch.randn(lm.d_model)
    clean = lm.resid_post(ids, am, layers=[1])[0]
    with adding_to_resid(lm.layers, {1: v}):
        steered = lm.resid_post(ids, am, layers=[1])[0]
    torch.testing.assert_close(steered, clean + v)
    torch.testing.assert_close(lm.resid_post(ids, am, layers=[1])[0], clean)
