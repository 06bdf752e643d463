"""The built-in tiny zoo: loading, checksums, rebuild detection, determinism, descriptions."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from saematch.sources import load_sae
from saematch.zoo import Zoo, default_cache_dir, ensure_zoo, get_config, verify, zoo_dir
from saematch.zoo.describe import NEVER_ACTIVE
from saematch.zoo.manifest import MANIFEST, sha256_file
from saematch.zoo.progress import Progress
from saematch.zoo.threads import torch_threads
from saematch.zoo.train_sae import train_saes


def test_model_and_tokenizer_load(test_zoo):
    model = AutoModelForCausalLM.from_pretrained(test_zoo.model_dir)
    tok = AutoTokenizer.from_pretrained(test_zoo.model_dir)
    assert type(model).__name__ == "Gemma2ForCausalLM"
    assert model.config.num_hidden_layers == test_zoo.n_layers
    assert model.config.hidden_size == test_zoo.d_model
    assert model.config.sliding_window < test_zoo.manifest["config"]["seq_len"]
    ids = tok("def f(self):\n    return 1", return_tensors="pt").input_ids
    assert tok.bos_token == "<bos>" and tok.eos_token == "<eos>" and tok.pad_token == "<pad>"
    assert tok.decode(ids[0]) == "def f(self):\n    return 1"  # byte-level: lossless
    bos = torch.full((1, 1), tok.bos_token_id)
    with torch.no_grad():
        out = model(input_ids=torch.cat([bos, ids], 1), output_hidden_states=True)
    assert out.logits.shape[-1] == len(tok)
    assert len(out.hidden_states) == test_zoo.n_layers + 1


def test_every_sae_loads_with_positive_thresholds(test_zoo):
    assert len(test_zoo.sparsities) >= 3 and test_zoo.default_sparsity in test_zoo.sparsities
    assert test_zoo.width >= 8 * test_zoo.d_model
    for level in test_zoo.sparsities:
        saes = test_zoo.load_saes(level)
        assert len(saes) == test_zoo.n_layers
        for layer, sae in enumerate(saes):
            direct = load_sae(test_zoo.sae_path(layer, level))
            assert direct.fingerprint() == sae.fingerprint()
            assert (sae.d_model, sae.width) == (test_zoo.d_model, test_zoo.width)
            assert bool((sae.threshold > 0).all())
            sae.fold()  # foldable: θ > 0 everywhere
    assert (
        test_zoo.load_sae(0).fingerprint()
        == test_zoo.load_sae(0, test_zoo.default_sparsity).fingerprint()
    )
    with pytest.raises(ValueError, match="unknown sparsity"):
        test_zoo.sae_path(0, "l0_9999")
    with pytest.raises(ValueError, match="out of range"):
        test_zoo.sae_path(test_zoo.n_layers)


def test_saes_sit_on_resid_post(test_zoo):
    """SAE l reads model.model.layers[l]'s output = hidden_states[l + 1] (not the final norm)."""
    from saematch.zoo.activations import resid_post

    model = AutoModelForCausalLM.from_pretrained(test_zoo.model_dir)
    tok = AutoTokenizer.from_pretrained(test_zoo.model_dir)
    text = (
        "import os\n\ndef main(argv=None):\n    for name in os.listdir('.'):\n        print(name)\n"
    )
    bos = torch.tensor([[tok.bos_token_id]])
    ids = torch.cat([bos, tok(text, return_tensors="pt").input_ids], 1)
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    acts = resid_post(model, ids)  # (L, T - 1, d)
    for layer in range(test_zoo.n_layers - 1):  # hidden_states[-1] is after the final norm
        torch.testing.assert_close(acts[layer], hs[layer + 1][0, 1:])
    for layer in range(test_zoo.n_layers):
        x, sae = acts[layer], test_zoo.load_sae(layer)
        assert (sae(x) - x).pow(2).sum() < (sae.b_dec - x).pow(2).sum(), layer


def test_manifest_checksums_verify(test_zoo):
    assert verify(test_zoo.root, {"size": "test", "seed": 0}) == []
    files = test_zoo.manifest["files"]
    assert "model/model.safetensors" in files and "model/tokenizer.json" in files
    for level in test_zoo.sparsities:
        for layer in range(test_zoo.n_layers):
            assert f"saes/{level}/layer_{layer}/sae.safetensors" in files
    for rel, entry in files.items():
        assert sha256_file(test_zoo.root / rel) == entry["sha256"]
    m = test_zoo.manifest
    assert m["metrics"]["lm"]["heldout_ce"] < m["metrics"]["lm"]["unigram_entropy"]
    for level in test_zoo.sparsities:
        assert set(m["metrics"]["saes"][level]) == {str(i) for i in range(test_zoo.n_layers)}


