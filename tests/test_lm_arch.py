"""LanguageModel on every supported family: hook sites found from the structure, resumption
from any block equal to the full forward, and loading from a local folder (no downloads)."""

from __future__ import annotations

import pytest
import torch
from tiny_hf import FAMILIES, V, save_tiny_model, tiny_model
from torch import nn

from saematch.lm import LanguageModel, token_ce
from saematch.lm.arch import decoder_stack

T = 20


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def ids(B: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, V, (B, T), generator=g)
    x[:, 0] = 2
    return x


@pytest.fixture(params=list(FAMILIES), scope="module")
def family_lm(request):
    return request.param, LanguageModel(tiny_model(request.param))


def test_resid_post_is_each_blocks_output(family_lm):
    """resid_post[l] = hidden_states[l + 1] of the model's own forward, for l < L − 1."""
    _, lm = family_lm
    x = ids()
    resid = lm.resid_post(x)  # (L, B, T, d)
    assert resid.shape == (4, 2, T, lm.d_model)
    with torch.no_grad():
        hs = lm.model(input_ids=x, output_hidden_states=True).hidden_states
    for layer in range(lm.n_layers - 1):
        torch.testing.assert_close(resid[layer], hs[layer + 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer", [0, 1, 3])
def test_resuming_from_a_block_is_the_full_forward(family_lm, layer):
    """logits_from(l, resid_post[l]) equals the plain forward (GPT-2: wpe not added twice)."""
    _, lm = family_lm
    x = ids()
    full = lm.logits(x)
    resid = lm.resid_post(x, layers=[layer])[0]
    torch.testing.assert_close(lm.logits_from(layer, resid), full, rtol=1e-4, atol=1e-4)
    ce = lm.token_losses_from(layer, resid, x)
    torch.testing.assert_close(ce, token_ce(full, x), rtol=1e-4, atol=1e-4)
    swapped = lm.logits_with_replacement(layer, resid, x)  # the hook path agrees too
    torch.testing.assert_close(swapped, full, rtol=1e-4, atol=1e-4)


def test_sublayer_sites_add_up_to_the_residual_stream(family_lm):
    """resid_post[l] − resid_post[l−1] = attn_out[l] + mlp_out[l] in every family."""
    _, lm = family_lm
    x = ids()
    resid = lm.resid_post(x)
    want = [(s, L) for L in (1, 2) for s in ("attn_out", "mlp_out")]
    got = lm.site_activations(x, want=want)
    for L in (1, 2):
        added = got[("attn_out", L)] + got[("mlp_out", L)]
        torch.testing.assert_close(added, resid[L] - resid[L - 1], rtol=1e-4, atol=1e-5)


def test_loads_from_a_local_folder(tmp_path):
    for family in ("gpt2", "gpt_neox", "qwen2"):
        folder = save_tiny_model(family, tmp_path / family)
        lm = LanguageModel.load(str(folder))
        assert lm.n_layers == 4 and lm.tokenizer.bos_token_id == 2
        ref = LanguageModel(tiny_model(family))
        x = ids()
        torch.testing.assert_close(lm.logits(x), ref.logits(x))


def test_unknown_layout_is_named():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList([nn.Linear(2, 2)])

    with pytest.raises(ValueError, match="no decoder stack saematch knows"):
        decoder_stack(Encoder())
