"""TypeScript's and JavaScript's references: named, default and namespace imports (`import d, { a as b }
from './x'`, `import * as ns from '../y'`, `require('./z')`), re-exports (`export { a as b } from './x'`,
`export * from './w'`, `export default Foo`), calls and `new`, `this.method()` and `super.method()`,
parameters and fields with a declared type, `extends` / `implements`, decorators, type references and
JSX elements.

A module is a file's path without its extension (`src/types.ts` is `src/types`); an import of
'./x' from `src/a.ts` names `src/x`, which the query side finds as `src/x` or `src/x/index`; a bare
specifier ('zod') names a package (indexes/graph.py)."""
from __future__ import annotations

import posixpath
import re

from ingest.code import definition_of
from ingest.references import (
    CALL,
    DECORATOR,
    EXPORT,
    IMPORT,
    INHERIT,
    TYPE,
    USE,
    Bind,
    ClassContext,
    Context,
    FileWalker,
    text,
)

EXTENSIONS = re.compile(r"\.(d\.ts|ts|tsx|js|jsx|mjs|cjs|mts|cts)$")
# The language's and the platforms' globals: calls on them are no references into the KB.
GLOBALS = frozenset("""
Array ArrayBuffer Atomics BigInt Boolean DataView Date Error EvalError Float32Array Float64Array Function
Infinity Int8Array Int16Array Int32Array Intl JSON Map Math NaN Number Object Promise Proxy RangeError
ReferenceError Reflect RegExp Set SharedArrayBuffer String Symbol SyntaxError TypeError URIError URL
URLSearchParams Uint8Array Uint8ClampedArray Uint16Array Uint32Array WeakMap WeakRef WeakSet AbortController
Buffer TextDecoder TextEncoder console process globalThis window document navigator require module exports
setTimeout clearTimeout setInterval clearInterval setImmediate queueMicrotask structuredClone fetch
parseInt parseFloat isNaN isFinite encodeURIComponent decodeURIComponent encodeURI decodeURI undefined
""".split())
SKIP = {"ERROR", "string_fragment", "escape_sequence", "comment", "number", "regex", "true", "false", "null",
        "undefined", "predefined_type", "property_identifier", "private_property_identifier",
        "accessibility_modifier", "literal_type", "template_literal_type"}
FUNCTIONS = {"arrow_function", "function_expression", "function_declaration", "generator_function_declaration",
             "function", "method_definition", "generator_function"}


def script_module(path: str) -> str:
    """`src/types.ts` -> `src/types`."""
    return EXTENSIONS.sub("", path)


