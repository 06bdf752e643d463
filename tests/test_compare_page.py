"""The compare page's data (saematch.explorer.compare_view), without a browser: what the page
is given equals the comparison it shows, its counts equal the comparison's, text is escaped,
bad arrays are refused. The page in Chromium: test_explorer_browser.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_compare import split_pair
from test_explorer import _meta, _put

from saematch.compare import compare
from saematch.explorer.compare_view import (
    COMPARE_DATA_DIR,
    CompareView,
    view_counts,
    view_from_comparison,
    write_compare_page,
)


@pytest.fixture(scope="module")
def comparison():
    a, b = split_pair(seed=7)  # b = a's 48 features + 12 near-copies: 12 families of two
    return compare(a, b)


@pytest.mark.parametrize("swap", [False, True], ids=["narrow_a", "wide_a"])
def test_page_counts_and_arrays_are_the_comparisons(swap, tmp_path):
    a, b = split_pair(seed=7)
    c = compare(b, a) if swap else compare(a, b)
    s = c.summary()
    v = view_from_comparison(c, refs=("file:x", "file:y"))
    counts = view_counts(v)
    assert counts["pairs"] == min(s["width_a"], s["width_b"]) == 48
    assert counts["shared"] == s["shared_pairs"] and counts["unshared_a"] == s["unshared_a"]
    assert counts["unshared_b"] == s["unshared_b"]
    assert counts["family_members"] == s["family_members"]
    assert counts["family_splits"] == s["family_splits"] == 12
    m = c.matching
    assert counts["forced"] == int(((m.perm >= 0) & (m.shared_perm != m.perm)).sum())

    html = write_compare_page(v, tmp_path)
    text = html.read_text()
    assert "http://" not in text and "https://" not in text and "<link" not in text
    assert re.findall(r"<script[^>]*\bsrc=", text) == []
    meta = _meta(text)
    assert meta["counts"] == counts and meta["wide"] == ("a" if swap else "b")
    assert meta["a"]["width"] == s["width_a"] and meta["a"]["ref"] == "file:x"
    assert meta["summary"]["pwmcc_decoder"] == pytest.approx(s["pwmcc_decoder"])
    name, p = _put(tmp_path / COMPARE_DATA_DIR / "pairs.js")
    assert name == "pairs" and p["perm"] == m.perm.tolist()
    assert p["shared"] == m.shared_perm.tolist() and p["parent"] == m.family_parent.tolist()
    cost = np.array([np.nan if x is None else x for x in p["cost"]], dtype=float)
    np.testing.assert_allclose(cost, m.pair_mse, rtol=1e-3, equal_nan=True)
    for part in ("decoder", "encoder"):
        got = np.array([np.nan if x is None else x for x in p["cos"][part]], dtype=float)
        np.testing.assert_allclose(got, np.abs(c.mse_pair_cos[part]), rtol=1e-3, atol=1e-4,
                                   equal_nan=True)  # fmt: skip
    assert p["conf"] is None and not meta["has_pair_confidence"]


def test_text_is_escaped_and_descriptions_are_chunked(comparison, tmp_path):
    import html as html_lib

    from saematch.explorer.page import DESC_CHUNK

    evil = '</script><img src=x onerror=alert(1)> __TITLE__ \\ "q"\n'
    descs = {"a": [f"{evil}{i}" for i in range(48)], "b": None}
    v = view_from_comparison(comparison, refs=(evil, "b"), descriptions=descs, title=evil)
    text = write_compare_page(v, tmp_path).read_text()
    meta = _meta(text)  # the JSON survives: "</" is written "<\/"
    assert meta["title"] == evil and meta["a"]["ref"] == evil
    assert meta["described"] == {"a": True, "b": False}
    assert text.count("</script>") == 2  # the two script tags of the template, nothing else
    assert html_lib.unescape(re.search(r"<title>(.*?)</title>", text, re.S).group(1)) == evil
    files = sorted(p.name for p in (tmp_path / COMPARE_DATA_DIR).iterdir())
    assert files == ["desc_a_0.js", "pairs.js"] and DESC_CHUNK >= 48
    assert _put(tmp_path / COMPARE_DATA_DIR / "desc_a_0.js")[1][3] == f"{evil}3"
    write_compare_page(view_from_comparison(comparison), tmp_path)  # a rewrite: no stale file
    assert sorted(p.name for p in (tmp_path / COMPARE_DATA_DIR).iterdir()) == ["pairs.js"]


def test_bad_arrays_are_clear_errors(comparison):
    v = view_from_comparison(comparison)
    keys = ("a", "b", "perm", "cost", "shared_perm", "cos", "family_parent", "family_confidence")
    base = {k: getattr(v, k) for k in keys} | {"wide": v.wide}
    with pytest.raises(ValueError, match="perm has 47 entries"):
        CompareView(**{**base, "perm": v.perm[:-1]})
    twice = v.perm.copy()
    twice[1] = twice[0]
    with pytest.raises(ValueError, match="share a partner"):
        CompareView(**{**base, "perm": twice})
    with pytest.raises(ValueError, match="family_parent"):
        CompareView(**{**base, "family_parent": v.family_parent + 100})
    with pytest.raises(ValueError, match="wide"):
        CompareView(**{**base, "wide": "c"})
    with pytest.raises(ValueError, match="descriptions of b"):
        CompareView(**base, descriptions={"b": ["x"]})
