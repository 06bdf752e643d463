"""Comparing two SAEs (saematch.compare): rectangular certificate, shared / families, match
file round trip, every source kind, the d_model error, the experiment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import random_sae
from scipy.optimize import linear_sum_assignment

from saematch import load_matching, save_match_file
from saematch.compare import check_match_rect, compare, families, match_rect, shared_features
from saematch.compare.cosine import cosine_matching
from saematch.compare.refs import load_pair, load_reference, parse_reference
from saematch.matchfile import FORMAT_VERSION, MatchFileError
from saematch.matchfile_checks import SIDECAR_HASH, sidecar_digest
from saematch.matching.cost import augmented_features
from saematch.sae import JumpReLUSAE
from saematch.sources import save_sae


def scipy_rect_cost(a, b, mode="both", fold=True) -> float:
    """The rectangular optimum by scipy on the float64 cost of the same float32 features."""
    xa = augmented_features(a, mode, "a", np.float32, fold=fold).astype(np.float64)
    xb = augmented_features(b, mode, "b", np.float32, fold=fold).astype(np.float64)
    C = xa @ xb.T
    r, c = linear_sum_assignment(C)
    return float(C[r, c].sum())


@pytest.mark.parametrize(
    "na,nb,solver",
    [(30, 70, "auto"), (70, 30, "auto"), (200, 520, "auto"), (520, 200, "lapjv"), (40, 90, "scipy"),
     (48, 48, "auto"), (20, 400, "auto"), (400, 20, "lapjv"), (60, 900, "scipy")],
)  # fmt: skip
def test_rectangular_matching_is_optimal_and_certified(na, nb, solver):
    a, b = random_sae(12, na, seed=na), random_sae(12, nb, seed=nb + 1)
    m = match_rect(a, b, solver=solver)
    n = min(na, nb)
    assert (m.perm >= 0).sum() == n and m.perm.shape == (na,)
    matched = m.perm[m.perm >= 0]
    assert len(np.unique(matched)) == n and matched.max() < nb
    ref = scipy_rect_cost(a, b)
    assert m.total_cost == pytest.approx(ref, rel=1e-6, abs=1e-6)
    cert = check_match_rect(a, b, m)
    assert cert.ok, cert
    assert cert.gap_bound <= 1e-6 * abs(ref) + n * m.info["tol"] * 2
    if max(na, nb) >= 10 * n:  # few candidates: the wide side's candidate set, not padding
        assert m.info["route"] == "reduced-columns" and m.info["columns"] < max(na, nb) / 2


def test_reduced_columns_grow_until_the_duals_cover_every_wide_feature():
    """One candidate per row misses partners: the check outside the candidate set adds them
    (info["grown"]), and the result is scipy's optimum with the certificate over every pair."""
    import saematch.compare.rect as rect
    from saematch.planted.synthetic import synthetic_pair

    A, b, _ = synthetic_pair(32, 600, 0.2, 0.5, 0)  # B: a noisy permuted copy of A
    n = 25
    a = JumpReLUSAE(W_enc=A.W_enc[:, :n], b_enc=A.b_enc[:n], W_dec=A.W_dec[:n], b_dec=A.b_dec,
                    threshold=A.threshold[:n])  # fmt: skip
    old = rect.CANDIDATES
    try:
        rect.CANDIDATES = 1
        m = match_rect(a, b)
    finally:
        rect.CANDIDATES = old
    assert m.info["route"] == "reduced-columns" and m.info["grown"][0] > 0
    assert m.info["grown"][-1] == 0 and m.info["columns"] < 300
    assert m.total_cost == pytest.approx(scipy_rect_cost(a, b), rel=1e-6, abs=1e-6)
    assert check_match_rect(a, b, m).ok
    w = match_rect(b, a)  # the wide side first: the same route, the same optimum
    assert w.info["route"] == "reduced-columns" and check_match_rect(b, a, w).ok
    assert w.total_cost == pytest.approx(m.total_cost, rel=1e-6)


