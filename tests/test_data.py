"""Text sources and token batches (docs/method.md §4), with a tiny word-level tokenizer and local
files."""

import gzip
import json

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from saematch.data import (
    DatasetUnavailableError,
    TokenBatch,
    chunks,
    load_batch,
    load_texts,
    make_batch,
)
from saematch.data.sources import wikitext_articles

WORDS = [f"w{i}" for i in range(50)]


@pytest.fixture(scope="module")
def tok():
    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"])
    t.train_from_iterator([" ".join(WORDS)], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=t,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def doc(n: int, start: int = 0) -> str:
    """A text of n words (n tokens)."""
    return " ".join(WORDS[(start + k) % 50] for k in range(n))


# -- token batches -------------------------------------------------------------------
def test_batch_bos_mask_and_length(tok):
    texts = [doc(40, s) for s in range(12)]
    b = make_batch(texts, tok, n_examples=5, seq_len=16, seed=0)
    assert isinstance(b, TokenBatch) and len(b) == 5 and b.input_ids.shape == (5, 16)
    assert b.input_ids.dtype == torch.long and b.metric_mask.dtype == torch.bool
    assert torch.all(b.input_ids[:, 0] == tok.bos_token_id)
    assert not b.metric_mask[:, 0].any() and b.metric_mask[:, 1:].all()
    assert b.attention_mask.all() and b.n_metric_tokens == 5 * 15
    # each row is the first 15 tokens of its source document
    for r, i in enumerate(b.meta["doc_index"]):
        expected = tok.encode(texts[i], add_special_tokens=False)[:15]
        assert b.input_ids[r, 1:].tolist() == expected
    assert b.meta["n_long"] == 5 and b.meta["n_packed"] == 0


def test_batch_determinism(tok):
    texts = [doc(30, s) for s in range(40)]
    a = make_batch(texts, tok, n_examples=8, seq_len=10, seed=3)
    b = make_batch(texts, tok, n_examples=8, seq_len=10, seed=3)
    c = make_batch(texts, tok, n_examples=8, seq_len=10, seed=4)
    assert torch.equal(a.input_ids, b.input_ids) and a.fingerprint() == b.fingerprint()
    assert not torch.equal(a.input_ids, c.input_ids)


def test_rest_packed_then_padded(tok):
    texts = [doc(20, 0), doc(3, 1), doc(4, 2), doc(2, 3)]
    with pytest.warns(UserWarning, match="only 5 of 6"):
        b = make_batch(texts, tok, n_examples=6, seq_len=8, seed=0)
    # 1 long doc (head: 7 tokens); packed: its tail 13 + 3 + 4 + 2, each + EOS = 26 tokens
    # -> 3 full rows of 7 and a last row of 5 tokens + 2 padding
    assert b.meta["n_long"] == 1 and b.meta["n_packed"] == 4 and len(b) == 5
    assert b.meta["doc_index"] == [0, -1, -1, -1, -1]
    last = b[4]
    assert last.attention_mask[0].tolist() == [1] * 6 + [0] * 2
    assert last.metric_mask[0].tolist() == [False] + [True] * 5 + [False] * 2
    assert last.input_ids[0, 6:].tolist() == [tok.pad_token_id] * 2
    assert (b.input_ids == tok.eos_token_id).sum() == 4
    # the packed stream is the rest of each doc in the seeded visiting order
    expected = []
    for i in np.random.default_rng(0).permutation(4):
        ids = tok.encode(texts[i], add_special_tokens=False)
        expected += ids[7:] if len(ids) >= 7 else ids
        expected.append(tok.eos_token_id)
    assert b.input_ids[1:, 1:][b.attention_mask[1:, 1:].bool()].tolist() == expected


def test_batch_warns_and_errors(tok):
    with pytest.warns(UserWarning, match="only 4 of 5"):  # 30 tokens + EOS = 9 + 9 + 9 + 4
        make_batch([doc(30)], tok, n_examples=5, seq_len=10)
    with pytest.raises(ValueError, match="no tokens"):
        make_batch(["", "  "], tok, n_examples=3, seq_len=10)
    with pytest.raises(ValueError, match="bos_token_id"):
        make_batch([doc(30)], tok.backend_tokenizer, n_examples=1, seq_len=10)
    raw = make_batch([doc(30)], tok.backend_tokenizer, n_examples=1, seq_len=10, bos_token_id=1)
    assert raw.input_ids[0, 0] == 1 and raw.input_ids.shape == (1, 10)


def test_chunks_to_and_safetensors_roundtrip(tok, tmp_path):
    b = make_batch([doc(30, s) for s in range(10)], tok, n_examples=7, seq_len=12, seed=1)
    parts = list(chunks(b, 3))
    assert [len(p) for p in parts] == [3, 3, 1]
    assert torch.equal(torch.cat([p.input_ids for p in parts]), b.input_ids)
    assert b.to("cpu").input_ids.device.type == "cpu"
    path = tmp_path / "cache" / "batch.safetensors"
    b.save(path)
    c = load_batch(path)
    assert c.fingerprint() == b.fingerprint() and c.meta == b.meta
    assert c.metric_mask.dtype == torch.bool
    assert TokenBatch.load(path).fingerprint() == b.fingerprint()
    with pytest.raises(FileNotFoundError, match="make_batch"):
        load_batch(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="metric_mask has shape"):
        TokenBatch(b.input_ids, b.attention_mask, b.metric_mask[:, :3])


# -- text sources -----------------------------------------------------------------
def test_stdlib_sources():
    a = load_texts("stdlib_code", n_docs=5, seed=0)
    assert len(a) == 5 and a == load_texts("stdlib_code", n_docs=5, seed=0)
    assert a != load_texts("stdlib_code", n_docs=5, seed=1)
    held = load_texts("stdlib_prose", split="heldout", n_docs=3, text_key="text")  # ignored
    assert len(held) == 3 and all(t.strip() for t in held)
    with pytest.raises(ValueError, match="'train' or 'heldout'"):
        load_texts("stdlib", split="test")


def test_local_text_txt_jsonl_gz(tmp_path):
    (tmp_path / "a.txt").write_text("first document")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"text": "second"}) + "\n\n" + json.dumps({"text": "third"}) + "\n"
    )
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write(json.dumps({"body": "fourth"}) + "\n")
    (tmp_path / "ignored.csv").write_text("x")
    texts = load_texts("local_text", path=tmp_path / "*.txt")
    assert texts == ["first document"]
    assert sorted(load_texts("local_text", path=tmp_path / "*.jsonl")) == ["second", "third"]
    assert load_texts("local_text", path=tmp_path / "c.jsonl.gz", text_key="body") == ["fourth"]
    with pytest.raises(ValueError, match="text_key"):
        load_texts("local_text", path=tmp_path)  # the .gz has no "text" field
    (tmp_path / "c.jsonl.gz").unlink()
    everything = load_texts("local_text", path=tmp_path, seed=0)
    assert sorted(everything) == ["first document", "second", "third"]
    assert len(load_texts("local_text", path=tmp_path, n_docs=2, seed=0)) == 2


