"""LanguageModel on tiny random Gemma2 / Llama configs (no downloads)."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM

from saematch.lm import LanguageModel, ce_loss, chunks, default_metric_mask, token_ce

V, D, N_LAYERS, T = 64, 32, 4, 20


def tiny_gemma2(seed: int = 0, sliding_window: int = 8, n_layers: int = N_LAYERS) -> LanguageModel:
    """A random 4-layer Gemma 2 whose sliding window (8) is shorter than T (20)."""
    torch.manual_seed(seed)
    cfg = Gemma2Config(
        vocab_size=V, hidden_size=D, intermediate_size=64, num_hidden_layers=n_layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=sliding_window,
        attn_implementation="eager", bos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    return LanguageModel(Gemma2ForCausalLM(cfg))


def tiny_llama(seed: int = 0) -> LanguageModel:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=V, hidden_size=D, intermediate_size=64, num_hidden_layers=N_LAYERS,
        num_attention_heads=2, num_key_value_heads=1, bos_token_id=1, pad_token_id=0,
    )  # fmt: skip
    return LanguageModel(LlamaForCausalLM(cfg))


def batch(B: int = 3, seed: int = 1):
    """Right-padded ids (B, T) with BOS at 0, attention mask, metric mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (B, T), generator=g)
    ids[:, 0] = 2
    am = torch.ones_like(ids)
    am[1, 14:] = 0
    ids[1, 14:] = 0
    return ids, am, default_metric_mask(ids, am, bos_token_id=2)


MODELS = {"gemma2": tiny_gemma2, "llama": tiny_llama}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads; 2 threads on a busy 2-core box run ~100× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(params=list(MODELS), scope="module")
def lm(request) -> LanguageModel:
    return MODELS[request.param]()


def test_properties(lm):
    assert (lm.n_layers, lm.d_model) == (N_LAYERS, D)
    assert lm.device == torch.device("cpu") and lm.dtype == torch.float32
    assert not lm.model.training


def test_hooks_match_hidden_states(lm):
    ids, am, _ = batch()
    r = lm.resid_post(ids, am)  # (L, B, T, d)
    assert r.shape == (N_LAYERS, 3, T, D)
    hs = lm.model(input_ids=ids, attention_mask=am, output_hidden_states=True).hidden_states
    for layer in range(N_LAYERS - 1):
        assert torch.equal(r[layer], hs[layer + 1])
    # transformers 5: the last hidden state carries the final norm; resid_post does not.
    assert not torch.allclose(r[-1], hs[-1], atol=1e-3)
    assert torch.allclose(lm.base.norm(r[-1]), hs[-1], atol=1e-6)


def test_resid_post_subset_and_early_stop(lm):
    ids, am, _ = batch()
    full = lm.resid_post(ids, am)
    calls = []
    h = lm.layers[2].register_forward_hook(lambda *a: calls.append(1))
    try:
        sub = lm.resid_post(ids, am, layers=[1, 0])
    finally:
        h.remove()
    assert calls == []  # stopped after block 1
    assert torch.equal(sub, full[[1, 0]])
    with pytest.raises(ValueError, match="out of range"):
        lm.resid_post(ids, am, layers=[N_LAYERS])


def test_logits_from_true_resid_is_full_forward(lm):
    ids, am, _ = batch()
    full = lm.logits(ids, am)
    r = lm.resid_post(ids, am)
    for layer in range(N_LAYERS):
        assert (lm.logits_from(layer, r[layer], ids, am) - full).abs().max() < 1e-5
    emb = lm.base.embed_tokens(ids)  # layer −1: the input to block 0 (Gemma: scaled)
    assert (lm.logits_from(-1, emb, ids, am) - full).abs().max() < 1e-5


def test_logits_from_matches_hook_replacement(lm):
    ids, am, _ = batch()
    full = lm.logits(ids, am)
    g = torch.Generator().manual_seed(3)
    for layer in [-1, 0, 1, N_LAYERS - 1]:
        x = torch.randn(3, T, D, generator=g)
        got = lm.logits_from(layer, x, ids, am)
        if layer == -1:
            with torch.no_grad():
                ref = lm.model(inputs_embeds=x, attention_mask=am).logits
        else:
            ref = lm.logits_with_replacement(layer, x, ids, am)
        assert (got - ref).abs().max() < 1e-5
        assert (got - full).abs().max() > 1e-2  # the replacement matters
    assert all(type(b).__name__ != "_PassThrough" for b in lm.layers)  # blocks restored


