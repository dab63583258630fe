"""Code chunking with tree-sitter: a chunk per function, class and method.

Each definition becomes a chunk named by its qualified symbol (`Class.method`). A class gives
a header chunk (signature, docstring, fields) and one chunk per method, each carrying the
class header as context (a constructor also the class's summary). Code between
definitions (imports, constants, module-level calls) is kept as its own chunks, a
definition larger than the window is split into line windows, and comments right above a
definition travel with it. Files in languages without a grammar, or whose parse fails
outright, are cut into line windows. Syntax errors still parse (tree-sitter recovers).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache

from ingest.chunk import Chunk
from ingest.lines import split_lines

GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "rust": ("tree_sitter_rust", "language"),
}

# Node types that define a named thing; containers may be split into their members.
LEAF_DEFS = {
    "function_definition", "function_declaration", "generator_function_declaration", "method_definition",
    "method_declaration", "constructor_declaration", "function_item", "abstract_method_signature",
    "type_alias_declaration", "type_declaration", "struct_item", "enum_item", "macro_definition",
    "const_item", "static_item", "type_item", "function_signature", "method_signature",
    "annotation_type_declaration",
}
CONTAINER_DEFS = {
    "class_definition", "class_declaration", "abstract_class_declaration", "interface_declaration",
    "enum_declaration", "record_declaration", "impl_item", "trait_item", "mod_item", "class",
}
COMMENT_PREFIXES = ("#", "//", "/*", "*", "@", "///", "--")
CLOSER = re.compile(r"[\]\)}]+[;,]?")
# A docstring's prefix and quotes; a comment's markers (`/**`, `*/`, `*`, `///`, `//`, `#`).
DOC_QUOTES = re.compile(r"^[rRbBuU]*(\"\"\"|'''|\"|')|(\"\"\"|'''|\"|')$")
COMMENT_MARK = re.compile(r"^(/\*\*?|\*/|\*|///?|#)\s?|\s*\*/$")
CONSTRUCTORS = {"__init__", "__post_init__", "constructor"}


@dataclass
class Definition:
    node: object  # the node whose span is the definition (decorators/export included)
    inner: object  # the definition node itself
    name: str
    container: bool


@cache
def parser_for(language: str):
    """A tree-sitter parser for the language, or None when no grammar is installed."""
    spec = GRAMMARS.get(language)
    if not spec:
        return None
    try:
        import tree_sitter

        mod = importlib.import_module(spec[0])
        return tree_sitter.Parser(tree_sitter.Language(getattr(mod, spec[1])()))
    except (ImportError, AttributeError, ValueError):
        return None


def node_text(node) -> str:
    """A node's source text ("" for none)."""
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _name_of(node) -> str:
    t = node.type
    if t == "impl_item":  # `impl<T> Stack<T>` and `impl Display for Stack` both name Stack
        typ = node.child_by_field_name("type")
        for n in walk_nodes(typ) if typ is not None else ():
            if n.type == "type_identifier":
                return node_text(n)
        return node_text(typ)
    if t == "method_declaration" and node.child_by_field_name("receiver") is not None:  # Go
        recv = node.child_by_field_name("receiver")
        typ = ""
        for n in walk_nodes(recv):
            if n.type == "type_identifier":
                typ = node_text(n)
                break
        name = node_text(node.child_by_field_name("name"))
        return f"{typ}.{name}" if typ else name
    if t == "type_declaration":  # Go: type Foo struct {...}
        for c in node.named_children:
            if c.type in ("type_spec", "type_alias"):
                return node_text(c.child_by_field_name("name"))
    n = node.child_by_field_name("name")
    return node_text(n)