def test_local_text_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .txt"):
        load_texts("local_text", path=tmp_path / "nothing*.txt")
    with pytest.raises(ValueError, match="needs path"):
        load_texts("local_text")
    with pytest.raises(ValueError, match="unknown text source 'owt'"):
        load_texts("owt")
    with pytest.raises(TypeError, match="takes no option"):
        load_texts("stdlib", streaming=True)


def test_hf_source_from_local_mirror(tmp_path):
    rows = [{"text": f"web page {i}", "id": i} for i in range(30)]
    mirror, cache = tmp_path / "owt.jsonl", str(tmp_path / "hf")
    mirror.write_text("\n".join(json.dumps(r) for r in rows))
    a = load_texts("openwebtext", path=mirror, n_docs=10, seed=0, buffer_size=8, cache_dir=cache)
    assert len(a) == 10 and set(a) <= {r["text"] for r in rows}
    assert a == load_texts(
        "openwebtext", path=mirror, n_docs=10, seed=0, buffer_size=8, cache_dir=cache
    )
    assert a != load_texts(
        "openwebtext", path=mirror, n_docs=10, seed=1, buffer_size=8, cache_dir=cache
    )
    everything = load_texts(
        "openwebtext", path=mirror, streaming=False, cache_dir=str(tmp_path / "hf")
    )
    assert sorted(everything) == sorted(r["text"] for r in rows)


def test_hf_code_mirror_parquet(tmp_path):
    import datasets

    path = tmp_path / "code.parquet"
    datasets.Dataset.from_dict(
        {"content": ["def f(): pass", "x = 1"], "lang": ["py"] * 2}
    ).to_parquet(path)
    assert sorted(load_texts("code", path=path, cache_dir=str(tmp_path / "hf"))) == [
        "def f(): pass",
        "x = 1",
    ]
    disk = tmp_path / "disk"
    datasets.Dataset.from_dict({"content": ["a = 2"]}).save_to_disk(str(disk))
    assert load_texts("code", path=disk) == ["a = 2"]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="a mirror must be"):
        load_texts("code", path=tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="no column 'text'"):
        load_texts("code", path=path, text_key="text", cache_dir=str(tmp_path / "hf"))


def test_wikitext_articles_from_mirror(tmp_path):
    lines = [
        "",
        " = Alpha = \n",
        "",
        " Alpha is a letter . \n",
        " = = History = = \n",
        " It is old . \n",
        " = Empty = \n",
        "",
        " = Beta = \n",
        " Beta follows alpha . \n",
    ]
    assert list(wikitext_articles(lines)) == [
        "= Alpha =\nAlpha is a letter .\n= = History = =\nIt is old .",
        "= Beta =\nBeta follows alpha .",
    ]
    mirror = tmp_path / "wiki.jsonl"
    mirror.write_text("\n".join(json.dumps({"text": t}) for t in lines))
    got = load_texts("wikitext", path=mirror, seed=0, cache_dir=str(tmp_path / "hf"))
    assert sorted(got) == sorted(wikitext_articles(lines))


def test_hf_offline_error_is_clear():
    # conftest sets HF_HUB_OFFLINE=1, so this fails fast without touching the network
    with pytest.raises(DatasetUnavailableError, match="local_text"):
        load_texts("openwebtext", n_docs=2)
    with pytest.raises(ValueError, match="only a train split"):
        load_texts("code", split="heldout", n_docs=2)
