"""A Python library's public API at one version, read with griffe from the folder it was indexed from.

griffe (https://mkdocstrings.github.io/griffe/) parses the source without importing it and knows
signatures, decorators, docstrings, `__all__` and re-exports; its `find_breaking_changes` is the
breaking part of a comparison. What it does not report (symbols added, parameters added with a
default, annotations and return types changed, docstrings, deprecations) comes from our own walk of
the same objects.

Public: not underscore-prefixed, and listed in `__all__` when the module defines it (griffe's
`is_public`). A symbol re-exported by a package (`agents.Runner`, defined in `agents.run`) is named by
the shortest public path that reaches it: modules are walked from the package down, breadth first.
"""
from __future__ import annotations

import contextlib
import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from indexes.api_symbols import NOT_API_DIRS, ApiSymbol, Param

log = logging.getLogger("devcopilot.changes")

NOT_MODULES = {"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py", "manage.py", "__main__.py"}
DOCSTRING_NOTE = re.compile(
    r"^\s*(\.\. deprecated::.*|deprecated[:.].*|\*\*deprecated\*\*.*|!!! \w+ \"?deprecated.*)$|"
    # a sentence is read from its start (a line's or a full stop's), so a long line is read once, not from each letter
    r"(?:^|(?<=\.))[^.\n]*\b(is|are|has been|was) deprecated\b[^.\n]*|"
    r"(?:^|(?<=\.))[^.\n]*\bdeprecated (since|in|as of)\b[^.\n]*",
    re.IGNORECASE | re.MULTILINE)
WARNS = re.compile(r"\bwarn\w*\s*\([^;]{0,400}?\b((?:Pending)?DeprecationWarning|FutureWarning)\b", re.DOTALL)


class PythonApiError(RuntimeError):
    """The folder could not be read as Python packages (the caller falls back to the symbol chunks)."""


@dataclass
class PythonApi:
    symbols: dict[str, ApiSymbol]
    modules: dict[str, object] = field(default_factory=dict)  # package name -> its griffe Module
    public_of: dict[str, str] = field(default_factory=dict)  # canonical path -> public name


def python_packages(root: Path, paths: Iterable[str]) -> list[tuple[Path, str]]:
    """(folder to search, name) of the top-level packages among the indexed files `paths` (relative to
    `root`): folders with an `__init__.py` whose parent has none, outside tests, examples and docs; or,
    with none, the modules at the top or under src/."""
    py = [p for p in paths if p.endswith((".py", ".pyi"))]
    inits = {p.rpartition("/")[0] for p in py if p.rpartition("/")[2] in ("__init__.py", "__init__.pyi")}
    found: set[tuple[Path, str]] = set()
    for d in inits:
        parent, _, name = d.rpartition("/")
        if d == "":  # the root itself is the package
            found.add((root.parent, root.name))
        elif parent not in inits and name.isidentifier() and not NOT_API_DIRS & set(d.split("/")):
            found.add((root / parent if parent else root, name))
    if not found:
        for p in py:
            parent, _, name = p.rpartition("/")
            if parent in ("", "src") and name not in NOT_MODULES and not name.startswith("test") \
                    and name.rsplit(".", 1)[0].isidentifier():
                found.add((root / parent if parent else root, name.rsplit(".", 1)[0]))
    return sorted(found, key=lambda f: f[1])


def load_api(root: Path, paths: Iterable[str], stamp: object = None) -> PythonApi:
    """The public API of the packages under `root` (see `python_packages`); `stamp` says when the
    folder was indexed, so a re-read is cached until it is indexed again."""
    packages = tuple(python_packages(root, paths))
    if not packages:
        raise PythonApiError(f"no Python package under {root}")
    return _load_cached(str(root), packages, stamp)


@lru_cache(maxsize=6)
def _load_cached(root: str, packages: tuple[tuple[Path, str], ...], stamp: object) -> PythonApi:
    import griffe

    api = PythonApi({})
    with quiet_griffe():
        for folder, name in packages:
            try:
                module = griffe.load(name, search_paths=[str(folder)], try_relative_path=False,
                                     allow_inspection=False, resolve_aliases=False)
            except Exception as e:  # griffe could not read it: the caller uses the symbol chunks
                raise PythonApiError(f"griffe could not load {name} from {folder}: {e}") from e
            api.modules[name] = module
            walk(module, Path(root), api)
    return api


@contextlib.contextmanager
def quiet_griffe() -> Iterator[None]:
    """griffe logs a warning per unresolvable annotation; a listing of changes or a symbol table has no use for
    them, and an ingest would print them on the terminal."""
    lg = logging.getLogger("griffe")
    level = lg.level
    lg.setLevel(logging.CRITICAL)  # it logs an annotation it cannot resolve as an error
    try:
        yield
    finally:
        lg.setLevel(level)


def walk(package, root: Path, api: PythonApi) -> None:
    """Add the package's public symbols to `api`, breadth first from the package."""
    queue, seen_modules = deque([package]), {package.path}
    while queue:
        module = queue.popleft()
        for name, member in list(module.members.items()):
            target = _public_target(member, package)
            if target is None:
                continue
            if target.is_module:
                if not member.is_alias and target.path not in seen_modules and name not in ("tests", "test") \
                        and not name.startswith("test_"):
                    seen_modules.add(target.path)
                    queue.append(target)
                continue
            _record(target, f"{module.path}.{name}", root, api)


