"""Bad input fails early (dry_run too) and names the culprit and the fix (issue 13)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from saematch.data.sources import read_local_texts
from saematch.sae import JumpReLUSAE
from saematch_experiments.harness.cli import run_experiment
from saematch_experiments.harness.config_location import CONFIG_PACKAGE
from saematch_experiments.harness.schema import register_schemas


def _compose(overrides):
    register_schemas()
    # these checks are about the zoo and LM experiments; the default experiment is ground_truth
    if not any(o.startswith("experiment=") for o in overrides):
        overrides = ["experiment=layer_pruning", *overrides]
    with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
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
        # what a real run rejects, rejected by the dry run too (each passed it before)
        (["saes=planted", "saes.layers=[0,99]"], r"saes.layers=\[0, 99\].*layers 0..5"),
        (["saes=planted", "saes.size=huge"], r"saes \(planted\): unknown planted size"),
        (["matching.max_memory=abc"], r"matching.max_memory='abc' is not a memory size"),
        (["matching.top_k=-1"], r"matching.top_k=-1: must be a whole number ≥ 0"),
        (
            ["descriptions=neuronpedia_export", "descriptions.root=/nonexistent/np"],
            r"descriptions.root='/nonexistent/np': no such folder",
        ),
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
    from saematch_experiments.harness.context import Context

    cfg = _compose([*overrides, "dry_run=true", f"paths.output_root={tmp_path}"])
    run_experiment(cfg)  # passes the checks
    assert Context(cfg, tmp_path).solver.key() == want


def test_dry_run_rejects_a_binary_txt_in_the_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("a normal document\n")
    bad = _binary(tmp_path / "b.txt")
    cfg = _compose(["data=local_text", f"data.path={tmp_path}", "dry_run=true"])
    with pytest.raises(ValueError, match=rf"{bad}.*binary \(NUL byte at offset 10\)"):
        run_experiment(cfg)


def test_dry_run_rejects_a_corpus_file_the_reader_cannot_read(tmp_path):
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("text\nhello\n")
    cfg = _compose(["data=local_text", f"data.path={corpus}", "dry_run=true"])
    with pytest.raises(ValueError, match=r"corpus.csv is not a .jsonl/.jsonl.gz/.txt file"):
        run_experiment(cfg)


def test_dry_run_calls_no_target_it_does_not_own(tmp_path):
    """matching.solver's `_target_` was instantiated to check it: any callable, with any
    arguments (here os.makedirs would have made a folder)."""
    made = tmp_path / "made"
    overrides = [
        "matching/solver=lapjv",
        "matching.solver._target_=os.makedirs",
        f"+matching.solver.name={made}",
    ]
    cfg = _compose([*overrides, "dry_run=true", f"paths.output_root={tmp_path / 'out'}"])
    with pytest.raises(ValueError, match=r"_target_=os.makedirs is not a solver"):
        run_experiment(cfg)
    assert not made.exists()


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
    from saematch.sources import SAESet
    from saematch_experiments.harness import sae_sets
    from saematch_experiments.harness.context import Context

    seen = {}

    def my_set(cache_dir, seed, width: int = 8, sparsity: str | None = None) -> SAESet:
        seen.update(cache_dir=cache_dir, seed=seed, width=width)
        return SAESet.from_ids("mine", "local", str(tmp_path), {L: f"l{L}" for L in range(4)})

    monkeypatch.setattr(sae_sets, "my_set", my_set, raising=False)
    over = [
        "saes._target_=saematch_experiments.harness.sae_sets.my_set",
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
