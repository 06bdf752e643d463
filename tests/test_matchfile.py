"""The portable match file: round trip, plain-library reading, and its checks."""

import json

import numpy as np
import pytest

import saematch
from saematch.matchfile import (
    FORMAT_VERSION,
    SUPPORTED_VERSIONS,
    MatchFileError,
    save_match_file,
)
from saematch.matching.beyond import match_beyond
from saematch.matching.planted_pair import planted_pair


@pytest.fixture(scope="module")
def pair():
    a, b, _ = planted_pair(32, 128, died=0.2, split=0.05, noise=0.4, seed=3)
    a.meta = {"repo_id": "local/zoo", "sae_id": "layer_1", "revision": "abc", "layer": 1}
    m = match_beyond(a, b, mode="decoder", unmatched="auto", top_k=4)
    return a, b, m


def test_round_trip(tmp_path, pair):
    a, b, m = pair
    path = save_match_file(m, tmp_path / "L1-L2", a, b)
    back = saematch.load_matching(path, a, b)
    np.testing.assert_array_equal(back.perm, m.perm)
    np.testing.assert_array_equal(back.pair_mse, m.pair_mse)  # NaN where unmatched, too
    np.testing.assert_array_equal(back.confidence, m.confidence)
    np.testing.assert_array_equal(back.predecessors, m.predecessors)
    np.testing.assert_array_equal(back.split_children, m.split_children)
    assert back.unmatched == "auto" and back.info["rho"] == pytest.approx(m.info["rho"])
    assert back.proven and back.mode == "decoder" and back.total_cost == pytest.approx(m.total_cost)
    # the stem and the arrays file name work as well as the JSON path
    assert (saematch.load_matching(tmp_path / "L1-L2.safetensors").perm == m.perm).all()


def test_readable_with_only_safetensors_and_json(tmp_path, pair):
    a, b, m = pair
    save_match_file(m, tmp_path / "x", a, b)
    script = tmp_path / "read.py"
    script.write_text(
        "import json, sys\n"
        "from safetensors.numpy import load_file\n"
        "meta = json.load(open(sys.argv[1] + '.json'))\n"
        "arr = load_file(sys.argv[1] + '.safetensors')\n"
        "assert meta['format'] == 'saematch.match' and meta['format_version'] == 1\n"
        "perm = arr['perm']\n"
        "print(meta['a']['repo_id'], meta['a']['fingerprint'], meta['unmatched']['setting'],\n"
        "      int((perm < 0).sum()), arr['predecessors'].shape, meta['proven_optimal'], sep='|')\n"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-I", str(script), str(tmp_path / "x")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    repo, fp, setting, n_un, shape, proven = out.stdout.strip().split("|")
    assert repo == "local/zoo" and fp == a.fingerprint() and setting == "auto"
    assert int(n_un) == int((m.perm < 0).sum()) and shape == "(128, 4)" and proven == "True"


def test_checks(tmp_path, pair):
    a, b, m = pair
    path = save_match_file(m, tmp_path / "y", a, b)
    with pytest.raises(MatchFileError, match="SAE B given .* is not the SAE"):
        saematch.load_matching(path, a, a)
    meta = json.loads(path.read_text())
    meta["format_version"] = max(SUPPORTED_VERSIONS) + 1  # 3: version 2 is the comparison's
    path.write_text(json.dumps(meta))
    with pytest.raises(MatchFileError, match="format version 3 is not supported"):
        saematch.load_matching(path)
    meta["format_version"] = FORMAT_VERSION
    path.write_text(json.dumps(meta))
    arrays = tmp_path / "y.safetensors"
    arrays.write_bytes(arrays.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(MatchFileError, match="SHA-256"):
        saematch.load_matching(path)
    arrays.unlink()
    with pytest.raises(MatchFileError, match="incomplete"):
        saematch.load_matching(path)


def test_provenance_from_match_layers_and_missing_saes(tmp_path, pair):
    from saematch.matching import match, match_layers

    a, b, _ = pair
    m = match_layers([a, b], mode="decoder", progress=False, top_k=2)[0]
    path = save_match_file(m, tmp_path / "z")  # the records match_layers attached
    meta = json.loads(path.read_text())
    assert meta["a"]["fingerprint"] == a.fingerprint() and meta["a"]["repo_id"] == "local/zoo"
    assert saematch.load_matching(path, a, b).predecessors.shape == (128, 2)
    with pytest.raises(ValueError, match="SAE A unknown"):
        save_match_file(match(a, b, mode="decoder"), tmp_path / "w")
