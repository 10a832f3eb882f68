"""The package's modules import in one direction: no module reaches back up to one that imports
it (directly or through others), counting imports inside functions too, and only the CLI parses
arguments."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bodyfriend_assets"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (anywhere in its body)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            imported |= {t for t in targets if t in modules and t != name}
        graph[name] = imported
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle found by a depth-first walk, each as the path that closes it."""
    found, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            # a package's __init__ is imported with any of its modules: not an edge back up
            if module.startswith(target + "."):
                continue
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "bodyfriend_assets.compat.dag_log" in graph and graph["bodyfriend_assets.cli"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_only_the_cli_parses_arguments_and_nothing_imports_it():
    graph = import_graph()
    assert [m for m, targets in graph.items() if "bodyfriend_assets.cli" in targets] == []
    parsers = [
        _module_name(p) for p in PACKAGE.rglob("*.py")
        if "argparse" in {a.name for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Import) for a in n.names}
    ]
    assert parsers == ["bodyfriend_assets.cli"], parsers