def walk_nodes(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def definition_of(node) -> Definition | None:
    """The definition a statement node holds, unwrapping decorators and exports."""
    outer = node
    t = node.type
    if t == "decorated_definition":
        node = node.child_by_field_name("definition") or node
        t = node.type
    if t == "export_statement":
        decl = node.child_by_field_name("declaration")
        if decl is None:
            return None
        node, t = decl, decl.type
    if t == "ambient_declaration" and node.named_children:  # TypeScript's `declare function f(): void;` (.d.ts)
        node = node.named_children[0]
        t = node.type
    if t in ("lexical_declaration", "variable_declaration"):  # const f = () => {...}
        for d in node.named_children:
            if d.type == "variable_declarator":
                v = d.child_by_field_name("value")
                if v is not None and v.type in ("arrow_function", "function_expression", "function", "class"):
                    name = node_text(d.child_by_field_name("name"))
                    return Definition(outer, v, name, v.type == "class") if name else None
        return None
    if t in CONTAINER_DEFS or t in LEAF_DEFS:
        name = _name_of(node)
        if not name:
            return None
        return Definition(outer, node, name, t in CONTAINER_DEFS)
    return None


def body_of(inner):
    body = inner.child_by_field_name("body")
    if body is None:
        for c in inner.named_children:
            if c.type in ("class_body", "declaration_list", "block", "interface_body", "enum_body"):
                return c
    return body


def is_constructor(d: Definition) -> bool:
    """Python's `__init__`/`__post_init__`, JavaScript's `constructor`, Java's constructors."""
    return d.name in CONSTRUCTORS or d.inner.type == "constructor_declaration"


@dataclass
class Piece:
    start: int  # 0-based row, inclusive
    end: int  # inclusive
    symbol: str
    context: str


class _Chunker:
    def __init__(self, lines: list[str], max_chars: int):
        self.lines = lines
        self.max = max_chars
        self.pieces: list[Piece] = []

    def size(self, a: int, b: int) -> int:
        return sum(len(self.lines[i]) + 1 for i in range(a, b + 1))

    def is_comment(self, row: int) -> bool:
        return self.lines[row].strip().startswith(COMMENT_PREFIXES)

    def emit_range(self, children, lo: int, hi: int, prefix: str, context: str, purpose: str = "") -> None:
        """Pieces for rows [lo, hi] of a container, given its child statement nodes; `purpose` is the
        container's summary (a class's docstring or doc comment), which situates its constructor."""
        cursor = lo
        for child in children:
            d = definition_of(child)
            if d is None:
                continue
            s, e = d.node.start_point[0], d.node.end_point[0]
            if s < cursor:
                continue
            # comment lines directly above the definition travel with it
            while s - 1 >= cursor and self.lines[s - 1].strip() and self.is_comment(s - 1):
                s -= 1
            if s > cursor:
                self.filler(cursor, s - 1, prefix, context)
            symbol = f"{prefix}.{d.name}" if prefix else d.name
            body = body_of(d.inner) if d.container else None
            if d.container and body is not None:
                members = [c for c in body.named_children if definition_of(c) is not None]
                if members:
                    header = self.lines[d.inner.start_point[0]].strip()[:200]
                    first = members[0].start_point[0]
                    while first - 1 > s and self.lines[first - 1].strip() and self.is_comment(first - 1):
                        first -= 1
                    self.pieces.append(Piece(s, max(s, first - 1), symbol, context))
                    self.emit_range(body.named_children, first, e, symbol, header, self.summary(d, body, s))
                    cursor = e + 1
                    continue
            # A constructor says how the class is made, rarely what it is for: the class's summary situates it,
            # so a question about what the class does finds the defaults its constructor sets.
            situated = context + "\n" + purpose if purpose and not d.container and is_constructor(d) else context
            self.pieces.append(Piece(s, e, symbol, situated))
            cursor = e + 1
        if cursor <= hi:
            self.filler(cursor, hi, prefix, context)

    def summary(self, d: Definition, body, start: int) -> str:
        """The first paragraph of a class's docstring (Python) or of the doc comment right above it, on one line."""
        text = ""
        first = body.named_children[0] if body.named_children else None
        if first is not None and first.type == "expression_statement" and first.named_children \
                and first.named_children[0].type == "string":
            text = DOC_QUOTES.sub("", node_text(first.named_children[0]).strip())
        else:
            rows = range(start, d.inner.start_point[0])
            text = "\n".join(COMMENT_MARK.sub("", self.lines[i].strip()) for i in rows
                             if self.is_comment(i) and not self.lines[i].strip().startswith("@"))
        paragraph = text.strip().split("\n\n", 1)[0]
        return " ".join(paragraph.split())[:200]

    def filler(self, a: int, b: int, prefix: str, context: str) -> None:
        rows = [i for i in range(a, b + 1) if self.lines[i].strip()]
        if not rows:
            return
        # A container's closing bracket alone is no chunk: it joins the piece just before it.
        if self.pieces and self.pieces[-1].end == a - 1 and all(CLOSER.fullmatch(self.lines[i].strip()) for i in rows):
            self.pieces[-1].end = b
            return
        self.pieces.append(Piece(a, b, prefix, context))

    def chunks(self, path: str, language: str) -> list[Chunk]:
        out = []
        for p in self.pieces:
            a, b = p.start, p.end
            while a < b and not self.lines[a].strip():
                a += 1
            while b > a and not self.lines[b].strip():
                b -= 1
            windows = split_lines(self.lines, a, b + 1, self.max) if self.size(a, b) > self.max else [(a, b + 1)]
            signature = self.lines[a].strip()[:200]
            for i, (wa, wb) in enumerate(windows):
                ctx = p.context
                if i > 0 and p.symbol:  # a continuation carries the definition's first line
                    ctx = (ctx + "\n" if ctx else "") + signature
                out.append(Chunk(text="\n".join(self.lines[wa:wb]), path=path, start_line=wa + 1, end_line=wb,
                                 kind="code", language=language, symbol=p.symbol, context=ctx))
        return out


def line_windows(text: str, path: str, language: str, max_chars: int) -> list[Chunk]:
    lines = text.split("\n")
    out = []
    for a, b in split_lines(lines, 0, len(lines), max_chars):
        body = "\n".join(lines[a:b])
        if body.strip():
            out.append(Chunk(text=body, path=path, start_line=a + 1, end_line=b, kind="code", language=language))
    return out


def parse_code(text: str, language: str):
    """The tree-sitter tree of `text`, or None when the language has no grammar or the parse fails
    outright. A tree with syntax errors is still a tree (tree-sitter recovers)."""
    parser = parser_for(language)
    if parser is None:
        return None
    try:
        return parser.parse(text.encode("utf-8", "replace"))
    except Exception:
        return None


def chunk_code(text: str, path: str, language: str, max_chars: int = 1200, tree=None) -> list[Chunk]:
    """Chunks of a code file; `tree` is its parse when the caller already has it (the code graph
    reads the same tree: ingest/references.py), so the file is parsed once."""
    if tree is None:
        tree = parse_code(text, language)
    if tree is None:
        return line_windows(text, path, language, max_chars)
    lines = text.split("\n")
    ch = _Chunker(lines, max_chars)
    ch.emit_range(tree.root_node.children, 0, len(lines) - 1, "", "")
    return ch.chunks(path, language)
