"""A library's public API at one version, read from the index's symbol chunks (tree-sitter).

For TypeScript, JavaScript, Go, Java and Rust (and Python when its folder is no longer on disk).
Less precise than griffe is for Python, and the listings say so:

- a symbol is what the code chunker named (`Runner`, `Runner.run`): functions, classes, methods,
  interfaces, types, enums; and in TypeScript/JavaScript the exported variables, read from the code
  between definitions; re-exports (`export { a } from`) are not symbols;
- public: exported (`export ...` in TypeScript/JavaScript; a member of an exported class that is not
  `private`, `protected` or `#name`), capitalised (Go), `public` (Java), `pub` (Rust);
- the signature: parameters and return type parsed from the definition's chunks (a long one is cut
  into several) with the real tree-sitter grammar; for classes, interfaces, types, enums and
  variables, their declaration text (comments and spacing left out); a TypeScript class's
  constructor parameters are the class's;
- deprecated: `@deprecated` (JSDoc), `@Deprecated` (Java), `#[deprecated]` (Rust), a "Deprecated:"
  comment (Go) in the lines leading to the definition;
- when a package ships its TypeScript three times (src/*.ts, dist/*.d.ts, dist/*.js), only the most
  precise of the forms both versions have is read.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from indexes.api_symbols import NOT_API_DIRS, ApiSymbol, Param
from ingest.chunk import Chunk
from ingest.code import definition_of, parser_for

LANGUAGES = {"typescript", "tsx", "javascript", "go", "java", "rust", "python"}
WHAT = {
    "function_declaration": "function", "generator_function_declaration": "function", "function_signature": "function",
    "arrow_function": "function", "function_expression": "function", "function": "function",
    "function_item": "function", "function_definition": "function", "method_definition": "method",
    "method_signature": "method", "abstract_method_signature": "method", "method_declaration": "method",
    "constructor_declaration": "constructor", "class_declaration": "class", "abstract_class_declaration": "class",
    "class": "class", "class_definition": "class", "interface_declaration": "interface",
    "type_alias_declaration": "type", "type_declaration": "type", "type_item": "type", "enum_declaration": "enum",
    "enum_item": "enum", "struct_item": "struct", "trait_item": "trait", "record_declaration": "record",
    "impl_item": "impl", "mod_item": "module", "const_item": "constant", "static_item": "constant",
    "macro_definition": "macro", "annotation_type_declaration": "annotation",
}
CALLABLE = {"function", "method", "constructor"}
FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "class"}
DEPRECATED = re.compile(r"@deprecated\b|#\[deprecated\b|^\s*(//+|\*|#)?\s*deprecated:", re.IGNORECASE | re.MULTILINE)
COMMENT = re.compile(r"/\*.*?\*/|(?<![:\w])//[^\n]*", re.DOTALL)
PLACEHOLDER = "__DevcopilotC__"
# TypeScript's three forms, most precise first: the source, its declarations, the compiled JavaScript.
TS_FORMS = [(".ts", ".tsx", ".mts", ".cts"), (".d.ts", ".d.mts", ".d.cts"), (".js", ".jsx", ".mjs", ".cjs")]


def ts_form(path: str) -> int | None:
    """0 for TypeScript source, 1 for declarations (.d.ts), 2 for JavaScript; None for other files."""
    low = path.lower()
    if low.endswith(TS_FORMS[1]):
        return 1
    for i in (0, 2):
        if low.endswith(TS_FORMS[i]):
            return i
    return None


def form_filter(old_paths: Iterable[str], new_paths: Iterable[str]) -> Callable[[str], bool]:
    """Which files to read in both versions: of the TypeScript/JavaScript forms, the most precise both
    have; every file of the other languages."""
    old_forms = {ts_form(p) for p in old_paths} - {None}
    new_forms = {ts_form(p) for p in new_paths} - {None}
    common = sorted(old_forms & new_forms) or sorted(old_forms | new_forms)
    best = common[0] if common else None
    return lambda p: ts_form(p) in (None, best)


def chunk_api(chunks: Iterable[Chunk], wanted: Callable[[str], bool] = lambda p: True) -> dict[str, ApiSymbol]:
    """The public symbols among a version's code chunks, keyed by `path::symbol`."""
    groups: dict[tuple[str, str], list[Chunk]] = defaultdict(list)
    for c in chunks:
        if c.kind == "code" and c.symbol and c.language in LANGUAGES and wanted(c.path) \
                and not NOT_API_DIRS & set(c.path.split("/")[:-1]):
            groups[(c.path, c.symbol)].append(c)
    by_path: dict[str, list[str]] = defaultdict(list)
    for path, symbol in groups:
        by_path[path].append(symbol)
    module_level: dict[str, list[Chunk]] = defaultdict(list)  # a file's code outside definitions
    for c in chunks:
        if c.kind == "code" and not c.symbol and c.language in ("typescript", "tsx", "javascript") and wanted(c.path) \
                and not NOT_API_DIRS & set(c.path.split("/")[:-1]):
            module_level[c.path].append(c)
    read: dict[tuple[str, str], Read] = {}
    for (path, symbol), group in groups.items():
        group.sort(key=lambda c: c.start_line)
        members = [c for s in by_path[path] if s.startswith(symbol + ".") for c in groups[(path, s)]]
        found = symbol_of(group, max(c.end_line for c in group + members))
        if found is not None:
            read[(path, symbol)] = found
    out: dict[str, ApiSymbol] = {}
    for (path, symbol), r in read.items():
        if _public(path, symbol, read, groups[(path, symbol)][0].language):
            out[f"{path}::{symbol}"] = r.symbol
    for path, pieces in module_level.items():
        for v in variables(pieces):
            out.setdefault(f"{path}::{v.name}", v)
    _constructors_into_classes(out)
    return out


