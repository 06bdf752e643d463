"""saematch.lazy_saes and the Context's lazily loaded SAE set: a set larger than its byte budget
is held a pair at a time, and the experiments that walk it pair by pair give the same numbers
as with every SAE held (the full-size rehearsal, scripts/rehearse_paper.py, relies on it)."""

from __future__ import annotations

import json

import pytest
import torch
from experiment_helpers import compose_cfg, run, run_dir_of

from saematch.lazy_saes import MIN_HELD, LayerSequence, LazySAEs, mapped, sae_bytes
from saematch.sae import JumpReLUSAE


def _sae(seed: int, d: int = 8, F: int = 16) -> JumpReLUSAE:
    g = torch.Generator().manual_seed(seed)
    return JumpReLUSAE(
        W_enc=torch.randn(d, F, generator=g),
        b_enc=torch.zeros(F),
        W_dec=torch.randn(F, d, generator=g),
        b_dec=torch.zeros(d),
        threshold=torch.rand(F, generator=g) + 0.5,
        name=f"sae{seed}",
    )


def _lazy(n: int, max_bytes):
    calls = []

    def load(L):
        calls.append(L)
        return _sae(L)

    return LazySAEs(range(n), load, max_bytes=max_bytes), calls


def test_held_within_budget_and_reloaded_with_same_content():
    one = sae_bytes(_sae(0))
    saes, calls = _lazy(5, max_bytes=2 * one)
    first = saes[0].W_dec.clone()
    for L in range(5):
        assert saes[L].name == f"sae{L}"
        assert saes.held_bytes <= 2 * one
    assert calls == [0, 1, 2, 3, 4]
    assert torch.equal(saes[0].W_dec, first)  # dropped, then read again: same content
    assert calls[-1] == 0 and saes.loads == 6
    saes[0]
    assert saes.loads == 6  # held now: no new load


def test_at_least_one_pair_is_held_and_no_budget_holds_all():
    saes, calls = _lazy(4, max_bytes=1)  # a budget below one SAE still keeps a pair
    a, b = saes[0], saes[1]
    assert saes[0] is a and saes[1] is b and len(calls) == MIN_HELD
    saes, calls = _lazy(4, max_bytes=None)
    objs = [saes[L] for L in range(4)]
    assert [saes[L] for L in range(4)] == objs and len(calls) == 4


def test_mapping_protocol_and_errors():
    saes, _ = _lazy(3, max_bytes=None)
    assert list(saes) == [0, 1, 2] and len(saes) == 3 and 2 in saes and 3 not in saes
    with pytest.raises(KeyError, match="layer 7 is not in this SAE set"):
        saes[7]
    assert list(saes.keys()) == [0, 1, 2]


def test_mapped_is_lazy_for_lazy_sets_and_a_dict_for_dicts():
    saes, calls = _lazy(4, max_bytes=1)
    folded = mapped(saes, lambda s: s.fold())
    assert calls == []  # nothing folded (nor loaded) before it is asked for
    assert isinstance(folded, LazySAEs) and folded.max_bytes == 1
    assert bool(torch.all(folded[2].threshold == 1)) and calls == [2]
    plain = {0: _sae(0), 1: _sae(1)}
    out = mapped(plain, lambda s: s.fold())
    assert isinstance(out, dict) and set(out) == {0, 1}


def test_layer_sequence_indexes_by_position():
    saes, calls = _lazy(6, max_bytes=1)
    seq = LayerSequence(saes, [1, 3, 5])
    assert len(seq) == 3 and seq[1].name == "sae3" and seq[-1].name == "sae5"
    assert [s.name for s in seq[1:]] == ["sae3", "sae5"]
    assert calls == [3, 5]  # the pair stays held (MIN_HELD)


EXPERIMENTS = {
    "mse_curves": [],
    "layer_pruning": ["experiment.baselines=true"],
    "explorer": ["experiment.descriptions=false"],
}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiments_match_when_the_set_is_held_a_pair_at_a_time(
    name, test_zoo, tmp_path, monkeypatch
):
    """Same results.json with every SAE held and with a budget that holds only one pair."""
    from saematch.sources.sets import SAESet
    from saematch_experiments.harness import context

    loads, load = [], SAESet.load
    monkeypatch.setattr(SAESet, "load", lambda self, L, *a, **k: loads.append(L) or load(
        self, L, *a, **k))  # fmt: skip
    out, n_loads = {}, {}
    for budget in (None, 1):  # None: hold all (the zoo's default); 1 byte: one pair at a time
        monkeypatch.setattr(context, "HELD_SAE_BYTES", budget)
        cfg = compose_cfg(name, EXPERIMENTS[name], test_zoo, tmp_path / str(budget))
        loads.clear()
        run(cfg)
        out[budget] = _untimed(json.loads((run_dir_of(cfg) / "results.json").read_text()))
        n_loads[budget] = len(loads)
    assert n_loads[None] == test_zoo.n_layers  # all held: each read once
    assert n_loads[1] > n_loads[None]  # the pair-at-a-time run did read SAEs again
    assert out[1]["results"] == out[None]["results"]
    assert out[1]["metrics"] == out[None]["metrics"]


def _untimed(tree):
    """A JSON tree without what differs between two identical runs: times, cache status."""
    if isinstance(tree, dict):
        skip = ("second", "duration", "cached", "_at")
        return {k: _untimed(v) for k, v in tree.items() if not any(w in k for w in skip)}
    if isinstance(tree, list):
        return [_untimed(v) for v in tree]
    return tree