def _public_target(member, package):
    """What a public member of a module stands for (an alias's final target), when it is defined
    inside `package`; else None. Dunder names (`__getattr__`, `__version__`) are no API symbols."""
    try:
        if member.name.startswith("_") or not member.is_public:
            return None
        target = member.final_target if member.is_alias else member
        inside = target.package.path == package.path
    except Exception:  # an alias to something not loaded (another library), or a cycle
        return None
    return target if inside else None


def _record(obj, public: str, root: Path, api: PythonApi) -> None:
    if obj.path in api.public_of:  # reached already by a shorter path
        return
    symbol = _symbol(obj, public, root)
    if symbol is None:
        return
    api.public_of[obj.path] = public
    api.symbols[public] = symbol
    if obj.is_class:
        for name, member in list(obj.members.items()):
            if member.is_alias or name.startswith("_"):
                continue
            with contextlib.suppress(Exception):
                if member.is_public:
                    _record(member, f"{public}.{name}", root, api)


def _symbol(obj, public: str, root: Path) -> ApiSymbol | None:
    try:
        filepath = obj.filepath
        if isinstance(filepath, list):  # a namespace package
            return None
        path = Path(filepath).resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None
    decorators = getattr(obj, "decorators", None) or []
    start = min([d.lineno for d in decorators if d.lineno] + [obj.lineno or 1])
    end = obj.endlineno or start
    what, params, returns, declaration = "attribute", None, "", ""
    if obj.is_class:
        what = "class"
        init = obj.members.get("__init__")  # its own (or a dataclass's); an inherited one is its base's change
        if init is not None and not init.is_alias and init.is_function:
            params = _params(init.parameters, drop_first=True)
        declaration = ", ".join(str(b) for b in obj.bases)
        declaration = f"bases ({declaration})" if declaration else ""
    elif obj.is_function:
        in_class = obj.parent is not None and obj.parent.is_class
        what = "method" if in_class else "function"
        static = any(str(d.value).endswith("staticmethod") for d in decorators)
        params = _params(obj.parameters, drop_first=in_class and not static)
        returns = str(obj.returns) if obj.returns is not None else ""
    elif obj.is_attribute:
        what = "property" if "property" in obj.labels else "attribute"
        declaration = f"type {obj.annotation}" if obj.annotation is not None else ""
    else:
        return None
    docstring = obj.docstring.value if obj.docstring else ""
    return ApiSymbol(public, what, path, start, end, canonical=obj.path if obj.path != public else "",
                     params=params, returns=returns, declaration=declaration, docstring=docstring,
                     deprecated=deprecation(obj, decorators, docstring))


def _params(params, drop_first: bool) -> list[Param]:
    out = [Param(p.name, p.kind.value, str(p.annotation) if p.annotation is not None else "",
                 str(p.default) if p.default is not None else "", p.required) for p in params]
    if drop_first and out and out[0].name in ("self", "cls"):
        out = out[1:]
    return out


def deprecation(obj, decorators, docstring: str) -> str:
    """How the object says it is deprecated: a decorator (`@deprecated`, `typing_extensions.deprecated`,
    `warnings.deprecated`...), a `warnings.warn(..., DeprecationWarning)` in its body (a class's:
    in `__init__`), or a note in its docstring; "" when it does not."""
    for d in decorators:
        called = (getattr(d, "callable_path", "") or str(d.value)).split("(")[0]
        if called.rsplit(".", 1)[-1].lower().endswith("deprecated"):
            return f"decorated @{_one_line(str(d.value))}"
    body = ""
    with contextlib.suppress(Exception):
        if obj.is_function or "property" in obj.labels:
            body = obj.source
        elif obj.is_class and "__init__" in obj.members and not obj.members["__init__"].is_alias:
            body = obj.members["__init__"].source
    m = WARNS.search(body)
    if m:
        return f"warns {m.group(1)} when called"
    m = DOCSTRING_NOTE.search(docstring)
    if m:
        return f"docstring: {_one_line(m.group(0))}"
    return ""


def _one_line(text: str, width: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def breaking_changes(old: PythonApi, new: PythonApi) -> dict[str, list[str]]:
    """griffe's breaking changes between two versions, by the public name of the symbol each is about
    (`X.__init__`'s go to the class X)."""
    import griffe

    out: dict[str, list[str]] = {}
    with quiet_griffe():
        for name, old_module in old.modules.items():
            new_module = new.modules.get(name)
            if new_module is None:
                continue
            try:
                found = list(griffe.find_breaking_changes(old_module, new_module))
            except Exception:  # a comparison griffe cannot finish: the rest of the listing stands
                log.warning("griffe's breaking-change check failed for %s", name, exc_info=True)
                continue
            for b in found:
                path = b.obj.path
                if path.endswith(".__init__"):
                    path = path[: -len(".__init__")]
                public = new.public_of.get(path) or old.public_of.get(path) or path
                out.setdefault(public, []).append(_explain(b))
    return out


def _explain(b) -> str:
    value = b.old_value if b.new_value is None else b.new_value
    name = getattr(value, "name", "")
    return f"{b.kind.value}" + (f": `{name}`" if name else "")
