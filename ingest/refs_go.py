"""Go's references: package-qualified calls and types through the file's imports (`st.New()` where
`st "github.com/acme/proj/pkg/store"`), calls and types of the same package (any file of the folder),
methods through the receiver (`s.helper()`, `s.db.Open()` when the struct's field type is known),
parameters and `v := &T{}` locals of a known type, composite literals, embedded structs and interfaces.

A module is a package folder (`pkg/store`); an import path names the folder it ends with, which the
query side finds (indexes/graph.py)."""
from __future__ import annotations

import posixpath
import re

from ingest.code import walk_nodes
from ingest.references import CALL, IMPORT, INHERIT, TYPE, USE, Bind, Context, FileWalker, text

BUILTINS = frozenset("""
append cap clear close complex copy delete imag len make max min new panic print println real recover
bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string uint uint8 uint16
uint32 uint64 uintptr any comparable true false iota nil
""".split())
SKIP = {"ERROR", "interpreted_string_literal", "raw_string_literal", "int_literal", "float_literal", "rune_literal",
        "comment", "nil", "true", "false", "iota", "field_identifier", "package_clause", "label_name"}
VERSION = re.compile(r"v\d+")


def go_module(path: str) -> str:
    return posixpath.dirname(path) or "."


class GoWalker(FileWalker):
    builtins = BUILTINS

    def module_name(self) -> str:
        return go_module(self.path)

    def own(self, symbol: str) -> Bind:
        return Bind(self.module, symbol)

    def prepare(self, root) -> None:
        self.fields: dict[str, dict[str, Bind]] = {}  # struct -> field -> type
        for node in root.named_children:
            if node.type == "import_declaration":
                for spec in walk_nodes(node):
                    if spec.type == "import_spec":
                        name, bind = self.import_bind(spec)
                        if name:
                            self.globals.names[name] = bind
            elif node.type in ("function_declaration", "type_declaration"):
                for n in ([node] if node.type == "function_declaration" else
                          [c for c in node.named_children if c.type in ("type_spec", "type_alias")]):
                    name = text(n.child_by_field_name("name"))
                    if name:
                        self.globals.names[name] = self.own(name)
        for node in walk_nodes(root):  # struct fields, for `s.db.Open()`
            if node.type == "type_spec" and (body := node.child_by_field_name("type")) is not None \
                    and body.type == "struct_type":
                fields = self.fields.setdefault(text(node.child_by_field_name("name")), {})
                for f in walk_nodes(body):
                    if f.type == "field_declaration" and f.child_by_field_name("name") is not None:
                        kind = self.type_bind(f.child_by_field_name("type"))
                        for n in f.named_children:
                            if n.type == "field_identifier" and kind is not None:
                                fields[text(n)] = kind.of_instance()

    def import_bind(self, spec) -> tuple[str, Bind]:
        path = text(spec.child_by_field_name("path")).strip('"`')
        alias = spec.child_by_field_name("name")
        parts = path.split("/")
        name = parts[-2] if len(parts) > 1 and VERSION.fullmatch(parts[-1]) else parts[-1]
        if alias is not None:
            name = text(alias) if text(alias) not in (".", "_") else ""
        return name.replace("-", "_"), Bind(path, "")

    def type_bind(self, node) -> Bind | None:
        """The named type a type expression is (`T`, `*T`, `pkg.T`, `[]T` is none)."""
        if node is None:
            return None
        if node.type == "pointer_type":
            return self.type_bind(node.named_children[0] if node.named_children else None)
        if node.type == "type_identifier":
            name = text(node)
            return None if name in BUILTINS else self.own(name)
        if node.type == "qualified_type":
            pkg = self.globals.lookup(text(node.child_by_field_name("package")))[1]
            return pkg.member(text(node.child_by_field_name("name"))) if pkg is not None else None
        if node.type == "generic_type":
            return self.type_bind(node.child_by_field_name("type"))
        return None

    def kind_of(self, inner, in_class: bool) -> str:
        if inner.type == "type_declaration":
            spec = next((c for c in inner.named_children if c.type in ("type_spec", "type_alias")), None)
            body = spec.child_by_field_name("type") if spec is not None else None
            return {"struct_type": "struct", "interface_type": "interface"}.get(body.type if body else "", "type")
        return super().kind_of(inner, in_class)

    def lookup(self, name: str, ctx: Context) -> tuple[str, Bind | None]:
        found, bind = ctx.scope.lookup(name)
        if found:
            return ("bound", bind) if bind is not None else ("local", None)
        if name in BUILTINS:
            return "builtin", None
        found, bind = self.globals.lookup(name)
        if found and bind is not None:
            return "bound", bind
        return "bound", self.own(name)  # a name of the package, maybe in another of its files

    def chain(self, node, ctx: Context, kind: str) -> None:
        parts = []
        n = node
        while n.type == "selector_expression":
            parts.append(n.child_by_field_name("field"))
            n = n.child_by_field_name("operand")
        parts.reverse()
        bind = None
        if n.type in ("identifier", "type_identifier", "package_identifier"):
            how, bind = self.lookup(text(n), ctx)
            if not parts:
                guessed = how == "bound" and text(n) not in self.globals.names and ctx.scope.lookup(text(n))[0] is False
                if bind is not None and not bind.instance and not (guessed and kind == USE):
                    self.add(n, ctx, kind, bind)
                return
            if how == "builtin":
                return
            if bind is not None and not bind.instance and bind.target:
                self.add(n, ctx, USE, bind)
        else:
            self.visit(n, ctx)
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            name = text(p)
            if bind is not None and bind.instance:
                if not last:
                    bind = self.fields.get(bind.target, {}).get(name)
                    continue
                if kind != CALL:
                    return
            bind = bind.member(name) if bind is not None else None
            if bind is not None and (last or not bind.instance):
                self.add(p, ctx, kind if last else USE, bind)
            elif bind is None and last and kind == CALL:
                self.add(p, ctx, kind, None, "." + name)

    def enter_function(self, d, ctx: Context) -> None:
        fn = d.inner
        if fn.type not in ("function_declaration", "method_declaration"):
            self.visit(fn, ctx)
            return
        receiver = fn.child_by_field_name("receiver")
        if receiver is not None:
            for p in receiver.named_children:
                kind = self.type_bind(p.child_by_field_name("type"))
                name = p.child_by_field_name("name")
                if name is not None and kind is not None:
                    ctx.scope.names[text(name)] = kind.of_instance()
        for field in ("type_parameters", "parameters", "result"):
            part = fn.child_by_field_name(field)
            if part is not None:
                self.parameters(part, ctx) if field == "parameters" else self.visit(part, ctx)
        body = fn.child_by_field_name("body")
        if body is not None:
            self.visit(body, ctx)

    def parameters(self, params, ctx: Context) -> None:
        for p in params.named_children:
            kind = p.child_by_field_name("type")
            if kind is not None:
                self.visit(kind, ctx)
            bind = self.type_bind(kind)
            for n in p.named_children:
                if n.type == "identifier":
                    ctx.scope.names[text(n)] = bind.of_instance() if bind is not None else None

    def visit(self, node, ctx: Context) -> None:  # noqa: C901 (one dispatch on node types)
        t = node.type
        if t in SKIP:
            return
        if t == "import_declaration":
            for spec in walk_nodes(node):
                if spec.type == "import_spec":
                    self.add(spec, ctx, IMPORT, self.import_bind(spec)[1])
        elif t == "call_expression":
            fn = node.child_by_field_name("function")
            self.chain(fn, ctx, CALL)
            for c in node.named_children:
                if c != fn:
                    self.visit(c, ctx)
        elif t == "composite_literal":
            kind = node.child_by_field_name("type")
            if kind is not None and kind.type in ("type_identifier", "qualified_type"):
                bind = self.type_bind(kind)
                if bind is not None:
                    self.add(kind, ctx, CALL, bind)
            body = node.child_by_field_name("body")
            if body is not None:
                self.visit(body, ctx)
        elif t in ("identifier", "selector_expression"):
            self.chain(node, ctx, USE)
        elif t in ("type_identifier", "qualified_type"):
            bind = self.type_bind(node)
            if bind is not None:
                self.add(node, ctx, TYPE, bind)
        elif t == "field_declaration" and node.child_by_field_name("name") is None:  # an embedded struct
            bind = self.type_bind(node.child_by_field_name("type"))
            if bind is not None:
                self.add(node, ctx, INHERIT, bind)
        elif t in ("type_elem", "constraint_elem") and node.parent is not None and node.parent.type == "interface_type":
            for c in node.named_children:
                bind = self.type_bind(c)
                if bind is not None:
                    self.add(c, ctx, INHERIT, bind)
        elif t in ("short_var_declaration", "var_spec", "const_spec"):
            self.declaration(node, ctx)
        elif t in ("type_spec", "type_alias"):  # its name is the definition, not a reference
            for c in node.named_children:
                if c != node.child_by_field_name("name"):
                    self.visit(c, ctx)
        elif t == "range_clause":
            left = node.child_by_field_name("left")
            for c in node.named_children:
                if c != left:
                    self.visit(c, ctx)
            for n in walk_nodes(left) if left is not None else ():
                if n.type == "identifier":
                    ctx.scope.names[text(n)] = None
        elif t == "func_literal":
            inner = Context(ctx.caller, ctx.scope.child(), ctx.cls, ctx.this)
            for c in node.named_children:
                self.parameters(c, inner) if c.type == "parameter_list" else self.visit(c, inner)
        elif t == "keyed_element":
            for c in node.named_children[1:]:
                self.visit(c, ctx)
            if node.named_children and node.named_children[0].type not in ("field_identifier", "literal_element"):
                self.visit(node.named_children[0], ctx)
        else:
            for c in node.named_children:
                self.visit(c, ctx)

    def declaration(self, node, ctx: Context) -> None:
        left = node.child_by_field_name("left") or node.child_by_field_name("name")
        right = node.child_by_field_name("right") or node.child_by_field_name("value")
        kind = node.child_by_field_name("type")
        if kind is not None:
            self.visit(kind, ctx)
        if right is not None:
            self.visit(right, ctx)
        names = [c for c in (left.named_children if left is not None and left.type == "expression_list" else
                             node.named_children) if c.type == "identifier"]
        values = right.named_children if right is not None and right.type == "expression_list" else \
            ([right] if right is not None else [])
        for i, n in enumerate(names):
            bind = self.type_bind(kind)
            if bind is None and i < len(values):
                v = values[i]
                if v.type == "unary_expression" and v.named_children:
                    v = v.named_children[-1]
                if v.type == "composite_literal":
                    bind = self.type_bind(v.child_by_field_name("type"))
            if ctx.scope is not self.globals:
                ctx.scope.names[text(n)] = bind.of_instance() if bind is not None else None
