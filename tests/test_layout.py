"""The experiments' layout holds: experiments import no experiment, the skeleton has no import
circle, every experiment is a YAML + module pair, and one module knows where conf/ is."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import saematch_experiments
from saematch_experiments.harness import registry
from saematch_experiments.harness.config_location import CONF_DIR, CONFIG_PACKAGE

PKG = "saematch_experiments"
ROOT = Path(saematch_experiments.__file__).resolve().parent  # experiments/ (or site-packages)


def module_files() -> dict[str, Path]:
    """{dotted module name: file} for every module of the experiments package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((PKG, *parts))] = path
    return out


def imported(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports anywhere (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def test_every_experiment_is_a_yaml_and_module_pair():
    assert registry.unpaired() == {"no module": [], "no yaml": []}
    assert len(registry.modules()) >= 18 and registry.modules() == registry.names()


def test_unpaired_names_a_module_without_its_yaml(tmp_path, monkeypatch):
    """A module in experiments/ without conf/experiment/<name>.yaml is reported (so is the
    reverse): the convention needs no hand-kept list, and a half-added experiment shows."""
    monkeypatch.setattr(registry, "EXPERIMENT_CONF", tmp_path)
    (tmp_path / "ground_truth.yaml").write_text("experiment: {name: ground_truth}\n")
    (tmp_path / "not_written_yet.yaml").write_text("experiment: {name: not_written_yet}\n")
    out = registry.unpaired()
    assert out["no module"] == ["not_written_yet"]
    assert "matching_score" in out["no yaml"] and "ground_truth" not in out["no yaml"]


def test_no_experiment_imports_another_experiment():
    files = module_files()
    experiments = {f"{PKG}.{name}" for name in registry.modules()}
    bad = {
        name: sorted(imported(files[name], experiments - {name}))
        for name in sorted(experiments)
        if imported(files[name], experiments - {name})
    }
    assert bad == {}, f"share it through saematch/ or experiments/support/ instead: {bad}"


def test_support_and_harness_import_no_experiment_but_the_explorer_page():
    """The skeleton and the helpers sit below the experiments; the one exception is the CLI's
    `explorer=true`, which writes the explorer page beside any run."""
    files = module_files()
    experiments = {f"{PKG}.{name}" for name in registry.modules()}
    below = [n for n in files if n.startswith((f"{PKG}.harness", f"{PKG}.support"))]
    uses = {n: sorted(imported(files[n], experiments)) for n in below}
    assert {n: u for n, u in uses.items() if u} == {f"{PKG}.harness.cli": [f"{PKG}.explorer"]}


def test_the_experiments_package_has_no_import_circle():
    """Every import between the package's modules, lazy ones included, forms no cycle
    (context -> sae_sets -> preflight -> context was one)."""
    files = module_files()
    known = set(files)
    graph = {n: imported(p, known) - {n} for n, p in files.items()}
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])


def test_one_module_knows_where_the_configs_are():
    """conf/ is found through the import system (pkg://saematch_conf), by config_location only:
    no other module computes a path to it from its own file."""
    assert Path(importlib.import_module(CONFIG_PACKAGE).__file__).parent == CONF_DIR
    assert (CONF_DIR / "config.yaml").is_file() and (CONF_DIR / "experiment").is_dir()
    others = {
        n: p
        for n, p in module_files().items()
        if n != f"{PKG}.harness.config_location"
        and (CONFIG_PACKAGE in p.read_text() or '/ "conf"' in p.read_text())
    }
    assert others == {}
