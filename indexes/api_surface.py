"""The library's symbol table: every class, function, method, attribute and module the indexed code
defines, with its signature, what the docs are checked against (indexes/drift.py) and the names doc
passages are linked to (indexes/doc_links.py).

**Python** is read with griffe (a static analyser of Python packages, the one mkdocstrings uses): it
loads a package from its source folder without importing it, and gives each object's parameters with
their kinds, defaults and annotations, the `__init__` a dataclass gets, `@overload`s, instance
attributes assigned in `__init__`, base classes resolved through imports, and the names a package
re-exports (`agents.Runner` is `agents.run.Runner`). Writing that by hand over tree-sitter would be
a second, weaker griffe. **The other languages** the chunker knows (TypeScript, JavaScript, Go,
Java, Rust) are read with tree-sitter (ingest/code.py's grammars): names, qualified by their class,
and parameter lists.

The code is read from the catalog, not the disk: each file is put back together from its chunks
(same lines, same numbers), so the table matches what is indexed, whatever became of the folder.
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

from indexes.api_python import quiet_griffe
from indexes.side_folders import in_side_folder

log = logging.getLogger("devcopilot.api")

# Bump when what a table holds changes: tables built by another version are built again.
TABLE_VERSION = "1"

# Decorators that leave a function's parameters as they are; any other may change them.
KEEPS_SIGNATURE = {
    "classmethod", "staticmethod", "property", "abstractmethod", "overload", "override", "final", "cache",
    "lru_cache", "cached_property", "contextmanager", "asynccontextmanager", "deprecated", "setter", "getter",
    "deleter", "abstractproperty", "wraps", "total_ordering", "runtime_checkable", "unique", "dataclass",
    "no_type_check", "typing_extensions.deprecated",
}
# Class decorators that leave its __init__ as written.
CLASS_KEEPS = {"total_ordering", "final", "runtime_checkable", "unique", "dataclass_transform"}
# Bases that add no members a user would name: a class deriving only from these (and the library's
# own classes) has exactly the members the table lists.
NEUTRAL_BASES = {"object", "typing.Generic", "typing.Protocol", "typing_extensions.Protocol", "abc.ABC",
                 "Generic", "Protocol", "ABC", "typing_extensions.Generic"}


@dataclass
class Param:
    name: str
    kind: str  # positional-only | positional | keyword-only | *args | **kwargs
    default: str | None = None  # the default as the code writes it; None: required


@dataclass
class Symbol:
    path: str  # qualified: agents.run.Runner.run (Python); Class.method (other languages)
    kind: str  # module | class | function | attribute
    file: str  # the file's path in the KB
    start: int  # lines (1-based, inclusive)
    end: int
    language: str = "python"
    params: list[Param] | None = None  # None: not known (a decorator that may change it)
    overloads: list[list[Param]] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)  # class: its bases, qualified where they resolve
    decorators: list[str] = field(default_factory=list)
    value: str | None = None  # attribute: the value the code gives it
    method: str = ""  # a function in a class: classmethod | staticmethod | property | "" (an instance method)
    open: bool = False  # members may come from elsewhere (a class's __getattr__, a module's that names none)
    lazy: list[str] = field(default_factory=list)  # names that exist without a symbol: a module's __getattr__
    # makes them on first use, a class's methods assign them (`self.x = ...` outside __init__)
    returns: str = ""  # function: the class its return annotation names, qualified (when it names one)
    coroutine: bool = False  # function: `async def` (what it returns comes with `await`)
    side: bool = False  # defined in a side folder (examples/, scripts/...): not the library's API

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def to_json(self) -> dict:
        d = dict(vars(self))
        if self.params is not None:
            d["params"] = [vars(p) for p in self.params]
        d["overloads"] = [[vars(p) for p in ps] for ps in self.overloads]
        return {k: v for k, v in d.items() if v not in (None, [], "", False) or k in ("path", "kind", "file")}

    @classmethod
    def from_json(cls, d: dict) -> Symbol:
        d = dict(d)
        if d.get("params") is not None:
            d["params"] = [Param(**p) for p in d["params"]]
        d["overloads"] = [[Param(**p) for p in ps] for ps in d.get("overloads", [])]
        return cls(**d)


@dataclass
class Table:
    """Symbols by qualified name, the names re-exported under another, and the top packages."""
    symbols: dict[str, Symbol] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # re-exported name -> the name it stands for
    packages: list[str] = field(default_factory=list)  # top-level Python packages: the library's namespaces
    skipped: int = 0  # files (or packages) that could not be read

    def to_json(self) -> dict:
        return {"symbols": [s.to_json() for s in self.symbols.values()], "aliases": self.aliases,
                "packages": self.packages, "skipped": self.skipped}

    @classmethod
    def from_json(cls, d: dict) -> Table:
        syms = [Symbol.from_json(s) for s in d.get("symbols", [])]
        return cls({s.path: s for s in syms}, dict(d.get("aliases", {})), list(d.get("packages", [])),
                   int(d.get("skipped", 0)))

    def merged(self, other: Table) -> Table:
        """This table and another source's, as one (the first definition of a name wins)."""
        return Table({**other.symbols, **self.symbols}, {**other.aliases, **self.aliases},
                     list(dict.fromkeys(self.packages + other.packages)), self.skipped + other.skipped)


