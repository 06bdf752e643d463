"""match_layers and its on-disk cache: hits, resume, corrupt entries."""

import hashlib
import json

import numpy as np
import pytest
from helpers import random_sae
from safetensors.numpy import save

import saematch.matching.cache as cache_mod
from saematch.matching import DEFAULTS, match, match_layers


@pytest.fixture
def counted(monkeypatch):
    calls = []

    def fake_match(a, b, **kw):
        calls.append((a.name, b.name))
        return match(a, b, **kw)

    monkeypatch.setattr(cache_mod, "match", fake_match)
    return calls


def _saes(n=4):
    return [random_sae(8, 16, seed=s) for s in range(n)]


def test_match_layers_caches_and_resumes(tmp_path, counted):
    saes = _saes()
    first = match_layers(saes, mode="both", fold=True, solver="auto", cache_dir=tmp_path)
    assert len(first) == 3 and len(counted) == 3
    assert all(m.info["cached"] is False for m in first)
    again = match_layers(saes, mode="both", fold=True, solver="auto", cache_dir=tmp_path)
    assert len(counted) == 3  # nothing recomputed
    assert all(m.info["cached"] for m in again)
    for m, n in zip(first, again, strict=True):
        assert np.array_equal(m.perm, n.perm) and np.array_equal(m.pair_mse, n.pair_mse)
        assert (n.mode, n.fold, n.solver) == ("both", True, "auto")
    # other settings are other entries
    match_layers(saes, mode="decoder", fold=True, solver="auto", cache_dir=tmp_path)
    assert len(counted) == 6
    # an interrupted run: delete one entry's marker; only that pair is redone
    (
        tmp_path
        / f"{cache_mod.cache_key(saes[1], saes[2], 'both', True, 'auto', DEFAULTS.beyond())}.json"
    ).unlink()
    match_layers(saes, mode="both", fold=True, solver="auto", cache_dir=tmp_path, progress=False)
    assert len(counted) == 7 and counted[-1] == (saes[1].name, saes[2].name)


def test_corrupt_entry_is_recomputed(tmp_path, counted, caplog):
    saes = _saes(2)
    ref = match_layers(saes, cache_dir=tmp_path)[0]
    key = cache_mod.cache_key(saes[0], saes[1], "both", True, "auto", DEFAULTS.beyond())
    (tmp_path / f"{key}.safetensors").write_bytes(b"not a safetensors file")
    out = match_layers(saes, cache_dir=tmp_path)[0]
    assert len(counted) == 2 and "corrupt" in caplog.text
    assert np.array_equal(out.perm, ref.perm)
    # a non-bijective perm is corrupt too (even with a matching hash)
    meta = json.loads((tmp_path / f"{key}.json").read_text())
    blob = save({"perm": np.zeros(16, np.int64), "pair_cost": np.zeros(16, np.float32)})
    (tmp_path / f"{key}.safetensors").write_bytes(blob)
    meta["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
    (tmp_path / f"{key}.json").write_text(json.dumps(meta))
    match_layers(saes, cache_dir=tmp_path)
    assert len(counted) == 3
    meta = json.loads((tmp_path / f"{key}.json").read_text())
    assert meta["extra"] == {"key": key, "code": cache_mod.CODE_VERSION}
    assert meta["format"] == "saematch.match"  # cache entries are match files
    assert not list(tmp_path.glob("*.tmp"))


def test_key_depends_on_content_and_settings():
    a, b = _saes(2)
    k = cache_mod.cache_key(a, b, "both", True, "auto")
    assert k != cache_mod.cache_key(b, a, "both", True, "auto")
    assert k != cache_mod.cache_key(a, b, "both", False, "auto")
    assert k != cache_mod.cache_key(a, b, "encoder", True, "auto")
    assert k != cache_mod.cache_key(a, b, "both", True, "scipy")
    assert k == cache_mod.cache_key(a.to(dtype=None), b, "both", True, "auto")


def test_match_layers_without_cache_and_errors():
    saes = _saes(3)
    assert len(match_layers(saes, progress=False)) == 2
    with pytest.raises(ValueError, match="two SAEs"):
        match_layers(saes[:1])
    with pytest.raises(ValueError, match="widths differ"):
        match_layers([saes[0], random_sae(8, 12, seed=9)])


def test_solver_objects_keep_the_cache_keys_of_their_names(tmp_path, counted):
    """A solver object at its defaults is keyed by its bare name (the key of earlier runs, as
    the documented formula gives it); other options are other entries."""
    from saematch.matching.solvers import AutoSolver, LapjvSolver, ScipySolver

    a, b = _saes(2)
    for name, obj in (("auto", AutoSolver()), ("lapjv", LapjvSolver()), ("scipy", ScipySolver())):
        spec = {"a": a.fingerprint(), "b": b.fingerprint(), "mode": "both", "fold": True,
                "solver": name, "code": cache_mod.CODE_VERSION}  # fmt: skip
        want = hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=16)
        assert cache_mod.cache_key(a, b, "both", True, obj) == want.hexdigest()
        assert cache_mod.cache_key(a, b, "both", True, name) == want.hexdigest()
    tuned = AutoSolver(k=4, dense_below=1)
    assert tuned.key() == "auto(dense_below=1, k=4)"
    assert cache_mod.cache_key(a, b, "both", True, tuned) != cache_mod.cache_key(
        a, b, "both", True, "auto"
    )
    m = match_layers([a, b], solver=tuned, cache_dir=tmp_path, progress=False)[0]
    assert m.solver == "auto(dense_below=1, k=4)" and m.info["method"] != "lapjvs"
    again = match_layers([a, b], solver=tuned, cache_dir=tmp_path, progress=False)[0]
    assert again.info["cached"] and len(counted) == 1
    ref = match(a, b, solver=ScipySolver())
    assert ref.solver == "scipy" and np.array_equal(ref.perm, m.perm)


