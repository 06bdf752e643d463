"""The explorer's data files, without a browser: what the page is given, bad input, sizes."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from saematch.explorer import DATA_DIR, ExplorerData, Link, Predecessor, write_explorer
from saematch.explorer.data import agreement, cost_bins, link_summary
from saematch.explorer.page import DESC_CHUNK


def _data(width=16, layers=(0, 1, 2, 3), seed=0, **kw) -> ExplorerData:
    rng = np.random.default_rng(seed)
    adj = [
        Link(t, u, rng.permutation(width), rng.uniform(0.01, 1, width))
        for t, u in zip(layers[:-1], layers[1:], strict=False)
    ]
    descs = {L: [f"layer {L} feature {i}" for i in range(width)] for L in layers}
    return ExplorerData(list(layers), adj, descs, **kw)


def _meta(html: str) -> dict:
    blob = re.search(r'<script id="meta" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(blob.group(1))


def _put(path) -> tuple[str, object]:
    m = re.fullmatch(r'SAEX\.put\("([^"]+)",(.*)\);\n', path.read_text(encoding="utf-8"), re.S)
    return m.group(1), json.loads(m.group(2))


def test_page_is_one_file_without_network_and_data_beside_it(tmp_path):
    data = _data(width=16)
    html = write_explorer(data, tmp_path)
    text = html.read_text()
    mask = os.umask(0)
    os.umask(mask)
    assert html.stat().st_mode & 0o777 == 0o666 & ~mask  # the user's umask, not 0600
    assert "http://" not in text and "https://" not in text and "<link" not in text
    assert re.findall(r"<script[^>]*\bsrc=", text) == []  # data files are added at run time
    meta = _meta(text)
    assert meta["layers"] == [0, 1, 2, 3] and meta["width"] == 16
    files = sorted(p.name for p in (tmp_path / DATA_DIR).iterdir())
    assert files == sorted(
        [f"layer_{L}.js" for L in range(4)] + [f"desc_{L}_0.js" for L in range(4)]
    )
    name, layer = _put(tmp_path / DATA_DIR / "layer_1.js")
    assert name == "layer_1" and layer["next"]["target"] == data.adjacent[1].target.tolist()
    np.testing.assert_allclose(layer["next"]["cost"], data.adjacent[1].cost, rtol=1e-3)
    assert _put(tmp_path / DATA_DIR / "layer_3.js")[1]["next"] is None  # the last layer
    assert _put(tmp_path / DATA_DIR / "desc_2_0.js")[1][5] == "layer 2 feature 5"


def test_summary_counts_every_matched_pair_and_the_unmatched_share():
    target = np.array([2, -1, 0, 3, -1, 1])
    lk = Link(0, 1, target, [0.1, np.nan, 0.2, 0.4, np.nan, 1e-3], confidence=np.ones(6))
    s = link_summary(lk, cost_bins([lk]))
    assert sum(s["counts"]) == 4 and s["unmatched_share"] == pytest.approx(2 / 6)
    assert s["quantiles"]["p50"] == pytest.approx(0.15) and s["has_confidence"]


def test_agreement_of_exact_and_composed():
    a, b = np.array([1, 2, 0, 3]), np.array([3, 0, 1, 2])
    adj = [Link(0, 1, a, np.ones(4)), Link(1, 2, b, np.ones(4))]
    composed = b[a]  # perm_AC = perm_BC[perm_AB]
    exact = composed.copy()
    exact[[0, 1]] = exact[[1, 0]]
    assert agreement(Link(0, 2, exact, np.ones(4)), adj, [0, 1, 2]) == 0.5
    assert agreement(Link(0, 2, composed, np.ones(4)), adj, [0, 1, 2]) == 1.0


def test_optional_fields_reach_the_page(tmp_path):
    data = _data(
        width=8,
        judge={1: {3: 3, 4: 1}},
        judge_note="lexical proxy",
        matching_score={0: 0.5},
        predecessors={2: {5: [Predecessor("mlp", 2, 7, 0.9), Predecessor("res", 1, 4, 0.5)]}},
    )
    data.adjacent[0].confidence = np.linspace(0, 1, 8, dtype=np.float32)
    meta = _meta(write_explorer(data, tmp_path).read_text())
    assert meta["has_judge"] and meta["has_preds"] and meta["has_confidence"]
    assert meta["pairs"][0]["matching_score"] == 0.5 and meta["pairs"][1]["judged"] == 2
    layer2 = _put(tmp_path / DATA_DIR / "layer_2.js")[1]
    assert layer2["preds"] == {"5": [["mlp", 2, 7, 0.9], ["res", 1, 4, 0.5]]}
    assert _put(tmp_path / DATA_DIR / "layer_1.js")[1]["judge"] == {"3": 3, "4": 1}


def test_html_size_does_not_grow_with_width(tmp_path):
    small = write_explorer(_data(width=64), tmp_path / "a").stat().st_size
    big = write_explorer(_data(width=3 * DESC_CHUNK), tmp_path / "b").stat().st_size
    assert abs(big - small) < 1_000  # the arrays live in the data files
    assert len(list((tmp_path / "b" / DATA_DIR).glob("desc_1_*.js"))) == 3


def test_rewrite_leaves_no_stale_data_file(tmp_path):
    write_explorer(_data(layers=(0, 1, 2, 3)), tmp_path)
    write_explorer(_data(layers=(0, 1)), tmp_path)
    assert sorted(p.name for p in (tmp_path / DATA_DIR).iterdir()) == [
        "desc_0_0.js", "desc_1_0.js", "layer_0.js", "layer_1.js"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Link(0, 1, [0, 5], [1, 1]), "feature indices in"),
        (lambda: Link(0, 1, [1, 1], [1, 1]), "share a partner"),
        (lambda: Link(0, 1, [0, 1], [1]), "cost has 1 entries"),
        (lambda: ExplorerData([0, 1, 2], [Link(0, 1, [0], [1])]), "must cover"),
        (lambda: ExplorerData([0, 1], [Link(0, 1, [0], [1])], {1: ["a", "b"]}), "descriptions"),
        (
            lambda: ExplorerData([0, 1], [Link(0, 1, [0], [1])], exact=[Link(1, 0, [0], [1])]),
            "need src < dst",
        ),
    ],
)
def test_bad_input_names_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_judge_labels_keep_only_this_runs_pairs(tmp_path):
    from saematch_experiments.explorer import judge_labels

    adj = [Link(0, 1, [1, 0, 2], np.ones(3)), Link(1, 2, [2, 1, 0], np.ones(3))]
    rows = ["variant,path,layer,next_layer,feature,next_feature,skip,label"]
    rows += ["folded,0,0,1,0,1,,3", "folded,0,1,2,1,1,,2", "folded,1,0,1,2,0,,1"]  # last: not ours
    rows += ["unfolded,0,0,1,1,0,,1", "folded,2,0,1,1,0,dead,"]
    (tmp_path / "judge_pairs.csv").write_text("\n".join(rows) + "\n")
    labels, note = judge_labels(str(tmp_path), adj, "folded")
    assert labels == {0: {0: 3}, 1: {1: 2}} and "1 of other matchings dropped" in note
    with pytest.raises(ValueError, match="same SAEs"):
        judge_labels(str(tmp_path), [Link(0, 1, [0, 1, 2], np.ones(3))] + adj[1:], "unfolded")
    with pytest.raises(FileNotFoundError, match="experiment=judge_by_layer"):
        judge_labels(str(tmp_path / "nope"), adj, "folded")


def test_exact_start_outside_the_set_is_a_clear_error(test_zoo, tmp_path):
    from experiment_helpers import compose_cfg, run

    last = int(test_zoo.n_layers) - 1
    cfg = compose_cfg("explorer", [f"experiment.exact_starts=[{last}]"], test_zoo, tmp_path)
    with pytest.raises(ValueError, match="the last layer has nothing after it"):
        run(cfg)


def test_explorer_flag_writes_the_page_beside_another_run(test_zoo, tmp_path):
    from experiment_helpers import compose_cfg, run, run_dir_of

    cfg = compose_cfg("mse_curves", ["explorer=true"], test_zoo, tmp_path)
    summary = run(cfg)
    run_dir = run_dir_of(cfg)
    assert summary["explorer"] == "explorer.html"
    meta = _meta((run_dir / "explorer.html").read_text())
    assert meta["layers"] == list(range(int(test_zoo.n_layers))) and meta["exact"] == []
    assert (run_dir / "results.json").is_file()  # the run's own files are still there
    assert len(list((run_dir / DATA_DIR).glob("layer_*.js"))) == len(meta["layers"])


def test_match_file_fields_and_flow_graph_reach_the_layer_files(tmp_path):
    from types import SimpleNamespace

    from saematch.explorer import link_from_matching
    from saematch.explorer.data import predecessors_from_graph

    m = SimpleNamespace(  # what saematch.load_matching returns for a partial matching
        perm=np.array([1, -1, 0]),
        pair_mse=np.array([0.1, np.nan, 0.3]),
        confidence=np.array([0.5, np.nan, 0.2]),
        predecessors=np.array([[2, 0], [0, 1], [1, 2]]),
        predecessor_cost=np.ones((3, 2)),
        split_children=np.array([[-1, -1], [0, 2], [-1, -1]]),
    )
    lk = link_from_matching(0, 1, m)
    assert lk.unmatched_share == pytest.approx(1 / 3)
    graph = SimpleNamespace(
        layers=[SimpleNamespace(layer=1, origin=np.zeros(3))],
        predecessors=lambda t, j: [("mlp/1/2", 0.9), ("res/0/1", 0.4)] if j == 2 else [],
    )
    preds = predecessors_from_graph(graph)
    assert preds == {1: {2: [Predecessor("mlp", 1, 2, 0.9), Predecessor("res", 0, 1, 0.4)]}}
    data = ExplorerData([0, 1], [lk], predecessors=preds)
    meta = _meta(write_explorer(data, tmp_path).read_text())
    assert meta["has_topk"] and meta["has_confidence"] and meta["has_preds"]
    nxt = _put(tmp_path / DATA_DIR / "layer_0.js")[1]["next"]
    assert nxt["target"] == [1, -1, 0] and nxt["cost"][1] is None and nxt["k"] == 2
    assert nxt["pred"] == [2, 0, 0, 1, 1, 2] and nxt["split"] == [-1, -1, 0, 2, -1, -1]
    with pytest.raises(ValueError, match="predecessors must be"):
        Link(0, 1, [0, 1], [1, 1], predecessors=np.zeros(2))


def test_cheapest_paths_sum_step_costs_and_skip_unusable_and_unmatched():
    from saematch.explorer.data import cheapest_paths

    adj = [
        Link(0, 1, [1, 0, 2, -1], [0.5, 0.1, 0.1, np.nan]),
        Link(1, 2, [0, 1, 2, 3], [0.1, 0.3, 0.05, 0.0]),
    ]
    descs = {0: ["a", "b", None, "d"]}
    # totals: 0 -> 0.5 + cost_1[1] = 0.8; 1 -> 0.1 + 0.1 = 0.2; 2 -> 0.15 (no text); 3 unmatched
    data = ExplorerData([0, 1, 2], adj, descs)
    assert cheapest_paths(data, 4) == [(0, 1), (0, 0)]
    assert cheapest_paths(data, 4, usable=lambda t: True) == [(0, 2), (0, 1), (0, 0)]


def test_title_with_backslash_newline_and_placeholder_reaches_the_page_intact(tmp_path):
    """__TITLE__ was substituted after the data was inserted, so a placeholder inside the data
    was replaced by the HTML-escaped title: a raw newline or backslash then broke the JSON."""
    import html as html_lib

    title = 'C:\\runs\\zoo\nsecond line __TITLE__ & "quoted" </script>'
    data = _data()
    data.title = title
    page = write_explorer(data, tmp_path).read_text()
    assert _meta(page)["title"] == title
    shown = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert html_lib.unescape(shown) == title


def _run_page_js(functions: list[str], expr: str) -> str:
    """expr evaluated by node with the named top-level functions of the pages' JS defined
    (common.js, then explorer.js and compare.js)."""
    import shutil
    import subprocess
    from importlib import resources

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (the page's JS is tested in node)")
    assets = resources.files("saematch.explorer").joinpath("assets")
    js = "\n".join(
        assets.joinpath(n).read_text() for n in ("common.js", "explorer.js", "compare.js")
    )
    src = []
    for name in functions:  # `const name = ...;` on one line, or `function name(...) {...}`
        m = re.search(rf"^const {name} = .*?;$", js, re.M) or re.search(
            rf"^function {name}\(.*?^\}}$", js, re.M | re.S
        )
        assert m, f"the pages' JS has no top-level {name}"
        src.append(m.group(0))
    script = "\n".join(src) + f"\nprocess.stdout.write(String({expr}));\n"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize(
    "text, words, want",
    [
        ("fish & chips", ["amp"], "fish &amp; chips"),  # was "fish &<mark>amp</mark>; chips"
        ("a <b> tag", ["lt"], "a &lt;b&gt; tag"),
        ("tom & jerry", ["&"], "tom <mark>&amp;</mark> jerry"),
        ("market mark", ["mark", "ark"], "<mark>mark</mark>et <mark>mark</mark>"),
        ("Fish & Fishing", ["fish"], "<mark>Fish</mark> &amp; <mark>Fish</mark>ing"),
    ],
)
def test_search_highlights_the_text_not_its_escaped_form(text, words, want):
    got = _run_page_js(["esc", "highlight"], f"highlight({json.dumps(text)}, {json.dumps(words)})")
    assert got == want
