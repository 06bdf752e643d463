"""HFLocalJudge plumbing with a tiny random Llama saved to disk: chat template, greedy decoding,
cache. The output is junk, so the label must come back None (never guessed)."""

from __future__ import annotations

import pytest

from saematch.judge import SYSTEM_PROMPT, build_judge
from saematch.judge.hf_local import HFLocalJudge

WORDS = "explanation feature text about python code cats dogs numbers system user assistant"
TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<unk>", "</s>", "<pad>", *WORDS.split()])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = TEMPLATE
    cfg = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=1,
        pad_token_id=2,
    )
    model = transformers.LlamaForCausalLM(cfg)
    path = tmp_path_factory.mktemp("tiny-instruct")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_hf_local_plumbing_and_cache(tiny_model_dir, tmp_path):
    judge = HFLocalJudge(str(tiny_model_dir), max_new_tokens=4, cache_dir=tmp_path)
    text = judge._prompt_text(judge._load()[1], "Explanation 1: x")
    assert text.startswith(f"<system> {SYSTEM_PROMPT}") and text.endswith("<assistant>")
    res = judge.judge("python code", "cats")
    assert res.label is None and not res.cached  # random weights: junk, never guessed
    assert judge.counters.calls == 1 and 0 < judge.counters.completion_tokens <= 4
    again = build_judge("hf_local", model=str(tiny_model_dir), cache_dir=tmp_path, max_new_tokens=4)
    res2 = again.judge("python code", "cats")
    assert res2.cached and res2.raw == res.raw and again.counters.calls == 0


def test_hf_local_template_without_system_role(tiny_model_dir, tmp_path):
    judge = HFLocalJudge(str(tiny_model_dir), max_new_tokens=2, cache_dir=tmp_path)
    _, tok = judge._load()
    tok.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}{% endfor %}"
    )
    text = judge._prompt_text(tok, "Explanation 1: x")
    assert text.startswith(f"<user> {SYSTEM_PROMPT}\n\nExplanation 1: x")
