"""The planted world (docs/method.md §9): generator, truth file, recovery and matching accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from saematch.planted import (
    WorldConfig,
    descendants,
    make_world,
    matching_accuracy,
    represented,
    sae_recovery,
    sample_activations,
    sample_codes,
)
from saematch.planted.evaluate import ground_truth_report, parse_variant
from saematch.planted.truth import load_truth, save_truth
from saematch.sae import JumpReLUSAE

SMALL = WorldConfig(n_layers=4, d_model=48, n_features=120, l0=4.0)


def oracle_saes(world, extra: int = 8, seed: int = 0) -> list[JumpReLUSAE]:
    """SAEs whose features are exactly the true ones (shuffled, plus `extra` random rows), θ
    proportional to each feature's scale: what a perfect trainer would produce."""
    g = torch.Generator().manual_seed(seed)
    width = max(len(u) for u in world.directions) + extra
    out = []
    for t in range(world.n_layers):
        u, s = world.directions[t], world.scales[t]
        rows = torch.randn(width, world.d_model, generator=g)
        rows /= rows.norm(dim=1, keepdim=True)
        theta = torch.full((width,), float(s.mean()) * 0.3)
        order = torch.randperm(width, generator=g)[: len(u)]
        rows[order], theta[order] = u, 0.3 * s
        out.append(
            JumpReLUSAE(
                W_enc=rows.T.clone(),
                b_enc=torch.zeros(width),
                W_dec=rows.clone(),
                b_dec=torch.zeros(world.d_model),
                threshold=theta,
            )
        )
    return out


def test_world_fate_is_consistent():
    w = make_world(SMALL, seed=1)
    for t in range(1, w.n_layers):
        par, succ = w.parent[t], w.successor[t - 1]
        for c, p in enumerate(par.tolist()):
            if p >= 0:
                assert c in succ[p].tolist()
        n_children = (succ >= 0).sum(1)
        assert (
            (n_children == 2)
            == torch.zeros(len(succ), dtype=torch.bool).index_fill(
                0, par[w.split[t]].unique(), True
            )
        ).all()
        # persisting features drift by about δ: cos ≈ 1/√(1 + δ²)
        keep = (par >= 0) & ~w.split[t]
        cos = (w.directions[t][keep] * w.directions[t - 1][par[keep]]).sum(1)
        assert abs(cos.mean().item() - 1 / math.sqrt(1 + SMALL.drift**2)) < 0.03
    assert all(torch.allclose(u.norm(dim=1), torch.ones(len(u))) for u in w.directions)


def test_bad_knob_is_named():
    with pytest.raises(ValueError, match="p_persist"):
        WorldConfig(p_persist=1.5)


def test_sampler_persistence_and_l0():
    w = make_world(SMALL, seed=2)
    codes = sample_codes(w, 20000, torch.Generator().manual_seed(0))
    for c in codes:
        assert abs((c > 0).sum(1).float().mean().item() - SMALL.l0) < 0.6
    par = w.parent[1]
    keep = (par >= 0) & ~w.split[1]
    on0, on1 = codes[0][:, par[keep]] > 0, codes[1][:, keep] > 0
    assert abs((on0 & on1).sum().item() / on0.sum().item() - SMALL.p_persist) < 0.02
    x = sample_activations(w, 1000, seed=5)
    assert x.shape == (SMALL.n_layers, 1000, SMALL.d_model)
    assert torch.equal(x, sample_activations(w, 1000, seed=5))
    assert not torch.equal(x, sample_activations(w, 1000, seed=6))


def test_truth_roundtrip(tmp_path):
    w = make_world(SMALL, seed=3)
    back = load_truth(save_truth(w, tmp_path / "truth.safetensors"))
    assert back.config == w.config
    for name in ("directions", "scales", "rates", "parent", "split", "successor"):
        for a, b in zip(getattr(w, name), getattr(back, name), strict=True):
            assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError, match="build the planted set"):
        load_truth(tmp_path / "missing.safetensors")


def test_recovery_and_accuracy_on_oracle():
    w = make_world(SMALL, seed=4)
    saes = oracle_saes(w)
    reps = [represented(s.W_dec, w.directions[t]) for t, s in enumerate(saes)]
    assert all(sae_recovery(s.W_dec, w.directions[t]) == 1.0 for t, s in enumerate(saes))
    truth = descendants(w.successor, 0, 1)
    # the true permutation (any child of a split) is fully correct
    where_b = {i: j for j, i in enumerate(reps[1].tolist()) if i >= 0}
    perm = np.arange(saes[0].width)
    used = set()
    for j, i in enumerate(reps[0].tolist()):
        kids = sorted(truth[i]) if i >= 0 else []
        if kids:
            perm[j] = where_b[kids[0]]
            used.add(perm[j])
    free = iter(sorted(set(range(saes[1].width)) - used))
    for j, i in enumerate(reps[0].tolist()):
        if i < 0 or not truth[i]:
            perm[j] = next(free)
    acc = matching_accuracy(perm, reps[0], reps[1], truth)
    assert acc.accuracy == 1.0
    n_with_successor = sum(1 for i in range(len(truth)) if truth[i])
    assert acc.support == n_with_successor < len(truth)  # dead features are outside the support
    # a random permutation is almost never right
    rnd = torch.randperm(saes[0].width, generator=torch.Generator().manual_seed(0))
    assert matching_accuracy(rnd, reps[0], reps[1], truth).accuracy < 0.1