def variables(pieces: list[Chunk]) -> list[ApiSymbol]:
    """The exported variables (`export const X: T = ...`, `export declare const X: T;`) of a TypeScript or
    JavaScript file, from its code outside definitions (put back at its own lines, so that a
    declaration cut into several chunks parses whole); functions held in one are symbols already."""
    first = pieces[0]
    parser = parser_for(first.language)
    if parser is None:
        return []
    text = _lines_of(pieces, 1)
    out = []
    for st in parser.parse(text.encode("utf-8", "replace")).root_node.named_children:
        if st.type != "export_statement":
            continue
        decl = st.child_by_field_name("declaration")
        if decl is not None and decl.type == "ambient_declaration" and decl.named_children:
            decl = decl.named_children[0]
        if decl is None or decl.type not in ("lexical_declaration", "variable_declaration"):
            continue
        for d in decl.named_children:
            value = d.child_by_field_name("value")
            if d.type != "variable_declarator" or (value is not None and value.type in FUNCTION_VALUES):
                continue
            name = _text(d.child_by_field_name("name"))
            out.append(ApiSymbol(name, "variable", first.path, d.start_point[0] + 1, d.end_point[0] + 1,
                                 declaration=" ".join(COMMENT.sub("", _text(d)).split())))
    return out


def _lines_of(chunks: list[Chunk], start: int) -> str:
    """The chunks' lines from line `start` on, each at its own line (lines no chunk holds are blank)."""
    lines: dict[int, str] = {}
    for c in chunks:
        for i, ln in enumerate(c.text.split("\n")):
            lines.setdefault(c.start_line + i, ln)
    return "\n".join(lines.get(n, "") for n in range(start, max(lines, default=start - 1) + 1))


def _definition_run(group: list[Chunk]) -> list[Chunk]:
    """The first chunk of a definition and the windows that continue it (a long function is cut into
    several chunks of one symbol)."""
    run = [group[0]]
    for c in group[1:]:
        if c.start_line > run[-1].end_line + 2:
            break
        run.append(c)
    return run


def _constructors_into_classes(out: dict[str, ApiSymbol]) -> None:
    """A TypeScript/JavaScript class's constructor parameters are the class's parameters."""
    for key in [k for k, s in out.items() if s.name.endswith(".constructor")]:
        owner = key[: -len(".constructor")]
        if owner in out and out[owner].what == "class":
            out[owner].params = out.pop(key).params


@dataclass
class Read:
    symbol: ApiSymbol
    head: str  # the first line of its definition's code (after comments and decorators)


def _public(path: str, symbol: str, read: dict[tuple[str, str], Read], language: str) -> bool:
    """Whether the symbol and every container it is in are exposed."""
    parts = symbol.split(".")
    for i in range(1, len(parts) + 1):
        r = read.get((path, ".".join(parts[:i])))
        parent = read.get((path, ".".join(parts[:i - 1]))) if i > 1 else None
        if r is None or not _exposed(r, parts[i - 1], language, parent.symbol if parent else None):
            return False
    return True


def _exposed(r: Read, name: str, language: str, parent: ApiSymbol | None) -> bool:
    head, member = r.head, parent is not None
    if language in ("typescript", "tsx", "javascript"):
        if member:
            return not name.startswith(("_", "#")) and not re.match(r"(private|protected)\b", head)
        return head.startswith("export")
    if language == "go":
        return name[:1].isupper()
    if language == "java":
        return bool(re.search(r"\bpublic\b", head)) or (member and parent is not None and parent.what == "interface")
    if language == "rust":
        return bool(re.match(r"pub\s", head)) or (member and parent is not None and parent.what == "trait")
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def symbol_of(group: list[Chunk], end: int) -> Read | None:
    """The symbol the chunks of one (path, symbol) define, its signature parsed with tree-sitter."""
    first = group[0]
    member = "." in first.symbol and first.language != "go"
    text = _wrapped(_lines_of(_definition_run(group), first.start_line), first.language, member)
    parser = parser_for(first.language)
    if parser is None:
        return None
    tree = parser.parse(text.encode("utf-8", "replace"))
    d = _definition(tree.root_node, first.symbol.split(".")[-1])
    if d is None:
        return None
    inner = d.inner
    what = WHAT.get(inner.type, "definition")
    if what == "function" and "." in first.symbol:
        what = "method"
    lines = text.splitlines()
    row = max(0, d.node.start_point[0])
    lead = "\n".join(lines[:inner.start_point[0] + 1])
    head = next((ln.strip() for ln in lines[row:] if ln.strip() and not ln.strip().startswith(("@", "#[", "//", "/*",
                                                                                            "*"))), "")
    params = returns = None
    declaration = ""
    if what in CALLABLE:
        params = parameters(inner)
        returns = _returns(inner)
    else:
        body = "\n".join(c.text for c in group)
        declaration = " ".join(COMMENT.sub("", body).split())
    s = ApiSymbol(first.symbol, what, first.path, first.start_line, end, params=params, returns=returns or "",
                  declaration=declaration, docstring=_doc_comment(lines[:row + 1], inner, first.language),
                  deprecated=_deprecated(lead))
    return Read(s, head)