def test_corruption_is_detected(test_zoo, tmp_path):
    copy = tmp_path / "zoo"
    shutil.copytree(test_zoo.root, copy)
    assert verify(copy) == []
    sae_file = copy / "saes" / test_zoo.default_sparsity / "layer_1" / "sae.safetensors"
    data = bytearray(sae_file.read_bytes())
    data[-1] ^= 0xFF
    sae_file.write_bytes(bytes(data))
    assert verify(copy) == [
        f"checksum mismatch saes/{test_zoo.default_sparsity}/layer_1/sae.safetensors"
    ]
    (copy / "model" / "tokenizer.json").unlink()
    assert "missing file model/tokenizer.json" in verify(copy)
    assert verify(copy, {"seed": 1})[0] == "manifest seed=0, expected 1"
    (copy / MANIFEST).unlink()
    assert verify(copy)[0].startswith("manifest unreadable")


def test_ensure_zoo_reuses_a_valid_cache(test_zoo, monkeypatch):
    """A second ensure_zoo on an intact cache loads without building."""
    import saematch.zoo.store as store

    def no_build(*a, **k):
        raise AssertionError("ensure_zoo rebuilt an intact zoo")

    monkeypatch.setattr(store, "build_zoo", no_build)
    cache = test_zoo.root.parent.parent
    zoo = ensure_zoo("test", cache_dir=cache, seed=0, progress=False)
    assert isinstance(zoo, Zoo) and zoo.root == test_zoo.root == zoo_dir("test", 0, cache)


def test_config_change_and_stale_build_folders(test_zoo, tmp_path, monkeypatch):
    """A zoo built with other knobs is rebuilt; folders of killed builds are removed."""
    import json

    import saematch.zoo.store as store

    cache = tmp_path / "cache"
    root = zoo_dir("test", 0, cache)
    shutil.copytree(test_zoo.root, root)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["config"]["lm_lr"] = 123.0  # as if built by older code
    (root / MANIFEST).write_text(json.dumps(manifest))
    expect = {"config": get_config("test").to_dict()}
    assert verify(root, expect) == ["manifest config differs in lm_lr (built by other code)"]
    stale = root.parent / ".test-seed0.building-dead"
    (stale / "model").mkdir(parents=True)
    built = []

    def fake_build(cfg, seed, out, progress, reuse=None):  # the real files, without the wait
        built.append(out)
        shutil.copytree(test_zoo.root, out, dirs_exist_ok=True)

    monkeypatch.setattr(store, "build_zoo", fake_build)
    zoo = ensure_zoo("test", cache_dir=cache, seed=0, progress=False)
    assert len(built) == 1 and not stale.exists()
    assert zoo.manifest["config"] == get_config("test").to_dict()
    assert sorted(p.name for p in root.parent.iterdir()) == ["test-seed0", "test-seed0.lock"]


