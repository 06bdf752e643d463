"""Check that the repository cites only documents it contains, at sections they have.

    python scripts/check_citations.py            # exit 1 and one line per problem, else 0

Kinds of problem, in the source, config, test and doc files (`SOURCES`, `DOCS`):

* outside:        a citation of the old specification that lived outside the repository
                  (its name, alone or with §n or .md); cite `docs/method.md §n` instead;
* section:        `docs/method.md §n` where docs/method.md has no heading "## §n ...";
* readme-section: README.md named with a quoted or capitalised title after it, where README.md
                  has no heading with that title;
* doc-link:       a `docs/<name>.md` that does not exist.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("saematch", "experiments", "conf", "scripts", "tests")  # folders searched
DOCS = ("README.md", "docs")  # the docs are checked too (their links and sections)
SUFFIXES = (".py", ".yaml", ".md")
OLD = "SP" + "EC"  # the old specification's name, spelled apart so this file never cites it

OUTSIDE = re.compile(rf"\b{OLD}(?:\.md)?\b")  # {OLD}_TABLE, {OLD}IAL: no word boundary
METHOD_SECTION = re.compile(r"docs/method\.md §(\d+)(?:[–-](\d+))?")
README_SECTION = re.compile(r"\bREADME(?:'s|,)?\s+(?:\"([^\"\n]+)\"|([A-Z][A-Za-z-]+)\b)")
DOC_LINK = re.compile(r"\bdocs/([\w./-]+?\.md)\b")
HEADING = re.compile(r"^#+\s+(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    """One citation that points outside the repository or at nothing."""

    kind: str  # outside | section | readme-section | doc-link
    path: str  # relative to the repository root
    line: int  # 1-based
    text: str  # what was cited

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.text}"


def files(root: Path = ROOT) -> list[Path]:
    """Every file the check reads: SOURCES' and DOCS' files with a SUFFIXES suffix."""
    out = []
    for name in (*SOURCES, *DOCS):
        p = root / name
        found = [p] if p.is_file() else sorted(p.rglob("*")) if p.is_dir() else []
        out += [
            f
            for f in found
            if f.is_file() and f.suffix in SUFFIXES and "__pycache__" not in f.parts
        ]
    return out


def method_sections(root: Path = ROOT) -> set[int]:
    """The section numbers n of docs/method.md's headings "## §n ..."."""
    path = root / "docs" / "method.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return {int(m.group(1)) for m in re.finditer(r"^#+\s+§(\d+)\b", text, re.MULTILINE)}


def readme_headings(root: Path = ROOT) -> list[str]:
    """The heading texts of README.md."""
    path = root / "README.md"
    return HEADING.findall(path.read_text(encoding="utf-8")) if path.exists() else []


def check_text(text: str, rel: str, root: Path = ROOT) -> list[Problem]:
    """The problems in one file's text (rel: its path relative to root, for the messages)."""
    sections, headings = method_sections(root), readme_headings(root)
    problems: list[Problem] = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in OUTSIDE.finditer(line):
            problems.append(Problem("outside", rel, n, line[m.start() : m.start() + 20].strip()))
        for m in METHOD_SECTION.finditer(line):
            wanted = [int(g) for g in m.groups() if g]
            if not all(k in sections for k in wanted):
                problems.append(Problem("section", rel, n, m.group(0)))
        for m in README_SECTION.finditer(line):
            title = m.group(1) or m.group(2)
            if not any(title.lower() in h.lower() for h in headings):
                problems.append(Problem("readme-section", rel, n, m.group(0)))
        for m in DOC_LINK.finditer(line):
            if not (root / "docs" / m.group(1)).exists():
                problems.append(Problem("doc-link", rel, n, m.group(0)))
    return list(dict.fromkeys(problems))  # a Markdown link names its target twice


def check(root: Path = ROOT) -> list[Problem]:
    """Every problem in the repository at root."""
    out = []
    for f in files(root):
        out += check_text(f.read_text(encoding="utf-8"), f.relative_to(root).as_posix(), root)
    return out


def main() -> int:
    """Print each problem; exit status 1 when there is one."""
    problems = check()
    for p in problems:
        print(p)
    if problems:
        kinds = sorted({p.kind for p in problems})
        print(
            f"{len(problems)} citation problem(s) ({', '.join(kinds)}). Cite docs/method.md §n "
            "for definitions.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
