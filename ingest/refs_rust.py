"""Rust's references: through `use` paths (`use crate::store::{Store, open as op}`, `super::`, `self::`),
path calls (`Store::new()`, `crate::util::run()`), methods through `self` in an `impl` (and its fields'
types), typed parameters and `let` bindings, struct expressions, `impl Trait for Type`, type references.

A module is the file's place in its crate, dotted: `src/lib.rs` is `crate`, `src/net/client.rs` is
`crate.net.client` (a crate in a workspace folder `crates/foo/` is `foo`); `use` paths are dotted the
same way (`crate::net::Client` is `crate.net.Client`)."""
from __future__ import annotations

from pathlib import PurePosixPath

from ingest.code import walk_nodes
from ingest.references import CALL, IMPORT, INHERIT, TYPE, USE, Bind, ClassContext, Context, FileWalker, text

BUILTINS = frozenset("""
String Vec Option Some None Ok Err Result Box Rc Arc Cell RefCell Self self str bool char usize isize
u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64 Default Clone Copy Debug Display PartialEq Eq PartialOrd Ord
Hash Send Sync Sized Drop Fn FnMut FnOnce Iterator IntoIterator From Into AsRef AsMut ToString ToOwned
""".split())
SKIP = {"ERROR", "string_literal", "raw_string_literal", "char_literal", "integer_literal", "float_literal",
        "boolean_literal", "line_comment", "block_comment", "primitive_type", "field_identifier",
        "token_tree", "lifetime", "attribute_item", "inner_attribute_item", "visibility_modifier"}


