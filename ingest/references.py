"""The code graph of one file: what it defines and what it references, read from the tree-sitter tree
the chunker parsed (ingest/code.py), so a file is parsed once.

A definition is a symbol the chunker names (`Class.method`, with its kind and line range). A reference
is a call site, an import (with its alias), a base class or interface, a decorator or annotation, a
type annotation, or another use of a name, each with its line and the symbol it sits in (`caller`,
"" at module level). Each language's walker (ingest/refs_*.py) resolves what one file can: through
its imports and aliases, relative imports, its own definitions, `self`/`this`, parameters with a
declared type, locals made by a constructor call. What needs the other files (which module a dotted
import names, a re-exported name, an inherited method) is resolved when the graph is queried, across
the KB (indexes/graph.py).

A reference's target is kept as the file sees it:
- `module`: for the languages that import files or packages by path (TypeScript/JavaScript: the
  imported file's path without extension, or a bare package name; Go: the import path, or the file's
  own package folder); "" for the languages whose imports are dotted names (Python, Java, Rust), whose
  `target` is then the whole dotted path (`agents.run.Runner.run`, `com.acme.Foo.bar`, `crate.net.send`);
- `target`: the dotted name within `module` (or the whole path);
- `qualified`: True when it came through a binding the file knows; False when only the name is known:
  `save` for a bare name the file does not bind, `.save` for a member of a receiver of unknown type
  (`x.save()`). Those are matched by their last name part at query time (a bare name only by top-level
  definitions, a member only by members) and flagged as unresolved, never shown as resolved;
- `alias`: for an import or re-export at module level, the name it binds in this module (`*` for a
  star import), which lets another file's `from pkg import Name` be followed to where Name is defined.
"""
from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from ingest.code import body_of, definition_of, node_text

# Kinds of reference.
CALL = "call"  # a call or an instantiation (Python `Foo()`, `new Foo()`, a Go composite literal, a JSX element)
IMPORT = "import"
EXPORT = "export"  # a re-export (TypeScript `export { a } from './x'`, `export default X`)
INHERIT = "inherit"  # a base class, an implemented interface or trait, an embedded struct
DECORATOR = "decorator"  # a decorator (Python, TypeScript) or an annotation (Java)
TYPE = "type"  # a type annotation or type reference
USE = "use"  # any other use of a name: passed as a value, an attribute read, a module-level alias
KINDS = (CALL, IMPORT, EXPORT, INHERIT, DECORATOR, TYPE, USE)
WEAK = {USE: 2, TYPE: 1}  # a line's reference is kept under its strongest kind


@dataclass
class Defined:
    symbol: str  # as the chunker names it: `Class.method`
    kind: str  # function, method, class, interface, struct, enum, trait, type, ...
    start_line: int
    end_line: int


@dataclass
class Reference:
    line: int
    caller: str  # the symbol it sits in ("" at module level), as the chunker names it
    kind: str  # one of KINDS
    module: str  # see the module docstring
    target: str
    qualified: bool
    alias: str = ""

    @property
    def name(self) -> str:
        """The last part of the target: what an unresolved reference is matched by."""
        return last_part(self.target) or last_part(self.module.replace("/", "."))