def _wrapped(text: str, language: str, member: bool) -> str:
    """A member's chunk, put back in a container so that the grammar reads it as a member."""
    if not member:
        return text
    if language in ("typescript", "tsx", "javascript", "java"):
        return f"class {PLACEHOLDER} {{\n{text}\n}}"
    if language == "rust":
        return f"impl {PLACEHOLDER} {{\n{text}\n}}"
    if language == "python":
        return f"class {PLACEHOLDER}:\n{text}"
    return text


def _definition(root, name: str):
    """The first definition named `name` in the parsed chunk (a member inside the placeholder)."""
    stack = [root]
    while stack:
        node = stack.pop()
        d = definition_of(node)
        if d is not None and (d.name == name or d.name.endswith("." + name)):  # Go names a method Type.Name
            return d
        stack.extend(reversed(node.named_children))
    return None


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def parameters(fn) -> list[Param]:
    """The parameters of a function-like node, in any of the grammars."""
    plist = fn.child_by_field_name("parameters")
    if plist is None:
        plist = next((c for c in fn.named_children if c.type in ("formal_parameters", "parameters", "parameter_list")),
                     None)
    if plist is None:  # `x => x + 1`: one bare parameter
        one = fn.child_by_field_name("parameter")
        return [Param(_text(one))] if one is not None else []
    out: list[Param] = []
    for p in plist.named_children:
        if p.type in ("comment", "self_parameter", "keyword_separator", "positional_separator"):
            continue
        out += _param(p)
    return out


def _param(p) -> list[Param]:
    t = p.type
    field = p.child_by_field_name
    typ = field("type")
    annotation = _text(typ).lstrip(":").strip() if typ is not None else ""
    default = field("value") if t not in ("assignment_pattern",) else field("right")
    name_node = field("pattern") or field("name") or field("left")
    if t == "parameter_declaration" and typ is not None:  # Go: `a, b int`
        names = [_text(c) for c in p.named_children if c.type == "identifier"]
        return [Param(n, annotation=annotation) for n in names] or [Param("", annotation=annotation)]
    name = _text(name_node) if name_node is not None else _text(p)
    variadic = t in ("rest_pattern", "variadic_parameter_declaration", "spread_parameter", "list_splat_pattern",
                     "dictionary_splat_pattern") or name.startswith("...")
    if name_node is not None and name_node.type == "rest_pattern":
        variadic = True
    kind = "variadic positional" if variadic else "positional or keyword"
    if t == "dictionary_splat_pattern":
        kind = "variadic keyword"
    name = re.sub(r"^(public|private|protected|readonly|override)\s+", "", name.lstrip("*").lstrip("."))
    optional = t == "optional_parameter" or default is not None or variadic
    return [Param(name, kind, annotation, _text(default) if default is not None else "", not optional)]


def _returns(fn) -> str:
    for name in ("return_type", "result", "type"):
        node = fn.child_by_field_name(name)
        if node is not None and not (name == "type" and fn.type not in ("method_declaration",)):
            return _text(node).lstrip(":").lstrip("->").strip()
    return ""


def _doc_comment(lead_lines: list[str], inner, language: str) -> str:
    """The comment block leading to the definition (JSDoc, `///`, `//`), or a Python docstring."""
    if language == "python":
        body = inner.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        if first is not None and first.type == "expression_statement" and first.named_children \
                and first.named_children[0].type == "string":
            return _text(first.named_children[0]).strip("\"'")
        return ""
    comments = [ln.strip() for ln in lead_lines if ln.strip().startswith(("/*", "*", "//"))]
    return "\n".join(re.sub(r"^(/\*\*?|\*/|\*|///?)\s?", "", c).rstrip("*/ ").rstrip() for c in comments).strip()


def _deprecated(lead: str) -> str:
    m = DEPRECATED.search(lead)
    if not m:
        return ""
    line = lead[lead.rfind("\n", 0, m.start()) + 1: (lead.find("\n", m.end()) + 1 or len(lead) + 1) - 1]
    return "marked " + " ".join(re.sub(r"^(/\*\*?|\*|//+)\s*", "", line.strip()).split())[:120]
