"""The two dictionaries of a comparison side by side: `compare.html` and its data files.

What it shows is `saematch.compare.compare`'s result (docs/method.md §3, §10): the exact
matching a -> b (rectangular when the widths differ: `perm[i] = j`, −1 where a is the wide
side and i is left free), each pair's MSE cost and |cos| of decoder and encoder, the shared
pairs of the partial matching at the rotation null (`shared_perm`, −1 = unshared, so a forced
pair of the exact matching is never shown as shared), and the families: the wide side's
features under the narrow feature they split (`family_parent`, κ margin as confidence).

The page is built like the explorer (page.py): the CSS, JS and a small summary inlined, the
arrays in `compare_data/pairs.js` and descriptions in chunks of DESC_CHUNK features beside it,
loaded with `<script src>` so the page opens from disk with no server and no network.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from saematch.atomic import atomic_write_text
from saematch.explorer.page import DESC_CHUNK, _array, _put, render_html

COMPARE_DATA_DIR = "compare_data"
COMPARE_PAGE = "compare.html"
FORMAT_VERSION = 1


@dataclass
class CompareView:
    """Per-feature arrays of one comparison (module doc).

    a, b: {"name", "width", "ref"}; perm, cost, shared_perm: (F_A,); cos: {part: (F_A,)} |cos|
    of the exact pairs (NaN where free); family_parent, family_confidence: (F_wide,) on side
    `wide` ("a" | "b"); pair_confidence: (F_A,) when the matching has one; descriptions:
    {"a": (F_A,) texts or None, "b": ...}; summary: Comparison.summary()'s numbers.
    """

    a: dict
    b: dict
    perm: np.ndarray
    cost: np.ndarray
    shared_perm: np.ndarray
    cos: dict[str, np.ndarray]
    family_parent: np.ndarray
    family_confidence: np.ndarray
    wide: str
    pair_confidence: np.ndarray | None = None
    descriptions: dict[str, Sequence[str | None] | None] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    title: str = "compare"

    def __post_init__(self) -> None:
        n_a, n_b = int(self.a["width"]), int(self.b["width"])
        self.perm = _ints(self.perm, n_a, n_b, "perm")
        self.shared_perm = _ints(self.shared_perm, n_a, n_b, "shared_perm")
        self.cost = _floats(self.cost, n_a, "cost")
        self.cos = {p: _floats(v, n_a, f"cos {p}") for p, v in self.cos.items()}
        if self.pair_confidence is not None:
            self.pair_confidence = _floats(self.pair_confidence, n_a, "pair_confidence")
        if self.wide not in ("a", "b"):
            raise ValueError(f"compare view: wide must be 'a' or 'b', got {self.wide!r}")
        n_w, n_n = (n_a, n_b) if self.wide == "a" else (n_b, n_a)
        self.family_parent = np.asarray(self.family_parent, dtype=np.int64).reshape(-1)
        if self.family_parent.size != n_w or (
            n_w and (self.family_parent.min() < -1 or self.family_parent.max() >= n_n)
        ):
            raise ValueError(
                f"compare view: family_parent must hold {n_w} narrow-side indices in "
                f"[0, {n_n}) or −1, got {self.family_parent.size} entries"
            )
        self.family_confidence = _floats(self.family_confidence, n_w, "family_confidence")
        for side, n in (("a", n_a), ("b", n_b)):
            texts = self.descriptions.get(side)
            if texts is not None and len(texts) != n:
                raise ValueError(
                    f"compare view: descriptions of {side} have {len(texts)} entries, not {n}"
                )


def _ints(x, n: int, n_other: int, name: str) -> np.ndarray:
    """(n,) int64 partner indices in [0, n_other) or −1, each partner used once."""
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    if x.size != n:
        raise ValueError(f"compare view: {name} has {x.size} entries, side a has {n} features")
    hit = x[x >= 0]
    if n and (x.min() < -1 or x.max() >= n_other):
        raise ValueError(f"compare view: {name} must be indices in [0, {n_other}) or −1")
    if hit.size != np.unique(hit).size:
        raise ValueError(f"compare view: two features of a share a partner in {name}")
    return x


def _floats(x, n: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size != n:
        raise ValueError(f"compare view: {name} has {x.size} entries, not {n}")
    return x


def view_from_comparison(
    c, refs: tuple[str, str] | None = None, descriptions: dict | None = None, title=None
) -> CompareView:
    """The view of a `saematch.compare.Comparison` (refs: the references as given)."""
    m, fam = c.matching, c.families
    a = {**c.a, "ref": refs[0] if refs else c.a["name"]}
    b = {**c.b, "ref": refs[1] if refs else c.b["name"]}
    return CompareView(
        a=a,
        b=b,
        perm=m.perm,
        cost=m.pair_mse,
        shared_perm=m.shared_perm,
        cos={p: np.abs(v) for p, v in c.mse_pair_cos.items()},
        family_parent=fam.parent,
        family_confidence=fam.confidence,
        wide=fam.wide,
        pair_confidence=m.confidence,
        descriptions=descriptions or {},
        summary=c.summary(),
        title=title or f"compare · {a['ref']} vs {b['ref']}",
    )


def view_counts(v: CompareView) -> dict:
    """What the page counts, from the arrays: pairs of the exact matching, shared pairs,
    unshared features of each side, family members and splits (narrow features with ≥ 2)."""
    n_b = int(v.b["width"])
    shared_b = np.zeros(n_b, dtype=bool)
    shared_b[v.shared_perm[v.shared_perm >= 0]] = True
    n_n = min(int(v.a["width"]), n_b)
    sizes = np.bincount(v.family_parent[v.family_parent >= 0], minlength=n_n)
    return {
        "pairs": int((v.perm >= 0).sum()),
        "shared": int((v.shared_perm >= 0).sum()),
        "unshared_a": int((v.shared_perm < 0).sum()),
        "unshared_b": int((~shared_b).sum()),
        "forced": int(((v.perm >= 0) & (v.shared_perm != v.perm)).sum()),
        "family_members": int((v.family_parent >= 0).sum()),
        "family_splits": int((sizes >= 2).sum()),
    }


def _json_num(x) -> object:
    """A JSON-safe scalar: non-finite floats become null."""
    if isinstance(x, bool | int | str) or x is None:
        return x
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return str(x)


def compare_meta(v: CompareView) -> dict:
    """The summary inlined into the page."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": "compare",
        "title": v.title,
        "a": {k: _json_num(x) for k, x in v.a.items()},
        "b": {k: _json_num(x) for k, x in v.b.items()},
        "wide": v.wide,
        "parts": list(v.cos),
        "counts": view_counts(v),
        "summary": {k: _json_num(x) for k, x in v.summary.items()},
        "has_pair_confidence": v.pair_confidence is not None,
        "described": {s: v.descriptions.get(s) is not None for s in ("a", "b")},
        "desc_chunk": DESC_CHUNK,
        "data_dir": COMPARE_DATA_DIR,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def pairs_file(v: CompareView) -> str:
    """compare_data/pairs.js: every per-feature array (JS literals, 4 significant digits)."""
    cos = ",".join(f"{json.dumps(p)}:{_array(x, 'float')}" for p, x in v.cos.items())
    return _put(
        "pairs",
        f'{{"perm":{_array(v.perm, "int")},"cost":{_array(v.cost, "float")},'
        f'"shared":{_array(v.shared_perm, "int")},"cos":{{{cos}}},'
        f'"conf":{_array(v.pair_confidence, "float")},'
        f'"parent":{_array(v.family_parent, "int")},'
        f'"fconf":{_array(v.family_confidence, "float")}}}',
    )


def write_compare_page(v: CompareView, out_dir: str | Path) -> Path:
    """Write out_dir/compare.html and out_dir/compare_data/*.js; returns the HTML path.

    An earlier compare_data/ is replaced as a whole (no stale file survives)."""
    out = Path(out_dir)
    dd = out / COMPARE_DATA_DIR
    if dd.exists():
        shutil.rmtree(dd)
    dd.mkdir(parents=True)
    (dd / "pairs.js").write_text(pairs_file(v), encoding="utf-8")
    for side in ("a", "b"):
        texts = v.descriptions.get(side)
        if texts is None:
            continue
        texts = list(texts)
        for c in range(0, len(texts), DESC_CHUNK):
            name = f"desc_{side}_{c // DESC_CHUNK}"
            body = json.dumps(texts[c : c + DESC_CHUNK], ensure_ascii=False)
            (dd / f"{name}.js").write_text(_put(name, body), encoding="utf-8")
    html = render_html(
        compare_meta(v),
        template="compare.html",
        scripts=("common.js", "compare.js"),
        styles=("explorer.css", "compare.css"),
    )
    return atomic_write_text(out / COMPARE_PAGE, html)
