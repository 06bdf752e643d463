"""The citation checker and rewriter (scripts/check_citations.py, scripts/rewrite_citations.py)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD = "SP" + "EC"  # spelled apart so this file never cites the old specification itself
# long, but ruff allows it (it ends in a pragma); it has no citation, so the rewrite leaves it
PRAGMA_LINE = (
    "Y = lambda value_of_a_rather_long_name: (value_of_a_rather_long_name, "
    "value_of_a_rather_long_name)  # noqa: E731"
)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


check_citations = _load("check_citations")
rewrite_citations = _load("rewrite_citations")


def test_method_md_keeps_the_numbering_the_code_cites():
    """The rewrite maps "<old> §n" to "docs/method.md §n": the topics must sit at those numbers."""
    text = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    headings = {
        int(line.split("§")[1].split()[0]): line
        for line in text.splitlines()
        if line.startswith("## §")
    }
    topics = {
        1: "SAEs",
        2: "Folding",
        3: "Matching",
        4: "Data",
        5: "Metrics",
        6: "Experiments",
        7: "SAE sets",
        8: "zoo",
        9: "planted world",
        10: "Partial matching",
        11: "Confidence",
        13: "certified solver",
        14: "match file",
        15: "flow",
    }
    for n, topic in topics.items():
        assert topic in headings.get(n, ""), f"§{n} should be about {topic}: {headings.get(n)}"
    assert sorted(headings) == list(range(1, max(headings) + 1)), "sections skip a number"


def test_every_method_section_cited_in_the_repository_exists():
    problems = [p for p in check_citations.check(ROOT) if p.kind == "section"]
    assert not problems, "\n".join(map(str, problems))


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    (tmp_path / "docs").mkdir()
    method = "# M\n\n## §3 Matching\n\n## §9 Planted\n\n## §15 Flow\n"
    (tmp_path / "docs" / "method.md").write_text(method)
    (tmp_path / "README.md").write_text("# x\n\n## Two commands\n")
    pkg = tmp_path / "saematch"
    pkg.mkdir()
    long_doc = "Cost of a pair, a mean over d_model of the squared differences of weights, defined"
    (pkg / "cost.py").write_text(
        f'"""{long_doc} ({OLD} §3).\nMore text that continues the paragraph here.\n"""\n'
        "\n"
        "# a comment line that is long enough, at 95 characters, to overflow once its citation "
        f"grows ({OLD} §9)\n"
        f"X = 1  # {OLD} §3\n"
        f"{PRAGMA_LINE}\n"
        'Z = "a string literal is code, so the rewrite never wraps it, even when it grows past 100 '
        f'({OLD} §3)"\n'
        f"W = 2  # {OLD} §4 (no such section)\n"
    )
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "flow.yaml").write_text(f'# Feature flow (README "Feature flow"), {OLD}.md\n')
    return tmp_path


def test_the_checker_flags_outside_citations_and_the_rewriter_fixes_them(tmp_path):
    root = _tree(tmp_path)
    kinds = {(p.path, p.kind) for p in check_citations.check(root)}
    assert ("saematch/cost.py", "outside") in kinds
    assert ("conf/flow.yaml", "outside") in kinds
    assert ("conf/flow.yaml", "readme-section") in kinds

    changed = rewrite_citations.rewrite_tree(root)
    assert set(changed) == {"saematch/cost.py", "conf/flow.yaml"}
    text = (root / "saematch" / "cost.py").read_text()
    ast.parse(text)  # still Python
    assert OLD not in text and text.count("docs/method.md §") == 5
    lines = text.splitlines()
    # wrapped: the docstring reflows into its paragraph, the comment line becomes two
    assert lines[0].startswith('"""Cost of a pair') and len(lines[0]) <= 100
    assert lines[1].endswith("More text that continues the paragraph here.")
    assert any(s.startswith("# ") and s.endswith("(docs/method.md §9)") for s in lines)
    # a trailing comment that still fits stays; the pragma stays on its line
    assert "X = 1  # docs/method.md §3" in lines
    assert PRAGMA_LINE in lines
    # the string literal is code: left long, and reported by its line number
    z = next(n for n, s in enumerate(lines, 1) if s.startswith("Z = "))
    assert changed["saematch/cost.py"] == [z] and len(lines[z - 1]) > 100
    assert (root / "conf" / "flow.yaml").read_text() == (
        "# Feature flow (docs/method.md §15), docs/method.md\n"
    )
    left = {(p.path, p.kind, p.text) for p in check_citations.check(root)}
    assert left == {("saematch/cost.py", "section", "docs/method.md §4")}


def test_the_rewriter_dry_run_writes_nothing(tmp_path):
    root = _tree(tmp_path)
    before = (root / "saematch" / "cost.py").read_text()
    changed = rewrite_citations.rewrite_tree(root, write=False)
    assert "saematch/cost.py" in changed
    assert (root / "saematch" / "cost.py").read_text() == before
