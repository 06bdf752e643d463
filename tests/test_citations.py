"""The citation checker (scripts/check_citations.py): the repository cites only what it holds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD = "SP" + "EC"  # spelled apart so this file never cites the old specification itself
README = "READ" + "ME"  # the same for the README section it cites in the example tree


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


check_citations = _load("check_citations")


def test_method_md_keeps_the_numbering_the_code_cites():
    """The old "<spec> §n" citations became "docs/method.md §n": the topics sit at those numbers."""
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
        f"W = 2  # {OLD} §4 (no such section)\n"
    )
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "flow.yaml").write_text(f'# Feature flow ({README} "Feature flow"), {OLD}.md\n')
    (conf / "data.yaml").write_text("# Data (docs/method.md §4)\n")  # no §4 in this tree
    return tmp_path


def test_the_checker_flags_each_kind_of_problem(tmp_path):
    root = _tree(tmp_path)
    kinds = {(p.path, p.kind) for p in check_citations.check(root)}
    assert ("saematch/cost.py", "outside") in kinds
    assert ("conf/flow.yaml", "outside") in kinds
    assert ("conf/flow.yaml", "readme-section") in kinds
    assert ("conf/data.yaml", "section") in kinds


def test_the_repository_has_no_citation_problem():
    problems = check_citations.check(ROOT)
    assert not problems, "\n".join(map(str, problems))
