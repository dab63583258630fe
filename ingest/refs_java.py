"""Java's references: through the file's imports (`import com.acme.Store;`, static imports) and its
package (a class named without import is the package's), method calls on typed locals, parameters and
fields (Java declares them all), `this.` and `super.`, `new`, `extends` / `implements`, annotations and
type references.

A module is a package (`com.acme.app`); targets are dotted (`com.acme.app.App.run`)."""
from __future__ import annotations

from ingest.code import definition_of, walk_nodes
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
    text,
)

BUILTINS = frozenset("""
String Object Integer Long Double Float Boolean Character Byte Short Number Math StrictMath System Thread
Runnable Exception RuntimeException Throwable Error IllegalArgumentException IllegalStateException
NullPointerException UnsupportedOperationException IndexOutOfBoundsException ArithmeticException
ClassCastException InterruptedException CloneNotSupportedException Iterable Comparable CharSequence
StringBuilder StringBuffer Class ClassLoader Void Override Deprecated SuppressWarnings FunctionalInterface
SafeVarargs Enum Record AutoCloseable Cloneable Process ProcessBuilder Runtime ThreadLocal
""".split())
SKIP = {"ERROR", "string_literal", "character_literal", "decimal_integer_literal", "hex_integer_literal",
        "decimal_floating_point_literal", "true", "false", "null_literal", "line_comment", "block_comment",
        "integral_type", "floating_point_type", "boolean_type", "void_type", "modifiers_keyword",
        "package_declaration"}


