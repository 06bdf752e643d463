"""Screenshot an explorer page in headless Chromium (Debian's chromium + chromium-driver).

    python scripts/explorer_screenshot.py outputs/explorer/<time>/explorer.html \
        --select 2/17 --out docs/explorer.png

Selects a feature through the search box (and, with --search, leaves a word search open),
then saves a PNG of the viewport (1280 px wide: a laptop screen).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def screenshot(html: Path, out: Path, select: str | None, search: str | None, size=(1280, 860)):
    """Open `html` over file://, type `select` (layer/index) + Enter, optionally `search`."""
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    exe, drv = shutil.which("chromium"), shutil.which("chromedriver")
    if not exe or not drv:
        raise SystemExit(
            "needs chromium and chromedriver: apt-get install chromium chromium-driver"
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        opts.add_argument(a)
    d = webdriver.Chrome(options=opts, service=Service(drv))
    metrics = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False}
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    wait = WebDriverWait(d, 60, ignored_exceptions=[StaleElementReferenceException])
    try:
        d.get(Path(html).resolve().as_uri())
        wait.until(lambda _: "ready" in d.find_element(By.ID, "status").text)
        q = d.find_element(By.ID, "q")
        if select:
            q.send_keys(select, Keys.ENTER)
            wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, "table.path tr.selected"))
        if search:
            q = d.find_element(By.ID, "q")
            q.click()
            q.send_keys(Keys.CONTROL, "a")
            q.send_keys(search)
            wait.until(lambda _: "match" in d.find_element(By.ID, "results").text)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(out))
    finally:
        d.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--out", type=Path, default=Path("explorer.png"))
    ap.add_argument("--select", default=None, help="layer/index, e.g. 2/17")
    ap.add_argument("--search", default=None, help="words to leave in the search box")
    ap.add_argument("--height", type=int, default=860)
    a = ap.parse_args()
    screenshot(a.html, a.out, a.select, a.search, size=(1280, a.height))
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