def rust_module(path: str) -> str:
    """`src/net/client.rs` -> `crate.net.client`; `crates/foo/src/lib.rs` -> `foo`."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if "src" in parts:
        i = len(parts) - 1 - parts[::-1].index("src")
        crate = parts[i - 1].replace("-", "_") if i > 0 else "crate"
        rest = parts[i + 1:]
    else:
        crate, rest = "crate", parts
    if rest and rest[-1] in ("lib", "main", "mod"):
        rest = rest[:-1]
    return ".".join([crate, *rest])


class RustWalker(FileWalker):
    builtins = BUILTINS

    def module_name(self) -> str:
        return rust_module(self.path)

    @property
    def crate(self) -> str:
        return self.module.split(".")[0]

    def parent(self) -> str:
        mod = self.module.split(".")
        is_dir_module = PurePosixPath(self.path).stem in ("mod", "lib", "main")
        return ".".join(mod if is_dir_module and len(mod) == 1 else mod[:-1] or mod)

    # -- paths -----------------------------------------------------------------------------------------
    def dotted(self, node, ctx: Context | None = None) -> str:
        """A path expression (`crate::a::B`, `super::x`, `Store::new`) as a dotted name, its first part
        resolved through the file's `use` bindings."""
        t = node.type
        if t in ("scoped_identifier", "scoped_type_identifier"):
            head = node.child_by_field_name("path")
            name = text(node.child_by_field_name("name"))
            return f"{self.dotted(head, ctx)}.{name}" if head is not None else name
        word = text(node)
        if t == "crate":
            return self.crate
        if t == "self":
            return self.module
        if t == "super":
            return self.parent()
        if word == "Self" and ctx is not None and ctx.cls is not None:
            return ctx.cls.bind.target
        if t == "generic_type":
            return self.dotted(node.child_by_field_name("type"), ctx)
        found, bind = (ctx.scope if ctx is not None else self.globals).lookup(word)
        if found and bind is not None:
            return bind.target
        return word

    def uses(self, node, prefix: str = "") -> list[tuple[object, str, str]]:
        """(node, dotted target, name bound) of a `use` argument; name '*' for a glob."""
        t = node.type
        if t in ("scoped_identifier", "identifier", "crate", "self", "super"):
            full = self.dotted(node) if not prefix else f"{prefix}.{text(node)}" if t == "identifier" else \
                f"{prefix}.{self.dotted(node)}"
            if t == "self" and prefix:
                full = prefix
            return [(node, full, full.rsplit(".", 1)[-1])]
        if t == "use_as_clause":
            path, alias = node.child_by_field_name("path"), node.child_by_field_name("alias")
            return [(node, full, text(alias)) for _, full, _ in self.uses(path, prefix)]
        if t == "use_wildcard":
            head = node.named_children[0] if node.named_children else None
            return [(node, self.dotted(head) if head is not None else prefix, "*")]
        if t == "scoped_use_list":
            head = node.child_by_field_name("path")
            base = (f"{prefix}.{self.dotted(head)}" if prefix else self.dotted(head)) if head is not None else prefix
            lst = node.child_by_field_name("list")
            return [u for c in (lst.named_children if lst is not None else ()) for u in self.uses(c, base)]
        if t == "use_list":
            return [u for c in node.named_children for u in self.uses(c, prefix)]
        return []

    def prepare(self, root) -> None:
        self.fields: dict[str, dict[str, Bind]] = {}
        for node in root.named_children:
            if node.type == "use_declaration":
                arg = node.child_by_field_name("argument")
                for _, full, name in self.uses(arg) if arg is not None else ():
                    if name != "*":
                        self.globals.names[name] = Bind("", full)
            elif node.type in ("function_item", "struct_item", "enum_item", "trait_item", "type_item",
                               "const_item", "static_item", "mod_item", "macro_definition", "union_item"):
                name = text(node.child_by_field_name("name"))
                if name:
                    self.globals.names[name] = self.own(name)
        for node in walk_nodes(root):
            if node.type == "struct_item" and (body := node.child_by_field_name("body")) is not None:
                fields = self.fields.setdefault(text(node.child_by_field_name("name")), {})
                for f in body.named_children:
                    if f.type == "field_declaration":
                        kind = self.type_bind(f.child_by_field_name("type"), None)
                        if kind is not None:
                            fields[text(f.child_by_field_name("name"))] = kind.of_instance()

    def type_bind(self, node, ctx: Context | None) -> Bind | None:
        if node is None:
            return None
        if node.type in ("reference_type", "pointer_type"):
            return self.type_bind(node.child_by_field_name("type"), ctx)
        if node.type == "generic_type":
            return self.type_bind(node.child_by_field_name("type"), ctx)
        if node.type == "type_identifier":
            if text(node) == "Self" and ctx is not None and ctx.cls is not None:
                return ctx.cls.bind
            if text(node) in BUILTINS:
                return None
            found, bind = (ctx.scope if ctx is not None else self.globals).lookup(text(node))
            return bind if found else None
        if node.type == "scoped_type_identifier":
            return Bind("", self.dotted(node, ctx))
        return None

    # -- definitions ----------------------------------------------------------------------------------
    def enter_class(self, d, symbol: str, ctx: Context) -> ClassContext:
        cls = ClassContext(self.own(symbol))
        if d.inner.type == "impl_item":
            trait = d.inner.child_by_field_name("trait")
            bind = self.type_bind(trait, ctx) if trait is not None else None
            if bind is not None:
                self.add(trait, ctx, INHERIT, bind)
                cls.bases.append(bind)
            name = symbol.rsplit(".", 1)[-1]
            cls.attributes = dict(self.fields.get(name, {}))
        return cls

    def enter_function(self, d, ctx: Context) -> None:
        fn = d.inner
        if fn.type not in ("function_item", "function_signature_item"):
            for c in fn.named_children:  # a struct, enum, type or const: its name is no reference
                if c != fn.child_by_field_name("name"):
                    self.visit(c, ctx)
            return
        for c in fn.named_children:
            if c.type == "parameters":
                for p in c.named_children:
                    if p.type == "self_parameter":
                        ctx.scope.names["self"] = ctx.cls.bind.of_instance() if ctx.cls is not None else None
                    elif p.type == "parameter":
                        self.visit(p.child_by_field_name("type"), ctx)
                        bind = self.type_bind(p.child_by_field_name("type"), ctx)
                        pattern = p.child_by_field_name("pattern")
                        if pattern is not None and pattern.type == "identifier":
                            ctx.scope.names[text(pattern)] = bind.of_instance() if bind is not None else None
            elif c.type not in ("identifier", "visibility_modifier"):
                self.visit(c, ctx)

    # -- expressions ------------------------------------------------------------------------------------
    def call(self, fn, ctx: Context) -> None:
        if fn.type == "generic_function":
            fn = fn.child_by_field_name("function")
        if fn.type == "identifier":
            found, bind = ctx.scope.lookup(text(fn))
            if found and bind is None:
                return  # a closure held in a local
            if bind is None:
                bind = self.globals.lookup(text(fn))[1]
            self.add(fn, ctx, CALL, bind, text(fn))
        elif fn.type == "scoped_identifier":
            dotted = self.dotted(fn, ctx)
            if dotted.split(".")[0] not in BUILTINS:
                self.add(fn.child_by_field_name("name"), ctx, CALL, Bind("", dotted))
        elif fn.type == "field_expression":
            value, name = fn.child_by_field_name("value"), fn.child_by_field_name("field")
            bind = self.receiver(value, ctx)
            self.add(name, ctx, CALL, bind.member(text(name)) if bind is not None else None, "." + text(name))
        else:
            self.visit(fn, ctx)

    def receiver(self, node, ctx: Context) -> Bind | None:
        """The type of a method call's receiver, when known (`self`, a typed local, `self.field`)."""
        if node.type in ("self", "identifier"):
            found, bind = ctx.scope.lookup(text(node))
            return bind if found and bind is not None and bind.instance else None
        if node.type == "field_expression":
            inner = self.receiver(node.child_by_field_name("value"), ctx)
            if inner is not None and ctx.cls is not None and inner.target == ctx.cls.bind.target:
                return ctx.cls.attributes.get(text(node.child_by_field_name("field")))
            return None
        self.visit(node, ctx)
        return None

    def visit(self, node, ctx: Context) -> None:  # noqa: C901 (one dispatch on node types)
        t = node.type
        if t in SKIP:
            return
        if t == "use_declaration":
            arg = node.child_by_field_name("argument")
            for at, full, name in self.uses(arg) if arg is not None else ():
                self.add(at, ctx, IMPORT, Bind("", full), alias=name if ctx.caller == "" else "")
        elif t == "call_expression":
            fn = node.child_by_field_name("function")
            self.call(fn, ctx)
            args = node.child_by_field_name("arguments")
            if args is not None:
                self.visit(args, ctx)
        elif t == "struct_expression":
            name = node.child_by_field_name("name")
            bind = self.type_bind(name, ctx) if name is not None else None
            if bind is not None:
                self.add(name, ctx, CALL, bind)
            body = node.child_by_field_name("body")
            if body is not None:
                self.visit(body, ctx)
        elif t in ("type_identifier", "scoped_type_identifier"):
            bind = self.type_bind(node, ctx)
            if bind is not None and not bind.instance:
                self.add(node, ctx, TYPE, bind)
        elif t == "scoped_identifier":
            dotted = self.dotted(node, ctx)
            if dotted.split(".")[0] not in BUILTINS:
                self.add(node, ctx, USE, Bind("", dotted))
        elif t == "identifier":
            found, bind = ctx.scope.lookup(text(node))
            if not found:
                bind = self.globals.lookup(text(node))[1]
                if bind is not None:
                    self.add(node, ctx, USE, bind)
        elif t == "macro_invocation":
            name = node.child_by_field_name("macro")
            bind = self.globals.lookup(text(name))[1] if name is not None else None
            if bind is not None:
                self.add(name, ctx, CALL, bind)
        elif t == "let_declaration":
            pattern, kind, value = (node.child_by_field_name(f) for f in ("pattern", "type", "value"))
            if kind is not None:
                self.visit(kind, ctx)
            if value is not None:
                self.visit(value, ctx)
            bind = self.type_bind(kind, ctx)
            if bind is None and value is not None:
                if value.type == "struct_expression":
                    bind = self.type_bind(value.child_by_field_name("name"), ctx)
                elif value.type == "call_expression" and (fn := value.child_by_field_name("function")) is not None \
                        and fn.type == "scoped_identifier" and text(fn.child_by_field_name("name")) == "new":
                    head = fn.child_by_field_name("path")
                    bind = Bind("", self.dotted(head, ctx)) if head is not None else None
            for n in walk_nodes(pattern) if pattern is not None else ():
                if n.type == "identifier":
                    ctx.scope.names[text(n)] = bind.of_instance() if bind is not None and pattern.type == \
                        "identifier" else None
        elif t == "closure_expression":
            inner = Context(ctx.caller, ctx.scope.child(), ctx.cls, ctx.this)
            params = node.child_by_field_name("parameters")
            for n in walk_nodes(params) if params is not None else ():
                if n.type == "identifier":
                    inner.scope.names[text(n)] = None
            body = node.child_by_field_name("body")
            if body is not None:
                self.visit(body, inner)
        elif t == "field_initializer":
            value = node.child_by_field_name("value")
            if value is not None:
                self.visit(value, ctx)
        else:
            for c in node.named_children:
                self.visit(c, ctx)