# -- files put back together from their chunks ------------------------------------------------------

def files_from_chunks(rows: Iterable[tuple[str, int, str]]) -> dict[str, str]:
    """path -> text, from (path, start_line, text) rows: each chunk at its lines, blank lines between."""
    parts: dict[str, list[tuple[int, str]]] = {}
    for path, start, text in rows:
        parts.setdefault(path, []).append((start, text))
    out = {}
    for path, pieces in parts.items():
        lines: list[str] = []
        for start, text in sorted(pieces):
            if len(lines) < start - 1:
                lines += [""] * (start - 1 - len(lines))
            chunk = text.split("\n")
            lines[start - 1:start - 1 + len(chunk)] = chunk
        out[path] = "\n".join(lines) + "\n"
    return out


# -- Python, with griffe --------------------------------------------------------------------------

def package_roots(paths: Iterable[str]) -> list[tuple[str, str]]:
    """(folder, package) of each top-level Python package among the paths: a folder with an
    `__init__.py` whose parent has none. The library's own first, then those in side folders.
    A source folder that is itself a package (`__init__.py` at its top) has no name here: its
    sub-packages are the top ones (`python_table` reads such a folder under its package's name)."""
    inits = {str(PurePosixPath(p).parent) for p in paths if PurePosixPath(p).name in ("__init__.py", "__init__.pyi")}
    roots = set()
    for d in inits:
        top = PurePosixPath(d)
        while top.parent != PurePosixPath(".") and str(top.parent) in inits:  # not into the source folder itself
            top = top.parent
        roots.add((str(top.parent), top.name))
    return sorted(roots, key=lambda r: (in_side_folder(f"{r[0]}/{r[1]}/x"), r[0].count("/"), r))


