"""The package's shape, read from its code: what a newcomer relies on.

No import cycle (imports under TYPE_CHECKING and inside functions count),
no module importing another subpackage's private names, no module over
400 lines, and a top level of a dozen modules beside the subpackages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "busignal"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, str]]:
    """(module imported, name taken from it or "") for every busignal import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("busignal"):
                    yield alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("busignal"):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    yield submodule, ""
                else:
                    yield base, alias.name


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in _imports(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as the modules along it; [] when there is none."""
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return []


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def test_package_imports_have_no_cycle() -> None:
    graph = _graph()
    # A package's __init__ importing its own modules is how it re-exports.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}

    assert _cycle(graph) == []


def test_no_module_imports_private_names_from_another_subpackage() -> None:
    crossing = [
        f"{name} imports {taken} from {target}"
        for name, path in MODULES.items()
        for target, taken in _imports(name, path)
        if taken.startswith("_") and _subpackage(target) != _subpackage(name)
    ]

    assert crossing == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: count
        for name, path in MODULES.items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }

    assert long == {}


def test_top_level_holds_a_dozen_modules_at_most() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]

    assert len(top) <= 12, sorted(top)
