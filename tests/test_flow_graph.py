"""The flow graph on hand-built SAEs: predecessors, origins, W_O mapping, the graph file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saematch.flow import (
    ORIGINS,
    build_flow_graph,
    classify,
    load_flow_graph,
    save_flow_graph,
    top_predecessors,
)
from saematch.lm.sites import z_to_residual
from saematch.sae import JumpReLUSAE

D = 8


def sae(rows, theta=None, name=""):
    """An SAE whose decoder rows are `rows` (F, d_in); encoder = transposed decoder."""
    W = torch.stack([torch.as_tensor(r, dtype=torch.float32) for r in rows])
    F, d = W.shape
    th = torch.ones(F) if theta is None else torch.as_tensor(theta, dtype=torch.float32)
    return JumpReLUSAE(
        W_enc=W.T.clone(),
        b_enc=torch.zeros(F),
        W_dec=W.clone(),
        b_dec=torch.zeros(d),
        threshold=th,
        name=name,
    )


def e(i, d=D):
    v = torch.zeros(d)
    v[i] = 1.0
    return v


def test_top_predecessors_cosine_and_folded_cost():
    target = torch.stack([e(0), e(1) + e(2)])
    source = torch.stack([e(1), 2 * e(0), e(0) + 0.1 * e(3), e(2)])
    i, v = top_predecessors(target, source, "cosine", 2)
    assert i[0, 0] == 1 and v[0, 0] == pytest.approx(1.0)  # 2·e0 has cosine 1 with e0
    assert set(i[1].tolist()) == {0, 3} and v[1, 0] == pytest.approx(2**-0.5)
    # folded cost: 1 − ‖r − u‖²/‖r‖²; e0 + 0.1 e3 is nearest to e0 (2 e0 is far in norm)
    i, v = top_predecessors(target, source, "folded_cost", 1)
    assert i[0, 0] == 2 and v[0, 0] == pytest.approx(1 - 0.01)
    with pytest.raises(ValueError, match="residual stream"):
        top_predecessors(target, torch.zeros(3, D + 1), "cosine", 1)


def test_classify_rule():
    best = {
        "res": torch.tensor([0.9, 0.2, 0.2, 0.1, 0.6, 0.2]),
        "mlp": torch.tensor([0.95, 0.8, 0.3, 0.1, 0.1, 0.7]),
        "att": torch.tensor([0.1, 0.3, 0.7, 0.2, 0.9, 0.7]),
    }
    got = [ORIGINS[c] for c in classify(best, 0.5).tolist()]
    # a residual predecessor above τ wins even if a module scores higher; mlp wins ties
    assert got == ["persisting", "mlp", "attention", "unclear", "persisting", "mlp"]


def test_hand_built_graph_and_file(tmp_path):
    # layer 1's residual features: 0 persists from res(0) feature 2, 1 is written by the MLP
    # (mlp feature 3), 2 by attention (z-feature 1 mapped through W_O), 3 comes from nowhere
    W_O = torch.zeros(D, 4)
    W_O[5, 1] = 2.0  # z-direction 1 -> residual e5
    W_O[7, 0] = 1.0
    gain = torch.ones(D)
    res0 = sae([e(0), e(6), e(1), e(7)], name="res0")
    res1 = sae([e(1) * 3, e(3), e(5), (e(0) - e(1) + e(2) - e(3)) / 2], name="res1")
    mlp1 = sae([e(6), e(7), e(0), e(3) + 0.1 * e(4)], name="mlp1")
    att1 = sae([e(2, 4), e(1, 4), e(3, 4)], name="att1")
    g = build_flow_graph(
        {0: res0, 1: res1},
        {1: mlp1},
        {1: att1},
        o_proj={1: (W_O, gain)},
        similarity="cosine",
        top_k=2,
        threshold=0.6,
    )
    fl = g.layer(1)
    assert [ORIGINS[c] for c in fl.origin.tolist()] == ["persisting", "mlp", "attention", "unclear"]
    assert fl.index["res"][0, 0] == 2 and fl.index["mlp"][1, 0] == 3 and fl.index["att"][2, 0] == 1
    assert fl.edges("res", 0.6)[0].tolist() == [True, False]  # the runner-up is below τ
    assert g.predecessors(1, 2) == [("att/1/1", pytest.approx(1.0))]
    assert g.predecessors(1, 3) == []
    assert fl.shares() == {"persisting": 0.25, "mlp": 0.25, "attention": 0.25, "unclear": 0.25}
    assert g.saes["att/1"]["site"] == "attn_z" and "W_O" in g.notes["att_map"]
    save_flow_graph(g, tmp_path / "matchings" / "flow_graph")
    back = load_flow_graph(tmp_path / "matchings" / "flow_graph.json")
    assert back.similarity == "cosine" and back.threshold == 0.6 and back.top_k == 2
    for s in ("res", "mlp", "att"):
        assert torch.equal(back.layer(1).index[s], fl.index[s])
        assert torch.equal(back.layer(1).score[s], fl.score[s])
    assert torch.equal(back.layer(1).origin, fl.origin)
    assert set(back.layer(1).null_best) == {"res", "mlp", "att"}
    torch.testing.assert_close(back.layer(1).null_best["att"], fl.null_best["att"])
    # without W_O an attn_z SAE cannot be placed in the residual stream
    with pytest.raises(ValueError, match="W_O"):
        build_flow_graph({0: res0, 1: res1}, {1: mlp1}, {1: att1})


def test_folded_cost_uses_thresholds():
    # same directions, different θ: folding decides which predecessor is nearest
    res0 = sae([e(0), e(0)], theta=[0.5, 2.0])
    res1 = sae([e(0)], theta=[2.0])
    mod = sae([e(4)])
    g = build_flow_graph(
        {0: res0, 1: res1},
        {1: mod},
        {1: mod},
        sites={"att": "attn_out"},
        similarity="folded_cost",
        top_k=1,
    )
    assert g.layer(1).index["res"][0, 0] == 1 and g.threshold == 0.5


def test_z_to_residual_maps_rows():
    W_O = torch.randn(D, 4)
    gain = torch.rand(D) + 0.5
    v = torch.randn(3, 4)
    torch.testing.assert_close(z_to_residual(v, W_O, gain), (v @ W_O.T) * gain)
    with pytest.raises(ValueError, match="attn_z"):
        z_to_residual(torch.randn(3, 5), W_O)


def test_streaming_correlation_matches_numpy():
    from saematch.flow.validate import CorrelationAccumulator, pair_correlations

    g = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(300, 5, generator=g))
    b = torch.relu(a[:, [0, 1, 2]] + torch.randn(300, 3, generator=g))
    b = torch.cat([b, torch.zeros(300, 1)], dim=1)  # a feature that never fires
    ia, ib = torch.tensor([0, 1, 4, 2]), torch.tensor([0, 2, 1, 3])
    acc = CorrelationAccumulator(4)
    for s in (slice(0, 100), slice(100, 250), slice(250, 300)):
        acc.update(a[s][:, ia], b[s][:, ib])
    got = acc.value()
    want = [
        np.corrcoef(a[:, i].numpy(), b[:, j].numpy())[0, 1] for i, j in ((0, 0), (1, 2), (4, 1))
    ]
    np.testing.assert_allclose(got[:3].numpy(), want, rtol=1e-5, atol=1e-6)
    assert torch.isnan(got[3])  # never fires: no correlation, not 0
    torch.testing.assert_close(pair_correlations(a, b, ia, ib)[:3], got[:3])


def test_chance_level_sits_below_true_alignment():
    # a source that IS the target up to small noise scores ~1; rotated, it drops to chance
    from saematch.flow.graph import chance_best, random_rotation

    g = torch.Generator().manual_seed(0)
    target = torch.randn(200, 32, generator=g)
    source = target + 0.1 * torch.randn(200, 32, generator=g)
    q = random_rotation(32, g)
    torch.testing.assert_close(q @ q.T, torch.eye(32), atol=1e-5, rtol=0)
    best = top_predecessors(target, source, "cosine", 1)[1][:, 0]
    null = chance_best(target, source, "cosine", g)
    assert best.mean() > 0.99 and null.mean() < 0.6  # max of 200 cosines in d=32: ~0.5


def test_explorer_reads_a_real_graph_file(tmp_path):
    """The explorer's adapter (experiment=explorer flow_graph=...) reads a saved graph file."""
    from saematch.explorer.data import predecessors_from_graph

    res0 = sae([e(0), e(1)], name="res0")
    res1 = sae([e(0) * 2, e(5)], name="res1")
    mlp1 = sae([e(5), e(6)], name="mlp1")
    att1 = sae([e(7), e(6)], name="att1")
    o_proj = {1: (torch.eye(D), torch.ones(D))}  # z-space = residual space here
    g = build_flow_graph(
        {0: res0, 1: res1}, {1: mlp1}, {1: att1}, o_proj=o_proj, similarity="cosine", top_k=1
    )
    save_flow_graph(g, tmp_path / "flow_graph")
    preds = predecessors_from_graph(load_flow_graph(tmp_path / "flow_graph.json"))
    got = {j: [(p.module, p.layer, p.feature) for p in ps] for j, ps in preds[1].items()}
    assert got == {0: [("res", 0, 0)], 1: [("mlp", 1, 0)]}