def python_table(files: dict[str, str], package: str = "") -> Table:
    """The table of the Python packages among `files` (path -> text), read by griffe. `package`: the dotted
    package the files' folder is itself (an `__init__.py` at its top), whose name its modules are read under
    (`mod.py` of the folder `fw` is `fw.mod`); its files keep their own paths in the table."""
    import griffe

    table = Table()
    prefix = package.replace(".", "/") + "/" if package and "__init__.py" in files else ""
    if prefix:  # the files as they sit in their package, each enclosing package given an (empty) __init__.py
        parts = package.split(".")
        files = {**{"/".join(parts[:i]) + "/__init__.py": "" for i in range(1, len(parts))},
                 **{prefix + path: text for path, text in files.items()}}
    roots = package_roots(files)
    if not roots:
        return table
    with tempfile.TemporaryDirectory(prefix="devcopilot-api-") as tmp, quiet_griffe():
        base = Path(tmp)
        for path, text in files.items():
            if path.endswith((".py", ".pyi")):
                target = base / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
        # One loader for every package, so that `from attr.validators import *` in `attrs` is expanded.
        folders = list(dict.fromkeys(str(base / folder) for folder, _ in roots))
        loader = griffe.GriffeLoader(search_paths=folders, allow_inspection=False)
        loaded = []
        for folder, name in roots:
            if name in {n for n, _, _ in loaded} or not name.isidentifier():
                continue
            try:
                loaded.append((name, loader.load(name), in_side_folder(f"{folder}/{name}/x")))
            except Exception as e:  # a package griffe cannot read is skipped, the others are kept
                log.warning("could not read the Python package %s: %s: %s", name, type(e).__name__, e)
                table.skipped += 1
        table.packages = [name for name, _, side in loaded if not side]
        for name, module, side in loaded:
            try:
                loader.expand_wildcards(module, external=False)
            except Exception as e:
                log.warning("could not follow the `import *` of %s: %s: %s", name, type(e).__name__, e)
            _collect(module, base, table, side, set(table.packages))
        _lines.cache_clear()  # the files go with the temporary folder
        _relative_path.cache_clear()
    if prefix:  # back to the source's own paths; an enclosing package made up above is not the source's
        table.symbols = {name: replace(sym, file=sym.file[len(prefix):]) for name, sym in table.symbols.items()
                         if sym.file.startswith(prefix)}
        top = package.split(".")[0]
        table.packages = [package] + [p for p in table.packages if p != top]  # not the rest of `outer`
    return table


def _relative(obj, base: Path) -> str:
    try:
        return _relative_path(str(obj.filepath), str(base))
    except (ValueError, TypeError, AttributeError):
        return ""


@lru_cache(maxsize=4096)
def _relative_path(filepath: str, base: str) -> str:
    return Path(filepath).resolve().relative_to(Path(base).resolve()).as_posix()


def _params(func) -> list[Param]:
    kinds = {"positional-only": "positional-only", "positional or keyword": "positional",
             "keyword-only": "keyword-only", "variadic positional": "*args", "variadic keyword": "**kwargs"}
    return [Param(p.name, kinds.get(p.kind.value if p.kind else "", "positional"),
                  None if p.default is None else str(p.default)) for p in func.parameters]


def _collect(module, base: Path, table: Table, side: bool, ours: set[str]) -> None:
    """Every object under `module` into `table` (aliases as aliases), depth first."""
    stack = [module]
    while stack:
        obj = stack.pop()
        for member in list(obj.members.values()):
            if member.is_alias:
                try:
                    table.aliases.setdefault(member.path, member.target_path)
                except Exception:  # an alias griffe cannot follow is no name of ours
                    pass
                continue
            sym = _symbol(member, base, side, ours)
            if sym is not None:
                table.symbols.setdefault(sym.path, sym)
                if member.kind.value in ("module", "class"):
                    stack.append(member)
        if obj.kind.value == "module" and obj.parent is None:
            sym = _symbol(obj, base, side, ours)
            if sym is not None:
                table.symbols.setdefault(sym.path, sym)


