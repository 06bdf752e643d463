"""The portable match file: round trip, plain-library reading, and its checks."""

import json

import numpy as np
import pytest

import saematch
from saematch.matchfile import FORMAT_VERSION, MatchFileError, save_match_file
from saematch.matching import match_beyond
from saematch.planted.planted_pair import planted_pair


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
        "assert meta['format'] == 'saematch.match'\n"
        f"assert meta['format_version'] == {FORMAT_VERSION}\n"
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
    meta["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(meta))
    with pytest.raises(MatchFileError, match=f"format version {FORMAT_VERSION + 1} is not supp"):
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


def rewrite(stem, edit_meta=None, edit_arrays=None):
    """Edit a match file's sidecar and/or arrays, then re-hash both as a careful forger would
    (the sidecar hash reimplemented from the format's documentation, not imported)."""
    import hashlib

    from safetensors.numpy import load_file, save

    json_path, arrays_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    meta = json.loads(json_path.read_text())
    arrays = load_file(str(arrays_path))
    if edit_arrays:
        edit_arrays(arrays)
        meta["array_names"] = sorted(arrays)
    blob = save(arrays)
    arrays_path.write_bytes(blob)
    meta["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
    if edit_meta:
        edit_meta(meta)
    rest = {k: v for k, v in meta.items() if k != "sidecar_sha256"}
    canon = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    meta["sidecar_sha256"] = hashlib.sha256(canon.encode()).hexdigest()
    json_path.write_text(json.dumps(meta))


def _set(key, value):
    def edit(meta):
        meta[key] = value

    return edit


def _set_layer(meta):
    meta["a"]["layer"] = 7


@pytest.mark.parametrize(
    "edit",
    [
        _set("mode", "encoder"),
        _set("fold", False),
        _set("proven_optimal", False),
        _set("total_cost", 0.0),
        _set_layer,
    ],
    ids=["mode", "fold", "proven_optimal", "total_cost", "layer"],
)
def test_sidecar_fields_cannot_be_edited(tmp_path, pair, edit):
    a, b, m = pair
    path = save_match_file(m, tmp_path / "s", a, b)
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta, indent=1))
    with pytest.raises(MatchFileError, match="sidecar_sha256") as e:
        saematch.load_matching(path, a, b)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("version", ["float", True, "str"])
def test_the_format_version_is_exact(tmp_path, pair, version):
    """1.0 == 1 and True == 1 in Python; the file's version must be the int itself."""
    a, b, m = pair
    path = save_match_file(m, tmp_path / "v", a, b)
    value = {"float": float(FORMAT_VERSION), "str": str(FORMAT_VERSION)}.get(version, version)
    rewrite(tmp_path / "v", edit_meta=_set("format_version", value))
    with pytest.raises(MatchFileError, match=f"{path}: match file format version"):
        saematch.load_matching(path)


def _pair_cost_10(arr):
    arr["pair_cost"] = arr["pair_cost"][:10]


def _perm_float(arr):
    arr["perm"] = arr["perm"].astype(np.float32)


def _perm_twice(arr):
    arr["perm"][1] = arr["perm"][0] if arr["perm"][0] >= 0 else arr["perm"][1]
    arr["perm"][0] = arr["perm"][1] = max(arr["perm"][0], arr["perm"][1], 0)


def _perm_out_of_range(arr):
    arr["perm"][0] = 10**6


def _dual_u_short(arr):
    arr["dual_u"] = np.zeros(5, np.float64)
    arr["dual_v"] = np.zeros(len(arr["perm"]), np.float64)


def _predecessors_out_of_range(arr):
    arr["predecessors"][3, 0] = 10**6


def _predecessors_negative(arr):
    arr["predecessors"][3, 0] = -5


def _split_children_float(arr):
    arr["split_children"] = arr["split_children"].astype(np.float64)


def _confidence_2d(arr):
    arr["confidence"] = arr["confidence"].reshape(-1, 1)


@pytest.mark.parametrize(
    "edit, message",
    [
        (_pair_cost_10, "pair_cost is float32 \\(10,\\), must be float32 \\(128,\\)"),
        (_perm_float, "perm is float32"),
        (_perm_twice, "twice|unmatched"),
        (_perm_out_of_range, "perm holds values in"),
        (_dual_u_short, "dual_u is float64 \\(5,\\)"),
        (_predecessors_out_of_range, "predecessors holds values in"),
        (_predecessors_negative, "predecessors holds values in"),
        (_split_children_float, "split_children is float64"),
        (_confidence_2d, "confidence is float32 \\(128, 1\\)"),
    ],
    ids=lambda x: getattr(x, "__name__", "")[1:] or None,
)
def test_rehashed_bad_arrays_are_rejected(tmp_path, pair, edit, message):
    """Hashes catch accidents; the array checks catch a file that was re-hashed after an edit."""
    a, b, m = pair
    path = save_match_file(m, tmp_path / "r", a, b)
    rewrite(tmp_path / "r", edit_arrays=edit)
    with pytest.raises(MatchFileError, match=message) as e:
        saematch.load_matching(path, a, b)
    assert str(tmp_path / "r") in str(e.value)


def test_rehashed_unmatched_count_and_missing_field_are_rejected(tmp_path, pair):
    a, b, m = pair
    path = save_match_file(m, tmp_path / "u", a, b)
    rewrite(tmp_path / "u", edit_meta=_set("unmatched_a", 0))
    with pytest.raises(MatchFileError, match="the sidecar says 0"):
        saematch.load_matching(path, a, b)
    rewrite(tmp_path / "u", edit_meta=lambda meta: meta.pop("mode"))
    with pytest.raises(MatchFileError, match=f"{path}: the sidecar has no 'mode' field"):
        saematch.load_matching(path, a, b)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b'{"format": "saematch.match", "format_ver', "not valid JSON"),
        (b'{"format": "\xff\xfe"}', "not UTF-8"),
        (b"[1, 2]", "holds a list"),
    ],
    ids=["empty", "truncated", "not-utf8", "list"],
)
def test_unreadable_sidecars_name_the_file(tmp_path, pair, content, message):
    a, b, m = pair
    path = save_match_file(m, tmp_path / "t", a, b)
    path.write_bytes(content)
    with pytest.raises(MatchFileError, match=message) as e:
        saematch.load_matching(path)
    assert str(path) in str(e.value)
