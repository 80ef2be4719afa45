"""The package's layers (`pipeline.LAYERS`): every import, function-level ones included, points
down the layers or stays in its own package, and no modules import each other in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pipeline

PACKAGE = Path(pipeline.__file__).parent
RANK = {name: row for row, names in enumerate(pipeline.LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (
        PACKAGE.parent / relative / "__init__.py"
    ).is_file()


def imported_modules(path: Path) -> set[str]:
    """The pipeline modules a file imports, anywhere in it (`from pipeline.x import y` counts as
    pipeline.x.y where y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("pipeline")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("pipeline"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if is_module(sub) else node.module)
    return found


def layer(module: str) -> str | None:
    """The layer a module belongs to: its package under pipeline, or "command line" for a module
    at the top; None for `pipeline` itself (the version and this table, importable by all)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return parts[1] if (PACKAGE / parts[1]).is_dir() else "command line"


GRAPH = {module_name(p): imported_modules(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_package_and_top_module_has_a_layer():
    layers = {layer(m) for m in GRAPH} - {None}
    assert layers - RANK.keys() == set(), "add each package to pipeline.LAYERS"
    assert RANK.keys() - layers == set(), "pipeline.LAYERS names a package that is not there"


def test_every_layer_says_what_it_owns_and_may_import():
    for name in RANK:
        init = PACKAGE / name / "__init__.py"
        if name != "command line":
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            assert "Imports:" in doc, f"{init}: the docstring says what the package may import"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_the_layers(module):
    own = layer(module)
    for target in sorted(GRAPH[module]):
        other = layer(target)
        if other is None or other == own:
            continue
        assert own is not None and RANK[other] < RANK[own], (
            f"{module} ({own}, row {RANK.get(own)}) imports {target} ({other}, row "
            f"{RANK[other]}): imports point down pipeline.LAYERS"
        )


def test_no_import_cycle():
    """Depth-first search over the module graph (package __init__ files are modules too)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module], path[len(path) :] = 1, [module]
        for target in sorted(GRAPH.get(module, ())):
            if target == module:
                continue
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target)
                path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            path.clear()
            visit(module)


def test_the_checker_sees_a_function_level_import(tmp_path):
    """An upward import inside a function is caught like one at the top of a file."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from pipeline.learning import train\n    return train\n")
    assert imported_modules(source) == {"pipeline.learning.train"}
