"""A text corpus every Python install carries: the standard library's source (docs/method.md §8).

Two splits: "code" (whole .py files) and "prose" (their docstrings and comments). Files are
ordered by relative path and assigned to train or held-out by a hash of that path, so the
split is the same on every run of the same Python.
"""

from __future__ import annotations

import ast
import hashlib
import io
import sysconfig
import tokenize
from functools import lru_cache
from pathlib import Path

SKIP_DIRS = {
    "test",
    "tests",
    "idle_test",
    "site-packages",
    "dist-packages",
    "__pycache__",
    "lib2to3",
    "turtledemo",
    "ensurepip",
    "venv",
    "encodings",
}
HELDOUT_EVERY = 10  # one file in ten (by path hash) is held out for evaluation


def stdlib_root() -> Path:
    """Folder of the running Python's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


@lru_cache(maxsize=1)
def stdlib_files() -> tuple[Path, ...]:
    """Every usable .py file of the standard library, sorted by relative path."""
    root = stdlib_root()
    files = [
        p for p in root.rglob("*.py") if not SKIP_DIRS.intersection(p.relative_to(root).parts[:-1])
    ]
    return tuple(sorted(files, key=lambda p: p.relative_to(root).as_posix()))


def is_heldout(path: Path) -> bool:
    """Whether a file belongs to the held-out split (stable hash of its relative path)."""
    rel = path.relative_to(stdlib_root()).as_posix()
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % HELDOUT_EVERY == 0


def prose_of(source: str) -> str:
    """Docstrings and comments of a Python source, one paragraph each."""
    parts: list[str] = []
    try:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    parts.append(doc.strip())
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                if len(text) > 3 and not text.startswith("!"):
                    parts.append(text)
    except (SyntaxError, tokenize.TokenError, ValueError):
        return ""
    return "\n\n".join(parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


@lru_cache(maxsize=8)
def stdlib_texts(split: str = "code", heldout: bool = False) -> tuple[str, ...]:
    """Documents of one split ("code", "prose" or "mixed"), train or held-out, in file order."""
    if split not in ("code", "prose", "mixed"):
        raise ValueError(f"unknown stdlib split {split!r}; choose 'code', 'prose' or 'mixed'")
    out: list[str] = []
    for p in stdlib_files():
        if is_heldout(p) != heldout:
            continue
        src = _read(p)
        if split in ("code", "mixed") and src.strip():
            out.append(src)
        if split in ("prose", "mixed"):
            prose = prose_of(src)
            if prose.strip():
                out.append(prose)
    return tuple(out)
