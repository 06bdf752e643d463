"""Bad input fails early (dry_run too) and names the culprit and the fix (issue 13)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from experiments.cli import CONF_DIR, run_experiment
from experiments.schema import register_schemas
from saematch.data.sources import read_local_texts
from saematch.sae import JumpReLUSAE


def _compose(overrides):
    register_schemas()
    # these checks are about the zoo and LM experiments; the default experiment is ground_truth
    if not any(o.startswith("experiment=") for o in overrides):
        overrides = ["experiment=layer_pruning", *overrides]
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


def _binary(path: Path) -> Path:
    path.write_bytes(b"text then \x00\x01\x02 binary" * 10)
    return path


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["data.n_examples=-5"], r"data.n_examples=-5: must be ≥ 1"),
        (["data.seq_len=1"], r"data.seq_len=1"),
        (["model=hf"], r"model: .*LanguageModel.load needs name; set model.name=\.\.\."),
        (["data.source=webtext"], r"data.source='webtext': choose one of"),
        (["logger.mode=offlin"], r"logger.mode='offlin': choose one of"),
        (["data.n_examples=many"], r"data.n_examples='many'"),
        (["saes.layers=[0,99]"], r"saes.layers=\[0, 99\].*layers 0..5"),
        (["saes.layers=[0,2,4]"], r"saes.layers=\[0, 2, 4\]: write \[first, last\]"),
        (["saes.layers=[3,1]"], r"first > last"),
        (["data=local_text", "data.path=/nonexistent/corpus.txt"], r"data.path=.*no .* file"),
        (["+judge.thresholdz=[0.1]"], r"judge.thresholdz: .*LexicalJudge takes no argument"),
        (["judge=openai", "judge.max_concurrency=many"], r"judge.max_concurrency='many'"),
        (["+saes.sparsty=low"], r"saes.sparsty: .*zoo_set takes no argument"),
        (["descriptions=json"], r"descriptions: .*load_json_descriptions needs path"),
        (["judge._target_=saematch.judge.nope.Judge"], r"judge._target_=.*cannot import"),
        (
            ["matching.solver=scipi"],
            r"matching.solver='scipi': no such choice; .*auto, lapjv, scipy",
        ),
        (["matching.solver.k=0"], r"matching.solver: AutoSolver: k=0 must be a number ≥ 1"),
        (["+matching.solver.kk=3"], r"matching.solver.kk: .*AutoSolver takes no argument 'kk'"),
        (["matching/solver=lapjv", "+matching.solver.k=3"], r"LapjvSolver takes no argument 'k'"),
        (["matching.solver.margin=abc"], r"matching.solver.margin='abc'"),
    ],
)
def test_dry_run_rejects_bad_values_before_any_work(tmp_path, overrides, message):
    cfg = _compose([*overrides, "dry_run=true", f"paths.output_root={tmp_path}"])
    with pytest.raises(ValueError, match=message):
        run_experiment(cfg)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "overrides,want",
    [
        ([], "auto"),
        (["matching/solver=scipy"], "scipy"),
        (["matching.solver=scipy"], "scipy"),  # a value naming the file: the same solver
        (["matching.solver=lapjv"], "lapjv"),
        (["matching.solver.k=32", "matching.solver.margin=0.5"], "auto(k=32, margin=0.5)"),
    ],
)
def test_the_solver_is_built_from_its_config(tmp_path, overrides, want):
    from experiments.context import Context

    cfg = _compose([*overrides, "dry_run=true", f"paths.output_root={tmp_path}"])
    run_experiment(cfg)  # passes the checks
    assert Context(cfg, tmp_path).solver.key() == want


def test_dry_run_rejects_a_binary_txt_in_the_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("a normal document\n")
    bad = _binary(tmp_path / "b.txt")
    cfg = _compose(["data=local_text", f"data.path={tmp_path}", "dry_run=true"])
    with pytest.raises(ValueError, match=rf"{bad}.*binary \(NUL byte at offset 10\)"):
        run_experiment(cfg)


def test_corpus_reader_names_file_and_line(tmp_path):
    with pytest.raises(ValueError, match="binary"):
        list(read_local_texts(_binary(tmp_path / "x.txt")))
    f = tmp_path / "c.jsonl.gz"
    with gzip.open(f, "wt") as fh:
        fh.write('{"text": "fine"}\n{"text": "broken\n')
    with pytest.raises(ValueError, match=r"c.jsonl.gz:2: not a JSON line"):
        list(read_local_texts(f))


def _sae(theta: float, F: int = 8, d: int = 4) -> JumpReLUSAE:
    g = torch.Generator().manual_seed(0)
    th = torch.full((F,), 0.5)
    th[3] = theta
    return JumpReLUSAE(
        W_enc=0.1 * torch.randn(d, F, generator=g),
        b_enc=torch.zeros(F),
        W_dec=0.1 * torch.randn(F, d, generator=g),
        b_dec=torch.zeros(d),
        threshold=th,
        name="toy",
    )


def test_broken_sae_files_are_named(tmp_path):
    from saematch.sources import load_sae, save_sae

    folder = save_sae(_sae(0.3), tmp_path / "sae")
    weights = folder / "sae.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])  # truncated download
    with pytest.raises(ValueError, match=rf"{weights} is not a readable safetensors file"):
        load_sae(folder)
    folder = save_sae(_sae(0.3), tmp_path / "sae2")
    (folder / "sae.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"sae2/sae.json is not valid JSON"):
        load_sae(folder)


@pytest.mark.parametrize("theta", [1e-40, 1e30])
def test_extreme_thresholds_fail_before_matching(theta):
    _sae(0.3).fold()
    with pytest.raises(ValueError, match=r"threshold\[3\].*matching.fold=false"):
        _sae(theta).fold()
    with pytest.raises(ValueError, match=r"threshold\[3\]"):
        _sae(theta).check_foldable()


def test_an_sae_set_target_gets_the_contexts_extras(tmp_path, monkeypatch):
    """A new SAE set is a function and a YAML; cache_dir and seed come from the Context."""
    from experiments import sae_sets
    from experiments.context import Context
    from saematch.sources import SAESet

    seen = {}

    def my_set(cache_dir, seed, width: int = 8, sparsity: str | None = None) -> SAESet:
        seen.update(cache_dir=cache_dir, seed=seed, width=width)
        return SAESet.from_ids("mine", "local", str(tmp_path), {L: f"l{L}" for L in range(4)})

    monkeypatch.setattr(sae_sets, "my_set", my_set, raising=False)
    over = [
        "saes._target_=experiments.sae_sets.my_set",
        "+saes.width=16",
        f"paths.cache_dir={tmp_path}",
        "seed=3",
        "saes.layers=[1,2]",
    ]
    cfg = _compose([*over, "dry_run=true"])
    run_experiment(cfg)  # layers of such a set are checked when it is built
    assert sae_sets.build_sae_set(cfg, Context(cfg, tmp_path)).layers == (1, 2)
    assert seen == {"cache_dir": tmp_path, "seed": 3, "width": 16}
    with pytest.raises(ValueError, match="saes.widht: .*my_set takes no argument"):
        run_experiment(_compose([*over, "+saes.widht=1", "dry_run=true"]))


@pytest.mark.parametrize("theta", [1e-40, 1e30])
@pytest.mark.parametrize("unmatched", [None, "auto"])
def test_match_rejects_extreme_thresholds_at_entry(theta, unmatched):
    """The library's match() names the SAE and the fix; no overflow inside the solver."""
    from saematch.matching import match

    good, bad = _sae(0.3), _sae(theta)
    bad.name = "layer_7"
    for a, b, side in ((bad, good, "a"), (good, bad, "b")):
        with pytest.raises(ValueError, match=rf"SAE {side} \(layer_7\): .*threshold\[3\].*fold=f"):
            match(a, b, unmatched=unmatched)
    assert len(match(bad, good, fold=False).perm) == 8  # the raw weights still match


def test_match_rejects_nan_and_bad_shapes_at_entry():
    from saematch.matching import match

    a, b = _sae(0.3), _sae(0.4)
    a.W_dec[2, 1] = float("nan")  # changed in place after construction
    with pytest.raises(ValueError, match=r"SAE a \(toy\): W_dec has a non-finite value .*\(2, 1\)"):
        match(a, b)
    a = _sae(0.3)
    b.b_enc = torch.zeros(5)
    with pytest.raises(ValueError, match=r"SAE b \(toy\): b_enc has shape \(5,\) but W_enc"):
        match(a, b, fold=False)
    with pytest.raises(ValueError, match=r"widths differ: 8 \(toy\) vs 6"):
        match(a, _sae(0.3, F=6))
    with pytest.raises(ValueError, match=r"d_model 4 \(toy\) vs 5"):
        match(a, _sae(0.3, d=5))
    with pytest.raises(TypeError, match="b must be a JumpReLUSAE"):
        match(a, {"W_enc": a.W_enc})
