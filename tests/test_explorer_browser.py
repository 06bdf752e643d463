"""The explorer in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`)
opens explorer.html built from the test zoo over file://, searches, follows a path with keys and
the mouse, and every feature id the page shows is checked against the matchings computed here.

Without Chromium the test skips with the reason, except under CI=true, where it fails
(`.ci/run` installs it)."""

from __future__ import annotations

import csv
import os
import shutil
import struct

import numpy as np
import pytest
from experiment_helpers import compose_cfg, context, run, run_dir_of

WINDOW = (1280, 900)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
INSTALL = "apt-get install -y chromium chromium-driver (Debian/Ubuntu), then pip install selenium"


def _missing(why: str):
    if IN_CI:
        pytest.fail(f"CI=true but {why}; .ci/run must install it: {INSTALL}")
    pytest.skip(f"{why}: the explorer's browser test needs it ({INSTALL})")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    exe = os.environ.get("SAEMATCH_CHROMIUM") or next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    drv = os.environ.get("SAEMATCH_CHROMEDRIVER") or shutil.which("chromedriver")
    if not exe or not drv:
        _missing(f"headless Chromium not found (browser: {exe}, chromedriver: {drv})")
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager never tries to download one
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=drv))
    # the viewport itself is WINDOW (a window size would include the browser's frame)
    metrics = {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(test_zoo, tmp_path_factory):
    """A judge_by_layer run (lexical proxy), then the explorer showing its labels."""
    jcfg = compose_cfg(
        "judge_by_layer",
        ["experiment.n_paths=12", "experiment.variants=[folded]"],
        test_zoo,
        tmp_path_factory.mktemp("judge"),
    )
    run(jcfg)
    jdir = run_dir_of(jcfg)
    cfg = compose_cfg(
        "explorer", [f"experiment.judge_run={jdir}"], test_zoo, tmp_path_factory.mktemp("explorer")
    )
    res = run(cfg)
    ctx = context(cfg)
    layers = list(ctx.layers)
    by = ctx.saes
    adj = {t: np.asarray(m.perm) for t, m in ctx.matchings().items()}
    exact = {
        (s, L): np.asarray(ctx.matchings(saes={s: by[s], L: by[L]})[s].perm)
        for s in layers
        for L in layers
        if s + 1 < L
    }
    with open(jdir / "judge_pairs.csv", newline="") as f:
        labels = {
            (int(r["layer"]), int(r["feature"])): int(r["label"])
            for r in csv.DictReader(f)
            if r["label"].isdigit()
        }
    return {
        "html": run_dir_of(cfg) / "explorer.html",
        "res": res,
        "layers": layers,
        "adj": adj,
        "exact": exact,
        "labels": labels,
        "descs": {L: ctx.descriptions(L) for L in layers},
    }


def path_of(layers, adj, L0, f0) -> dict[int, int]:
    """{layer: composed partner} of feature f0 at L0, forward and backward (Sec. 3.2)."""
    out, k0 = {L0: f0}, layers.index(L0)
    for k in range(k0 + 1, len(layers)):
        out[layers[k]] = int(adj[layers[k - 1]][out[layers[k - 1]]])
    for k in range(k0 - 1, -1, -1):
        out[layers[k]] = int(np.argsort(adj[layers[k]])[out[layers[k + 1]]])
    return out


def test_explorer_page_in_chromium(browser, page):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    html, layers, adj = page["html"], page["layers"], page["adj"]
    text = html.read_text()
    assert "http://" not in text and "https://" not in text  # no network, no CDN
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    browser.get(html.as_uri())
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "ready"))
    head = lambda: browser.find_element(By.CSS_SELECTOR, "#feature h2").text  # noqa: E731

    # "/" focuses the search; "layer/index" + Enter selects
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    q = browser.switch_to.active_element
    assert q.get_attribute("id") == "q"
    L0, f0 = layers[1], 7
    q.send_keys(f"{L0}/{f0}", Keys.ENTER)
    wait.until(lambda d: head() == f"Layer {L0} · feature {f0}")

    # the path table: composed partners forward and backward, exact LAP partners from L0
    want = path_of(layers, adj, L0, f0)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.path tbody tr")
    assert [r.get_attribute("data-l") for r in rows] == [str(L) for L in layers]
    for r, L in zip(rows, layers, strict=True):
        cells = r.find_elements(By.TAG_NAME, "td")
        assert cells[1].text == f"L{L}/{want[L]}"
        if L > L0 + 1:
            assert cells[-1].text.split()[0] == f"L{L}/{page['exact'][(L0, L)][f0]}"
    assert "selected" in rows[1].get_attribute("class")
    desc = page["descs"][L0].get(f0)
    assert " ".join(desc.split())[:20] in " ".join(
        browser.find_element(By.CSS_SELECTOR, "#feature .bigdesc").text.split()
    )

    # arrow keys step along the path; the address follows
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_DOWN)
    wait.until(lambda d: head() == f"Layer {layers[2]} · feature {want[layers[2]]}")
    assert browser.current_url.endswith(f"#L{layers[2]}/{want[layers[2]]}")
    body.send_keys(Keys.ARROW_UP, Keys.ARROW_UP)
    wait.until(lambda d: head() == f"Layer {layers[0]} · feature {want[layers[0]]}")

    # words of a description: the feature is among the results; the mouse picks it
    # a feature whose first three words few descriptions share: the page lists the first 200
    # matches (words found earliest first), so a common prefix can push it off the list
    width = len(next(iter(page["adj"].values())))
    every = [(page["descs"][L].get(i) or "").lower() for L in layers for i in range(width)]

    def n_matches(i: int) -> int:
        ws = (page["descs"][layers[-1]].get(i) or "").lower().split()[:3]
        return sum(all(w in d for w in ws) for d in every)

    Lw = layers[-1]
    usable = [i for i in range(50) if len((page["descs"][Lw].get(i) or "").split()) > 3]
    fw = min(usable, key=n_matches)
    assert n_matches(fw) <= 200
    words = " ".join(page["descs"][Lw].get(fw).lower().split()[:3])
    body.send_keys("/")
    q = browser.switch_to.active_element
    q.send_keys(Keys.CONTROL, "a")
    q.send_keys(words)
    item = f"L{Lw}/{fw}"
    wait.until(lambda d: item in d.find_element(By.ID, "results").text)
    hit = next(
        li
        for li in browser.find_elements(By.CSS_SELECTOR, "#results li[data-i]")
        if li.find_element(By.CSS_SELECTOR, "b").text == item
    )
    hit.click()
    wait.until(lambda d: head() == f"Layer {Lw} · feature {fw}")

    # a judged path shows the judge's label on each step, and a click on a link follows it
    start = next(i for (t, i) in page["labels"] if t == layers[0])
    browser.get(f"{html.as_uri()}#L{layers[0]}/{start}")
    wait.until(lambda d: head() == f"Layer {layers[0]} · feature {start}")
    want = path_of(layers, adj, layers[0], start)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.path tbody tr")
    names = {1: "DIFFERENT", 2: "MAYBE", 3: "SAME"}
    for k in range(1, len(layers)):
        lab = page["labels"].get((layers[k - 1], want[layers[k - 1]]))
        pills = rows[k].find_elements(By.CSS_SELECTOR, ".pill")
        assert [p.text for p in pills] == ([names[lab]] if lab else [])
    rows[-1].find_element(By.CSS_SELECTOR, "a.fid").click()
    wait.until(lambda d: head() == f"Layer {layers[-1]} · feature {want[layers[-1]]}")

    # charts: one box per layer pair, the path's steps drawn over them
    n_pairs = len(layers) - 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-cost circle")) == n_pairs
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-score rect[data-pair]")) == n_pairs
    assert not browser.find_element(By.ID, "error").is_displayed()
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe

    png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == WINDOW and len(png) > 30_000  # a drawn page, not a blank one