def _symbol(obj, base: Path, side: bool, ours: set[str]) -> Symbol | None:
    kind = obj.kind.value
    if kind not in ("module", "class", "function", "attribute"):
        return None
    path = _relative(obj, base)
    start = obj.lineno or 1
    end = obj.endlineno or start
    sym = Symbol(obj.path, kind, path, start, end, side=side)
    if kind == "module":
        if "__getattr__" in obj.members:
            sym.lazy = _lazy_names(obj)
            sym.open = not sym.lazy
        sym.open |= _star_from_elsewhere(obj, ours)
        return sym
    decorators = [str(d.value) for d in getattr(obj, "decorators", [])]
    sym.decorators = decorators
    if kind == "class":
        bases = []
        for b in obj.bases:
            bases.append(getattr(b, "canonical_path", None) or str(b).split("[")[0])
        sym.bases = bases
        sym.open = "__getattr__" in obj.members or "__getattribute__" in obj.members
        init = obj.members.get("__init__")
        if init is not None and not init.is_alias and init.kind.value == "function":
            sym.params = _params(init)
        sym.lazy, dynamic = _self_assigned(obj)
        sym.open |= dynamic
        return sym
    if kind == "function":
        labels = obj.labels
        sym.method = next((m for m in ("classmethod", "staticmethod", "property") if m in labels), "")
        plain = all(_keeps(d) for d in decorators)
        sym.params = _params(obj) if plain else None
        sym.overloads = [_params(o) for o in (getattr(obj, "overloads", None) or [])]
        sym.returns = _class_named(obj.returns)
        sym.coroutine = "async" in labels
        return sym
    value = obj.value
    sym.value = None if value is None else str(value)[:200]
    return sym


@lru_cache(maxsize=64)
def _lines(filepath) -> list[str]:
    """A file's lines, read once for all the classes and modules in it (cleared after each table)."""
    try:
        return Path(filepath).read_text(encoding="utf-8").split("\n")
    except (OSError, TypeError, ValueError):
        return []


def _class_named(annotation) -> str:
    """The qualified name a return annotation gives (`RunResult`, `RunResult | None`, `Optional[X]`), or ""."""
    if annotation is None or isinstance(annotation, str):
        return ""
    kind = type(annotation).__name__
    if kind == "ExprName":
        return annotation.canonical_path or ""
    if kind == "ExprBinOp" and annotation.operator == "|":
        sides = [a for a in (annotation.left, annotation.right) if str(a) != "None"]
        return _class_named(sides[0]) if len(sides) == 1 else ""
    if kind == "ExprSubscript" and str(annotation.left).split(".")[-1] == "Optional":
        return _class_named(annotation.slice)
    return ""


def _self_assigned(cls) -> tuple[list[str], bool]:
    """(the attributes a class's methods assign (`self.x = ...`, `self.x: T = ...`) wherever they do,
    whether it also sets attributes by computed names: `setattr(self, name, ...)`, `self.__dict__`)."""
    import re

    lines = _lines(cls.filepath)
    body = "\n".join(lines[(cls.lineno or 1) - 1:cls.endlineno or cls.lineno or 1])
    found = set(re.findall(r"\bself\.([A-Za-z_]\w*)\s*(?::[^=\n]+)?=(?!=)", body))
    found |= set(re.findall(r"setattr\(\s*self\s*,\s*[\"']([A-Za-z_]\w*)[\"']", body))
    dynamic = re.search(r"setattr\(\s*self\s*,\s*[^\s\"']|self\.__dict__", body) is not None
    return sorted(found - set(cls.members)), dynamic


def _star_from_elsewhere(module, ours: set[str]) -> bool:
    """The module imports `*` from another library (or one griffe cannot follow): any name may be in it."""
    import re

    text = "\n".join(_lines(module.filepath))
    return any(m.split(".")[0] not in ours and not m.startswith(".")
               for m in re.findall(r"^\s*from\s+(\S+)\s+import\s+\*", text, re.MULTILINE))


def _lazy_names(module) -> list[str]:
    """The names a module's `__getattr__` makes on first use (`if name == "X"`, `_LAZY = {"X": ...}`):
    the identifier-like strings in its body and in the module constants it reads. [] when it names none
    (then any name may exist)."""
    import re

    hook = module.members["__getattr__"]
    lines = _lines(module.filepath)
    body = "\n".join(lines[(hook.lineno or 1) - 1:hook.endlineno or hook.lineno or 1])
    texts = [body]
    for name, member in module.members.items():
        if not member.is_alias and member.kind.value == "attribute" and re.search(rf"\b{re.escape(name)}\b", body):
            texts.append("\n".join(lines[(member.lineno or 1) - 1:member.endlineno or member.lineno or 1]))
    return sorted({m for t in texts for m in re.findall(r"[\"']([A-Za-z_]\w*)[\"']", t)})