def test_partnerless_features_never_count():
    """Features whose true feature dies, or that represent nothing, are never counted correct,
    whatever they are matched to."""
    rep_a = torch.tensor([0, 1, -1, 2])
    rep_b = torch.tensor([5, 0, 7, -1])
    truth = [{5}, set(), {9}]  # feature 1 dies; feature 2's successor 9 is not represented
    for perm in ([0, 1, 2, 3], [1, 0, 3, 2], [0, 3, 1, 2]):
        acc = matching_accuracy(perm, rep_a, rep_b, truth)
        assert acc.support == 1
        assert acc.correct == int(perm[0] == 0)


def test_folded_matching_is_right_at_small_drift_and_composition_decays():
    small = WorldConfig(
        n_layers=5, d_model=48, n_features=120, l0=4.0, drift=0.1, p_die=0.0, p_split=0.0
    )
    w = make_world(small, seed=5)
    report = ground_truth_report(
        oracle_saes(w), w, variants=("vanilla", "folded_both", "folded_decoder")
    )
    assert all(r == 1.0 for r in report.recovery.values())
    assert min(a.accuracy for a in report.accuracy["folded_decoder"].values()) > 0.95
    assert max(a.accuracy for a in report.accuracy["vanilla"].values()) < 0.1
    # with drift, composition is never above the exact LAP and falls with distance. (At drift
    # ≥ 0.6 the order flips from distance 3 on: the exact LAP between far layers fails first.)
    drifting = WorldConfig(n_layers=5, d_model=48, n_features=120, l0=4.0, drift=0.3)
    w = make_world(drifting, seed=6)
    report = ground_truth_report(
        oracle_saes(w), w, variants=("folded_decoder",), composition_variant="folded_decoder"
    )
    comp = [report.composition[k]["composed"].accuracy for k in sorted(report.composition)]
    exact = [report.composition[k]["exact"].accuracy for k in sorted(report.composition)]
    assert all(c <= e + 1e-9 for c, e in zip(comp, exact, strict=True))
    assert comp == sorted(comp, reverse=True) and comp[-1] < comp[0]


def test_variant_names():
    assert parse_variant("folded_both") == ("both", True)
    assert parse_variant("unfolded_encoder") == ("encoder", False)
    assert parse_variant("vanilla") is None
    with pytest.raises(ValueError, match="folded_both"):
        parse_variant("folded_bth")


def test_duplicates_cap_what_a_bijection_can_get():
    """Two latents of A represent true feature 0, one latent of B its successor: one of the two
    can be right, so the ceiling is 1/2 and no permutation scores above it."""
    rep_a, rep_b = torch.tensor([0, 0, 1]), torch.tensor([3, 4, -1])
    truth = [{3}, {4}]
    accs = [matching_accuracy(p, rep_a, rep_b, truth) for p in ([0, 2, 1], [2, 0, 1], [0, 1, 2])]
    assert all(a.support == 3 and a.ceiling == pytest.approx(2 / 3) for a in accs)
    assert max(a.accuracy for a in accs) == pytest.approx(2 / 3)


def test_folding_sweep_summary_and_plot(tmp_path):
    """scripts/folding_sweep.py's CSV rows -> per-cell means, spread and verdicts, and a figure."""
    import csv

    import matplotlib.pyplot as plt

    from saematch.planted.sweep_summary import load_rows, markdown_table, plot_sweep, summarise

    rows = []
    for seed in range(3):
        for d, s, g in [(0.2, 0.1, 1.2), (1.0, 0.1, 1.2), (0.2, 0.3, 1.2), (0.2, 0.1, 1.5),
                        (1.0, 0.3, 1.5)]:  # fmt: skip
            for sae in ("oracle_scale", "published"):
                gain = 0.1 * d + 0.001 * seed if sae == "oracle_scale" else 0.002 * (seed - 1)
                rows.append({"size": "test", "drift": d, "growth_spread": s, "growth": g,
                             "seed": seed, "sae": sae, "mode": "decoder", "folded": 0.8 + gain,
                             "unfolded": 0.8, "diff": gain, "ceiling": 0.95})  # fmt: skip
    path = tmp_path / "sweep.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = summarise(load_rows(path))
    assert len(summary) == 10 and all(s["n"] == 3 for s in summary)
    hi = next(s for s in summary if s["sae"] == "oracle_scale" and s["drift"] == 1.0
              and s["growth"] == 1.2)  # fmt: skip
    assert hi["diff"] == pytest.approx(0.101) and hi["diff_min"] == pytest.approx(0.1)
    assert hi["verdict"] == "helps"
    assert {s["verdict"] for s in summary if s["sae"] == "published"} == {"no clear effect"}
    table = markdown_table(summary, "test", "oracle_scale")
    assert table.count("\n") == 6 and "**helps**" in table
    fig = plot_sweep(rows)
    fig.savefig(tmp_path / "sweep.png")
    plt.close(fig)
