"""Write the explorer: one self-contained `explorer.html` plus per-layer data files beside it.

The page inlines its CSS, its JavaScript and a small summary (layers, settings, per-pair cost
histograms); the bulky arrays go to `explorer_data/*.js`, which the page loads with
`<script src>` on demand. Script tags work from `file://` where `fetch()` does not, so the
page opens from disk with no server and no network, at zoo size (1k × 6) and at Gemma Scope
size (16k × 26: the HTML stays tens of kB; one layer file holds its adjacent and exact links,
descriptions come in chunks of `DESC_CHUNK` features).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np

from saematch.atomic import atomic_write_text
from saematch.explorer.data import ExplorerData, Link, agreement, cost_bins, link_summary

DATA_DIR = "explorer_data"
DESC_CHUNK = 4096  # features per description file (16k × 26 layers -> 104 files of ~0.4 MB)
FORMAT_VERSION = 1


def _num(x: float, digits: int = 4) -> str:
    """A float as a short JS literal (null when not finite)."""
    return f"{x:.{digits}g}" if math.isfinite(x) else "null"


def _array(a: np.ndarray | None, kind: str) -> str:
    """A JS array literal of ints or floats (4 significant digits); `null` for None."""
    if a is None:
        return "null"
    if kind == "int":
        return "[" + ",".join(map(str, a.tolist())) + "]"
    return "[" + ",".join(_num(float(v)) for v in a.tolist()) + "]"


def _link_js(lk: Link) -> str:
    flat = lambda a: None if a is None else a.reshape(-1)  # noqa: E731
    k = 0 if lk.predecessors is None else lk.predecessors.shape[1]
    return (
        f'{{"src":{lk.src},"dst":{lk.dst},"target":{_array(lk.target, "int")},'
        f'"cost":{_array(lk.cost, "float")},"conf":{_array(lk.confidence, "float")},'
        f'"k":{k},"pred":{_array(flat(lk.predecessors), "int")},'
        f'"pred_cost":{_array(flat(lk.predecessor_cost), "float")},'
        f'"split":{_array(flat(lk.split_children), "int")}}}'
    )


def _put(name: str, body: str) -> str:
    """A data file's text: it hands its payload to the page's loader (JSONP style)."""
    return f"SAEX.put({json.dumps(name)},{body});\n"


def layer_file(data: ExplorerData, k: int) -> str:
    """Layer layers[k]: its link to the next layer, exact links from it, judge labels, preds."""
    L = data.layers[k]
    nxt = _link_js(data.adjacent[k]) if k < len(data.adjacent) else "null"
    exact = "[" + ",".join(_link_js(lk) for lk in data.exact if lk.src == L) + "]"
    judge = json.dumps({str(i): int(v) for i, v in data.judge.get(L, {}).items()})
    preds = {
        str(j): [[p.module, p.layer, p.feature, round(float(p.weight), 5)] for p in ps]
        for j, ps in data.predecessors.get(L, {}).items()
    }
    body = (
        f'{{"layer":{L},"next":{nxt},"exact":{exact},"judge":{judge},"preds":{json.dumps(preds)}}}'
    )
    return _put(f"layer_{L}", body)


def meta(data: ExplorerData) -> dict:
    """The summary inlined into the page: layers, settings, per-pair charts' data."""
    edges = cost_bins([*data.adjacent, *data.exact])
    pairs = []
    for lk in data.adjacent:
        s = link_summary(lk, edges)
        s["matching_score"] = data.matching_score.get(lk.src)
        s["judged"] = len(data.judge.get(lk.src, {}))
        pairs.append(s)
    exact = [
        {
            "src": lk.src,
            "dst": lk.dst,
            "agreement": agreement(lk, data.adjacent, data.layers),
            "mean_cost": float(np.nanmean(lk.cost)) if lk.width else None,
        }
        for lk in data.exact
    ]
    return {
        "format_version": FORMAT_VERSION,
        "title": data.title,
        "layers": data.layers,
        "width": data.width,
        "desc_chunk": DESC_CHUNK,
        "described": {
            str(L): sum(t is not None for t in data.descriptions.get(L, ())) for L in data.layers
        },
        "settings": data.settings,
        "bin_edges": edges.tolist(),
        "pairs": pairs,
        "exact": exact,
        "exact_starts": sorted({lk.src for lk in data.exact}),
        "has_confidence": any(lk.confidence is not None for lk in data.adjacent),
        "has_topk": any(lk.predecessors is not None for lk in data.adjacent),
        "has_judge": any(data.judge.values()),
        "judge_note": data.judge_note,
        "has_preds": any(data.predecessors.values()),
        "examples": [[int(L), int(f)] for L, f in data.examples],
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _asset(name: str) -> str:
    return resources.files("saematch.explorer").joinpath("assets", name).read_text("utf-8")


PLACEHOLDER = re.compile(r"/\*__CSS__\*/|/\*__JS__\*/|__META__|__TITLE__")


def render_html(
    info: dict,
    template: str = "explorer.html",
    scripts: tuple[str, ...] = ("common.js", "explorer.js"),
    styles: tuple[str, ...] = ("explorer.css",),
) -> str:
    """A page: its template with the CSS, the JS and the summary JSON inlined (no external URL).

    One pass over the template: inserted text is never searched again, so a title or a
    description holding "__TITLE__" (or a backslash, or a newline) cannot break the JSON.
    "</" in the JSON is written "<\\/", so no text closes the <script> that holds it."""
    blob = json.dumps(info, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")
    parts = {
        "/*__CSS__*/": "\n".join(_asset(n) for n in styles),
        "/*__JS__*/": "\n".join(_asset(n) for n in scripts),
        "__META__": blob,
        "__TITLE__": _html_escape(info["title"]),
    }
    return PLACEHOLDER.sub(lambda m: parts[m.group(0)], _asset(template))


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def write_explorer(data: ExplorerData, out_dir: str | Path) -> Path:
    """Write out_dir/explorer.html and out_dir/explorer_data/*.js; returns the HTML path.

    An existing explorer_data/ of an earlier write is replaced as a whole, so no stale layer
    file survives.
    """
    out = Path(out_dir)
    dd = out / DATA_DIR
    if dd.exists():
        shutil.rmtree(dd)
    dd.mkdir(parents=True)
    for k, L in enumerate(data.layers):
        (dd / f"layer_{L}.js").write_text(layer_file(data, k), encoding="utf-8")
        texts = list(data.descriptions.get(L, [None] * data.width))
        for c in range(0, data.width, DESC_CHUNK):
            body = json.dumps(texts[c : c + DESC_CHUNK], ensure_ascii=False)
            (dd / f"desc_{L}_{c // DESC_CHUNK}.js").write_text(
                _put(f"desc_{L}_{c // DESC_CHUNK}", body), encoding="utf-8"
            )
    info = meta(data)
    info["data_dir"] = DATA_DIR
    # a reader sees the old page or the new one; the page keeps the user's umask (to share)
    return atomic_write_text(out / "explorer.html", render_html(info))