def test_sliding_window_is_live():
    """The local layers' window (8 < T) changes logits, so the mask test above has teeth."""
    ids, am, _ = batch()
    a, b = tiny_gemma2(sliding_window=8), tiny_gemma2(sliding_window=64)
    assert (a.logits(ids, am) - b.logits(ids, am)).abs().max() > 1e-3
    x = torch.randn(3, T, D)
    ref = a.logits_with_replacement(0, x, ids, am)
    assert (a.logits_from(0, x, ids, am) - ref).abs().max() < 1e-5
    assert (b.logits_from(0, x, ids, am) - ref).abs().max() > 1e-3


def test_ce_loss_matches_hf_and_ignores_bos(lm):
    ids = torch.randint(3, V, (2, T))
    ids[:, 0] = 2
    logits = lm.logits(ids)
    mask = torch.ones_like(ids, dtype=torch.bool)  # position 0 is dropped anyway
    with torch.no_grad():
        out = lm.model(input_ids=ids, labels=ids)
    assert (logits - out.logits).abs().max() < 1e-5  # our head = the model's own head
    hf = out.loss
    assert abs(ce_loss(logits, ids, mask) - float(hf)) < 1e-5
    # a mid-sequence BOS target at j = 7 is excluded: its predicting logits do not matter
    ids[0, 7] = 2
    mask = default_metric_mask(ids, bos_token_id=2)
    base = ce_loss(logits, ids, mask)
    bumped = logits.clone()
    bumped[0, 6] += torch.randn(V) * 5  # predicts ids[0, 7] = BOS
    bumped[:, -1] += 5.0  # the last position predicts nothing
    assert ce_loss(bumped, ids, mask) == base
    bumped[0, 0] += torch.randn(V) * 5  # predicts token 1, which counts
    assert ce_loss(bumped, ids, mask) != base


def test_token_ce_alignment_and_chunking(lm):
    ids, am, _ = batch(B=5)
    logits = lm.logits(ids, am)
    tok = token_ce(logits, ids)  # (B, T)
    assert torch.all(tok[:, 0] == 0)
    j = 5
    manual = -torch.log_softmax(logits[2, j - 1], -1)[ids[2, j]]
    assert abs(float(tok[2, j] - manual)) < 1e-5
    assert torch.allclose(lm.token_losses(ids, am, batch_size=2), tok, atol=1e-5)
    assert [(s.start, s.stop) for s in chunks(5, 2)] == [(0, 2), (2, 4), (4, 5)]


def test_token_losses_from_chunked_head(lm):
    """The chunked-head loss equals CE of the full logits, also via the generic fallback."""
    ids, am, _ = batch()
    r = lm.resid_post(ids, am)
    x = torch.randn(3, T, D)
    for layer, resid in [(1, r[1]), (2, x), (N_LAYERS - 1, r[-1])]:
        ref = token_ce(lm.logits_from(layer, resid, ids, am), ids)
        lm.loss_chunk_tokens = 7
        try:
            assert (lm.token_losses_from(layer, resid, ids, am) - ref).abs().max() < 1e-5
            lm._plain_head = False  # any other architecture: the model's own forward
            assert (lm.token_losses_from(layer, resid, ids, am) - ref).abs().max() < 1e-5
        finally:
            lm.loss_chunk_tokens, lm._plain_head = 256, True


def test_default_metric_mask():
    ids, am, mask = batch()
    assert not mask[:, 0].any() and not mask[1, 14:].any() and mask[0, 1:].all()


def test_load_roundtrip(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, **{f"w{i}": i for i in range(3, V)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", unk_token="<unk>", pad_token="<pad>"
    )
    src = tiny_gemma2()
    src.model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    lm = LanguageModel.load(str(tmp_path), dtype="bfloat16")
    assert lm.model.config._attn_implementation == "eager"
    assert lm.dtype == torch.bfloat16 and lm.bos_token_id == 2 and lm.n_layers == N_LAYERS
    ids, am, _ = batch()
    assert (lm.logits(ids, am).float() - src.logits(ids, am)).abs().max() < 0.5
    lm32 = LanguageModel.load(str(tmp_path))
    assert torch.equal(lm32.logits(ids, am), src.logits(ids, am))
    with pytest.raises(ValueError, match="dtype must be one of"):
        LanguageModel.load(str(tmp_path), dtype="fp8")
