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


MAX_FUNCTION_LINES = 80
LONG_ON_PURPOSE = "# long:"  # a comment on the line after `def ...:` saying why a function is longer


def long_functions(path: Path) -> list[str]:
    """Functions (methods and nested ones too) over MAX_FUNCTION_LINES lines without a `# long:` comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            body_start = node.body[0].lineno - 1  # the first line of the body: the docstring or a statement
            said = any(LONG_ON_PURPOSE in ln for ln in lines[node.lineno - 1:body_start + 1])
            if length > MAX_FUNCTION_LINES and not said:
                out.append(f"{path.parent.name}/{path.name}: {node.name} is {length} lines")
    return out


def test_no_function_of_the_core_or_the_doors_is_over_80_lines_unless_it_says_why():
    long = [f for layer in ("copilot", "ui") for p in sorted((REPO / layer).glob("*.py")) for f in long_functions(p)]
    assert long == []


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
    long = tmp_path / "long.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(80))
    long.write_text(f"def f():\n{body}\n\ndef g():  # long: one table, read top to bottom\n{body}")
    assert long_functions(long) == [f"{tmp_path.name}/long.py: f is 81 lines"]
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from ui.app import _private\n")
    assert imports(bad) == [("ui.app", ["_private"])]
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
