"""Text sources by name (docs/method.md §4): the stdlib corpus, the paper's three HF data sets,
local files.

Every source returns documents in a seeded random order; `n_docs` keeps the first n_docs of that
order, so the same (source, split, seed, n_docs) gives the same list. Hugging Face sets stream by
default and then shuffle with a buffer (approximate: a doc can only move within the buffer).
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from saematch.data.stdlib import stdlib_texts


class DatasetUnavailableError(RuntimeError):
    """A Hugging Face data set could not be reached or found in the local cache."""


@dataclass(frozen=True)
class HFSource:
    """A data set on the Hugging Face hub and the column that holds its text."""

    repo: str
    config: str | None
    text_key: str
    heldout_split: str | None  # what split="heldout" means; None: the set has no held-out split


HF_SOURCES = {
    "openwebtext": HFSource("Skylion007/openwebtext", None, "text", None),
    "code": HFSource("loubnabnl/github-small-near-dedup", None, "content", None),
    "wikitext": HFSource("wikitext", "wikitext-103-raw-v1", "text", "validation"),
}
STDLIB_SOURCES = {"stdlib_code": "code", "stdlib_prose": "prose", "stdlib": "mixed"}
SOURCES = (*STDLIB_SOURCES, *HF_SOURCES, "local_text")
LOCAL_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")
MIRROR_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".jsonl.gz": "json"}


def load_texts(
    source: str,
    *,
    split: str = "train",
    n_docs: int | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    text_key: str | None = None,
    **kw,
) -> list[str]:
    """Documents of a named source, seeded order, first n_docs (all when None).

    source: stdlib_code | stdlib_prose | stdlib (mixed) — split "train" or "heldout";
    openwebtext | code | wikitext — HF split name ("heldout" → wikitext "validation"), or
    path= a local parquet/jsonl mirror in the published column layout (split then ignored);
    text_key overrides the text column; extra kw: streaming (default True; False when
    HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set, to read the HF_DATASETS cache), buffer_size
    (10_000), cache_dir;
    local_text — path= a file, folder or glob of .txt (one doc per file) or .jsonl[.gz] (one doc
    per line, field text_key, default "text"). stdlib sources ignore text_key.
    """
    if n_docs is not None and n_docs < 0:
        raise ValueError(f"n_docs must be >= 0 or None, got {n_docs}")
    if source in STDLIB_SOURCES:
        _no_kw(source, kw)
        if split not in ("train", "heldout"):
            raise ValueError(f"stdlib split must be 'train' or 'heldout', got {split!r}")
        docs = list(stdlib_texts(STDLIB_SOURCES[source], heldout=split == "heldout"))
        return _seeded_take(docs, n_docs, seed)
    if source == "local_text":
        _no_kw(source, kw)
        if path is None:
            raise ValueError("source 'local_text' needs path= (a file, folder or glob)")
        docs = read_local_texts(path, text_key=text_key or "text")
        return _seeded_take(list(docs), n_docs, seed)
    if source in HF_SOURCES:
        return _hf_texts(HF_SOURCES[source], split, n_docs, seed, path, text_key=text_key, **kw)
    raise ValueError(f"unknown text source {source!r}; choose one of {', '.join(SOURCES)}")


def _no_kw(source: str, kw: dict) -> None:
    if kw:
        raise TypeError(f"source {source!r} takes no option(s) {sorted(kw)}")


def _seeded_take(docs: list[str], n_docs: int | None, seed: int) -> list[str]:
    order = np.random.default_rng(seed).permutation(len(docs))
    n = len(docs) if n_docs is None else min(n_docs, len(docs))
    return [docs[i] for i in order[:n]]


# -- local files ------------------------------------------------------------------
def _suffix(p: Path) -> str:
    name = p.name.lower()
    return next((s for s in sorted(LOCAL_SUFFIXES, key=len, reverse=True) if name.endswith(s)), "")


def _expand(path: str | os.PathLike, suffixes: Iterable[str]) -> list[Path]:
    """Files named by a file, a folder (searched recursively) or a glob, sorted by path."""
    suffixes = tuple(suffixes)
    p = Path(path).expanduser()
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(suffixes)]
    elif p.is_file():
        files = [p]
    else:
        files = [Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file()]
    if not files:
        raise FileNotFoundError(f"no {'/'.join(suffixes)} files at {str(path)!r}")
    return sorted(files)


def read_local_texts(path: str | os.PathLike, *, text_key: str = "text") -> Iterator[str]:
    """Non-empty documents of .txt (whole file) and .jsonl/.jsonl.gz (field text_key) files."""
    for f in _expand(path, LOCAL_SUFFIXES):
        suf = _suffix(f)
        if suf == ".txt":
            raw = f.read_bytes()
            if b"\x00" in raw:
                raise ValueError(
                    f"{f} is named .txt but is binary (NUL byte at offset {raw.index(0)}); "
                    "remove it from data.path or convert it to text"
                )
            text = raw.decode("utf-8", errors="replace")
            if text.strip():
                yield text
        elif suf in (".jsonl", ".jsonl.gz"):
            opener = gzip.open if suf == ".jsonl.gz" else open
            with opener(f, "rt", encoding="utf-8", errors="replace") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(
                            f"{f}:{lineno}: not a JSON line ({e.msg}, column {e.colno}); each "
                            "line of a .jsonl file must be one JSON object"
                        ) from None
                    if not isinstance(row, dict) or text_key not in row:
                        raise ValueError(
                            f"{f}:{lineno} has no field {text_key!r}; pass text_key= naming the "
                            "text field of each JSON line"
                        )
                    if isinstance(row[text_key], str) and row[text_key].strip():
                        yield row[text_key]
        else:
            raise ValueError(f"{f}: unsupported file type; use one of {LOCAL_SUFFIXES}")


# -- Hugging Face data sets -----------------------------------------------------------
def _offline() -> bool:
    flags = (os.environ.get(k, "").upper() for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(v in ("1", "ON", "YES", "TRUE") for v in flags)


def _builder_of(f: Path) -> str:
    """The datasets packaged builder that reads a mirror file."""
    for suffix, builder in MIRROR_BUILDERS.items():
        if f.name.lower().endswith(suffix):
            return builder
    raise ValueError(f"{f}: a mirror must be {'/'.join(MIRROR_BUILDERS)} files")


def _open_hf(spec: HFSource, split: str, path, streaming: bool, cache_dir):
    """The data set as a (streaming or map-style) datasets object."""
    import datasets  # heavy import, only when an HF source is used

    if path is not None:
        p = Path(path)
        if p.is_dir() and (p / "dataset_info.json").exists():
            ds = datasets.load_from_disk(str(p))
            return ds[next(iter(ds))] if isinstance(ds, datasets.DatasetDict) else ds
        files = _expand(path, MIRROR_BUILDERS)
        builders = {_builder_of(f) for f in files}
        if len(builders) != 1:
            raise ValueError(f"mirror at {path!r} mixes file types {sorted(builders)}; use one")
        return datasets.load_dataset(
            builders.pop(),
            data_files=[str(f) for f in files],
            split="train",
            streaming=streaming,
            cache_dir=cache_dir,
        )
    if split == "heldout":
        if spec.heldout_split is None:
            raise ValueError(f"{spec.repo} has only a train split; there is no 'heldout' split")
        split = spec.heldout_split
    try:
        return datasets.load_dataset(
            spec.repo, spec.config, split=split, streaming=streaming, cache_dir=cache_dir
        )
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as e:
        how = "streaming" if streaming else "from the HF_DATASETS cache"
        raise DatasetUnavailableError(
            f"could not load {spec.repo} ({spec.config or 'default'}, split {split!r}) {how}: "
            f"{e}. This machine may be offline. Pre-download it on a machine with network "
            f"(datasets.load_dataset({spec.repo!r}, {spec.config!r}, split={split!r})) and copy "
            "the HF_DATASETS cache here (offline mode then reads it with streaming=False), or "
            f"pass path= to a local parquet/jsonl mirror with a {spec.text_key!r} column, or use "
            "source='local_text'."
        ) from e


def wikitext_articles(lines: Iterable[str]) -> Iterator[str]:
    """Join WikiText line rows into articles.

    Each top-level heading " = Title = " starts an article; its lines (sub-headings included)
    are stripped, blank lines dropped, and joined with "\\n". Text before the first heading and
    heading-only articles are skipped.
    """
    article: list[str] = []
    for raw in lines:
        line = (raw or "").strip()
        if line.startswith("= ") and line.endswith(" =") and not line.startswith("= ="):
            if len(article) > 1:
                yield "\n".join(article)
            article = [line]
        elif line and article:
            article.append(line)
    if len(article) > 1:
        yield "\n".join(article)


def _buffer_shuffle(items: Iterable[str], buffer_size: int, seed: int) -> Iterator[str]:
    """Approximate shuffle of a stream with a fixed-size buffer (as datasets does)."""
    rng, buf = random.Random(seed), []
    for x in items:
        if len(buf) < buffer_size:
            buf.append(x)
            continue
        i = rng.randrange(buffer_size)
        yield buf[i]
        buf[i] = x
    rng.shuffle(buf)
    yield from buf


def _hf_texts(
    spec: HFSource,
    split: str,
    n_docs: int | None,
    seed: int,
    path,
    *,
    streaming: bool | None = None,
    buffer_size: int = 10_000,
    text_key: str | None = None,
    cache_dir: str | None = None,
) -> list[str]:
    if streaming is None:
        streaming = path is not None or not _offline()
    key = text_key or spec.text_key
    ds = _open_hf(spec, split, path, streaming, cache_dir)
    streaming = not hasattr(ds, "__len__")  # a save_to_disk mirror is map-style whatever asked
    if key not in (ds.column_names or [key]):
        raise ValueError(
            f"{spec.repo}: no column {key!r} (columns: {ds.column_names}); pass text_key="
        )
    if spec.repo == "wikitext":  # rows are lines: group before shuffling
        docs = wikitext_articles(row[key] for row in ds)
        stream = (
            _buffer_shuffle(docs, buffer_size, seed)
            if streaming
            else iter(_seeded_take(list(docs), None, seed))
        )
    else:
        ds = ds.shuffle(seed=seed, buffer_size=buffer_size) if streaming else ds.shuffle(seed=seed)
        stream = (row[key] for row in ds)
    out: list[str] = []
    try:
        for text in stream:
            if n_docs is not None and len(out) >= n_docs:
                break
            if isinstance(text, str) and text.strip():
                out.append(text)
    except ConnectionError as e:
        raise DatasetUnavailableError(
            f"lost the connection while streaming {spec.repo}: {e}; retry, or use a local "
            "mirror (path=) or the HF_DATASETS cache (streaming=False)"
        ) from e
    return out
