"""Rewrite citations of the old specification into citations of docs/method.md, in place.

    python scripts/rewrite_citations.py            # rewrite, then list what needs a hand
    python scripts/rewrite_citations.py --dry-run  # list what would change, write nothing

For the *.py, *.yaml and *.md files under saematch/ experiments/ conf/ scripts/ tests/:

* "SPEC §n" -> "docs/method.md §n" (method.md keeps the specification's section numbers),
  "SPEC.md" -> "docs/method.md";
* the README sections that moved to docs/method.md (`README_MOVED`) -> their section there.

A rewritten .py line longer than the project's line length (pyproject's ruff line-length) is
wrapped where that is safe: a comment line becomes two, a trailing comment moves above its line,
a docstring line breaks at a space (never inside "docs/method.md §n"). Every other long line
(code, string literals), and every citation check_citations.py still flags, is printed for a
hand fix.
Run it once, after merging, then `ruff format` and `python scripts/check_citations.py`.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_citations import ROOT, SELF, SUFFIXES, check  # noqa: E402

FOLDERS = ("saematch", "experiments", "conf", "scripts", "tests")
SPEC_SECTION = (re.compile(r"\bSPEC §"), "docs/method.md §")
SPEC_FILE = (re.compile(r"\bSPEC\.md\b"), "docs/method.md")
SPEC_FORMULAS = (re.compile(r"\bthe SPEC formulas\b"), "the docs/method.md §3 formulas")
# Citations of README sections whose content moved to docs/method.md (the README of
# 2026-12-05 is an introduction): exact text -> replacement.
README_MOVED = {
    'README "How solver=auto stays exact and fast"': "docs/method.md §13",
    'README "Feature flow"': "docs/method.md §15",
    'README "Steering"': "docs/method.md §15",
    'README, "The match file"': "docs/method.md §14",
    'README "The match file"': "docs/method.md §14",
    'README "Ground truth"': "docs/method.md §9",
    "swap regret per matched pair (README Definitions)": "swap regret per matched pair "
    "(docs/method.md §11)",
    "swap regret (README Definitions)": "swap regret (docs/method.md §11)",
    "(rotation null, README)": "(rotation null, docs/method.md §10)",
    "null: 0.5 (README)": "null: 0.5 (docs/method.md §15)",
    "README's equivalence": "docs/method.md §10's equivalence",
}
UNBREAKABLE = "docs/method.md §"
PRAGMAS = ("# noqa", "# type:", "# pragma", "# fmt:", "# pyright:")  # must stay on their line


def line_length(root: Path = ROOT) -> int:
    """ruff's line-length from pyproject.toml (100 when it says nothing)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r"^line-length\s*=\s*(\d+)", text, re.MULTILINE)
    return int(m.group(1)) if m else 100


def rewrite_text(text: str) -> str:
    """text with every known citation rewritten (no wrapping)."""
    for pattern, new in (SPEC_FORMULAS, SPEC_SECTION, SPEC_FILE):
        text = pattern.sub(new, text)
    for old, new in README_MOVED.items():
        text = text.replace(old, new)
    return text


def _break_at(text: str, limit: int) -> int | None:
    """Index of the last space at or before `limit` that is a safe break: not inside a
    citation, and leaving at least 12 characters on the first line."""
    safe = text.replace(UNBREAKABLE, UNBREAKABLE.replace(" ", "\0"))
    start = len(text) - len(text.lstrip()) + 12
    i = safe.rfind(" ", start, limit + 1)
    return i if i >= start else None


def _line_kinds(text: str) -> dict[int, tuple[str, int]]:
    """1-based line -> ("comment", col) for a line that is only a comment, ("trailing", col)
    for code then a comment starting at col, ("docstring", 0) for a line of a docstring."""
    kinds: dict[int, tuple[str, int]] = {}
    lines = text.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            (n, col) = tok.start
            kinds[n] = ("comment" if not lines[n - 1][:col].strip() else "trailing", col)
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, scopes) and node.body:
            first = node.body[0]
            value = getattr(first, "value", None)
            if isinstance(first, ast.Expr) and isinstance(getattr(value, "value", None), str):
                for n in range(first.lineno, (first.end_lineno or first.lineno) + 1):
                    kinds[n] = ("docstring", 0)
    return kinds


