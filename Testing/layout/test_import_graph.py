"""The library's layering, read from its source (every import, function-local ones included):
no import cycle between its modules, core importing nothing of io/cli/mrml/training, nothing but
the command line importing the command line, and mrml importing no Qt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "SegmentWithSAM2" / "SegmentWithSAM2Lib"
PACKAGE = "SegmentWithSAM2Lib"
QT = {"qt", "ctk", "PythonQt", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in LIBRARY.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path of module names, or None (an iterative depth-first search)."""
    state = {}
    for start in edges:
        if start in state:
            continue
        stack = [(start, iter(sorted(edges[start])))]
        state[start], path = "open", [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "done"
                stack.pop()
                path.pop()
            elif state.get(child) == "open":
                return path[path.index(child):] + [child]
            elif child not in state:
                state[child] = "open"
                path.append(child)
                stack.append((child, iter(sorted(edges[child]))))
    return None


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_is_read_from_the_source():
    edges = graph()
    assert len(edges) > 40
    assert "SegmentWithSAM2Lib.core.volume" in edges["SegmentWithSAM2Lib.core.engine"]


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("lower, forbidden", [
    ("core", {"io", "cli", "mrml", "training", "api", "demo"}),
    ("io", {"cli", "mrml", "training", "api"}),
    ("training", {"cli", "mrml", "api"}),
    ("mrml", {"cli", "training"}),
])
def test_layers_import_only_below_them(lower, forbidden):
    wrong = {(a, b) for a, targets in graph().items() if layer(a) == lower
             for b in targets if layer(b) in forbidden}
    assert not wrong, f"{lower} imports above its layer: {sorted(wrong)}"


def test_only_the_command_line_imports_the_command_line():
    wrong = {(a, b) for a, targets in graph().items() if layer(a) != "cli" for b in targets if layer(b) == "cli"}
    assert not wrong, f"library modules importing the CLI: {sorted(wrong)}"


def test_core_imports_only_numpy_torch_sam2_and_its_own():
    allowed = {"numpy", "torch", "sam2", "scipy", "omegaconf", "hydra", "__future__"}
    stdlib = {"contextlib", "dataclasses", "time", "warnings", "collections", "fnmatch", "difflib", "pathlib",
              "math", "re", "typing", "numbers", "unicodedata"}
    wrong = set()
    for path in (LIBRARY / "core").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top != PACKAGE and top not in allowed | stdlib:
                wrong.add((module_name(path), name))
    assert not wrong, f"core imports outside numpy/torch/sam2: {sorted(wrong)}"


def test_mrml_imports_no_qt():
    wrong = {(module_name(p), m) for p in (LIBRARY / "mrml").rglob("*.py") for m in imports_of(p)
             if m in QT or m.split(".")[0] in {"qt", "ctk"}}
    assert not wrong, f"mrml imports Qt: {sorted(wrong)}"
