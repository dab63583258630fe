"""Python's references: imports (`import a.b as c`, `from .x import y as z`, `from m import *`), calls
and uses through them, `self.method()` and `super().method()` in a class, parameters with annotated
types, locals made by a constructor (`x = Foo()`), attributes a class assigns (`self.store = Store()`),
base classes, decorators and type annotations (string ones too).

Targets are dotted paths: the file's own module is named as Python imports it: from the topmost package
folder above it (`src/agents/run.py`, with `src/agents/__init__.py` and no `src/__init__.py`, is
`agents.run`), its path when its folder is no package (a script: `examples/hello.py` is `examples.hello`),
under the package the source's folder is when it is one (`sources.py` of the folder `ingest/`, which holds
an `__init__.py`, is `ingest.sources`); an absolute import keeps the name it imports (`agents.run.Runner`),
which the query side matches against the modules the KB holds (indexes/graph.py)."""
from __future__ import annotations

import builtins
import re
from collections.abc import Container, Iterable
from pathlib import Path, PurePosixPath

from ingest.references import (
    CALL,
    DECORATOR,
    IMPORT,
    INHERIT,
    TYPE,
    USE,
    Bind,
    ClassContext,
    Context,
    FileWalker,
    Scope,
    text,
)

BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__package__", "__spec__"}
NAME_IN_STRING = re.compile(r"[A-Za-z_][\w.]*")
SKIP = {"ERROR", "string_content", "escape_sequence", "comment", "integer", "float", "true", "false", "none",
        "ellipsis"}
# Annotations that hold one type, whose values are instances of it.
WRAPPERS = {"Optional", "Annotated", "Final", "ClassVar", "Required", "NotRequired", "ReadOnly", "type"}


PACKAGE_MARKS = ("__init__.py", "__init__.pyi")


def python_module(path: str, package: str = "", packages: Container[str] | None = None) -> str:
    """`src/agents/run.py` -> `src.agents.run`; a package's `__init__.py` is the package. `package`: the
    dotted package the folder `path` is relative to is (`sources.py` in the package `ingest` is `ingest.sources`).
    `packages`: the folders (relative to the same folder) that are packages (`package_folders`); with it and no
    `package`, a file in a package is named from the topmost package of the unbroken chain above it, as it is
    imported (`src/agents/run.py` -> `agents.run`); a file whose folder is no package keeps its path's name."""
    p = PurePosixPath(path)
    folders = list(p.parent.parts)
    if not package and packages is not None:
        top = len(folders)  # walk up while the folder is a package: the chain's top is where imports start
        while top > 0 and "/".join(folders[:top]) in packages:
            top -= 1
        if top < len(folders):
            folders = folders[top:]
    parts = [package] + folders + ([] if p.stem == "__init__" else [p.stem])
    return ".".join(x for x in parts if x not in ("", "."))


def package_folders(paths: Iterable[str]) -> frozenset[str]:
    """The folders (relative, never the top one) that are packages among a source's file paths: those that
    hold an `__init__.py` (for sources that are no folder, whose files are all it has)."""
    found = set()
    for path in paths:
        p = PurePosixPath(path)
        if p.name in PACKAGE_MARKS and p.parent.name.isidentifier():
            found.add(str(p.parent))
    return frozenset(found)


class FolderPackages:
    """The folders under a source's root that are packages (hold an `__init__.py`), as a container of
    relative paths like `package_folders`'s; each folder is looked up on the filesystem once."""

    def __init__(self, root: Path):
        self.root = root
        self._known: dict[str, bool] = {}

    def __contains__(self, folder: object) -> bool:
        if not isinstance(folder, str) or folder in ("", "."):
            return False
        if folder not in self._known:
            try:
                self._known[folder] = PurePosixPath(folder).name.isidentifier() and \
                    any((self.root / folder / mark).is_file() for mark in PACKAGE_MARKS)
            except OSError:  # unreadable: named as if it were no package
                self._known[folder] = False
        return self._known[folder]


def python_package(folder: Path) -> str:
    """The dotted package a source's folder is, which its files' modules are named under: the folder's name
    when it holds an `__init__.py` (`devcopilot ingest src/myfw`: its code imports `myfw.x`), under its
    parents' names while they are packages too; "" when it is no package (a repository, site-packages)."""
    names: list[str] = []
    try:
        folder = folder.resolve()
        while folder.name.isidentifier() and any((folder / mark).is_file() for mark in PACKAGE_MARKS):
            names.insert(0, folder.name)
            folder = folder.parent
    except OSError:  # unreadable: named as if it were no package
        return ""
    return ".".join(names)