class ScriptWalker(FileWalker):
    builtins = GLOBALS

    def module_name(self) -> str:
        return script_module(self.path)

    def own(self, symbol: str) -> Bind:
        return Bind(self.module, symbol)

    def source(self, node) -> str:
        """The module a string like './x.js' names, seen from this file."""
        spec = text(node).strip("'\"`")
        if spec.startswith("."):
            spec = posixpath.normpath(posixpath.join(posixpath.dirname(self.path), spec))
        return EXTENSIONS.sub("", spec)

    # -- imports and exports ---------------------------------------------------------------------------
    def import_binds(self, node) -> list[tuple[object, str, Bind]]:
        """(node for the line, local name, binding) of an import statement."""
        src = node.child_by_field_name("source")
        if src is None:
            return []
        module = self.source(src)
        out = []
        for clause in node.named_children:
            if clause.type != "import_clause":
                continue
            for c in clause.named_children:
                if c.type == "identifier":  # default import
                    out.append((c, text(c), Bind(module, "default")))
                elif c.type == "namespace_import":
                    name = next((x for x in c.named_children if x.type == "identifier"), None)
                    if name is not None:
                        out.append((name, text(name), Bind(module, "")))
                elif c.type == "named_imports":
                    for spec in c.named_children:
                        if spec.type != "import_specifier":
                            continue
                        name = spec.child_by_field_name("name")
                        alias = spec.child_by_field_name("alias") or name
                        out.append((name, text(alias), Bind(module, text(name))))
        if not out:  # import './side-effects'
            out.append((src, "", Bind(module, "")))
        return out

    def required(self, declarator) -> list[tuple[str, Bind]]:
        """Names bound by `const x = require('./y')` or `const { a } = require('./y')`."""
        value = declarator.child_by_field_name("value")
        if value is None or value.type != "call_expression" or text(value.child_by_field_name("function")) \
                != "require":
            return []
        args = value.child_by_field_name("arguments")
        strings = [c for c in args.named_children if c.type == "string"] if args is not None else []
        if not strings:
            return []
        module = self.source(strings[0])
        name = declarator.child_by_field_name("name")
        if name is not None and name.type == "identifier":
            return [(text(name), Bind(module, ""))]
        if name is not None and name.type == "object_pattern":
            return [(text(c), Bind(module, text(c))) for c in name.named_children
                    if c.type == "shorthand_property_identifier_pattern"]
        return []

    def prepare(self, root) -> None:
        for node in root.named_children:
            stmt = node
            if node.type == "import_statement":
                for _, name, bind in self.import_binds(node):
                    if name:
                        self.globals.names[name] = bind
                continue
            if node.type == "export_statement" and node.child_by_field_name("declaration") is not None:
                stmt = node.child_by_field_name("declaration")
            d = definition_of(node)
            if d is not None:
                self.globals.names[d.name] = self.own(d.name)
            elif stmt.type in ("lexical_declaration", "variable_declaration"):
                for decl in stmt.named_children:
                    if decl.type != "variable_declarator":
                        continue
                    got = self.required(decl)
                    for name, bind in got:
                        self.globals.names[name] = bind
                    name = decl.child_by_field_name("name")
                    if not got and name is not None and name.type == "identifier":
                        # a module variable: known, not a definition (nor hiding an interface of its name)
                        self.globals.names.setdefault(text(name), None)
            elif stmt.type in ("enum_declaration", "internal_module", "module"):
                name = stmt.child_by_field_name("name")
                if name is not None:
                    self.globals.names[text(name)] = self.own(text(name))

    def import_statement(self, node, ctx: Context) -> None:
        for at, name, bind in self.import_binds(node):
            self.add(at, ctx, IMPORT, bind, alias=name if ctx.caller == "" else "")
            if name and ctx.scope is not self.globals:
                ctx.scope.names[name] = bind

    def export_statement(self, node, ctx: Context) -> None:
        src = node.child_by_field_name("source")
        module = self.source(src) if src is not None else None
        clause = next((c for c in node.named_children if c.type == "export_clause"), None)
        if clause is not None:
            for spec in clause.named_children:
                if spec.type != "export_specifier":
                    continue
                name = spec.child_by_field_name("name")
                alias = text(spec.child_by_field_name("alias") or name)
                bind = Bind(module, text(name)) if module is not None else self.lookup(text(name), ctx)[1]
                if bind is not None:
                    self.add(name, ctx, EXPORT, bind, alias=alias)
            return
        if module is not None:  # export * from './w'; export * as ns from './w'
            ns = next((c for c in node.named_children if c.type == "namespace_export"), None)
            name = next((c for c in ns.named_children if c.type == "identifier"), None) if ns is not None else None
            self.add(src, ctx, EXPORT, Bind(module, ""), alias=text(name) if name is not None else "*")
            return
        value = node.child_by_field_name("value")
        declaration = node.child_by_field_name("declaration")
        if declaration is not None:
            self.visit(declaration, ctx)
        elif value is not None:  # export default <expression>
            self.visit(value, ctx)
            if value.type in ("identifier", "member_expression"):
                bind = self.chain_bind(value, ctx)
                if bind is not None:
                    self.add(value, ctx, EXPORT, bind, alias="default")

    # -- names and chains --------------------------------------------------------------------------------
    def lookup(self, name: str, ctx: Context) -> tuple[str, Bind | None]:
        found, bind = ctx.scope.lookup(name)
        if found:
            return ("bound", bind) if bind is not None else ("local", None)
        found, bind = self.globals.lookup(name)
        if found:
            return ("bound", bind) if bind is not None else ("local", None)
        return ("builtin", None) if name in GLOBALS else ("unbound", None)

    def root_bind(self, node, ctx: Context) -> Bind | None:
        if node.type == "this":
            return ctx.this
        if node.type == "super":
            return ctx.cls.bases[0].of_instance() if ctx.cls is not None and ctx.cls.bases else None
        if node.type == "identifier":
            return self.lookup(text(node), ctx)[1]
        return None

    def chain_bind(self, node, ctx: Context) -> Bind | None:
        parts = []
        while node is not None and node.type in ("member_expression", "nested_type_identifier"):
            parts.append(text(node.child_by_field_name("property") or node.child_by_field_name("name")))
            node = node.child_by_field_name("object") or node.child_by_field_name("module")
        bind = self.root_bind(node, ctx) if node is not None else None
        for p in reversed(parts):
            if bind is not None and bind.instance:
                attr = ctx.cls.attributes.get(p) if ctx.cls is not None and bind == ctx.this else None
                bind = attr if attr is not None else None
                continue
            bind = bind.member(p) if bind is not None else None
        return bind

    def chain(self, node, ctx: Context, kind: str) -> None:
        parts = []
        n = node
        while n.type in ("member_expression", "nested_type_identifier"):
            parts.append(n.child_by_field_name("property") or n.child_by_field_name("name"))
            n = n.child_by_field_name("object") or n.child_by_field_name("module")
            if n is None:
                return
        parts.reverse()
        if n.type in ("identifier", "type_identifier", "shorthand_property_identifier"):
            how, bind = self.lookup(text(n), ctx)
            if not parts:
                if bind is not None and not bind.instance:
                    self.add(n, ctx, kind, bind)
                elif how == "unbound" and kind in (CALL, DECORATOR, INHERIT):
                    self.add(n, ctx, kind, None, text(n))
                return
            if how == "builtin":
                return  # console.log, Object.keys: the platform's, not the KB's
            if bind is not None and not bind.instance and bind.target:  # (a namespace is no symbol)
                self.add(n, ctx, USE, bind)
        elif n.type in ("this", "super"):
            bind = self.root_bind(n, ctx)
        else:
            self.visit(n, ctx)
            bind = None
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            name = text(p)
            if bind is not None and bind.instance and not last:
                attr = ctx.cls.attributes.get(name) if ctx.cls is not None and bind == ctx.this else None
                bind = attr
                continue
            if bind is not None and bind.instance and kind not in (CALL, DECORATOR):
                return  # an attribute of an instance (`self.store`): no definition to point at
            bind = bind.member(name) if bind is not None else None
            if bind is not None and (last or not bind.instance):
                self.add(p, ctx, kind if last else USE, bind)
            elif bind is None and last and kind in (CALL, DECORATOR):
                self.add(p, ctx, kind, None, "." + name)

    def type_of(self, node, ctx: Context) -> Bind | None:
        """The class a type annotation names (`Foo`, `ns.Foo`, `Foo<T>`, `Foo | undefined`)."""
        if node is None:
            return None
        if node.type == "type_annotation":
            return self.type_of(node.named_children[0] if node.named_children else None, ctx)
        if node.type in ("type_identifier", "identifier"):
            bind = self.lookup(text(node), ctx)[1]
            return bind.of_instance() if bind is not None and not bind.instance else None
        if node.type == "nested_type_identifier":
            bind = self.chain_bind(node, ctx)
            return bind.of_instance() if bind is not None else None
        if node.type == "generic_type":
            return self.type_of(node.child_by_field_name("name"), ctx)
        if node.type == "union_type":
            for c in node.named_children:
                if text(c) not in ("undefined", "null"):
                    return self.type_of(c, ctx)
        return None

    def value_bind(self, value, ctx: Context) -> Bind | None:
        """What a local is, from its value: an instance (`new Foo()`), or an alias (`const f = g`)."""
        if value is None:
            return None
        if value.type == "new_expression":
            made = self.chain_bind(value.child_by_field_name("constructor"), ctx)
            return made.of_instance() if made is not None and not made.instance else None
        if value.type in ("identifier", "member_expression"):
            return self.chain_bind(value, ctx)
        return None

    # -- definitions -------------------------------------------------------------------------------------
    def decorators(self, statement, d, ctx: Context) -> None:
        if statement.type == "export_statement" and any(c.type == "default" for c in statement.children):
            self.add(d.inner, ctx, EXPORT, self.own(ctx.caller), alias="default")
        for dec in [c for c in d.inner.children if c.type == "decorator"] + \
                [c for c in statement.children if c.type == "decorator"]:
            self.decorator(dec, ctx)

    def decorator(self, dec, ctx: Context) -> None:
        expr = dec.named_children[0] if dec.named_children else None
        if expr is None:
            return
        if expr.type == "call_expression":
            self.chain(expr.child_by_field_name("function"), ctx, DECORATOR)
            args = expr.child_by_field_name("arguments")
            if args is not None:
                self.visit(args, ctx)
        elif expr.type in ("identifier", "member_expression"):
            self.chain(expr, ctx, DECORATOR)

    def enter_class(self, d, symbol: str, ctx: Context) -> ClassContext:
        cls = ClassContext(self.own(symbol))
        for c in d.inner.named_children:
            if c.type == "class_heritage":
                for clause in c.named_children:
                    self.heritage(clause, cls, ctx)
            elif c.type in ("extends_type_clause", "extends_clause", "implements_clause"):
                self.heritage(c, cls, ctx)
            elif c.type == "type_parameters":
                self.visit(c, ctx)
        self.class_attributes(d, cls, ctx)
        return cls

    def heritage(self, clause, cls: ClassContext, ctx: Context) -> None:
        for t in clause.named_children:
            head = t
            if t.type == "generic_type":
                head = t.child_by_field_name("name")
                args = t.child_by_field_name("type_arguments")
                if args is not None:
                    self.visit(args, ctx)
            elif t.type == "type_arguments":
                self.visit(t, ctx)
                continue
            if head is None:
                continue
            if head.type in ("identifier", "type_identifier", "member_expression", "nested_type_identifier"):
                self.chain(head, ctx, INHERIT)
                bind = self.chain_bind(head, ctx) if head.type != "type_identifier" else \
                    self.lookup(text(head), ctx)[1]
                if bind is not None and clause.type != "implements_clause":
                    cls.bases.append(bind)
            else:
                self.visit(head, ctx)

    def class_attributes(self, d, cls: ClassContext, ctx: Context) -> None:
        """Types of fields (`private store: Store`, `store = new Store()`), constructor parameter
        properties (`constructor(private store: Store)`) and `this.x = new Foo()` assignments."""
        from ingest.code import body_of, walk_nodes

        body = body_of(d.inner)
        if body is None:
            return
        for n in walk_nodes(body):
            name, bind = "", None
            if n.type in ("public_field_definition", "property_signature") and n.parent == body:
                name = text(n.child_by_field_name("name"))
                bind = self.type_of(n.child_by_field_name("type"), ctx) or \
                    self.value_bind(n.child_by_field_name("value"), ctx)
            elif n.type in ("required_parameter", "optional_parameter") and \
                    any(c.type == "accessibility_modifier" for c in n.children):
                name = text(n.child_by_field_name("pattern"))
                bind = self.type_of(n.child_by_field_name("type"), ctx)
            elif n.type == "assignment_expression":
                left = n.child_by_field_name("left")
                if left is not None and left.type == "member_expression" and \
                        text(left.child_by_field_name("object")) == "this":
                    name = text(left.child_by_field_name("property"))
                    bind = self.value_bind(n.child_by_field_name("right"), ctx)
            if name and bind is not None and bind.instance and name not in cls.attributes:
                cls.attributes[name] = bind

    def enter_function(self, d, ctx: Context) -> None:
        if d.inner.type not in FUNCTIONS and d.inner.type not in ("method_signature", "abstract_method_signature",
                                                                  "function_signature"):
            for c in d.inner.named_children:  # a type alias, an enum: its name is the definition, no reference
                if c != d.inner.child_by_field_name("name"):
                    self.visit(c, ctx)
            return
        self.function(d.inner, ctx)

    def function(self, fn, ctx: Context) -> None:
        for c in fn.named_children:
            if c.type == "formal_parameters":
                self.parameters(c, ctx)
            elif c.type not in ("identifier", "property_identifier", "type_identifier", "decorator"):
                self.visit(c, ctx)

    def parameters(self, params, ctx: Context) -> None:
        for p in params.named_children:
            if p.type not in ("required_parameter", "optional_parameter"):
                self.visit(p, ctx)
                continue
            pattern, kind = p.child_by_field_name("pattern"), p.child_by_field_name("type")
            for c in p.named_children:
                if c == kind:
                    self.visit(c, ctx)
                elif c != pattern and c.type != "accessibility_modifier":
                    self.visit(c, ctx)  # the default value, decorators
            if pattern is not None and pattern.type == "identifier":
                ctx.scope.names[text(pattern)] = self.type_of(kind, ctx)
            elif pattern is not None:
                self.visit(pattern, ctx)

    # -- statements and expressions ------------------------------------------------------------------------
    def visit(self, node, ctx: Context) -> None:  # noqa: C901 (one dispatch on node types)
        t = node.type
        if t in SKIP:
            return
        if t == "import_statement":
            self.import_statement(node, ctx)
        elif t == "export_statement":
            self.export_statement(node, ctx)
        elif t in ("call_expression", "new_expression"):
            fn = node.child_by_field_name("function") or node.child_by_field_name("constructor")
            if fn is not None and fn.type != "import":
                self.chain(fn, ctx, CALL)
            for c in node.named_children:
                if c != fn:
                    self.visit(c, ctx)
        elif t in ("identifier", "member_expression", "type_identifier", "nested_type_identifier",
                   "shorthand_property_identifier"):
            self.chain(node, ctx, TYPE if t in ("type_identifier", "nested_type_identifier") else USE)
        elif t in ("jsx_opening_element", "jsx_self_closing_element"):
            name = node.child_by_field_name("name")
            if name is not None and name.type in ("identifier", "member_expression") and text(name)[:1].isupper():
                self.chain(name, ctx, CALL)
            for c in node.named_children:
                if c != name:
                    self.visit(c, ctx)
        elif t == "decorator":
            self.decorator(node, ctx)
        elif t == "variable_declarator":
            self.declarator(node, ctx)
        elif t in FUNCTIONS:
            inner = Context(ctx.caller, ctx.scope.child(), ctx.cls, ctx.this)
            name = node.child_by_field_name("name")
            if name is not None and t != "method_definition":
                ctx.scope.names[text(name)] = None
            self.function(node, inner)
        elif t in ("class", "class_declaration"):
            d = definition_of(node)
            if d is not None:
                cls = self.enter_class(d, ctx.caller, ctx)
                body = node.child_by_field_name("body")
                if body is not None:
                    self.visit(body, Context(ctx.caller, ctx.scope.child(), cls, cls.bind.of_instance()))
        elif t == "pair":  # { key: value }: the key is no reference
            value = node.child_by_field_name("value")
            if value is not None:
                self.visit(value, ctx)
        elif t in ("public_field_definition", "property_signature"):
            for c in node.named_children:
                if c != node.child_by_field_name("name"):
                    self.visit(c, ctx)
        else:
            for c in node.named_children:
                self.visit(c, ctx)

    def declarator(self, node, ctx: Context) -> None:
        name, kind, value = (node.child_by_field_name(f) for f in ("name", "type", "value"))
        if kind is not None:
            self.visit(kind, ctx)
        if value is not None:
            self.visit(value, ctx)
        if name is None or name.type != "identifier":
            if name is not None:
                self.visit_pattern(name, ctx)
            return
        if ctx.scope is self.globals:
            return  # module variables were bound by prepare
        required = self.required(node)
        ctx.scope.names[text(name)] = required[0][1] if required else \
            self.type_of(kind, ctx) or self.value_bind(value, ctx)

    def visit_pattern(self, pattern, ctx: Context) -> None:
        """A destructuring pattern binds locals; its default values are expressions."""
        for c in pattern.named_children:
            if c.type in ("shorthand_property_identifier_pattern", "identifier"):
                if ctx.scope is not self.globals:
                    ctx.scope.names[text(c)] = None
            elif c.type in ("object_assignment_pattern", "assignment_pattern"):
                right = c.child_by_field_name("right")
                if right is not None:
                    self.visit(right, ctx)
            else:
                self.visit_pattern(c, ctx)