class JavaWalker(FileWalker):
    builtins = BUILTINS

    def module_name(self) -> str:
        root = self.tree.root_node
        for node in root.named_children:
            if node.type == "package_declaration":
                name = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
                return text(name)
        return ""

    def prepare(self, root) -> None:
        for node in root.named_children:
            if node.type == "import_declaration":
                name = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
                star = any(c.type == "asterisk" for c in node.named_children)
                if name is not None and not star:
                    dotted = text(name)
                    self.globals.names[dotted.rsplit(".", 1)[-1]] = Bind("", dotted)
        for node in walk_nodes(root):  # classes of the file, nested ones by their own name too
            if node.type in ("class_declaration", "interface_declaration", "enum_declaration",
                             "record_declaration", "annotation_type_declaration"):
                names = []
                n = node
                while n is not None:
                    if n.type in ("class_declaration", "interface_declaration", "enum_declaration",
                                  "record_declaration", "annotation_type_declaration"):
                        names.append(text(n.child_by_field_name("name")))
                    n = n.parent
                self.globals.names.setdefault(names[0], self.own(".".join(reversed(names))))

    def lookup(self, name: str, ctx: Context) -> tuple[str, Bind | None]:
        found, bind = ctx.scope.lookup(name)
        if found:
            return ("bound", bind) if bind is not None else ("local", None)
        if ctx.cls is not None and name in ctx.cls.attributes:
            return "bound", ctx.cls.attributes[name]
        found, bind = self.globals.lookup(name)
        if found and bind is not None:
            return "bound", bind
        if name in BUILTINS:
            return "builtin", None
        if name[:1].isupper():
            return "bound", self.own(name)  # a class of the same package
        return "unbound", None

    def type_bind(self, node, ctx: Context) -> Bind | None:
        if node is None:
            return None
        if node.type == "type_identifier":
            return self.lookup(text(node), ctx)[1]
        if node.type == "generic_type":
            return self.type_bind(node.named_children[0] if node.named_children else None, ctx)
        if node.type == "scoped_type_identifier":
            parts = [text(c) for c in node.named_children]
            bind = self.lookup(parts[0], ctx)[1] if parts else None
            for p in parts[1:]:
                bind = bind.member(p) if bind is not None else None
            return bind
        return None

    def chain(self, node, ctx: Context, kind: str, name_node=None) -> None:
        """References of `object.name` (a method invocation when `name_node` is given) or a field access."""
        parts = [name_node] if name_node is not None else []
        n = node
        while n is not None and n.type == "field_access":
            parts.append(n.child_by_field_name("field"))
            n = n.child_by_field_name("object")
        parts.reverse()
        bind = None
        if n is None:  # helper(): a method of this class
            bind = ctx.this
            how = "bound"
            found = self.globals.lookup(text(name_node))[1]  # a static import
            if found is not None:
                self.add(name_node, ctx, kind, found)
                return
        elif n.type == "identifier":
            how, bind = self.lookup(text(n), ctx)
            if not parts:
                if bind is not None and not bind.instance:
                    self.add(n, ctx, kind, bind)
                return
            if how == "builtin":
                return
            if bind is not None and not bind.instance:
                self.add(n, ctx, USE, bind)
        elif n.type == "this":
            bind = ctx.this
        elif n.type == "super":
            bind = ctx.cls.bases[0].of_instance() if ctx.cls is not None and ctx.cls.bases else None
        else:
            self.visit(n, ctx)
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            name = text(p)
            if bind is not None and bind.instance:
                if not last:
                    bind = ctx.cls.attributes.get(name) if ctx.cls is not None and bind == ctx.this else None
                    continue
                if kind != CALL:
                    return
            bind = bind.member(name) if bind is not None else None
            if bind is not None and (last or not bind.instance):
                self.add(p, ctx, kind if last else USE, bind)
            elif bind is None and last and kind == CALL:
                self.add(p, ctx, kind, None, "." + name)

    def enter_class(self, d, symbol: str, ctx: Context) -> ClassContext:
        cls = ClassContext(self.own(symbol))
        for field in ("superclass", "interfaces"):
            part = d.inner.child_by_field_name(field)
            for t in walk_nodes(part) if part is not None else ():
                if t.type in ("type_identifier", "scoped_type_identifier") and \
                        t.parent.type != "scoped_type_identifier":
                    bind = self.type_bind(t, ctx)
                    if bind is not None:
                        self.add(t, ctx, INHERIT if t.parent.type != "type_arguments" else TYPE, bind)
                        if field == "superclass":
                            cls.bases.append(bind)
        for c in d.inner.named_children:
            if c.type == "extends_interfaces":
                for t in walk_nodes(c):
                    if t.type == "type_identifier":
                        bind = self.type_bind(t, ctx)
                        if bind is not None:
                            self.add(t, ctx, INHERIT, bind)
        body = d.inner.child_by_field_name("body")
        for f in body.named_children if body is not None else ():
            if f.type == "field_declaration":
                kind = self.type_bind(f.child_by_field_name("type"), ctx)
                for decl in f.named_children:
                    if decl.type == "variable_declarator" and kind is not None:
                        cls.attributes[text(decl.child_by_field_name("name"))] = kind.of_instance()
        return cls

    def decorators(self, statement, d, ctx: Context) -> None:
        for c in d.inner.named_children:
            if c.type == "modifiers":
                self.visit(c, ctx)

    def enter_function(self, d, ctx: Context) -> None:
        for c in d.inner.named_children:
            if c.type == "formal_parameters":
                for p in c.named_children:
                    self.parameter(p, ctx)
            elif c.type not in ("identifier", "modifiers"):
                self.visit(c, ctx)

    def parameter(self, p, ctx: Context) -> None:
        kind = p.child_by_field_name("type")
        if kind is not None:
            self.visit(kind, ctx)
        bind = self.type_bind(kind, ctx)
        name = p.child_by_field_name("name") or next((c for c in p.named_children if c.type == "identifier"), None)
        if name is not None:
            ctx.scope.names[text(name)] = bind.of_instance() if bind is not None else None

    def visit(self, node, ctx: Context) -> None:  # noqa: C901 (one dispatch on node types)
        t = node.type
        if t in SKIP:
            return
        if t == "import_declaration":
            name = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
            if name is not None:
                self.add(name, ctx, IMPORT, Bind("", text(name)))
        elif t == "method_invocation":
            obj, name = node.child_by_field_name("object"), node.child_by_field_name("name")
            self.chain(obj, ctx, CALL, name)
            for c in node.named_children:
                if c != obj and c != name:
                    self.visit(c, ctx)
        elif t == "object_creation_expression":
            kind = node.child_by_field_name("type")
            bind = self.type_bind(kind, ctx)
            if bind is not None:
                self.add(kind, ctx, CALL, bind)
            for c in node.named_children:
                if c != kind:
                    self.visit(c, ctx)
        elif t in ("identifier", "field_access"):
            self.chain(node, ctx, USE)
        elif t in ("type_identifier", "scoped_type_identifier"):
            bind = self.type_bind(node, ctx)
            if bind is not None:
                self.add(node, ctx, TYPE, bind)
        elif t in ("marker_annotation", "annotation"):
            name = node.child_by_field_name("name")
            bind = self.type_bind(name, ctx) if name is not None and name.type != "identifier" else \
                (self.lookup(text(name), ctx)[1] if name is not None else None)
            if bind is not None:
                self.add(name, ctx, DECORATOR, bind)
            args = node.child_by_field_name("arguments")
            if args is not None:
                self.visit(args, ctx)
        elif t in ("local_variable_declaration", "field_declaration"):
            kind = node.child_by_field_name("type")
            self.visit(kind, ctx)
            bind = self.type_bind(kind, ctx)
            for decl in node.named_children:
                if decl.type != "variable_declarator":
                    continue
                value = decl.child_by_field_name("value")
                if value is not None:
                    self.visit(value, ctx)
                local = bind
                if text(kind) == "var" and value is not None and value.type == "object_creation_expression":
                    local = self.type_bind(value.child_by_field_name("type"), ctx)
                if t == "local_variable_declaration":
                    ctx.scope.names[text(decl.child_by_field_name("name"))] = local.of_instance() if local else None
        elif t in ("formal_parameter", "catch_formal_parameter", "spread_parameter"):
            self.parameter(node, ctx)
        elif t == "enhanced_for_statement":
            self.parameter(node, ctx)
            for c in node.named_children:
                if c not in (node.child_by_field_name("type"), node.child_by_field_name("name")):
                    self.visit(c, ctx)
        elif t == "lambda_expression":
            inner = Context(ctx.caller, ctx.scope.child(), ctx.cls, ctx.this)
            params = node.child_by_field_name("parameters")
            for n in walk_nodes(params) if params is not None else ():
                if n.type == "identifier":
                    inner.scope.names[text(n)] = None
            body = node.child_by_field_name("body")
            if body is not None:
                self.visit(body, inner)
        elif t in ("class_declaration", "interface_declaration", "enum_declaration", "record_declaration"):
            d = definition_of(node)
            if d is not None:  # a class inside a method: part of the method's code
                cls = self.enter_class(d, ctx.caller, ctx)
                body = node.child_by_field_name("body")
                if body is not None:
                    self.visit(body, Context(ctx.caller, ctx.scope.child(), cls, cls.bind.of_instance()))
        elif t == "class_body" and node.parent is not None and node.parent.type == "object_creation_expression":
            self.visit_children(node, Context(ctx.caller, ctx.scope.child(), ctx.cls, ctx.this))
        else:
            self.visit_children(node, ctx)

    def visit_children(self, node, ctx: Context) -> None:
        for c in node.named_children:
            self.visit(c, ctx)