def test_a_run_waiting_on_a_cache_lock_says_which(tmp_path, capsys):
    """A run blocked by another process's lock on the same cache entry printed nothing while
    it waited; now one line names the lock."""
    import threading
    import time

    from filelock import FileLock

    from saematch.matching import MatchOptions
    from saematch.matching.cache import cache_key, cached_match

    a, b = random_sae(seed=1), random_sae(seed=2)
    opts = MatchOptions(mode="decoder", fold=True, solver="auto")
    key = cache_key(a, b, opts.mode, opts.fold, opts.solver, opts.beyond(), opts.bias_weight)
    lock_path = tmp_path / f"{key}.lock"
    held, release = threading.Event(), threading.Event()

    def hold():
        with FileLock(str(lock_path)):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    threading.Timer(2.0, release.set).start()
    t0 = time.monotonic()
    m = cached_match(a, b, opts, cache_dir=tmp_path)
    holder.join()
    assert time.monotonic() - t0 >= 1.5 and m.perm.shape == (a.width,)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines == [
        f"waiting for the lock {lock_path} (a matching cache entry): another process holds it "
        "and is building the same thing; this run goes on when it is done"
    ]


def test_bound_gemm_is_not_part_of_the_key(tmp_path, counted):
    """The bound's GEMM changes how, not what (the same certified optimum, docs/method.md §13):
    a matching cached under one backend is a hit under the other."""
    saes = [random_sae(8, 80, seed=s) for s in range(2)]  # > DENSE_BELOW: the certified solver
    kw = {"mode": "decoder", "fold": True, "solver": "auto", "cache_dir": tmp_path}
    first = match_layers(saes, bound_gemm="fp32", **kw)
    assert len(counted) == 1 and first[0].info["bound_gemm"] == "fp32"
    again = match_layers(saes, bound_gemm="auto", **kw)
    assert len(counted) == 1 and again[0].info["cached"]
    np.testing.assert_array_equal(first[0].perm, again[0].perm)
    with pytest.raises(ValueError, match="bound_gemm"):
        match_layers(saes, bound_gemm="int4", **kw)