def _continues(line: str, prefix: str) -> bool:
    """True when `line` continues a paragraph whose lines start with `prefix` (same indent,
    not blank, not a column-aligned table row, not a list item, not a closing quote)."""
    body = line[len(prefix) :]
    return (
        line.startswith(prefix)
        and bool(body.strip())
        and not body[0].isspace()
        and "   " not in body
        and not body.startswith(("- ", "* ", '"' * 3, "'" * 3))
    )


def _wrap_line(
    lines: list[str], i: int, kind: str, col: int, next_kind: str, limit: int
) -> set[int]:
    """Wrap lines[i] (0-based; `kind` as _line_kinds says, `next_kind` that of lines[i + 1])
    in place; returns the indices of the lines that changed."""
    s = lines[i]
    indent = s[: len(s) - len(s.lstrip())]
    if kind == "trailing":  # the comment moves above its line; a pragma must stay where it is
        if s[col:].startswith(PRAGMAS) or len(s[:col].rstrip()) > limit:
            return set()
        lines[i : i + 1] = [indent + s[col:], s[:col].rstrip()]
        return {i, i + 1}
    aligned = "   " in s.strip()  # a column-aligned table row: a hand fix reads better
    cut = _break_at(s, limit) if kind in ("comment", "docstring") and not aligned else None
    if cut is None:
        return set()
    prefix = indent + "# " if kind == "comment" else indent
    head, tail = s[:cut].rstrip(), s[cut + 1 :]
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    if next_kind == kind and _continues(nxt, prefix):
        lines[i : i + 2] = [head, prefix + tail + " " + nxt[len(prefix) :]]  # reflow
    else:
        lines[i : i + 1] = [head, prefix + tail]
    return {i, i + 1}


def wrap_python(text: str, limit: int) -> tuple[str, list[int]]:
    """text with the lines the rewrite made longer than `limit` wrapped where safe, and the
    1-based lines still too long that contain a rewritten citation.

    Only comments and docstrings are wrapped (their text is not code, so the program stays the
    same), and only lines holding a rewritten citation or text moved by a wrap; a string literal
    or code over the limit is left for a hand fix."""
    lines = text.split("\n")
    todo = {i for i, s in enumerate(lines) if len(s) > limit and UNBREAKABLE in s}
    for _ in range(20):  # a reflowed paragraph may take a pass per line
        kinds = _line_kinds("\n".join(lines))
        todo = {i for i in todo if i < len(lines) and len(lines[i]) > limit}
        if not todo:
            break
        changed: set[int] = set()
        for i in sorted(todo, reverse=True):  # bottom up: indices above stay valid
            kind, col = kinds.get(i + 1, ("code", 0))
            shift = len(lines)
            next_kind = kinds.get(i + 2, ("code", 0))[0]
            touched = _wrap_line(lines, i, kind, col, next_kind, limit)
            shift = len(lines) - shift
            changed = {j + shift if j > i else j for j in changed} | touched
        if not changed:
            break
        todo = changed
    new = "\n".join(lines)
    try:
        ast.parse(new)
    except SyntaxError:
        new = text  # keep the unwrapped text: a hand fix is safer
    return new, [n for n, s in enumerate(new.split("\n"), 1) if len(s) > limit and UNBREAKABLE in s]


def rewrite_tree(root: Path = ROOT, write: bool = True) -> dict[str, list[int]]:
    """Rewrite every file under root's FOLDERS; returns {changed file: its lines left long}."""
    limit, changed = line_length(root), {}
    for folder in FOLDERS:
        for f in sorted((root / folder).rglob("*")):
            rel = f.relative_to(root).as_posix()
            if not f.is_file() or f.suffix not in SUFFIXES or rel in SELF:
                continue
            old = f.read_text(encoding="utf-8")
            new = rewrite_text(old)
            if new == old:
                continue
            left: list[int] = []
            if f.suffix == ".py":
                new, left = wrap_python(new, limit)
            changed[rel] = left
            if write:
                f.write_text(new, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --dry-run list) the citations; print what still needs a hand."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="list the files, write nothing")
    args = ap.parse_args(argv)
    changed = rewrite_tree(write=not args.dry_run)
    verb = "would rewrite" if args.dry_run else "rewrote"
    print(f"{verb} citations in {len(changed)} files")
    todo = [f"{rel}:{n}: longer than the line length" for rel, ns in changed.items() for n in ns]
    if not args.dry_run:
        todo += [str(p) for p in check()]
    for line in todo:
        print(line)
    return 1 if todo else 0


if __name__ == "__main__":
    sys.exit(main())
