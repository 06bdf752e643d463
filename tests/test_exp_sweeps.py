"""sparsity_sweep (Fig. 14-15) and quantile_ablation (App. B, Fig. 16-17) on the test zoo."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from experiment_helpers import compose_cfg, context, run

from saematch.pruning import pruning_sweep, sae_match_replacement
from saematch_experiments import quantile_ablation, sparsity_sweep
from saematch_experiments.support.l0_matched import l0_matched_choice, log_variation


def brute_force(l0, anchor, weight):
    """min over every path of the l0_matched_choice objective (reference)."""
    best = (math.inf, None)
    for ks in itertools.product(*(range(len(r)) for r in l0)):
        v = [math.log(l0[t][k]) for t, k in enumerate(ks)]
        j = sum(abs(a - b) for a, b in itertools.pairwise(v))
        j += weight * sum(abs(x - math.log(a)) for x, a in zip(v, anchor, strict=True))
        best = min(best, (j, ks))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_l0_matched_choice_is_the_exact_optimum(seed):
    rng = np.random.default_rng(seed)
    l0 = [np.sort(rng.uniform(5, 400, size=rng.integers(1, 5))).tolist() for _ in range(6)]
    anchor = rng.uniform(20, 200, size=6).tolist()
    choice, objective = l0_matched_choice(l0, anchor, weight=0.1 * seed)
    ref, ref_choice = brute_force(l0, anchor, 0.1 * seed)
    assert objective == pytest.approx(ref, abs=1e-9)
    v = [math.log(l0[t][k]) for t, k in enumerate(choice)]
    j = sum(abs(a - b) for a, b in itertools.pairwise(v))
    j += 0.1 * seed * sum(abs(x - math.log(a)) for x, a in zip(v, anchor, strict=True))
    assert j == pytest.approx(ref, abs=1e-9)


def test_l0_matched_choice_removes_a_bump_and_keeps_the_level():
    # Gemma Scope layers 1-4: the canonical set jumps 102 -> 141 -> 59 -> 124
    l0 = [[10, 20, 40, 102, 250], [13, 24, 53, 141, 304], [14, 28, 59, 142, 315],
          [17, 31, 60, 124, 281]]  # fmt: skip
    default = [102, 141, 59, 124]
    choice, _ = l0_matched_choice(l0, default, weight=0.1)
    picked = [l0[t][k] for t, k in enumerate(choice)]
    assert log_variation(picked) < log_variation(default)
    assert all(20 < x < 150 for x in picked), picked  # stays near the default level


def test_quantile_options_are_checked():
    with pytest.raises(ValueError, match="quantiles"):
        quantile_ablation.check_quantiles([0.5, 1.5])
    with pytest.raises(ValueError, match="quantiles"):
        quantile_ablation.check_quantiles([0.5, 0.5])


def test_quantile_ablation_ends_at_sae_match(test_zoo, tmp_path):
    qs = [0.0, 0.3, 1.0]
    over = [f"experiment.quantiles={qs}", "experiment.pairs=[0,2]"]
    cfg = compose_cfg("quantile_ablation", over, test_zoo, tmp_path)
    res = run(cfg)
    assert sorted(res["layers"]) == ["0", "2"]
    ctx = context(cfg)
    saes, ms = ctx.saes, ctx.matchings(fold=True)
    by = dict(saes)  # decoded in raw units (docs/method.md §5), as layer_pruning's SAE Match
    perms = {t: m.perm for t, m in ms.items()}
    reps = {  # the definitions written out directly
        "sae_match": sae_match_replacement(by, perms),
        "previous_decoder": lambda t, r: by[t](r[t]) - by[t].b_dec + by[t + 1].b_dec,
    }
    b = ctx.batch
    rows = pruning_sweep(ctx.lm, reps, b.input_ids, b.metric_mask,
                         attention_mask=b.attention_mask, layers=[0, 2])  # fmt: skip
    for row in rows:
        m = ms[row["layer"]]
        got = res["layers"][str(row["layer"])]["quantiles"]
        for q, ref in (("1", "sae_match"), ("0", "previous_decoder")):
            for k in ("delta_loss", "explained_variance"):
                assert got[q][k] == pytest.approx(row["methods"][ref][k], abs=2e-6), (q, k)
        width = len(m.pair_mse)
        for q in qs:
            sel = got[f"{q:g}"]
            assert sel["n_below"] == math.floor(q * width)  # exactly the q-fraction
            if 0 < q < 1:  # every selected pair has a smaller MSE than every other pair
                assert sel["mse_max_below"] <= sel["mse_min_above"]
                assert sel["mse_max_below"] == np.sort(m.pair_mse)[sel["n_below"] - 1]


def test_quantile_ablation_folded_decode_agrees_only_at_q0(test_zoo, tmp_path):
    over = ["experiment.quantiles=[0.0,1.0]", "experiment.pairs=[1]"]
    raw_over = [*over, "experiment.folded_decode=false"]
    raw = run(compose_cfg("quantile_ablation", raw_over, test_zoo, tmp_path / "a"))
    over.append("experiment.folded_decode=true")
    fold = run(compose_cfg("quantile_ablation", over, test_zoo, tmp_path / "b"))
    a, b = raw["layers"]["1"]["quantiles"], fold["layers"]["1"]["quantiles"]
    assert a["0"]["explained_variance"] == pytest.approx(b["0"]["explained_variance"], abs=1e-6)
    assert a["1"]["explained_variance"] != pytest.approx(b["1"]["explained_variance"], abs=1e-4)


def test_sparsity_sweep(test_zoo, tmp_path):
    cfg = compose_cfg("sparsity_sweep", [], test_zoo, tmp_path)
    res = run(cfg)
    t, levels = res["pair"], test_zoo.sparsities
    assert t == (test_zoo.n_layers - 2) // 2
    # l0 is measured on the batch's metric tokens
    ctx = context(cfg)
    b = ctx.batch
    x = ctx.lm.resid_post(b.input_ids, b.attention_mask, layers=[t])[0][b.metric_mask]
    for c in res["candidates"][str(t)]:
        with torch.no_grad():
            l0 = (test_zoo.load_sae(t, c["sae"]).encode(x) > 0).sum(-1).double().mean()
        assert c["l0"] == pytest.approx(float(l0), rel=1e-9)
    # the diagonal: one SAE Match row per level, the same level at t and t+1
    match_rows = [r for r in res["sweep"] if r["method"] == "sae_match"]
    assert [(r["sae_t"], r["sae_t1"]) for r in match_rows] == [(s, s) for s in levels]
    assert {r["method"] for r in res["sweep"]} == {
        "sae_match", "layer_drop", "encdec_current", "encdec_previous"}  # fmt: skip
    # the default-sparsity row of the sweep is the default set's pruning of the same pair
    dflt = next(r for r in match_rows if r["sae_t"] == test_zoo.default_sparsity)
    same_pair = res["layers"][str(t)]["default"]
    for k in ("delta_loss", "explained_variance"):
        assert dflt[k] == pytest.approx(same_pair[k], abs=1e-9)
    # Fig. 15: the l0-matched profile is no bumpier than the default one (a candidate path)
    lm = res["l0_matched"]
    assert lm["log_variation"]["l0_matched"] <= lm["log_variation"]["default"] + 1e-12
    assert res["layers"]["0"]["sae"]["default"] == test_zoo.default_sparsity
    assert set(res["layers"]) == {str(L) for L in range(test_zoo.n_layers)}


def test_sparsity_sweep_all_combos(test_zoo, tmp_path):
    over = ["experiment.combos=all", "experiment.l0_matched=false", "experiment.baselines=false",
            "experiment.pair=0"]  # fmt: skip
    res = run(compose_cfg("sparsity_sweep", over, test_zoo, tmp_path))
    assert res["pair"] == 0 and sorted(res["candidates"]) == ["0", "1"]
    pairs = [(r["sae_t"], r["sae_t1"]) for r in res["sweep"]]
    assert sorted(pairs) == sorted(itertools.product(test_zoo.sparsities, repeat=2))
    assert all(r["method"] == "sae_match" for r in res["sweep"])


@pytest.mark.parametrize("kind", ["gemma_scope_paper", "gemma_scope_canonical"])
def test_gemma_scope_candidates_are_every_published_l0(kind):
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from saematch.sources.sets import GEMMA_SCOPE_PUBLISHED_L0

    target = f"saematch.sources.sets.{kind}_set"
    saes = {"_target_": target, "repo_id": "/mirror" if kind == "gemma_scope_paper" else "x"}
    cfg = OmegaConf.create({"saes": saes, "model": {"device": "cpu"}})
    cands = sparsity_sweep.sae_candidates(SimpleNamespace(cfg=cfg), 20)  # nothing is loaded
    assert [c.stored_l0 for c in cands] == list(GEMMA_SCOPE_PUBLISHED_L0[20])
    assert [c.name for c in cands][2] == "layer_20/width_16k/average_l0_71"
    repo = cands[0].load.func.__self__.repo_id  # the paper set's repo (or mirror) has them all
    assert repo == ("/mirror" if kind == "gemma_scope_paper" else "google/gemma-scope-2b-pt-res")