def _keeps(decorator: str) -> bool:
    """A decorator that leaves the parameters as they are (`classmethod`, `functools.cache`, `x.setter`)."""
    head = decorator.split("(")[0]
    return head.rsplit(".", 1)[-1] in KEEPS_SIGNATURE or head in KEEPS_SIGNATURE


# -- the other languages, with tree-sitter ----------------------------------------------------------

PARAM_LISTS = {"formal_parameters", "parameters", "parameter_list"}


def tree_sitter_table(files: dict[str, str], languages: dict[str, str]) -> Table:
    """Names and parameter lists of the definitions in files of the other languages (path -> text;
    `languages`: path -> language)."""
    from ingest.code import definition_of, parser_for

    table = Table()
    for path, text in files.items():
        language = languages.get(path, "")
        parser = parser_for(language)
        if parser is None or language == "python":
            continue
        try:
            root = parser.parse(text.encode("utf-8", "replace")).root_node
        except Exception:
            table.skipped += 1
            continue
        side = in_side_folder(path)
        stack = [(c, "") for c in reversed(root.children)]
        while stack:
            node, prefix = stack.pop()
            d = definition_of(node)
            if d is None:
                continue
            qual = f"{prefix}.{d.name}" if prefix and "." not in d.name else d.name
            kind = "class" if d.container else "function"
            sym = Symbol(qual, kind, path, d.node.start_point[0] + 1, d.node.end_point[0] + 1, language, side=side,
                         params=_ts_params(d.inner) if not d.container else None)
            key = qual if qual not in table.symbols else f"{qual}@{path}:{sym.start}"
            table.symbols[key] = sym
            if d.container:
                body = _members_of(d.inner)
                if body is not None:
                    stack += [(c, qual) for c in reversed(body.named_children)]
    return table


def _members_of(node):
    """A class-like definition's body (where its methods are), as the chunker finds it."""
    body = node.child_by_field_name("body")
    if body is None:
        body = next((c for c in node.named_children if c.type in ("class_body", "declaration_list", "block",
                                                                   "interface_body", "enum_body")), None)
    return body


def _ts_params(node) -> list[Param] | None:
    plist = node.child_by_field_name("parameters")
    if plist is None:
        for c in node.named_children:
            if c.type in PARAM_LISTS:
                plist = c
                break
    if plist is None:
        v = node.child_by_field_name("value")  # const f = (a, b) => ...
        return _ts_params(v) if v is not None and v is not node else None
    out: list[Param] = []
    for p in plist.named_children:
        t = p.type
        if t in ("comment", "self_parameter", "this") or t.startswith("self"):
            continue
        text = p.text.decode("utf-8", "replace") if p.text else ""
        if "rest" in t or "variadic" in t or "spread" in t or text.startswith("...") or "...:" in text:
            out.append(Param(_first_identifier(p) or "args", "*args"))
            continue
        names = [c for c in p.children_by_field_name("name")] if t == "parameter_declaration" else []
        optional = t in ("optional_parameter", "assignment_pattern", "default_parameter") or "=" in text
        for n in names or [p]:
            out.append(Param(_first_identifier(n) or text[:40], "positional", "?" if optional else None))
    return out


def _first_identifier(node) -> str:
    stack = [node]
    while stack:
        n = stack.pop(0)
        if n.type in ("identifier", "shorthand_property_identifier_pattern", "field_identifier"):
            return n.text.decode("utf-8", "replace")
        stack.extend(n.children)
    return ""


# -- looking names up ------------------------------------------------------------------------------

FOUND, MISSING, UNKNOWN = "found", "missing", "unknown"


