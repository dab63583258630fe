"""The packages depend left to right (ingest → indexes → copilot → ui → devcopilot.py), with no
circles between modules, no module imports another's private names, and only ui/ (the doors) imports
a door library. Read from the source, so an import inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["ingest", "indexes", "copilot", "ui"]
# The libraries of the doors (web, HTTP, CLI, MCP, terminal): only ui/ may import them.
DOOR_LIBRARIES = {"fastapi", "starlette", "gradio", "argparse", "mcp", "uvicorn", "rich", "watchfiles"}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import statement in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def modules() -> dict[str, Path]:
    return {f"{p.parent.name}.{p.stem}": p for layer in LAYERS for p in (REPO / layer).glob("*.py")
            if p.stem != "__init__"}


def test_packages_depend_only_on_the_layers_to_their_left():
    wrong = []
    for name, path in modules().items():
        allowed = LAYERS[:LAYERS.index(name.split(".")[0]) + 1]
        for target, _ in imports(path):
            top = target.split(".")[0]
            if (top in LAYERS and top not in allowed) or top == "devcopilot":
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_only_the_doors_import_a_door_library():
    wrong = [f"{name} imports {target}" for name, path in modules().items() if not name.startswith("ui.")
             for target, _ in imports(path) if target.split(".")[0] in DOOR_LIBRARIES]
    assert wrong == []


def circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of the graph (a path back to where it started), or [] when there is none."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str]:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, trail + [nxt])):
                return found
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return []


def test_no_circle_between_modules():
    mods = modules()
    graph = {name: {t for t, _ in imports(path) if t in mods and t != name} for name, path in mods.items()}
    assert circle(graph) == []


def test_no_private_name_is_imported_from_another_module():
    taken = [f"{name} takes {target}.{n}" for name, path in modules().items() for target, names in imports(path)
             for n in names if n.startswith("_") and target.split(".")[0] in LAYERS]
    assert taken == []


def test_the_checks_see_a_violation(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from ui.app import _private\n")
    assert imports(bad) == [("ui.app", ["_private"])]
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