def test_missing_data_file_is_a_clear_message(browser, page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shutil.copy(page["html"], tmp_path / "explorer.html")  # no explorer_data/ beside it
    browser.get(f"{(tmp_path / 'explorer.html').as_uri()}#L{page['layers'][0]}/0")
    err = browser.find_element(By.ID, "error")
    WebDriverWait(browser, 10).until(lambda d: err.is_displayed())
    assert "keep the folder explorer_data/ beside this page" in err.text


def test_unmatched_confidence_topk_and_flow_in_chromium(browser, tmp_path):
    """A partial matching (−1 = unmatched) with the optional fields of a match file and a flow
    graph: the page flags where a path ends and shows every optional column."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from saematch.explorer import ExplorerData, Link, Predecessor, write_explorer

    ones = np.ones(6)
    topk = np.array([[0, 2]] * 6)
    adj = [
        Link(0, 1, [1, -1, 0, 3, 4, 5], [0.1, np.nan, 0.2, 0.3, 0.4, 0.5], confidence=ones * 0.25,
             predecessors=topk, predecessor_cost=ones[:, None] * [0.1, 0.2]),
        Link(1, 2, [2, 0, 1, -1, 4, 5], [0.1, 0.2, 0.3, np.nan, 0.5, 0.6], confidence=ones),
    ]  # fmt: skip
    descs = {L: [f"layer {L} feature {i}" for i in range(6)] for L in (0, 1, 2)}
    preds = {1: {2: [Predecessor("mlp", 1, 4, 0.9)]}}
    html = write_explorer(ExplorerData([0, 1, 2], adj, descs, predecessors=preds), tmp_path)
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    cells = lambda: [  # noqa: E731
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in browser.find_elements(By.CSS_SELECTOR, "table.path tbody tr")
    ]

    browser.get(f"{html.as_uri()}#L0/1")  # 0/1 has no partner in layer 1
    wait.until(lambda d: "Layer 0 · feature 1" in d.find_element(By.ID, "feature").text)
    assert "unmatched to L1" in browser.find_element(By.ID, "feature").text
    assert [r[1] for r in cells()] == ["L0/1", "unmatched", "unmatched"]
    heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.path th")]
    assert "confidence" in heads

    browser.get(f"{html.as_uri()}#L1/2")  # nobody at layer 0 maps to 1/2
    wait.until(lambda d: "Layer 1 · feature 2" in d.find_element(By.ID, "feature").text)
    rows = cells()
    assert [r[1] for r in rows] == ["unmatched", "L1/2", "L2/1"]
    assert rows[2][3] == "1.00"  # the confidence of the step 1/2 -> 2/1
    nb = browser.find_element(By.ID, "neighbours").text
    assert "cheapest at L0 (top 2)" in nb and "L0/0" in nb and "L0/2" in nb
    assert "flow: from mlp" in nb and "mlp L1/4" in nb  # another SAE's feature: not a link
    assert not browser.find_elements(By.CSS_SELECTOR, '#neighbours a[href="#L1/4"]')


def test_compare_page_in_chromium(browser, tmp_path):
    """compare.html (saematch.explorer.compare_view) of a 48 × 60 comparison: the filters count
    what the comparison counts, a search by id shows the pair and the family computed here,
    words search the descriptions, keys step through the rows, a click follows a link."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from test_compare import split_pair

    from saematch.compare import compare
    from saematch.explorer.compare_view import view_from_comparison, write_compare_page

    a, b = split_pair(seed=7)  # b = a's features + near-copies of a's first 12: families of 2
    c = compare(a, b)
    s, m = c.summary(), c.matching
    descs = {"a": [f"alpha <{i}> & token" for i in range(48)], "b": None}
    html = write_compare_page(view_from_comparison(c, descriptions=descs), tmp_path)
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    browser.get_log("browser")  # drop what earlier tests left in the log
    browser.get(html.as_uri())
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "ready"))
    count = lambda: browser.find_element(By.ID, "count").text  # noqa: E731
    sel = Select(browser.find_element(By.ID, "status-filter"))
    opts = {o.get_attribute("value"): o.text for o in sel.options}
    want = {"all": 48 + 12, "shared": s["shared_pairs"], "unshared-a": s["unshared_a"],
            "unshared-b": s["unshared_b"], "split": s["family_splits"]}  # fmt: skip
    for key, n in want.items():
        assert opts[key].endswith(f"({n})"), (key, opts[key])
        sel.select_by_value(key)
        wait.until(lambda d, n=n: count().startswith(f"{n} rows"))
        rows = browser.find_elements(By.CSS_SELECTOR, "table.pairs tbody tr")
        assert len(rows) == n
    sel.select_by_value("all")

    # a split narrow feature: its two family members on b, the exact partner among them
    i = int(
        np.flatnonzero(np.bincount(m.family_parent[m.family_parent >= 0], minlength=48) == 2)[0]
    )
    members = sorted(np.flatnonzero(m.family_parent == i).tolist())
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("/")
    q = browser.switch_to.active_element
    assert q.get_attribute("id") == "q"
    q.send_keys(f"a/{i}", Keys.ENTER)
    head = lambda: browser.find_element(By.CSS_SELECTOR, "#detail h2").text  # noqa: E731
    wait.until(lambda d: head() == f"a/{i} ↔ b/{m.perm[i]}")
    fam = browser.find_elements(By.CSS_SELECTOR, "#detail .fam tbody tr td:first-child")
    assert sorted(int(t.text.split("/")[1]) for t in fam) == members
    assert int(m.perm[i]) in members
    detail = browser.find_element(By.ID, "detail").text
    assert f"alpha <{i}> & token" in detail  # escaped text shown as text
    assert browser.current_url.endswith(f"#a/{i}")

    # a click on a family member selects it (on side b, wide): its row and its parent
    j = next(x for x in members if x != m.perm[i])
    browser.find_element(By.CSS_SELECTOR, f'#detail .fam a.fid[data-f="{j}"]').click()
    wait.until(lambda d: head().endswith(f"b/{j}"))
    assert f"belongs to the family of a/{i}" in browser.find_element(By.ID, "detail").text

    # words search the descriptions: one feature's text
    q = browser.find_element(By.ID, "q")
    q.send_keys(Keys.CONTROL, "a")
    q.send_keys("<17>", Keys.ENTER)
    wait.until(lambda d: count().startswith("1 rows"))
    row = browser.find_element(By.CSS_SELECTOR, "table.pairs tbody tr")
    assert row.get_attribute("data-a") == "17"
    assert row.find_element(By.TAG_NAME, "mark").text == "<17>"

    # keys step through the rows; an out-of-range id is a clear message
    q.send_keys(Keys.CONTROL, "a")
    q.send_keys(Keys.BACKSPACE, Keys.ENTER)
    wait.until(lambda d: count().startswith("60 rows"))
    browser.get(f"{html.as_uri()}#a/3")
    wait.until(lambda d: head().startswith("a/3 "))
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    wait.until(lambda d: head().startswith("a/4 "))
    browser.get(f"{html.as_uri()}#b/999")
    err = browser.find_element(By.ID, "error")
    wait.until(lambda d: err.is_displayed())
    assert "side b has features 0…59" in err.text
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