def test_pick_threads(monkeypatch):
    import saematch.zoo.threads as threads

    monkeypatch.setattr(threads, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert threads.pick_threads(2) == 2 and threads.pick_threads(1) == 1
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    assert threads.pick_threads(2) == 1  # busy cores: one thread, no spinning
    assert threads.pick_threads(2, own_busy=2) == 1
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (2.1, 0.0, 0.0))
    assert threads.pick_threads(2, own_busy=2) == 2  # the load was our own
    before = torch.get_num_threads()
    with threads.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SAEMATCH_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("SAEMATCH_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "saematch")


def test_descriptions_cover_every_feature(test_zoo):
    for level in test_zoo.sparsities:
        for layer in range(test_zoo.n_layers):
            desc = test_zoo.descriptions(layer, level)
            assert sorted(desc) == list(range(test_zoo.width))
            live = [d for d in desc.values() if d != NEVER_ACTIVE]
            assert len(live) > 0.5 * test_zoo.width
            assert all(d.startswith("tokens: ") and '| e.g. "' in d for d in live)


def test_sae_training_is_deterministic():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(2, 2048, 16, generator=g) * torch.linspace(0.2, 3, 16)
    held = torch.randn(2, 512, 16, generator=g) * torch.linspace(0.2, 3, 16)
    kw = dict(steps=30, batch=256, lr=3e-3, bandwidth=0.05, progress=Progress(False))
    with torch_threads(1):
        a = train_saes(acts, held, [2, 4, 8], 128, seed=3, **kw)
    with torch_threads(2):  # the build picks 1 or 2 threads by load: results must not differ
        b = train_saes(acts, held, [2, 4, 8], 128, seed=3, **kw)
    for ra, rb in zip(a.saes, b.saes, strict=True):
        assert [s.fingerprint() for s in ra] == [s.fingerprint() for s in rb]
    assert len(a.saes) == 2 and len(a.saes[0]) == 3
    l0 = [a.metrics[0][s]["l0"] for s in range(3)]
    assert l0[0] < l0[2]  # a larger L0 target gives a denser SAE


def test_per_layer_steps_train_that_layer_in_its_own_batch():
    """sae_layer_steps: layer 1 trained like a one-layer run of its own step count, the other
    layers like a run without it, each in its place."""
    from saematch.zoo.build import train_level_saes

    g = torch.Generator().manual_seed(0)
    acts = torch.randn(3, 1024, 16, generator=g) * torch.linspace(0.2, 3, 16)
    held = torch.randn(3, 256, 16, generator=g) * torch.linspace(0.2, 3, 16)
    cfg = replace(get_config("test"), sae_steps=10, sae_layer_steps={1: 20}, sae_width_mult=4)
    got = train_level_saes(cfg, acts, held, [4], 5, Progress(False))
    kw = dict(batch=cfg.sae_batch, lr=cfg.sae_lr, bandwidth=cfg.sae_bandwidth, seed=5)
    rest = train_saes(
        acts[[0, 2]], held[[0, 2]], [4], cfg.width, steps=10, progress=Progress(False), **kw
    )
    one = train_saes(acts[[1]], held[[1]], [4], cfg.width, steps=20, progress=Progress(False), **kw)
    want = [rest.saes[0], one.saes[0], rest.saes[1]]
    assert [r[0].fingerprint() for r in got.saes] == [r[0].fingerprint() for r in want]
    assert cfg.to_dict()["sae_layer_steps"] == {"1": 20}


@pytest.mark.slow
def test_same_seed_rebuild_gives_same_sae_checksums(test_zoo, tmp_path):
    rebuilt = ensure_zoo("test", cache_dir=tmp_path, seed=0, progress=False)
    for rel, entry in test_zoo.manifest["files"].items():
        if rel.endswith(".safetensors") or rel.endswith("descriptions.json"):
            assert rebuilt.manifest["files"][rel]["sha256"] == entry["sha256"], rel


def test_second_seed_agreement_in_manifest(test_zoo):
    """The build trains a second SAE per layer at the default L0 and records how well the two
    seeds agree (share of LAP-matched decoder pairs above cos 0.7) and transfer."""
    from saematch.zoo.build import second_seed_dir

    agree = test_zoo.manifest["metrics"]["seed_agreement"]
    assert set(agree) == {str(i) for i in range(test_zoo.n_layers)}
    for layer, g in agree.items():
        assert 0.0 <= g["agreement"] <= 1.0
        assert g["transfer_ev"] <= max(g["ev_a"], g["ev_b"]) + 0.05
        b = load_sae(second_seed_dir(test_zoo.root, int(layer), test_zoo.default_sparsity))
        a = test_zoo.load_sae(int(layer))
        assert not torch.equal(a.W_dec, b.W_dec)  # a different seed, not a copy


def test_bad_sae_files_rebuild_without_retraining_the_lm(test_zoo, tmp_path, monkeypatch):
    """Only the stages whose files are bad rebuild: with model/ intact, a corrupt SAE and a lost
    description are rebuilt from the cached LM (no LM training) into the same bytes."""
    import saematch.zoo.build as build

    cache = tmp_path / "cache"
    root = zoo_dir("test", 0, cache)
    shutil.copytree(test_zoo.root, root)
    level = test_zoo.default_sparsity
    (root / "saes" / level / "layer_1" / "sae.safetensors").write_bytes(b"broken")
    (root / "saes" / level / "layer_2" / "descriptions.json").unlink()

    def no_lm(*a, **k):
        raise AssertionError("the LM was trained again although model/ was intact")

    monkeypatch.setattr(build, "train_lm", no_lm)
    monkeypatch.setattr(build, "train_tokenizer", no_lm)
    zoo = ensure_zoo("test", cache_dir=cache, seed=0, progress=False)
    assert verify(zoo.root) == []
    for rel, entry in test_zoo.manifest["files"].items():
        assert zoo.manifest["files"][rel]["sha256"] == entry["sha256"], rel
    assert zoo.manifest["metrics"]["lm"] == test_zoo.manifest["metrics"]["lm"]
    # a bad LM file, another LM knob or LM code version means a full rebuild
    from saematch.zoo.store import reusable_lm

    cfg = get_config("test")
    assert reusable_lm(root, cfg, 0) == root
    assert reusable_lm(root, cfg, 1) is None
    assert reusable_lm(root, replace(cfg, lm_lr=1.0), 0) is None
    assert reusable_lm(root, replace(cfg, sae_steps=7), 0) == root  # SAE knobs keep the LM
    (root / "model" / "model.safetensors").write_bytes(b"broken")
    assert reusable_lm(root, cfg, 0) is None
    shutil.rmtree(root / "model")
    assert reusable_lm(tmp_path / "nowhere", cfg, 0) is None


def test_code_version_is_part_of_the_cache_key(test_zoo, tmp_path, monkeypatch):
    """A zoo built by an older trainer (manifest code_version) is stale: ensure_zoo rebuilds its
    SAEs from the cached LM; one built by other LM code is rebuilt from scratch."""
    import json

    import saematch.zoo.build as build
    from saematch.zoo.build import code_version
    from saematch.zoo.store import reusable_lm

    assert test_zoo.manifest["code_version"] == code_version()
    cache = tmp_path / "cache"
    root = zoo_dir("test", 0, cache)
    shutil.copytree(test_zoo.root, root)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["code_version"]["saes"] -= 1  # as if trained by the trainer before a change
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert any("code_version" in p for p in verify(root, {"code_version": code_version()}))

    def no_lm(*a, **k):
        raise AssertionError("the LM was trained again although only the trainer changed")

    monkeypatch.setattr(build, "train_lm", no_lm)
    zoo = ensure_zoo("test", cache_dir=cache, seed=0, progress=False)
    assert zoo.manifest["code_version"] == code_version()
    assert verify(zoo.root, {"code_version": code_version()}) == []
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["code_version"]["lm"] += 1  # LM code from the future: nothing to reuse
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert reusable_lm(root, get_config("test"), 0) is None


def test_a_level_left_to_first_use_is_trained_once_beside_the_zoo(test_zoo, tmp_path):
    """A zoo whose build trained only some levels (eager_sparsities=False, the default zoo)
    trains another level the first time it is asked for, with the zoo's schedule, into a
    sibling folder keyed to the zoo's manifest; later requests load it."""
    import json

    from saematch.zoo.levels import level_dir
    from saematch.zoo.manifest import write_manifest

    root = tmp_path / "zoo" / "test-seed0"
    shutil.copytree(test_zoo.root, root)
    level = [lv for lv in test_zoo.sparsities if lv != test_zoo.default_sparsity][0]
    shutil.rmtree(root / "saes" / level)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["built_sparsities"] = [lv for lv in test_zoo.sparsities if lv != level]
    del manifest["metrics"]["saes"][level], manifest["files"], manifest["format"]
    write_manifest(root, manifest)
    zoo = Zoo(root)
    assert verify(root) == [] and level in zoo.sparsities and level not in zoo.built_sparsities
    path = zoo.sae_path(1, level)  # trains the level now
    assert path.parent == level_dir(zoo, level) and verify(path.parent) == []
    sae = load_sae(path)
    assert sae.width == zoo.width and len(zoo.descriptions(1, level)) == zoo.width
    stats = zoo.sae_metrics(level)
    target = int(level.removeprefix("l0_"))
    assert set(stats) == {str(i) for i in range(zoo.n_layers)}
    assert all(abs(m["l0"] - target) < 0.5 * target for m in stats.values())
    stamp = (path / "sae.safetensors").stat().st_mtime_ns
    assert zoo.sae_path(1, level) == path  # cached: not trained again
    assert (path / "sae.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="unknown sparsity"):
        zoo.sae_path(0, "l0_999")