def test_outside_violators_match_the_float64_definition_at_near_ties():
    """The float32 screen with its rounding margin misses no violator: duals set a hair above
    (and below) each row's cheapest outside cost give violators only the float64 dot sees."""
    from saematch.compare.rect import outside_violators

    a, b = random_sae(24, 50, seed=5), random_sae(24, 700, seed=6)
    xn = augmented_features(a, "both", "a", np.float32, fold=True)
    xw = augmented_features(b, "both", "b", np.float32, fold=True)
    inside = np.zeros(700, dtype=bool)
    inside[::7] = True
    C = xn.astype(np.float64) @ xw.astype(np.float64).T
    C[:, inside] = np.inf
    rng = np.random.default_rng(0)
    u = C.min(1) + rng.choice([-1e-12, 1e-12, 1e-3], size=50) * np.abs(C.min(1))
    for tol in (0.0, 1e-14):
        want = np.flatnonzero((C - u[:, None] < -tol).any(0))
        got = outside_violators(xn, xw, u, inside, tol, block=16, col_block=64)
        assert 0 < len(want) < 700 - inside.sum()
        np.testing.assert_array_equal(got, want)


def test_rectangular_certificate_rejects_a_worse_matching():
    a, b = random_sae(12, 40, seed=1), random_sae(12, 100, seed=2)
    m = match_rect(a, b)
    bad = m.perm.copy()
    bad[[0, 1]] = bad[[1, 0]]  # a feasible but (almost surely) worse matching, same duals
    m.perm = bad
    assert not check_match_rect(a, b, m).ok


def test_zero_cost_dummies_do_not_bias_free_columns():
    # plain zero padding would cost ‖z'_j‖²: the free wide features would be the low-norm ones.
    # With B = A plus 40 extra features of tiny norm, the exact answer pairs A with A's copy.
    a = random_sae(12, 30, seed=3)
    extra = random_sae(12, 40, seed=4)
    scale = 1e-3
    b = JumpReLUSAE(
        W_enc=torch.cat([a.W_enc, extra.W_enc * scale], 1),
        b_enc=torch.cat([a.b_enc, extra.b_enc]),
        W_dec=torch.cat([a.W_dec, extra.W_dec * scale], 0),
        b_dec=a.b_dec,
        threshold=torch.cat([a.threshold, extra.threshold]),
    )
    m = match_rect(a, b)
    assert (m.perm == np.arange(30)).all()


@pytest.mark.parametrize("narrow", ["a", "b"])
def test_the_stored_guess_reads_clear_pairs_among_real_features_and_keeps_its_budget(narrow):
    """A padded square (rect_features) of a narrow SAE against a wide one: every dummy costs 0,
    so it is every column's cheapest row and the stored top-2 finds no clear pair; the whole
    problem landed in the dense rest (16,384 × 65,536 mode both passed its budget by that).
    Read among the real features the rest is the dummies and the real rows without a clear
    partner. Both answers are scipy's optimum of the same float32 costs. A budget that cannot
    hold the rest is declined before the rest is built (the dispatcher then runs the streamed
    solver, which says what the budget lacks)."""
    from saematch.compare.rect import layout_of, rect_features
    from saematch.matching.certificate import check_certificate
    from saematch.matching.solvers import assign
    from saematch.matching.solvers.stored import quantised_certified_assign
    from saematch.planted.synthetic import synthetic_pair

    A, B, _ = synthetic_pair(32, 3000, 0.2, 0.3, 0)
    n_real, mode = 2000, "both"
    ya = augmented_features(A, mode, "a", np.float32)[:n_real]
    yb = augmented_features(B, mode, "b", np.float32)
    if narrow == "b":
        ya, yb = (
            augmented_features(B, mode, "a", np.float32),
            augmented_features(A, mode, "b", np.float32)[:n_real],
        )
    xa, xb, _ = rect_features(ya, yb)
    n, pad = len(xa), 3000 - n_real
    layout = layout_of(32, mode)
    layout["exact_tail"] += 1
    pads = {"pad_rows": pad} if narrow == "a" else {"pad_cols": pad}
    C = xa.astype(np.float64) @ xb.T.astype(np.float64)
    r, c = linear_sum_assignment(C)
    best = float(C[r, c].sum())

    blind = quantised_certified_assign(xa, xb, **layout)  # the dummies counted: no clear pair
    seen = quantised_certified_assign(xa, xb, **layout, **pads)
    assert blind.info["tries"][0]["dense_rest"] == n
    assert seen.info["tries"][0]["dense_rest"] < pad + n_real // 2
    for res in (blind, seen):
        assert float(C[np.arange(n), res.perm].sum()) == pytest.approx(best, rel=1e-9, abs=1e-9)
        # C's float64 GEMM rounds differently from the solver's pair-by-pair dots: + 1e-12
        cert = check_certificate(lambda sl: C[sl], res.perm, res.u, res.v, res.tol + 1e-12)
        assert cert.ok, cert

    rest = seen.info["tries"][0]["dense_rest"]
    small = 2 * n * n + 256 * n + 4 * rest * rest  # the estimate fits, its rest does not
    assert quantised_certified_assign(xa, xb, **layout, **pads, work_bytes=small) is None
    # the dispatcher's streamed solver has no room either here: a MemoryError, not an overshoot
    with pytest.raises(MemoryError, match="budget"):
        assign(xa, xb, "auto", work_bytes=small, dense_below=0, **layout, **pads)


