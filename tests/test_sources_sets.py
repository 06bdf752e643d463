"""SAE sets of docs/method.md §7: ids, fallbacks, narrowing, and loading from local mirrors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import random_sae

from saematch.sources import save_sae
from saematch.sources.registry import resolve_set
from saematch.sources.sets import (
    GEMMA_SCOPE_CANONICAL_L0,
    GEMMA_SCOPE_PAPER_L0,
    GEMMA_SCOPE_PUBLISHED_L0,
    SAESet,
    SAESpec,
    gemma_scope_canonical_ids,
    gemma_scope_canonical_set,
    gemma_scope_paper_ids,
    gemma_scope_paper_set,
    gemma_scope_sweep_set,
    llama_scope_ids,
    llama_scope_set,
    parse_layers,
)

SPEC_TABLE_1 = "102 108 141 59 125 68 70 69 71 73 77 80 82 83 83 78 78 77 74 73 71 70 72 75 73 116"


def write_gemma(root, sae_id, seed):
    """A params.npz at <root>/<sae_id>/ (Gemma Scope layout)."""
    sae = random_sae(d_model=8, width=12, seed=seed)
    (root / sae_id).mkdir(parents=True, exist_ok=True)
    np.savez(root / sae_id / "params.npz", **{k: v.numpy() for k, v in sae.state_dict().items()})
    return sae


def test_table_1_values():
    assert tuple(int(k) for k in SPEC_TABLE_1.split()) == GEMMA_SCOPE_PAPER_L0
    assert len(GEMMA_SCOPE_CANONICAL_L0) == len(GEMMA_SCOPE_PUBLISHED_L0) == 26


def test_paper_ids_all_layers_with_fallbacks():
    ids = gemma_scope_paper_ids()
    assert list(ids) == list(range(26))
    assert ids[0] == "layer_0/width_16k/average_l0_105"
    assert ids[1] == "layer_1/width_16k/average_l0_102"
    for L in range(2, 26):
        assert ids[L] == f"layer_{L}/width_16k/average_l0_{GEMMA_SCOPE_PAPER_L0[L]}"
    # every id the paper set uses is a published SAE
    for L, sae_id in ids.items():
        assert int(sae_id.rsplit("_", 1)[1]) in GEMMA_SCOPE_PUBLISHED_L0[L], L


def test_paper_set_records_fallback_reasons():
    s = gemma_scope_paper_set()
    assert set(s.notes) == {0, 1}
    assert "average_l0_102" in s.notes[0] and "not published" in s.notes[0]
    assert "average_l0_108" in s.notes[1]
    assert s.specs(20)[0] == SAESpec(
        "gemma_scope", "google/gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71"
    )
    json.dumps(s.to_dict())  # a plain record for run configs
    assert s.to_dict()["notes"]["0"] == s.notes[0]


def test_canonical_ids():
    ids = gemma_scope_canonical_ids(range(3))
    assert ids == {L: f"layer_{L}/width_16k/canonical" for L in range(3)}
    resolved = gemma_scope_canonical_ids(resolve=True)
    assert resolved[4] == "layer_4/width_16k/average_l0_124"
    for L, sae_id in resolved.items():
        assert int(sae_id.rsplit("_", 1)[1]) in GEMMA_SCOPE_PUBLISHED_L0[L]
    assert (
        gemma_scope_canonical_set().specs(5)[0].repo_id == "google/gemma-scope-2b-pt-res-canonical"
    )
    main = gemma_scope_canonical_set(via_main_repo=True)
    assert main.specs(5)[0].repo_id == "google/gemma-scope-2b-pt-res"
    # the paper set's fallbacks are exactly the canonical SAEs
    assert [gemma_scope_paper_ids()[L] for L in (0, 1)] == [resolved[0], resolved[1]]


def test_llama_scope_ids():
    ids = llama_scope_ids()
    assert len(ids) == 32 and ids[20] == "Llama3_1-8B-Base-L20R-8x"
    s = llama_scope_set("0-1")
    assert s.specs(1)[0] == SAESpec("llama_scope", "fnlp/Llama3_1-8B-Base-LXR-8x", ids[1])


@pytest.mark.parametrize(
    ("layers", "expected"),
    [(range(10, 13), (10, 11, 12)), ("10-12", (10, 11, 12)), ("10:12", (10, 11)), (7, (7,))],
)
def test_layer_narrowing(layers, expected):
    assert gemma_scope_paper_set(layers).layers == expected
    assert gemma_scope_paper_set().narrow(layers).layers == expected
    assert resolve_set("gemma_scope_paper", layers).layers == expected


def test_narrowing_drops_fallback_notes_and_checks_range():
    assert gemma_scope_paper_set("2-25").notes == {}
    assert gemma_scope_paper_set("0-3").narrow([1, 2]).notes.keys() == {1}
    with pytest.raises(ValueError, match="out of range"):
        gemma_scope_paper_ids([25, 26])
    with pytest.raises(ValueError, match="lacks layers"):
        gemma_scope_paper_set("0-3").narrow([5])
    with pytest.raises(ValueError, match="'a-b'"):
        parse_layers("ten-twelve")
    with pytest.raises(KeyError, match="unknown SAE set"):
        resolve_set("gemma_scope_papers")


def test_sweep_set_published_and_explicit():
    s = gemma_scope_sweep_set()
    assert s.layers == (20, 21)
    assert [sp.sae_id.rsplit("_", 1)[1] for sp in s.specs(20)] == ["22", "38", "71", "139", "294"]
    explicit = gemma_scope_sweep_set(sae_ids={20: ["layer_20/width_16k/average_l0_71"]})
    assert [sp.sae_id for sp in explicit.specs(20)] == ["layer_20/width_16k/average_l0_71"]


def test_load_from_local_mirror(tmp_path):
    paper = gemma_scope_paper_set("0-2").with_repo(tmp_path)
    refs = {L: write_gemma(tmp_path, paper.specs(L)[0].sae_id, seed=L) for L in paper.layers}
    saes = paper.load_all(dtype=torch.float64)
    for L, sae in saes.items():
        torch.testing.assert_close(sae.W_enc, refs[L].W_enc.double())
        assert sae.meta["sae_id"] == paper.specs(L)[0].sae_id
    assert "not published" in saes[0].meta["note"] and "note" not in saes[2].meta


def test_sweep_loading_needs_which(tmp_path):
    ids = {20: ["layer_20/width_16k/average_l0_22", "layer_20/width_16k/average_l0_71"]}
    s = gemma_scope_sweep_set(sae_ids=ids, repo_id=str(tmp_path))
    refs = [write_gemma(tmp_path, sae_id, seed=i) for i, sae_id in enumerate(ids[20])]
    with pytest.raises(ValueError, match="pass which="):
        s.load(20)
    with pytest.raises(ValueError, match="pass which="):
        s.load_all()
    assert torch.equal(s.load(20, which=1).W_dec, refs[1].W_dec)
    assert torch.equal(s.load(20, which=ids[20][0]).W_dec, refs[0].W_dec)
    assert [x.width for x in s.load_sweep()[20]] == [12, 12]
    with pytest.raises(KeyError, match="not in layer 20"):
        s.load(20, which="layer_20/width_16k/average_l0_38")
    with pytest.raises(KeyError, match="has no layer 21"):
        s.load(21)


def test_local_source_and_unknown_source(tmp_path):
    ref = random_sae(seed=9)
    save_sae(ref, tmp_path / "layer_3")
    s = SAESet.from_ids("zoo", "local", str(tmp_path), {3: "layer_3"})
    assert s.load(3).fingerprint() == ref.fingerprint()
    bad = SAESet.from_ids("x", "nowhere", str(tmp_path), {3: "layer_3"})
    with pytest.raises(ValueError, match="unknown SAE source"):
        bad.load(3)
