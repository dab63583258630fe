"""The code a doc passage names: cross-references, `inline code`, the calls and imports of its code
blocks, and the defaults it states.

A passage names code in a few ways, from the most to the least explicit:

- a **cross-reference**: mkdocstrings' ``[`Runner`][agents.run.Runner]`` and ``::: agents.run``,
  Sphinx's ``:func:`attrs.field``` and MyST's ``{class}`Context```: a name the docs' own tooling resolves;
- **inline code**: ``` `Runner.run_sync()` ```, ``` `ModelSettings(temperature=0.2)` ```: a dotted name, or a
  call whose keyword arguments can be read;
- **code blocks** (fenced, or reStructuredText's ``code-block``), parsed with the real tree-sitter
  parser of the block's language: imports (with their aliases), the calls made (keyword arguments,
  how many positional ones) resolved through the block's imports, and a variable made by calling a
  class (``agent = Agent(...)``) so that ``agent.clone(...)`` is a call of ``Agent.clone``;
- a **stated default**: "`max_turns` defaults to 10", "`timeout=30` by default", "(default: `True`)",
  only in these clear shapes.

Nothing here knows the library: a name is kept as written, or as the block's imports spell it in
full; indexes/drift.py and indexes/doc_links.py look the names up in the library's symbol table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.code import parser_for

REF, CODE, CALL, IMPORT, NAME, DEFAULT = "ref", "code", "call", "import", "name", "default"
SCOPE_OF = "scope"  # `.. currentmodule:: click`: the module the bare names of the file's next lines are in

# A fence's info string: ```python, ```{code-block} python, ````py title="x.py"
FENCE = re.compile(r"^(\s{0,3})(```+|~~~+)\s*(\{[\w-]+\}\s*)?([\w+-]*)")
RST_BLOCK = re.compile(r"^(\s*)\.\.\s+(code-block|code|sourcecode)::\s*(\w+)")
RST_OPTION = re.compile(r"^\s*:[\w-]+:")
BLOCK_LANGUAGES = {
    "python": "python", "py": "python", "python3": "python", "py3": "python", "pycon": "python",
    "ipython": "python", "ipython3": "python", "pyi": "python",
    "ts": "typescript", "typescript": "typescript", "tsx": "tsx", "js": "javascript", "javascript": "javascript",
    "jsx": "javascript", "mjs": "javascript",
}
DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
# mkdocstrings / autorefs: [`Runner.run()`][agents.run.Runner.run], [Agent][agents.Agent], [`agents.Agent`][]
AUTOREF = re.compile(r"\[([^\]\n]*)\]\[(" + DOTTED + r")?\]")
DIRECTIVE = re.compile(r"^\s*:::\s+(" + DOTTED + r")\s*$")
# Sphinx's autodoc (`.. autoclass:: Group`, MyST's ```{autofunction} click.echo```) names an object;
# `.. currentmodule:: click` says which module the bare names after it are in.
AUTODOC = re.compile(r"^\s*(?:\.\.\s+|```+\s*\{)(?:py:)?(auto(?:class|function|method|attribute|data|exception|module|"
                     r"decorator))(?:::|\})\s*(" + DOTTED + r")\s*$")
SCOPE = re.compile(r"^\s*(?:\.\.\s+|```+\s*\{)(?:py:)?(currentmodule|module)(?:::|\})\s*(" + DOTTED + r")\s*$")
# Sphinx (:func:`x`, :py:meth:`~a.B.c`) and MyST ({func}`x`) roles naming Python objects.
ROLE = re.compile(r"(?::(?:py:)?|\{(?:py:)?)(func|class|meth|attr|obj|mod|data|exc|const|property|function|"
                  r"method|attribute|exception|module)(?::|\})`([^`\n]+)`")
INLINE = re.compile(r"(?<!`)(`{1,2})(?!`)([^`\n]+?)(?<!`)\1(?!`)")
CALL_SHAPE = re.compile(r"^(" + DOTTED + r")\s*\((.*)\)$", re.DOTALL)
NAME_SHAPE = re.compile(r"^(" + DOTTED + r")(\(\))?$")
ASSIGN_SHAPE = re.compile(r"^([A-Za-z_]\w*)\s*=\s*([^=].*)$")
# A literal a default is stated as: a number, True/False/None, a quoted string.
LITERAL = r"(?:-?\d+(?:\.\d+)?(?:[eE]-?\d+)?|True|False|None|true|false|null|'[^'\n]{0,40}'|\"[^\"\n]{0,40}\")"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])|;\s+")
# "`name` ... defaults to `10`", "`name` (default: 10)", "`name`: ..., default is `True`"
DEFAULT_AFTER = re.compile(r"\b(?:defaults?\s+(?:to|is|value\s+is)|default\s*[:=]|by\s+default\s+(?:is|it'?s|it\s+is))"
                           r"\s*`?(" + LITERAL + r")`?(?![\w.])", re.IGNORECASE)
# "`timeout=30` by default", "`strict=True` (the default)"
KW_BY_DEFAULT = re.compile(r"`([A-Za-z_]\w*)\s*=\s*(" + LITERAL + r")`\s*(?:\(?(?:by\s+default|is\s+the\s+default|"
                           r"the\s+default)\)?)", re.IGNORECASE)
PY_KEYWORDS = {"True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "for", "while", "return",
               "import", "from", "def", "class", "lambda", "with", "as", "pass", "yield", "await", "async", "self",
               "cls", "print", "None()"}


@dataclass
class Mention:
    """One name a doc passage uses, where, and how."""
    name: str  # dotted, as written, or in full through the block's imports (`agents.Runner.run`)
    line: int  # the file's line (1-based)
    how: str  # ref | code | call | import | name | default
    written: str  # as the doc writes it, for the finding's message
    language: str = ""  # the code block's language; "" in prose
    imported: bool = False  # the name's head comes from an import in its block: it is the library's, if any
    instance: bool = False  # a call on a variable made by calling `name`'s class (`agent.clone()`)
    keywords: list[str] = field(default_factory=list)  # call: the keyword arguments given
    positional: int = 0  # call: how many positional arguments (-1: a *splat, unknown)
    param: str = ""  # default: the parameter
    value: str = ""  # default: the value stated
    near: list[str] = field(default_factory=list)  # default: names the passage uses before it, nearest first
    role: str = ""  # ref: the cross-reference's role (class, func, meth...; autoclass...)
    scoped: bool = False  # ref: a bare name the file's `currentmodule` qualified (indexes/drift.py)
    awaited: bool = False  # instance: the variable holds what an awaited call returned
    # import: the name a `from ... import` binds (`Agent`), which the file's other blocks may use; a module
    # import's (`import mcp`) is left out: guides name a variable like the package (`mcp = MCPServer()`)
    alias: str = ""

    def to_json(self) -> dict:
        """Its fields, the empty ones left out (a passage's mentions are stored as JSON)."""
        return {k: v for k, v in vars(self).items() if v not in ("", [], 0, False) or k in ("name", "line", "how")}

    @classmethod
    def from_json(cls, d: dict) -> Mention:
        return cls(**d)


@dataclass
class Block:
    """A code block of a passage: its language, its first line in the file, its text."""
    language: str
    line: int
    text: str


def mentions(text: str, start_line: int, language: str = "markdown", headings: list[str] | None = None) \
        -> list[Mention]:
    """Every name the doc passage `text` (whose first line is the file's `start_line`) uses."""
    prose, blocks = split_blocks(text.split("\n"), language)
    out: list[Mention] = []
    for i, line in prose:
        out += prose_mentions(line, start_line + i)
    for b in blocks:
        out += block_mentions(b.text, b.language, start_line + b.line)
    out.sort(key=lambda m: m.line)
    _defaults_near(out, headings or [])
    return out


def split_blocks(lines: list[str], language: str) -> tuple[list[tuple[int, str]], list[Block]]:
    """(prose lines with their index, code blocks) of a passage. A block cut off by the passage's end
    runs to it; a block of a language without a parser is neither prose nor parsed."""
    prose: list[tuple[int, str]] = []
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m:
            mark = m.group(2)
            directive = (m.group(3) or "").strip("{} \t")
            lang = BLOCK_LANGUAGES.get(m.group(4).lower(), "")
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(mark[0] * len(mark)):
                j += 1
            if directive and directive not in ("code-block", "code", "code-cell", "sourcecode"):
                # A MyST directive: its line may name code ({autoclass} click.Group, {currentmodule} click),
                # its body is Markdown ({note}) or reStructuredText ({eval-rst}).
                prose += [(k, lines[k]) for k in range(i, j)]
            elif lang:
                blocks.append(Block(lang, i + 1, "\n".join(lines[i + 1:j])))
            i = j + 1
            continue
        r = RST_BLOCK.match(line) if language == "rst" else None
        if r:
            indent = len(r.group(1))
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                j += 1
            lang = BLOCK_LANGUAGES.get(r.group(3).lower(), "")
            if lang:
                blocks.append(Block(lang, i + 1, "\n".join(_dedent(lines[i + 1:j]))))
            i = j
            continue
        prose.append((i, line))
        i += 1
    return prose, blocks


def _dedent(lines: list[str]) -> list[str]:
    """An indented block's lines made flush; its options (`:caption: x`) blank, keeping line numbers."""
    cut = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return ["" if RST_OPTION.match(ln) else ln[cut:] for ln in lines]


# -- prose -----------------------------------------------------------------------------------------

def prose_mentions(line: str, lineno: int) -> list[Mention]:
    """Cross-references and inline code of one line of prose."""
    out: list[Mention] = []
    d = DIRECTIVE.match(line)
    if d:
        return [Mention(d.group(1), lineno, REF, f"::: {d.group(1)}")]
    d = SCOPE.match(line)
    if d:
        return [Mention(d.group(2), lineno, SCOPE_OF, line.strip())]
    d = AUTODOC.match(line)
    if d:
        return [Mention(d.group(2), lineno, REF, line.strip(), role=d.group(1))]
    covered: list[tuple[int, int]] = []
    for m in AUTOREF.finditer(line):
        target = m.group(2) or m.group(1).strip("`").removesuffix("()")
        if re.fullmatch(DOTTED, target) and "." in target:  # [text][] of a plain word is a link, not code
            out.append(Mention(target, lineno, REF, m.group(0)))
            covered.append(m.span())
    for m in ROLE.finditer(line):
        target = m.group(2).strip()
        if "<" in target and target.endswith(">"):  # `title <target>`
            target = target[target.rfind("<") + 1:-1]
        target = target.lstrip("~!.").removesuffix("()")
        if re.fullmatch(DOTTED, target):
            out.append(Mention(target, lineno, REF, m.group(0), role=m.group(1)))
        covered.append(m.span())
    for m in INLINE.finditer(line):
        if any(a <= m.start() < b for a, b in covered):
            continue
        found = inline_mention(m.group(2).strip(), lineno)
        if found is not None:
            out.append(found)
    out += stated_defaults(line, lineno)
    return out


def inline_mention(code: str, lineno: int) -> Mention | None:
    """`Runner.run_sync()` names a method; `ModelSettings(temperature=0.2)` calls it; `x = 1` is no name."""
    written = f"`{code}`"
    m = NAME_SHAPE.match(code)
    if m:
        if m.group(1) in PY_KEYWORDS or m.group(1).isupper() and "." not in m.group(1):  # True, None, ENV_VARS
            return None
        return Mention(m.group(1), lineno, CODE, written)
    m = CALL_SHAPE.match(code)
    if m and m.group(1) not in PY_KEYWORDS:
        call = _parsed_call(code)
        if call is not None:
            return Mention(m.group(1), lineno, CALL, written, keywords=call[0], positional=call[1])
        # Not Python as written (`run(max_turns=)`): its keywords are still plain to read.
        inner = m.group(2)
        keywords = [k for k in re.findall(r"(?:^|,)\s*([A-Za-z_]\w*)\s*=(?!=)", _top_level(inner))]
        return Mention(m.group(1), lineno, CALL, written, keywords=keywords, positional=-1)
    return None


def _top_level(args: str) -> str:
    """The argument text with nested brackets and strings blanked out."""
    out, depth, quote = [], 0, ""
    for ch in args:
        if quote:
            quote = "" if ch == quote else quote
            out.append(" ")
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        out.append(ch if depth == 0 else " ")
    return "".join(out)


def _parsed_call(code: str) -> tuple[list[str], int] | None:
    """(keywords, positional count) of a call written as one Python expression, or None if it is not one."""
    parser = parser_for("python")
    if parser is None:
        return None
    tree = parser.parse(code.encode())
    root = tree.root_node
    if root.has_error or root.named_child_count != 1:
        return None
    stmt = root.named_children[0]
    expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_child_count else None
    if expr is None or expr.type != "call":
        return None
    return _arguments(expr.child_by_field_name("arguments"))


def stated_defaults(line: str, lineno: int) -> list[Mention]:
    """The defaults a line of prose states, in clear shapes only; each sentence on its own."""
    out: list[Mention] = []
    for sentence in SENTENCE_END.split(line):
        for m in KW_BY_DEFAULT.finditer(sentence):
            out.append(Mention(m.group(1), lineno, DEFAULT, m.group(0), param=m.group(1), value=m.group(2)))
        if out:
            continue
        m = DEFAULT_AFTER.search(sentence)
        if not m:
            continue
        if any(a <= m.start() < b for a, b in (n.span() for n in INLINE.finditer(sentence))):
            continue  # `default=True`: a parameter named default, not a statement about one
        # The parameter: the one plain `name` written before "defaults to" in the sentence (several:
        # unclear); a `Class` or `dotted.name` there says whose parameter it is.
        before = [n.group(2).strip().removesuffix("()") for n in INLINE.finditer(sentence[:m.start()])]
        params = [b for b in before if re.fullmatch(r"[a-z_]\w*", b) and b not in PY_KEYWORDS]
        owners = [b for b in before if re.fullmatch(DOTTED, b) and b not in params]
        if len(params) == 1 and len(params) + len(owners) == len(before):
            out.append(Mention(params[0], lineno, DEFAULT, sentence.strip()[:160], param=params[0],
                               value=m.group(1), near=owners[::-1]))
    return out


def _defaults_near(found: list[Mention], headings: list[str]) -> None:
    """Each stated default learns the names used before it in the passage (nearest first), then the
    names its headings spell: where its parameter belongs."""
    named: list[str] = []
    for h in headings:
        named += [m.group(0).removesuffix("()") for m in re.finditer(DOTTED + r"(?:\(\))?", h)
                  if re.search(r"[A-Z_.]", m.group(0)) and m.group(0) not in PY_KEYWORDS]
    for m in found:
        if m.how == DEFAULT:
            m.near = list(dict.fromkeys([*m.near, *reversed(named)]))[:8]
        elif m.how in (REF, CODE, CALL):
            named.append(m.name)


# -- code blocks -----------------------------------------------------------------------------------

def block_mentions(code: str, language: str, first_line: int) -> list[Mention]:
    """The imports and calls of a code block (`first_line`: the file's line of its first line)."""
    if language == "python":
        return PythonBlock(_without_prompts(code), first_line).read()
    if language in ("typescript", "tsx", "javascript"):
        return ScriptBlock(code, language, first_line).read()
    return []


def _without_prompts(code: str) -> str:
    """A console session (`>>> x`, `... y`) as the code it runs; output lines become blank (same numbering)."""
    lines = code.split("\n")
    if not any(ln.lstrip().startswith(">>>") for ln in lines):
        return code
    out = []
    for ln in lines:
        s = ln.lstrip()
        out.append(s[4:] if s.startswith((">>> ", "... ")) else s[3:] if s in (">>>", "...") else "")
    return "\n".join(out)


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _dotted(node) -> str | None:
    """`a.b.c` for an identifier or a chain of attributes of identifiers, else None."""
    if node.type == "identifier":
        return _text(node)
    if node.type == "attribute":
        obj = _dotted(node.child_by_field_name("object"))
        attr = node.child_by_field_name("attribute")
        return f"{obj}.{_text(attr)}" if obj and attr is not None else None
    return None


def _arguments(args) -> tuple[list[str], int]:
    """(keyword names, positional count) of an argument list; -1 positional when a *splat makes it unknown."""
    keywords: list[str] = []
    positional = 0
    if args is None:
        return keywords, positional
    if args.type == "generator_expression":
        return keywords, 1
    for a in args.named_children:
        if a.type == "keyword_argument":
            keywords.append(_text(a.child_by_field_name("name")))
        elif a.type == "list_splat":
            positional = -1
        elif a.type in ("dictionary_splat", "comment"):
            continue
        elif positional >= 0:
            positional += 1
    return keywords, positional


class PythonBlock:
    """One Python block read with tree-sitter: its imports resolve the names its calls use."""

    def __init__(self, code: str, first_line: int):
        self.code = code
        self.first = first_line
        self.aliases: dict[str, str] = {}  # local name -> the full dotted name it was imported as
        # variable -> (the dotted name of the call that made it, awaited); a variable assigned twice is left out
        self.instances: dict[str, tuple[str, bool]] = {}
        self.assignments: dict[str, int] = {}
        self.local: set[str] = set()  # names the block defines itself
        self.out: list[Mention] = []

    def read(self) -> list[Mention]:
        parser = parser_for("python")
        if parser is None or not self.code.strip():
            return []
        root = parser.parse(self.code.encode("utf-8", "replace")).root_node
        nodes = list(_walk(root))
        for n in nodes:  # imports and definitions first: a block may use a name above its import
            if n.type in ("import_statement", "import_from_statement"):
                self.imports(n)
            elif n.type in ("function_definition", "class_definition", "lambda"):
                if n.type != "lambda":
                    self.local.add(_text(n.child_by_field_name("name")))
                params = n.child_by_field_name("parameters")
                for p in params.named_children if params is not None else ():
                    first = next((t for t in _walk(p) if t.type == "identifier"), None)
                    if first is not None:
                        self.local.add(_text(first))
            elif n.type in ("assignment", "augmented_assignment", "for_statement", "with_item", "as_pattern"):
                self.assigned(n)
        self.instances = {v: made for v, made in self.instances.items() if self.assignments.get(v, 0) == 1}
        for n in nodes:
            if n.type == "call":
                self.call(n)
            elif n.type == "decorator":
                inner = n.named_children[0] if n.named_child_count else None
                if inner is not None and inner.type in ("identifier", "attribute"):
                    self.name(inner)
            elif n.type == "attribute":
                up = n.parent
                if up is not None and (up.type == "attribute" or up.type == "call"
                                       and up.child_by_field_name("function") == n):
                    continue  # a part of a longer name, or a call's callee (read as a call)
                self.name(n)
        return self.out

    def line(self, node) -> int:
        return self.first + node.start_point[0]

    def imports(self, n) -> None:
        if n.type == "import_statement":
            for item in n.named_children:
                if item.type == "dotted_name":
                    full = _text(item)
                    head = full.split(".")[0]
                    self.aliases.setdefault(head, head)
                    self.out.append(Mention(full, self.line(n), IMPORT, _text(n)[:120], "python", imported=True))
                elif item.type == "aliased_import":
                    full, alias = _text(item.child_by_field_name("name")), _text(item.child_by_field_name("alias"))
                    self.aliases[alias] = full
                    self.out.append(Mention(full, self.line(n), IMPORT, _text(n)[:120], "python", imported=True))
            return
        module = n.child_by_field_name("module_name")
        if module is None or module.type == "relative_import":
            return
        base = _text(module)
        for item in n.children_by_field_name("name"):
            if item.type == "aliased_import":
                name, alias = _text(item.child_by_field_name("name")), _text(item.child_by_field_name("alias"))
            else:
                name = alias = _text(item)
            self.aliases[alias] = f"{base}.{name}"
            self.out.append(Mention(f"{base}.{name}", self.line(item), IMPORT, _text(n)[:120], "python",
                                    imported=True, alias=alias))

    def assigned(self, n) -> None:
        left = n.child_by_field_name("left") or n.child_by_field_name("alias")
        right = n.child_by_field_name("right")
        if n.type == "with_item":  # `with Client(...) as client`
            value = n.child_by_field_name("value")
            left = value.child_by_field_name("alias") if value is not None and value.type == "as_pattern" else None
            right = value.named_children[0] if left is not None and value.named_child_count else None
            if left is not None and left.type == "as_pattern_target" and left.named_child_count:
                left = left.named_children[0]
        for t in _walk(left) if left is not None else ():
            if t.type == "identifier" and (t.parent is None or t.parent.type != "attribute"):
                self.local.add(_text(t))
                self.assignments[_text(t)] = self.assignments.get(_text(t), 0) + 1
        if n.type in ("assignment", "with_item") and left is not None and left.type == "identifier" \
                and right is not None:
            awaited = right.type == "await" and right.named_child_count > 0
            if awaited:
                right = right.named_children[0]
            if right.type == "call":
                fn = _dotted(right.child_by_field_name("function"))
                resolved = self.resolve(fn) if fn else None
                if resolved and resolved[1]:
                    self.instances[_text(left)] = (resolved[0], awaited)

    def resolve(self, dotted: str) -> tuple[str, bool] | None:
        """(full name, through an import) of a dotted name the block uses; None for its own names (an
        assignment shadows an import: `import mcp` then `mcp = MCPServer()`)."""
        head, _, rest = dotted.partition(".")
        if head in self.local or head in PY_KEYWORDS:
            return None
        if head in self.aliases:
            full = self.aliases[head]
            return (f"{full}.{rest}" if rest else full), True
        return dotted, False

    def call(self, n) -> None:
        if _in_error(n):
            return  # a template (`from_{provider}(...)`) or a fragment: not code to check
        fn = n.child_by_field_name("function")
        dotted = _dotted(fn) if fn is not None else None
        if not dotted:
            return
        keywords, positional = _arguments(n.child_by_field_name("arguments"))
        head, _, rest = dotted.partition(".")
        written = _text(n).split("\n")[0][:120]
        if head in self.instances and rest and "." not in rest:
            made, awaited = self.instances[head]
            self.out.append(Mention(f"{made}.{rest}", self.line(n), CALL, written, "python", imported=True,
                                    instance=True, keywords=keywords, positional=positional, awaited=awaited))
            return
        resolved = self.resolve(dotted)
        if resolved is None:
            return
        self.out.append(Mention(resolved[0], self.line(n), CALL, written, "python", imported=resolved[1],
                                keywords=keywords, positional=positional))

    def name(self, n) -> None:
        if _in_error(n):
            return
        dotted = _dotted(n)
        if not dotted:
            return
        head, _, rest = dotted.partition(".")
        if head in self.instances and rest:  # `result.final_output`: an attribute of what a call made
            made, awaited = self.instances[head]
            self.out.append(Mention(f"{made}.{rest.split('.')[0]}", self.line(n), NAME, dotted, "python",
                                    imported=True, instance=True, awaited=awaited))
            return
        resolved = self.resolve(dotted)
        if resolved is not None and resolved[1] and "." in dotted:  # an attribute of an imported name
            self.out.append(Mention(resolved[0], self.line(n), NAME, dotted, "python", imported=True))


def _in_error(node) -> bool:
    """The node is, holds or sits in a part the parser could not read."""
    if node.has_error:
        return True
    up = node.parent
    while up is not None:
        if up.type == "ERROR":
            return True
        up = up.parent
    return False


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


class ScriptBlock:
    """A TypeScript / JavaScript block: named imports from packages, and the calls of what they import."""

    def __init__(self, code: str, language: str, first_line: int):
        self.code, self.language, self.first = code, language, first_line
        self.aliases: dict[str, str] = {}

    def read(self) -> list[Mention]:
        parser = parser_for(self.language)
        if parser is None or not self.code.strip():
            return []
        root = parser.parse(self.code.encode("utf-8", "replace")).root_node
        out: list[Mention] = []
        nodes = list(_walk(root))
        for n in nodes:
            if n.type == "import_statement":
                source = n.child_by_field_name("source")
                spec = _text(source).strip("'\"`") if source is not None else ""
                if not spec or spec.startswith("."):
                    continue
                for s in _walk(n):
                    if s.type == "import_specifier":
                        name = _text(s.child_by_field_name("name"))
                        alias = s.child_by_field_name("alias")
                        self.aliases[_text(alias) if alias is not None else name] = name
                        out.append(Mention(name, self.first + s.start_point[0], IMPORT, _text(n)[:120],
                                           self.language, imported=True))
                    elif s.type == "namespace_import":
                        ids = [c for c in s.named_children if c.type == "identifier"]
                        if ids:
                            self.aliases[_text(ids[0])] = ""
        for n in nodes:
            if n.type not in ("call_expression", "new_expression"):
                continue
            fn = n.child_by_field_name("function") or n.child_by_field_name("constructor")
            dotted = _text(fn) if fn is not None and fn.type in ("identifier", "member_expression") else ""
            if not re.fullmatch(DOTTED, dotted or "-"):
                continue
            head, _, rest = dotted.partition(".")
            if head not in self.aliases:
                continue
            name = (self.aliases[head] + ("." + rest if rest else "")).lstrip(".")
            args = n.child_by_field_name("arguments")
            count = 0
            for a in args.named_children if args is not None else ():
                if a.type == "spread_element":
                    count = -1
                    break
                if a.type != "comment":
                    count += 1
            out.append(Mention(name, self.first + n.start_point[0], CALL, _text(n).split("\n")[0][:120],
                               self.language, imported=True, positional=count))
        return out
