"""Explorer at Gemma Scope size (16k features × 26 layers, synthetic): file sizes and times.

Writes the page for random bijections with exact LAPs from --exact-starts, descriptions of about
80 characters, then (when headless Chromium and chromedriver are installed) opens it over
file:// and times: page ready, the first selection (loads every layer file), a step along the
path, and the first word search (loads every description file).

    python scripts/bench_explorer.py --out /tmp/explorer_16k
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from saematch.explorer import DATA_DIR, ExplorerData, Link, write_explorer

WORDS = [
    "import",
    "return",
    "self",
    "class",
    "def",
    "list",
    "dict",
    "string",
    "token",
    "value",
    "error",
    "file",
    "path",
    "name",
]


def synthetic(width: int, n_layers: int, starts: list[int], seed: int = 0) -> ExplorerData:
    rng = np.random.default_rng(seed)
    layers = list(range(n_layers))
    link = lambda s, t: Link(s, t, rng.permutation(width), rng.lognormal(-7, 1, width))  # noqa: E731
    adj = [link(t, t + 1) for t in layers[:-1]]
    exact = [link(s, t) for s in starts for t in layers if t > s]
    vocab = np.array(WORDS)
    descs = {
        L: [" ".join(vocab[rng.integers(0, len(vocab), 12)]) for _ in range(width)] for L in layers
    }
    return ExplorerData(layers, adj, descs, exact=exact, settings={"synthetic": True})


def browse(html: Path, layer: int) -> dict[str, float]:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        opts.add_argument(a)
    d = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    wait = WebDriverWait(d, 120, ignored_exceptions=[StaleElementReferenceException])
    head = lambda: d.find_element(By.CSS_SELECTOR, "#feature h2").text  # noqa: E731
    try:
        out, t = {}, time.perf_counter()
        d.get(html.as_uri())
        wait.until(lambda _: "ready" in d.find_element(By.ID, "status").text)
        out["page_ready_s"] = time.perf_counter() - t
        q = d.find_element(By.ID, "q")
        t = time.perf_counter()
        q.send_keys(f"{layer}/100", Keys.ENTER)
        wait.until(lambda _: head() == f"Layer {layer} · feature 100")
        out["first_select_s"] = time.perf_counter() - t
        t, before = time.perf_counter(), head()
        d.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_DOWN)
        wait.until(lambda _: head() != before)
        out["step_s"] = time.perf_counter() - t
        q.send_keys(Keys.CONTROL, "a")
        t = time.perf_counter()
        q.send_keys("import self value")
        wait.until(lambda _: "matches" in d.find_element(By.ID, "results").text)
        out["first_word_search_s"] = time.perf_counter() - t
        return out
    finally:
        d.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/saematch_explorer_bench"))
    ap.add_argument("--width", type=int, default=16384)
    ap.add_argument("--layers", type=int, default=26)
    ap.add_argument("--exact-starts", type=int, nargs="*", default=[10, 12, 20])
    a = ap.parse_args()
    t = time.perf_counter()
    data = synthetic(a.width, a.layers, a.exact_starts)
    print(f"synthetic data: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    html = write_explorer(data, a.out)
    print(f"write_explorer: {time.perf_counter() - t:.1f} s")
    files = list((a.out / DATA_DIR).glob("*.js"))
    layer_b = sum(f.stat().st_size for f in files if f.name.startswith("layer_"))
    desc_b = sum(f.stat().st_size for f in files if f.name.startswith("desc_"))
    biggest = max(files, key=lambda f: f.stat().st_size)
    print(f"explorer.html {html.stat().st_size / 1e3:.0f} kB; {len(files)} data files: "
          f"layers {layer_b / 1e6:.1f} MB, descriptions {desc_b / 1e6:.1f} MB; "
          f"largest {biggest.name} {biggest.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    if shutil.which("chromium") and shutil.which("chromedriver"):
        for k, v in browse(html, a.exact_starts[0] if a.exact_starts else 0).items():
            print(f"chromium {k}: {v:.2f}")
    else:
        print("chromium/chromedriver not installed: browser times skipped")


if __name__ == "__main__":
    main()