def last_part(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


@dataclass
class FileGraph:
    language: str
    module: str  # the module this file is, in the form its language's targets use
    defs: list[Defined] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    parsed: bool = True  # False: the file does not parse (`broken`); its graph is skipped, and counted


@dataclass(frozen=True)
class Bind:
    """What a name stands for: the entity `target` in `module`, or (instance) a value of that type."""
    module: str
    target: str
    instance: bool = False
    imported_module: bool = False  # bound by a plain `import x` (a module, not a class or function)

    def member(self, name: str) -> Bind:
        return Bind(self.module, f"{self.target}.{name}" if self.target else name)

    def of_instance(self) -> Bind:
        return Bind(self.module, self.target, instance=True)


@dataclass
class Scope:
    """Names bound in a function (or a class body, or the module), looked up innermost first. A name
    bound to None is known to be local but of unknown value: it hides an outer binding."""
    names: dict[str, Bind | None] = field(default_factory=dict)
    outer: Scope | None = None

    def lookup(self, name: str) -> tuple[bool, Bind | None]:
        """(found, binding)."""
        s: Scope | None = self
        while s is not None:
            if name in s.names:
                return True, s.names[name]
            s = s.outer
        return False, None

    def child(self) -> Scope:
        return Scope({}, self)


@dataclass
class ClassContext:
    bind: Bind  # the class itself
    bases: list[Bind] = field(default_factory=list)  # its resolved bases, first first
    attributes: dict[str, Bind] = field(default_factory=dict)  # attribute -> instance type, where declared


@dataclass
class Context:
    caller: str
    scope: Scope
    cls: ClassContext | None = None
    this: Bind | None = None  # what `self` / `this` is in a method


class FileWalker:
    """The walk every language shares: definitions as the chunker names them, and the symbol each
    reference sits in. A language's walker fills `globals` (`prepare`) and visits statements."""

    language = ""
    builtins: frozenset[str] = frozenset()

    def __init__(self, tree, path: str, language: str, package: str = "", packages: Container[str] | None = None):
        self.tree = tree
        self.path = path
        self.language = language
        self.package = package  # the dotted package the source's folder is (Python), "" when none
        self.packages = packages  # the source's folders that are packages (Python); None: unknown
        self.module = self.module_name()
        self.globals = Scope()
        self.defs: list[Defined] = []
        self.refs: list[Reference] = []
        self._seen: dict[tuple, Reference] = {}

    # -- to fill in per language -------------------------------------------------------------------
    def module_name(self) -> str:
        raise NotImplementedError

    def own(self, symbol: str) -> Bind:
        """A symbol of this file's module."""
        return Bind("", f"{self.module}.{symbol}" if self.module else symbol)

    def prepare(self, root) -> None:
        """Bind the module-level names (imports, definitions) before the walk."""

    def visit(self, node, ctx: Context) -> None:
        raise NotImplementedError

    def kind_of(self, inner, in_class: bool) -> str:
        kind = KIND_NAMES.get(inner.type, "definition")
        return "method" if in_class and kind == "function" else kind

    def enter_class(self, d, symbol: str, ctx: Context) -> ClassContext:
        """The class being entered: its bases (reported as INHERIT), its attributes' types."""
        return ClassContext(self.own(symbol))

    def decorators(self, statement, d, ctx: Context) -> None:
        """Decorators or annotations of a definition."""

    def enter_function(self, d, ctx: Context) -> None:
        """A function's parameters, return type and body."""
        for c in d.inner.named_children:
            self.visit(c, ctx)

    # -- the shared walk --------------------------------------------------------------------------------
    def build(self) -> FileGraph:
        root = self.tree.root_node
        if root.has_error and broken(root):
            return FileGraph(self.language, self.module, parsed=False)
        self.prepare(root)
        self.members(root.children, "", Context("", self.globals))
        return FileGraph(self.language, self.module, self.defs, self.refs)

    def members(self, children, prefix: str, ctx: Context) -> None:
        """Statements of the module or of a class body: definitions as the chunker names them."""
        for child in children:
            if child.type == "ERROR":  # what the parser could not read is left out, not guessed at
                continue
            d = definition_of(child)
            if d is None:
                if child.is_named:
                    self.visit(child, ctx)
                continue
            symbol = f"{prefix}.{d.name}" if prefix else d.name
            self.defs.append(Defined(symbol, self.kind_of(d.inner, ctx.cls is not None),
                                     d.node.start_point[0] + 1, d.node.end_point[0] + 1))
            inner = Context(symbol, ctx.scope, ctx.cls, ctx.this)
            self.decorators(child, d, inner)
            if d.container:
                cls = self.enter_class(d, symbol, inner)
                body = body_of(d.inner)
                scope = self.globals.child()
                in_class = Context(symbol, scope, cls, cls.bind.of_instance())
                if body is not None and any(definition_of(c) is not None for c in body.named_children):
                    self.members(body.children, symbol, in_class)
                elif body is not None:
                    self.visit(body, in_class)
            else:
                self.enter_function(d, Context(symbol, ctx.scope.child(), ctx.cls, ctx.cls.bind.of_instance()
                                               if ctx.cls else None))

    def add(self, node, ctx: Context, kind: str, bind: Bind | None, name: str = "", alias: str = "") -> None:
        """Record a reference at `node`'s line: to `bind`, or (None) to `name` alone, unresolved: `name` for a
        bare name (`save()`), `.name` for a member of an unknown receiver (`x.save()`)."""
        if bind is None:
            module, target, qualified = "", name, False
        else:
            module, target, qualified = bind.module, bind.target, True
        if not target and not module:
            return
        line = node.start_point[0] + 1
        key = (line, ctx.caller, module, target, alias)
        seen = self._seen.get(key)
        if seen is not None:  # one line's reference is kept once, under its strongest kind (a call over a use)
            if WEAK.get(kind, 0) < WEAK.get(seen.kind, 0):
                seen.kind = kind
            return
        self._seen[key] = ref = Reference(line, ctx.caller, kind, module, target, qualified, alias)
        self.refs.append(ref)


MAX_BROKEN = 0.1  # a file more than this share of whose lines the parser could not read "does not parse"


def broken(root) -> bool:
    """Whether a tree with syntax errors is too damaged to read: the parse failed outright, or its errors
    cover more than MAX_BROKEN of the lines. A file with a few constructs its grammar does not know (a new
    syntax) is read, its ERROR parts left out."""
    if root.type == "ERROR" or (root.named_children and all(c.type == "ERROR" for c in root.named_children)):
        return True
    lines: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if n.type == "ERROR" or n.is_missing:
            lines.update(range(n.start_point[0], n.end_point[0] + 1))
        elif n.has_error:
            stack.extend(n.children)
    return len(lines) > MAX_BROKEN * (root.end_point[0] + 1)


KIND_NAMES = {
    "function_definition": "function", "function_declaration": "function", "function_item": "function",
    "generator_function_declaration": "function", "arrow_function": "function", "function_expression": "function",
    "function_signature": "function", "function": "function",
    "method_definition": "method", "method_declaration": "method", "method_signature": "method",
    "abstract_method_signature": "method", "constructor_declaration": "constructor",
    "class_definition": "class", "class_declaration": "class", "abstract_class_declaration": "class",
    "class": "class", "interface_declaration": "interface", "enum_declaration": "enum", "enum_item": "enum",
    "record_declaration": "record", "annotation_type_declaration": "annotation", "type_alias_declaration": "type",
    "type_declaration": "type", "type_item": "type", "struct_item": "struct", "trait_item": "trait",
    "impl_item": "impl", "mod_item": "module", "macro_definition": "macro", "const_item": "constant",
    "static_item": "constant",
}


def text(node) -> str:
    return node_text(node)