def test_different_d_model_is_a_clear_error():
    with pytest.raises(ValueError, match="d_model 16 .* vs 8"):
        compare(random_sae(16, 20), random_sae(8, 20))


def test_identical_dictionaries_are_all_shared_and_random_ones_mostly_not():
    a = random_sae(16, 64, seed=5)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    c = compare(a, a.permute_features(perm))
    s = c.summary()
    assert s["pwmcc_decoder"] == pytest.approx(1.0) and s["shared_pairs"] == 64
    assert s["unshared_a"] == s["unshared_b"] == 0 and s["mse_certified"]
    # permute_features: new feature perm[i] is old feature i
    want = perm.numpy()
    assert (c.matching.perm == want).all() and (c.matching.shared_perm == want).all()
    r = compare(random_sae(16, 64, seed=6), random_sae(16, 96, seed=7)).summary()
    assert r["shared_share"] < 0.3 and r["unshared_b"] >= 32
    assert r["pwmcc_decoder"] < 0.8


def split_pair(seed=0, n=48, d=24, dup=12, noise=0.05):
    """A (n features) and B = A's features (shuffled) + `dup` near-copies of A's first ones."""
    a = random_sae(d, n, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    idx = torch.arange(dup)
    eps_dec = noise * torch.randn(dup, d, generator=g) / d**0.5
    eps_enc = noise * torch.randn(d, dup, generator=g) / d**0.5
    W_dec = torch.cat([a.W_dec, a.W_dec[idx] + eps_dec])
    W_enc = torch.cat([a.W_enc, a.W_enc[:, idx] + eps_enc], 1)
    b = JumpReLUSAE(
        W_enc=W_enc,
        b_enc=torch.cat([a.b_enc, a.b_enc[idx]]),
        W_dec=W_dec,
        b_dec=a.b_dec,
        threshold=torch.cat([a.threshold, a.threshold[idx]]),
    )
    return a, b


def test_families_find_the_near_copies():
    a, b = split_pair()
    c = compare(a, b)
    fam = c.families
    assert fam.wide == "b"
    # every original and every copy joins the family of its source feature
    assert (fam.parent[:48] == np.arange(48)).all()
    assert (fam.parent[48:] == np.arange(12)).all()
    assert c.summary()["family_splits"] == 12
    assert np.isfinite(fam.confidence[fam.parent >= 0]).all()
    # narrow a = wide side reversed: the families live on a
    c2 = compare(b, a)
    assert c2.families.wide == "a" and (c2.families.parent[48:] == np.arange(12)).all()


def test_families_function_on_features():
    a, b = split_pair(seed=1)
    xa = augmented_features(a, "decoder", "a", np.float32, fold=True)
    xb = augmented_features(b, "decoder", "b", np.float32, fold=True)
    fam = families(xa, xb, kappa_star=2.0)  # nothing beats κ* > 1
    assert (fam.parent == -1).all()


@pytest.mark.parametrize("block", [7, 1024])
def test_families_match_their_definition_in_blocks(block):
    """parent = argmax_i κ_ij where κ beats κ*, confidence = the margin over the runner-up,
    against the dense float64 κ; block 7 puts block edges inside the wide side."""
    a, b = random_sae(12, 30, seed=11), random_sae(12, 75, seed=12)
    xa = augmented_features(a, "both", "a", np.float32, fold=True)
    xb = augmented_features(b, "both", "b", np.float32, fold=True)
    D = xa.shape[1] - 2
    C = xa.astype(np.float64) @ xb.astype(np.float64).T  # (30, 75): b is the wide side
    kap = 1.0 - C / (xa[:, D].astype(np.float64)[:, None] + xb[:, D + 1][None, :])
    order = np.argsort(-kap, axis=0)
    k1, k2 = kap[order[0], np.arange(75)], kap[order[1], np.arange(75)]
    kappa_star = float(np.median(k1))
    fam = families(xa, xb, kappa_star, block=block)
    keep = k1 > kappa_star
    assert fam.wide == "b" and 0 < keep.sum() < 75
    assert (fam.parent == np.where(keep, order[0], -1)).all()
    np.testing.assert_allclose(fam.kappa, k1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fam.confidence[keep], (k1 - k2)[keep], rtol=1e-4, atol=1e-6)


def test_pwmcc_dense_and_certified_routes_agree():
    a, b = random_sae(16, 50, seed=8), random_sae(16, 80, seed=9)
    dense = cosine_matching(a, b, "decoder")
    cert = cosine_matching(a, b, "decoder", dense_limit=0)
    assert dense.method == "dense |cos|" and cert.method == "certified signed cos"
    assert cert.cos.sum() <= np.abs(dense.cos).sum() + 1e-9  # |cos| optimum ≥ signed optimum
    # the signed optimum: compare with scipy on the signed cosine
    ua = a.W_dec / a.W_dec.norm(dim=1, keepdim=True)
    ub = b.W_dec / b.W_dec.norm(dim=1, keepdim=True)
    C = (ua.double() @ ub.double().T).numpy()
    r, k = linear_sum_assignment(-C)
    assert cert.cos.sum() == pytest.approx(C[r, k].sum(), abs=1e-6)


def test_shared_features_rectangular_never_pairs_padding():
    a, b = random_sae(16, 30, seed=10), random_sae(16, 90, seed=10)  # b's first 30 ≠ a's
    sh = shared_features(b, a)
    assert sh.matching.perm.shape == (90,) and sh.matching.perm.max() < 30


def test_match_file_round_trip_with_families(tmp_path):
    a, b = split_pair(seed=2)
    c = compare(a, b)
    path = save_match_file(c.matching, tmp_path / "cmp", a, b)
    meta = json.loads(path.read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["families"]["wide"] == "b"
    m = load_matching(tmp_path / "cmp", a, b)
    assert (m.perm == c.matching.perm).all()
    assert (m.shared_perm == c.matching.shared_perm).all()
    assert (m.family_parent == c.families.parent).all()
    np.testing.assert_array_equal(m.family_confidence, c.families.confidence)
    assert m.duals[0].shape == (a.width,) and m.duals[1].shape == (b.width,)
    assert m.info["families"]["wide"] == "b" and m.proven
    # readable with safetensors + json alone
    from safetensors.numpy import load_file

    arr = load_file(str(tmp_path / "cmp.safetensors"))
    assert arr["family_parent"].shape == (b.width,)
    # a plain matching has the same format, without the comparison's arrays
    from saematch.matching import match

    plain = save_match_file(match(a, a), tmp_path / "plain", a, a)
    assert json.loads(plain.read_text())["format_version"] == FORMAT_VERSION
    assert "families" not in json.loads(plain.read_text())


def test_match_file_rejects_bad_family_arrays(tmp_path):
    import hashlib

    from safetensors.numpy import load_file, save

    a, b = split_pair(seed=3)
    c = compare(a, b)
    save_match_file(c.matching, tmp_path / "cmp", a, b)
    arr = load_file(str(tmp_path / "cmp.safetensors"))
    arr["family_parent"][0] = a.width  # out of range for the narrow side
    blob = save(arr, metadata={"format": "saematch.match", "format_version": str(FORMAT_VERSION)})
    (tmp_path / "cmp.safetensors").write_bytes(blob)
    meta = json.loads((tmp_path / "cmp.json").read_text())
    meta["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
    meta[SIDECAR_HASH] = sidecar_digest(meta)  # re-hashed: only the range check can catch it
    (tmp_path / "cmp.json").write_text(json.dumps(meta))
    with pytest.raises(MatchFileError, match="family_parent"):
        load_matching(tmp_path / "cmp")


# -- sources: every kind of reference -------------------------------------------------------


def test_reference_parsing_errors():
    with pytest.raises(ValueError, match="unknown kind"):
        parse_reference("nosuch:thing")
    with pytest.raises(ValueError, match="needs layer"):
        parse_reference("planted:index=1")
    with pytest.raises(ValueError, match="repo"):
        parse_reference("gemma-scope:only")
    r = parse_reference("gemma-scope:google/gemma-scope-2b-pt-res/layer_20/width_16k/x")
    assert r.repo == "google/gemma-scope-2b-pt-res" and r.sae_id == "layer_20/width_16k/x"


def test_file_references(tmp_path):
    a, b = random_sae(16, 24, seed=11), random_sae(16, 40, seed=12)
    save_sae(a, tmp_path / "a")
    save_sae(b, tmp_path / "b")
    sa, sb = load_pair(f"file:{tmp_path / 'a'}", str(tmp_path / "b" / "sae.safetensors"))
    assert sa.fingerprint() == a.fingerprint() and sb.width == 40
    assert compare(sa, sb).summary()["width_b"] == 40


def test_gemma_and_llama_scope_local_references(tmp_path):
    from test_sources_gemma_scope import write_params
    from test_sources_llama_scope import FOLDER, write_folder

    sae = random_sae(16, 24, seed=13)
    write_params(tmp_path / "gs" / "layer_1/width_16k/x" / "params.npz", sae)
    write_folder(tmp_path / "ls")
    ga = load_reference(f"gemma-scope:{tmp_path / 'gs'}:layer_1/width_16k/x")
    lb = load_reference(f"llama-scope:{tmp_path / 'ls'}:{FOLDER}")
    assert torch.allclose(ga.W_dec, sae.W_dec) and ga.meta["reference"].startswith("gemma")
    s = compare(ga, lb).summary()  # d 16, widths 24 vs 32
    assert (s["width_a"], s["width_b"]) == (24, 32)


def test_saelens_reference_needs_sae_lens():
    try:
        import sae_lens  # noqa: F401
    except ImportError:
        with pytest.raises((ImportError, ModuleNotFoundError, RuntimeError), match="sae"):
            load_reference("saelens:some-release:some/id")
    else:
        pytest.skip("sae-lens installed: loading a release would go online")


def test_planted_and_zoo_references(test_planted, test_zoo):
    cache = test_planted.root.parent.parent
    a, b = load_pair("planted:layer=1,size=test", "planted:layer=2,size=test", cache)
    assert a.width == b.width == test_planted.width
    assert a.fingerprint() == test_planted.load_sae(1).fingerprint()
    zc = test_zoo.root.parent.parent
    z0, z1 = load_pair("zoo:layer=1,size=test", "zoo:layer=1,size=test,index=1", zc)
    assert z0.fingerprint() == test_zoo.load_sae(1).fingerprint()
    assert z1.fingerprint() != z0.fingerprint()
    s = compare(z0, z1).summary()
    assert 0 < s["pwmcc_decoder"] <= 1 and s["shared_pairs"] > 0
    with pytest.raises(ValueError, match="second seed"):
        load_reference("zoo:layer=1,size=test,index=2", zc)


# -- the experiment ----------------------------------------------------------------------------


def test_experiment_compare_writes_a_match_file_with_families(test_zoo, tmp_path):
    from experiment_helpers import compose_cfg, run, run_dir_of

    a, b = split_pair(seed=4)
    save_sae(a, tmp_path / "a")
    save_sae(b, tmp_path / "b")
    cfg = compose_cfg(
        "compare",
        ["saes=tiny", f"experiment.a=file:{tmp_path / 'a'}", f"experiment.b={tmp_path / 'b'}"],
        test_zoo,
        tmp_path,
    )
    summary = run(cfg)
    assert summary["width_a"] == 48 and summary["width_b"] == 60
    assert summary["family_splits"] == 12 and summary["mse_certified"]
    assert summary["unfolded_mse_certified"] and summary["unfolded_shared_pairs"] > 0
    rd = run_dir_of(cfg)
    m = load_matching(rd / summary["match_file"], a, b)
    assert m.family_parent.shape == (60,) and (m.family_parent[48:] == np.arange(12)).all()
    assert (rd / "compare_features.csv").exists() and (rd / "compare_cosines.png").exists()
    page = (rd / summary["page"]).read_text()  # the side-by-side page and its data files
    assert '"family_splits": 12' in page and (rd / "compare_data" / "pairs.js").exists()
    bad = compose_cfg("compare", ["saes=tiny", "experiment.fold=maybe"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="fold"):
        run(bad)


def test_equal_widths_give_matchs_bijection_and_a_small_budget_is_a_memory_error():
    from saematch.matching import match

    a, b = random_sae(16, 80, seed=20), random_sae(16, 80, seed=21)
    m, ref = match_rect(a, b), match(a, b)
    assert m.info["route"] == "square" and m.total_cost == pytest.approx(ref.total_cost)
    assert check_match_rect(a, b, m).ok
    with pytest.raises(MemoryError, match="max_memory"):
        match_rect(a, random_sae(16, 200, seed=22), max_memory=1000)


def test_two_planted_seeds_share_one_set(monkeypatch):
    from types import SimpleNamespace

    import saematch.compare.refs as refs

    seen = []

    def fake(r, cache):
        seen.append(r.options)
        return SimpleNamespace(meta={})

    monkeypatch.setattr(refs, "_planted", fake)
    refs.load_pair("planted:layer=3", "planted:layer=3,index=1")
    assert [o["n_seeds"] for o in seen] == [2, 2]
    seen.clear()
    refs.load_pair("planted:layer=3", "planted:layer=3,width=768")  # two sets, one seed each
    assert all("n_seeds" not in o for o in seen)


@pytest.mark.parametrize("b_ref", ["index=1", "width=384"], ids=["two_seeds", "two_widths"])
def test_experiment_compare_two_planted_saes_of_one_layer(b_ref, test_planted, tmp_path, capsys):
    """The issue's done-when: two planted SAEs of one layer (two seeds; two widths), offline
    (the planted world is generated, no model or hub), prints PW-MCC, the shared share and the
    unshared counts, and writes a match file load_matching reads back with its families."""
    import re

    from experiment_helpers import compose_cfg

    from saematch_experiments.harness.cli import run_experiment

    cache = test_planted.root.parent.parent
    refs = ("planted:layer=1,size=test", f"planted:layer=1,size=test,{b_ref}")
    cfg = compose_cfg(
        "compare",
        [f'experiment.a="{refs[0]}"', f'experiment.b="{refs[1]}"', "experiment.unfolded=false",
         f"paths.cache_dir={cache}"],
        None,
        tmp_path,
    )  # fmt: skip
    summary = run_experiment(cfg, run_dir=tmp_path / "run", console=True)  # as the command does
    out = capsys.readouterr().out
    assert re.search(r"decoder +PW-MCC 0\.\d{4}", out) and "shared (rotation null" in out
    assert re.search(r"unshared: a \d+, b \d+", out)
    wide = 384 if b_ref.startswith("width") else test_planted.width
    assert summary["width_a"] == test_planted.width and summary["width_b"] == wide
    assert summary["mse_certified"] and 0 < summary["shared_share"] <= 1
    a, b = load_pair(*refs, cache)
    m = load_matching(tmp_path / "run" / summary["match_file"], a, b)
    assert (
        m.family_parent.shape == (wide,)
        and (m.family_parent >= 0).sum() == summary["family_members"]
    )
    assert (m.shared_perm >= 0).sum() == summary["shared_pairs"]


def test_every_stage_of_compare_is_in_the_memory_plan_and_fails_early():
    """A budget below any stage's own arrays is a MemoryError naming that stage, raised before
    the matching starts; the families' block shrinks to the budget; the plan's largest stage
    plus a little runs."""
    from saematch.compare.compare import memory_plan
    from saematch.compare.families import ROW_BYTES, family_block

    a, b = split_pair(seed=5)
    plan = memory_plan(a, b, "both")
    assert set(plan) == {"matching", "shared", "families", "cosine_decoder", "cosine_encoder",
                         "pair_cosines"}  # fmt: skip
    worst = max(plan, key=plan.get)
    with pytest.raises(MemoryError, match=f"{worst} needs .* beyond the two SAEs"):
        compare(a, b, max_memory=plan[worst])
    assert family_block(1000, 100 * ROW_BYTES * 1000) == 100
    assert family_block(1000, None) == 1024
    with pytest.raises(MemoryError, match="families need"):
        family_block(1000, 15 * ROW_BYTES * 1000)
    c = compare(a, b, max_memory=plan[worst] + 2_000_000)  # room for the solvers' work
    assert c.summary()["family_splits"] == 12