@dataclass
class Resolution:
    """What a dotted name is: FOUND (the symbol), MISSING (`parent` is known through and through and
    has no `missing`), or UNKNOWN (outside the table, or a parent whose members are not all known)."""
    state: str
    symbol: Symbol | None = None
    parent: Symbol | None = None  # MISSING: the deepest part that exists
    missing: str = ""  # MISSING: the first part that does not
    written_parent: str = ""  # MISSING: the name as written up to the parent (`Runner`, `agents.run`)


class Lookup:
    """Queries over a Table: names through re-exports and base classes, call signatures, suggestions."""

    def __init__(self, table: Table):
        self.table = table
        self.symbols = table.symbols
        self.aliases = table.aliases
        self.packages = set(table.packages)
        self.children: dict[str, dict[str, str]] = {}  # parent -> member name -> its path (symbol or alias)
        for path in list(self.symbols) + list(self.aliases):
            parent, _, name = path.rpartition(".")
            if parent:
                self.children.setdefault(parent, {}).setdefault(name, path)
        self.by_name: dict[str, list[str]] = {}  # last name -> library symbols (no side folders)
        for s in self.symbols.values():
            if not s.side:
                self.by_name.setdefault(s.name, []).append(s.path)
        self.public: dict[str, str] = {}  # symbol -> its shortest re-exported name (agents.Runner)
        for alias, target in sorted(self.aliases.items(), key=lambda kv: (kv[0].count("."), len(kv[0]))):
            end = self.canonical(target)  # re-exported nearer the package's top: agents.run.Runner is agents.Runner
            if end and end not in self.public and alias.count(".") < end.count(".") and not \
                    any(part.startswith("_") for part in alias.split(".")):
                self.public[end] = alias

    def canonical(self, path: str) -> str | None:
        """The symbol a name stands for, through re-exports (None: not in the table)."""
        for _ in range(10):
            if path in self.symbols:
                return path
            if path in self.aliases:
                path = self.aliases[path]
                continue
            parent, _, name = path.rpartition(".")  # a re-exported module's member: agents.models.x
            if parent and parent not in self.symbols:
                base = self.canonical(parent)
                if base and base != parent:
                    path = f"{base}.{name}"
                    continue
            return None
        return None

    def get(self, path: str) -> Symbol | None:
        c = self.canonical(path)
        return self.symbols.get(c) if c else None

    def display(self, sym: Symbol) -> str:
        return self.public.get(sym.path, sym.path)

    def in_library(self, dotted: str) -> bool:
        """The name starts with one of the library's top-level packages (a dotted one for a source that is a
        package inside another, `outer.inner`: the rest of `outer` is not the source's)."""
        if dotted.split(".", 1)[0] in self.packages:
            return True
        return any("." in p and (dotted == p or dotted.startswith(p + ".")) for p in self.packages)

    def members(self, sym: Symbol, seen: set[str] | None = None) -> tuple[dict[str, str], bool]:
        """(member name -> path, complete) of a module or class, inherited ones included; `complete` is
        False when members may come from elsewhere (a base outside the table, a __getattr__)."""
        seen = seen if seen is not None else set()
        if sym.path in seen:
            return {}, True
        seen.add(sym.path)
        own = dict(self.children.get(sym.path, {}))
        for name in sym.lazy:  # made on first use: it exists, what it is is not known here
            own.setdefault(name, f"{sym.path}.{name}")
        complete = not sym.open
        if sym.kind == "class":
            for b in sym.bases:
                base = self.get(b)
                if base is not None and base.kind == "class":
                    more, whole = self.members(base, seen)
                    complete &= whole
                    for k, v in more.items():
                        own.setdefault(k, v)
                elif b not in NEUTRAL_BASES:
                    complete = False
        elif sym.kind != "module":
            complete = False
        return own, complete

    def member(self, sym: Symbol, name: str) -> tuple[Symbol | None, bool]:
        """(the member, known): (None, True) when it certainly does not exist."""
        found, complete = self.members(sym)
        if name in found:
            target = self.get(found[name])
            return (target, True) if target is not None else (None, False)  # re-exported from outside
        return None, complete

    def resolve(self, dotted: str, head: Symbol | None = None, head_written: str = "") -> Resolution:
        """What `dotted` names. With `head`, `dotted` names members of that symbol (a class the doc
        names without its module, written `head_written`)."""
        parts = dotted.split(".") if dotted else []
        cur, i, prefix = head, 0, [head_written or (head.name if head is not None else "")]
        if cur is None:
            prefix = []
            for k in range(len(parts), 0, -1):
                cur = self.get(".".join(parts[:k]))
                if cur is not None:
                    i = k
                    break
        if cur is None:
            return Resolution(UNKNOWN)
        for j in range(i, len(parts)):
            if cur.kind not in ("module", "class"):
                return Resolution(UNKNOWN)
            nxt, known = self.member(cur, parts[j])
            if nxt is None:
                if not known:
                    return Resolution(UNKNOWN)
                return Resolution(MISSING, parent=cur, missing=parts[j], written_parent=".".join(prefix + parts[:j]))
            cur = nxt
        return Resolution(FOUND, cur)

    def unique(self, name: str, kinds: tuple[str, ...] = ("class", "function")) -> Symbol | None:
        """The one library symbol (outside side folders) whose last name is `name`, of these kinds."""
        paths = [p for p in self.by_name.get(name, []) if self.symbols[p].kind in kinds]
        if len(paths) == 1:
            return self.symbols[paths[0]]
        public = [p for p in paths if not any(part.startswith("_") for part in p.split("."))]
        return self.symbols[public[0]] if len(public) == 1 else None

    def signatures(self, sym: Symbol, bound: bool) -> list[list[Param]] | None:
        """The parameter lists a call of `sym` may match (each @overload, or the one), without the
        `self`/`cls` the call does not pass; None when not known. `bound`: called on an instance (or
        a classmethod on its class)."""
        if sym.kind == "class":
            params = self._init_params(sym, set())
            return None if params is None else [params[1:] if params and params[0].name == "self" else params]
        if sym.kind != "function" or sym.params is None or sym.method == "property":
            return None
        sigs = sym.overloads or [sym.params]
        drop = sym.method == "classmethod" or (bound and sym.method == "")
        return [ps[1:] if drop and ps and ps[0].kind in ("positional", "positional-only") else ps for ps in sigs]

    def _init_params(self, cls: Symbol, seen: set[str]) -> list[Param] | None:
        if cls.path in seen:
            return None
        seen.add(cls.path)
        if cls.params is not None:
            return cls.params
        if any(d.split("(")[0].rsplit(".", 1)[-1] not in CLASS_KEEPS for d in cls.decorators):
            return None  # @dataclass griffe did not expand, attrs' @define, a registry...: an __init__ of its own
        for b in cls.bases:
            base = self.get(b)
            if base is not None and base.kind == "class":
                return self._init_params(base, seen)
            if b not in NEUTRAL_BASES:
                return None
        return [Param("self", "positional")] if not cls.bases or all(b in NEUTRAL_BASES for b in cls.bases) \
            else None

    def suggest(self, res: Resolution) -> str | None:
        """The likely new name of a MISSING one: the one library class, function or module of that name
        elsewhere (moved), else a member of the parent spelt alike (renamed), written as the doc wrote
        the parent."""
        import difflib

        moved = self.unique(res.missing, ("class", "function", "module"))
        if moved is not None:
            return self.display(moved)
        members, _ = self.members(res.parent)
        public = [m for m in members if not m.startswith("_") or res.missing.startswith("_")]
        close = difflib.get_close_matches(res.missing, public, n=1, cutoff=0.6)
        if close:
            return f"{res.written_parent}.{close[0]}" if res.written_parent else close[0]
        return None
