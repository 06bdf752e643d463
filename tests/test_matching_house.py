"""The shape of the matching package: no import circle, the features built once per match(),
one budget per call and an error that says it, one place for every default."""

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import yaml

import saematch
from saematch.matching import DEFAULTS, MatchOptions, match, match_layers
from saematch.planted.synthetic import synthetic_pair

ROOT = Path(saematch.__file__).parent
match_mod = importlib.import_module("saematch.matching.match")  # the module, not the function
budget_mod = importlib.import_module("saematch.matching.budget")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """{module: saematch modules it imports}, every import statement counted (function-level
    ones too: a circle through a lazy import is still a circle). `from P import x` is an edge
    to P, and to P.x when that is a module. An edge to the module's own package or one above
    it is left out: Python has already begun that package before the module (`from saematch
    import __version__` inside saematch.matchfile)."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                edges.add(base)
                edges |= {f"{base}.{a.name}" for a in node.names} & set(files)
        graph[mod] = {e for e in edges if e in files and not f"{mod}.".startswith(f"{e}.")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_import_graph_of_saematch_is_acyclic():
    graph = _import_graph()
    assert "saematch.matching.match" in graph and len(graph) > 50
    assert graph["saematch.matching.match"]  # the walk sees imports at all
    assert _cycle({"x": {"y"}, "y": {"x"}}) == ["x", "y", "x"]  # the check can fail
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_fixtures_are_not_in_the_matching_package():
    names = {p.stem for p in (ROOT / "matching").rglob("*.py")}
    assert not names & {"synthetic", "planted_pair", "validation"}


def _cli_options() -> dict:
    """conf/matching/folded.yaml: the options every CLI matching runs with by default."""
    cfg = yaml.safe_load((ROOT.parent / "conf" / "matching" / "folded.yaml").read_text())
    solver = next(d["solver"] for d in cfg["defaults"] if isinstance(d, dict) and "solver" in d)
    keys = {f.name for f in dataclasses.fields(MatchOptions)}
    return {**{k: v for k, v in cfg.items() if k in keys}, "solver": solver}


def test_match_with_the_cli_options_builds_each_sides_features_once(monkeypatch):
    """The default run's matching (confidence, top_k, splits on) folds each SAE once and
    resolves the memory budget once (it went through match() twice before)."""
    a, b, _ = synthetic_pair(d_model=16, width=200, seed=4)
    built, budgets = [], []
    real_features, real_default = match_mod.augmented_features, budget_mod.default_budget

    def counted_features(sae, mode, side, *args, **kw):
        built.append(side)
        return real_features(sae, mode, side, *args, **kw)

    def counted_budget():
        budgets.append(1)
        return real_default()

    monkeypatch.setattr(match_mod, "augmented_features", counted_features)
    monkeypatch.setattr(budget_mod, "default_budget", counted_budget)
    opts = _cli_options()
    assert opts["confidence"] and opts["top_k"] > 0 and opts["splits"]  # the analyses run
    m = match(a, b, **opts)
    assert m.confidence is not None and m.split_children is not None
    assert sorted(built) == ["a", "b"] and len(budgets) == 1
    built.clear()
    match(a, b, **{**opts, "unmatched": "auto"})  # the partial matching: the same
    assert sorted(built) == ["a", "b"]


def test_a_budget_the_features_alone_exceed_says_so():
    a, b, _ = synthetic_pair(d_model=32, width=300, seed=1)
    with pytest.raises(MemoryError) as err:
        match(a, b, mode="decoder", max_memory="1KB")
    msg = str(err.value)
    want = 2 * 300 * 34 * 4  # the two float32 feature matrices (300, 32 + 2)
    assert f"{want / 1e3:.1f} kB" in msg and "1.0 kB" in msg and "max_memory='1KB'" in msg
    assert "300 features" in msg and "matching.max_memory" in msg
    assert "0.00 GB" not in msg and "-0" not in msg


def test_show_bytes_never_rounds_to_zero():
    assert budget_mod.show_bytes(2.5e9) == "2.50 GB"
    assert budget_mod.show_bytes(81_600) == "81.6 kB" and budget_mod.show_bytes(12) == "12 B"


def test_one_place_for_every_default():
    """The signatures, the CLI's YAML and the experiments' schema take MatchOptions' values."""
    fields = {f.name for f in dataclasses.fields(MatchOptions)}
    for fn in (match, match_layers):
        params = inspect.signature(fn).parameters
        assert fields <= set(params), f"{fn.__name__} lacks {fields - set(params)}"
        for k in fields:
            assert params[k].default == getattr(DEFAULTS, k), (fn.__name__, k)
    for k, v in _cli_options().items():  # conf/matching/folded.yaml
        assert MatchOptions(**{k: v}) == DEFAULTS, f"folded.yaml's {k}={v!r} is not the default"
    schema = importlib.import_module("saematch_experiments.harness.schema")
    for f in dataclasses.fields(schema.MatchingConfig):
        if f.name in fields and f.default is not dataclasses.MISSING and f.name != "solver":
            default = getattr(f.default, "value", f.default)  # enum members
            assert MatchOptions(**{f.name: default}) == DEFAULTS, f"schema's {f.name}"


@pytest.mark.parametrize("bad", [{"top_k": -1}, {"top_k": 1.5}, {"confidence": "yes"}])
def test_bad_options_are_refused_before_any_work(bad):
    a, b, _ = synthetic_pair(d_model=8, width=20, seed=0)
    with pytest.raises(ValueError, match=next(iter(bad))):
        match(a, b, **bad)


def test_defaults_are_the_default_runs():
    m = match(*synthetic_pair(d_model=8, width=64, seed=0)[:2])
    assert m.predecessors.shape == (64, DEFAULTS.top_k) and m.confidence.shape == (64,)
    plain = match(*synthetic_pair(d_model=8, width=64, seed=0)[:2], confidence=False, top_k=0,
                  splits=False)  # fmt: skip
    np.testing.assert_array_equal(plain.perm, m.perm)
    assert plain.confidence is None and plain.predecessors is None