class PythonWalker(FileWalker):
    builtins = BUILTINS

    def module_name(self) -> str:
        return python_module(self.path, self.package, self.packages)

    @property
    def is_package(self) -> bool:
        return PurePosixPath(self.path).stem == "__init__"

    # -- imports ---------------------------------------------------------------------------------
    def absolute(self, node) -> str:
        """The dotted module an import names, relative imports made absolute."""
        if node.type != "relative_import":
            return text(node)
        prefix = next((c for c in node.children if c.type == "import_prefix"), None)
        dots = len(text(prefix)) if prefix is not None else 0
        rest = next((c for c in node.named_children if c.type == "dotted_name"), None)
        base = self.module.split(".") if self.module else []
        if not self.is_package:
            base = base[:-1]
        base = base[:len(base) - (dots - 1)] if dots > 1 else base
        return ".".join([*base, *([text(rest)] if rest is not None else [])])

    def imports(self, node) -> list[tuple[object, str, str, Bind | None]]:
        """(node for the line, imported dotted target, name bound here or '' / '*', binding)."""
        out = []
        if node.type == "import_statement":
            for c in node.named_children:
                if c.type == "aliased_import":
                    target = text(c.child_by_field_name("name"))
                    alias = text(c.child_by_field_name("alias"))
                    out.append((c, target, alias, Bind("", target, imported_module=True)))
                elif c.type == "dotted_name":  # `import a.b` binds `a`
                    target = text(c)
                    first = target.split(".")[0]
                    out.append((c, target, "", Bind("", first, imported_module=True)))
            return out
        module_node = node.child_by_field_name("module_name")
        base = self.absolute(module_node) if module_node is not None else ""
        for c in node.named_children:
            if c == module_node or c.type not in ("dotted_name", "aliased_import", "wildcard_import"):
                continue
            if c.type == "wildcard_import":
                out.append((c, base, "*", None))
                continue
            name_node = c.child_by_field_name("name") if c.type == "aliased_import" else c
            name = text(name_node)
            alias = text(c.child_by_field_name("alias")) if c.type == "aliased_import" else name
            target = f"{base}.{name}" if base else name
            out.append((name_node, target, alias, Bind("", target)))
        return out

    def import_statement(self, node, ctx: Context) -> None:
        for at, target, alias, bind in self.imports(node):
            self.add(at, ctx, IMPORT, Bind("", target), alias=alias if ctx.caller == "" else "")
            if bind is not None and alias not in ("", "*"):
                ctx.scope.names[alias] = bind
            elif bind is not None:
                ctx.scope.names[target.split(".")[0]] = bind

    # -- module-level names ----------------------------------------------------------------------
    def prepare(self, root) -> None:
        from ingest.code import definition_of

        for node in _module_statements(root):
            if node.type in ("import_statement", "import_from_statement"):
                for _, target, alias, bind in self.imports(node):
                    if bind is not None and alias not in ("", "*"):
                        self.globals.names[alias] = bind
                    elif bind is not None:
                        self.globals.names[target.split(".")[0]] = bind
                continue
            d = definition_of(node)
            if d is not None:
                self.globals.names[d.name] = self.own(d.name)

    # -- names and chains --------------------------------------------------------------------------
    def lookup(self, name: str, ctx: Context) -> tuple[str, Bind | None]:
        """('bound', bind) | ('local', None) | ('builtin', None) | ('unbound', None)."""
        found, bind = ctx.scope.lookup(name)
        if found:
            return ("bound", bind) if bind is not None else ("local", None)
        found, bind = self.globals.lookup(name)
        if found and bind is not None:
            return "bound", bind
        if name in BUILTINS:
            return "builtin", None
        return "unbound", None

    def chain_bind(self, node, ctx: Context) -> Bind | None:
        """What an expression (a name or an attribute chain) stands for, without recording it."""
        parts = []
        while node is not None and node.type == "attribute":
            parts.append(text(node.child_by_field_name("attribute")))
            node = node.child_by_field_name("object")
        if node is None or node.type != "identifier":
            return None
        how, bind = self.lookup(text(node), ctx)
        if bind is None:
            return None
        for p in reversed(parts):
            bind = bind.member(p)
        return bind

    def chain(self, node, ctx: Context, kind: str) -> None:
        """Record the references an expression makes: its root name and each member it reaches."""
        parts = []
        n = node
        while n.type == "attribute":
            parts.append(n.child_by_field_name("attribute"))
            n = n.child_by_field_name("object")
        parts.reverse()
        bind: Bind | None = None
        if n.type == "identifier":
            how, bind = self.lookup(text(n), ctx)
            if not parts:
                if bind is not None and not bind.instance:
                    self.add(n, ctx, kind, bind)
                elif how == "unbound" and kind in (CALL, DECORATOR, INHERIT):
                    self.add(n, ctx, kind, None, text(n))
                return
            if how == "builtin":
                return  # str.join, dict.fromkeys: the language's, not the KB's
            if bind is not None and not bind.instance and not bind.imported_module and ctx.this is not bind:
                self.add(n, ctx, USE, bind)
        elif n.type == "call" and text(n.child_by_field_name("function")) == "super" and ctx.cls is not None:
            bind = ctx.cls.bases[0].of_instance() if ctx.cls.bases else None
        else:
            self.visit(n, ctx)
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            name = text(p)
            if bind is not None and bind.instance and ctx.cls is not None and bind.target == ctx.cls.bind.target \
                    and name in ctx.cls.attributes and not last:
                bind = ctx.cls.attributes[name]  # `self.store` where __init__ set `self.store = Store()`
                continue
            if bind is not None and bind.instance and not last:
                bind = None  # an attribute of an instance, of unknown type
                continue
            if bind is not None and bind.instance and kind not in (CALL, DECORATOR):
                return  # an attribute of an instance (`self.store`): no definition to point at
            bind = bind.member(name) if bind is not None else None
            if bind is not None and (last or not bind.instance):
                self.add(p, ctx, kind if last else USE, bind)
            elif bind is None and last and kind in (CALL, DECORATOR):
                self.add(p, ctx, kind, None, "." + name)

    def annotation(self, node, ctx: Context) -> None:
        """Every name a type annotation uses, as TYPE references (the names in a string annotation too)."""
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in ("identifier", "attribute"):
                self.chain(n, ctx, TYPE)
            elif n.type == "string":
                for m in NAME_IN_STRING.finditer(text(n).strip("'\"")):
                    bind = self._dotted(m.group(), ctx)
                    if bind is not None and not bind.instance:
                        self.add(n, ctx, TYPE, bind)
            else:
                stack.extend(n.named_children)

    def _dotted(self, dotted: str, ctx: Context) -> Bind | None:
        first, *rest = dotted.split(".")
        _, bind = self.lookup(first, ctx)
        for p in rest:
            bind = bind.member(p) if bind is not None else None
        return bind

    def type_of(self, node, ctx: Context) -> Bind | None:
        """The class an annotation names, when it names one: `Foo`, `mod.Foo`, `Foo | None`, `Optional[Foo]`."""
        if node is None:
            return None
        if node.type == "type":
            return self.type_of(node.named_children[0] if node.named_children else None, ctx)
        if node.type in ("identifier", "attribute"):
            bind = self.chain_bind(node, ctx)
            return bind.of_instance() if bind is not None and not bind.instance else None
        if node.type == "string":
            inner = text(node).strip("'\"")
            bind = self._dotted(inner, ctx) if NAME_IN_STRING.fullmatch(inner) else None
            return bind.of_instance() if bind is not None and not bind.instance else None
        if node.type in ("binary_operator", "union_type"):  # Foo | None
            for c in node.named_children:
                if text(c) != "None":
                    return self.type_of(c, ctx)
        if node.type in ("subscript", "generic_type"):
            head = node.child_by_field_name("value") or node.named_children[0]
            if text(head).split(".")[-1] in WRAPPERS:
                args = [c for c in node.named_children if c != head]
                return self.type_of(args[0] if args else None, ctx)
        return None

    # -- definitions ---------------------------------------------------------------------------------
    def decorators(self, statement, d, ctx: Context) -> None:
        if statement.type != "decorated_definition":
            return
        for dec in statement.named_children:
            if dec.type != "decorator" or not dec.named_children:
                continue
            expr = dec.named_children[0]
            if expr.type == "call":
                self.chain(expr.child_by_field_name("function"), ctx, DECORATOR)
                args = expr.child_by_field_name("arguments")
                if args is not None:
                    self.visit(args, ctx)
            elif expr.type in ("identifier", "attribute"):
                self.chain(expr, ctx, DECORATOR)
            else:
                self.visit(expr, ctx)

    def enter_class(self, d, symbol: str, ctx: Context) -> ClassContext:
        cls = ClassContext(self.own(symbol))
        supers = d.inner.child_by_field_name("superclasses")
        for c in supers.named_children if supers is not None else ():
            if c.type == "keyword_argument":  # metaclass=M
                self.visit(c, ctx)
                continue
            head = c.child_by_field_name("value") if c.type == "subscript" else c  # Generic[T]
            if head is not None and head.type in ("identifier", "attribute"):
                self.chain(head, ctx, INHERIT)
                bind = self.chain_bind(head, ctx)
                if bind is not None:
                    cls.bases.append(bind)
            if c != head:
                self.visit(c, ctx)
        self.class_attributes(d, cls, ctx)
        return cls

    def class_attributes(self, d, cls: ClassContext, ctx: Context) -> None:
        """Types of the attributes a class declares (`name: Store`) or its methods set (`self.x = Store()`)."""
        from ingest.code import body_of, walk_nodes

        body = body_of(d.inner)
        if body is None:
            return
        for n in walk_nodes(body):
            if n.type != "assignment":
                continue
            left, right, kind = (n.child_by_field_name(f) for f in ("left", "right", "type"))
            name = ""
            if left is not None and left.type == "identifier" and n.parent is not None \
                    and n.parent.parent is not None and n.parent.parent == body:
                name = text(left)  # a class-level field
            elif left is not None and left.type == "attribute" and text(left.child_by_field_name("object")) == "self":
                name = text(left.child_by_field_name("attribute"))
            if not name or name in cls.attributes:
                continue
            bind = self.type_of(kind, ctx)
            if bind is None and right is not None and right.type == "call":
                made = self.chain_bind(right.child_by_field_name("function"), ctx)
                bind = made.of_instance() if made is not None and not made.instance else None
            if bind is not None:
                cls.attributes[name] = bind

    def enter_function(self, d, ctx: Context) -> None:
        fn = d.inner
        if fn.type != "function_definition":  # a class without methods is visited as a body
            self.visit(fn, ctx)
            return
        self.parameters(fn, ctx, in_method=ctx.cls is not None)
        ret = fn.child_by_field_name("return_type")
        if ret is not None:
            self.annotation(ret, ctx)
        body = fn.child_by_field_name("body")
        if body is not None:
            self.visit(body, ctx)

    def parameters(self, fn, ctx: Context, in_method: bool) -> None:
        params = fn.child_by_field_name("parameters")
        first = True
        static = any(text(dec).strip() == "@staticmethod" for dec in (fn.parent.named_children if fn.parent and
                                                                        fn.parent.type == "decorated_definition"
                                                                        else ()))
        for p in params.named_children if params is not None else ():
            name_node = p if p.type == "identifier" else p.child_by_field_name("name")
            if name_node is None:
                name_node = next((c for c in p.named_children if c.type == "identifier"), None)
            name = text(name_node) if name_node is not None else ""
            kind = p.child_by_field_name("type")
            value = p.child_by_field_name("value")
            if kind is not None:
                self.annotation(kind, ctx)
            if value is not None:
                self.visit(value, ctx)
            if not name:
                continue
            if first and in_method and not static and ctx.cls is not None:
                ctx.scope.names[name] = ctx.cls.bind if name == "cls" else ctx.cls.bind.of_instance()
                ctx.this = ctx.scope.names[name]
            else:
                ctx.scope.names[name] = self.type_of(kind, ctx)
            first = False

    # -- statements and expressions -----------------------------------------------------------------
    def visit(self, node, ctx: Context) -> None:  # noqa: C901 (one dispatch on node types)
        t = node.type
        if t in SKIP:
            return
        if t in ("import_statement", "import_from_statement"):
            self.import_statement(node, ctx)
        elif t == "call":
            self.chain(node.child_by_field_name("function"), ctx, CALL)
            args = node.child_by_field_name("arguments")
            if args is not None:
                self.visit(args, ctx)
        elif t in ("identifier", "attribute"):
            self.chain(node, ctx, USE)
        elif t == "type":
            self.annotation(node, ctx)
        elif t == "keyword_argument":
            value = node.child_by_field_name("value")
            if value is not None:
                self.visit(value, ctx)
        elif t == "assignment":
            self.assignment(node, ctx)
        elif t in ("function_definition", "class_definition", "decorated_definition"):
            self.nested(node, ctx)
        elif t in ("for_statement", "for_in_clause"):
            left = node.child_by_field_name("left")
            self.targets(left, ctx, None)
            for c in node.named_children:
                if c != left:
                    self.visit(c, ctx)
        elif t == "as_pattern":  # with ... as x, except E as e
            for c in node.named_children:
                if c.type == "as_pattern_target":
                    self.targets(c.named_children[0] if c.named_children else None, ctx, None)
                else:
                    self.visit(c, ctx)
        elif t == "global_statement" or t == "nonlocal_statement":
            return
        else:
            for c in node.named_children:
                self.visit(c, ctx)

    def assignment(self, node, ctx: Context) -> None:
        left, right, kind = (node.child_by_field_name(f) for f in ("left", "right", "type"))
        if kind is not None:
            self.annotation(kind, ctx)
        if right is not None:
            self.visit(right, ctx)
        value = self.type_of(kind, ctx)
        if value is None and right is not None:
            if right.type == "call":
                made = self.chain_bind(right.child_by_field_name("function"), ctx)
                value = made.of_instance() if made is not None and not made.instance else None
            elif right.type in ("identifier", "attribute"):
                value = self.chain_bind(right, ctx)
                if value is not None and ctx.caller == "" and left is not None and left.type == "identifier":
                    # a module-level alias (`Alias = pkg.Thing`): other files may import it under this name
                    self.add(left, ctx, USE, value, alias=text(left))
        self.targets(left, ctx, value)

    def targets(self, node, ctx: Context, value: Bind | None) -> None:
        """Names an assignment binds (locals, not references); attribute and subscript targets use names."""
        if node is None:
            return
        if node.type == "identifier":
            if ctx.scope is not self.globals:
                ctx.scope.names[text(node)] = value
            elif value is not None:
                self.globals.names[text(node)] = value
        elif node.type in ("attribute", "subscript"):
            obj = node.child_by_field_name("object") or node.child_by_field_name("value")
            if obj is not None and obj.type not in ("identifier",):
                self.visit(obj, ctx)
            elif obj is not None:
                self.chain(obj, ctx, USE)
            if node.type == "subscript":
                for c in node.named_children:
                    if c != obj:
                        self.visit(c, ctx)
        else:
            for c in node.named_children:
                self.targets(c, ctx, None)

    def nested(self, node, ctx: Context) -> None:
        """A function or class inside a function: part of the enclosing symbol's code."""
        from ingest.code import definition_of

        d = definition_of(node)
        if d is None:
            return
        self.decorators(node, d, ctx)
        inner = Context(ctx.caller, ctx.scope.child(), ctx.cls, ctx.this)
        if d.inner.type == "class_definition":
            cls = self.enter_class(d, ctx.caller, inner)
            body = d.inner.child_by_field_name("body")
            if body is not None:
                self.visit(body, Context(ctx.caller, ctx.scope.child(), cls, None))
            ctx.scope.names[d.name] = None
            return
        ctx.scope.names[d.name] = None
        self.parameters(d.inner, inner, in_method=False)
        ret = d.inner.child_by_field_name("return_type")
        if ret is not None:
            self.annotation(ret, inner)
        body = d.inner.child_by_field_name("body")
        if body is not None:
            self.visit(body, inner)


def _module_statements(root):
    """Statements run at module level: the top ones and those inside if/try/with blocks."""
    stack = list(reversed(root.named_children))
    while stack:
        n = stack.pop()
        yield n
        if n.type in ("if_statement", "try_statement", "with_statement", "else_clause", "elif_clause",
                      "except_clause", "finally_clause", "block"):
            stack.extend(reversed(n.named_children))


__all__ = ["FolderPackages", "PythonWalker", "Scope", "package_folders", "python_module", "python_package"]
