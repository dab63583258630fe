"""Docs checked against the code: the doc passages that no longer match the code they describe.

Four kinds of finding, each from the names a passage uses (ingest/doc_symbols.py) looked up in the
library's symbol table (indexes/api_surface.py):

- **missing**: the passage names a symbol that does not exist, e.g. a cross-reference
  ``[`Runner.run_sync()`][agents.run.Runner.run_sync]`` or an inline `Runner.run_sync_x()`, whose
  class or module exists and is known through and through (no base class from outside the code, no
  `__getattr__`) but has no such member. The likely new name is suggested: a member of the same class
  or module spelt alike (difflib), else the one symbol of that name elsewhere (moved).
- **keyword**: inline code calls a function with a keyword argument its signature lacks (and that no
  `**kwargs` or `@overload` accepts).
- **default**: the passage states a default ("`max_turns` defaults to 10", "`timeout=30` by default")
  for a parameter of a symbol it names, and the code's default is another literal (a default of `None`
  is not compared: the code often works the real default out at run time).
- **example**: a code block's call does not match the code: an unknown keyword argument, more
  positional arguments than the function takes, or a name the block imports from the library (or an
  attribute of one) that the library does not have.

Precise rather than exhaustive: a name is checked only when the table knows its parent completely,
and a call only when its signature is known (a decorator that may change a signature makes it
unknown). Findings are worked out at ingest (indexes/doc_links.py) and stored per doc chunk, so
every door, and the chat's note on a cited passage, reads them at once.
"""
from __future__ import annotations

import ast
import builtins
import difflib
import json
import re
import sys
from dataclasses import asdict, dataclass, field, replace

from indexes.api_surface import FOUND, MISSING, Lookup, Param, Resolution, Symbol
from indexes.versions import library_versions, same_version
from ingest.doc_symbols import CALL, CODE, DEFAULT, IMPORT, NAME, REF, Mention
from ingest.release_names import canonical_name

KINDS = ("missing", "keyword", "default", "example")
# Names docs write to stand for the reader's own: `your_provider`, `my_module`, `foo`.
PLACEHOLDER = re.compile(r"^(your|my|some|example|foo|bar|baz)(_|$)|^(Your|My|Some|Foo|Bar)[A-Z_]", re.IGNORECASE)
CAMEL = re.compile(r"^_?[A-Z][A-Za-z0-9]*$")


@dataclass
class Finding:
    """One doc passage that does not match the code, with both citations."""
    kind: str  # missing | keyword | default | example
    message: str  # one sentence: what the doc says and what the code has
    says: str  # the doc's words (as written)
    doc_path: str
    doc_start: int
    doc_end: int
    doc_link: str
    suggestion: str = ""  # missing: the likely new name
    symbol: str = ""  # the code's symbol concerned (its public name)
    code_path: str = ""
    code_start: int = 0
    code_end: int = 0
    code_link: str = ""
    doc_id: str = ""
    kb: str = ""
    # The version of the library the doc passage was checked at, when the KB holds several versions of it
    # (a passage both versions hold is checked at each, its findings kept per version); "" otherwise.
    library: str = ""
    version: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        if not self.version and not self.library:  # as before versions: a KB with one version of each library
            del d["library"], d["version"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Finding:
        return cls(**d)

    @property
    def doc_place(self) -> str:
        return f"{self.doc_path}:{self.doc_start}-{self.doc_end}"

    @property
    def code_place(self) -> str:
        return f"{self.code_path}:{self.code_start}-{self.code_end}" if self.code_path else ""

    @property
    def version_label(self) -> str:
        """"mylib v2.0.0" when the finding is of one version of the library, else ""."""
        return f"{self.library} {self.version}".strip() if self.version else ""


@dataclass
class CodeChunk:
    id: str
    path: str
    start: int
    end: int
    symbol: str
    link: str


class CodeChunks:
    """The KB's code chunks by file, to cite the lines a symbol is defined on."""

    def __init__(self, rows):
        self.by_path: dict[str, list[CodeChunk]] = {}
        for r in rows:
            c = CodeChunk(*r)
            self.by_path.setdefault(c.path, []).append(c)
        for chunks in self.by_path.values():
            chunks.sort(key=lambda c: c.start)

    def of(self, sym: Symbol) -> CodeChunk | None:
        """The chunk that holds `sym`'s definition: the one its first line is in, named for it if several."""
        chunks = [c for c in self.by_path.get(sym.file, []) if c.start <= sym.start <= c.end]
        if not chunks:  # decorators or a comment above: the first chunk inside the definition
            chunks = [c for c in self.by_path.get(sym.file, []) if sym.start <= c.start <= sym.end][:1]
        named = [c for c in chunks if c.symbol.split(".")[-1] == sym.name]
        return (named or chunks or [None])[0]


def anchored(link: str, start: int, end: int) -> str:
    """The link, its line anchor set to start..end (GitLab's `#L3-9`, else `#L3-L9`)."""
    if not link:
        return link
    base = re.sub(r"#L\d+(?:-L?\d+)?$", "", link)
    if re.match(r"^https?://[^/]*gitlab", link, re.IGNORECASE):
        return f"{base}#L{start}-{end}"
    return f"{base}#L{start}-L{end}"


# A changelog, release notes, a migration guide or a (dated) blog post names what was, on purpose.
HISTORICAL = re.compile(r"(^|/)(change[-_ ]?log|changes|history|news|release[-_ ]?notes?|releases?|whats[-_]?new|"
                        r"migrat\w*|upgrad\w*|blog)([-_./]|$)|(^|/)changelog\.d/", re.IGNORECASE)


def historical(path: str) -> bool:
    """A doc about the past (a changelog, release notes, a migration guide): its old names are not drift."""
    return HISTORICAL.search(path) is not None


@dataclass
class Passage:
    """The doc chunk being checked: where it is, to cite it, and the version of its library it is checked at
    (when the KB holds several)."""
    id: str
    path: str
    link: str
    library: str = ""
    version: str = ""


class Checker:
    """The checks of one KB: its symbol table and code chunks, applied passage by passage."""

    def __init__(self, lookup: Lookup, code: CodeChunks, kb: str = ""):
        self.lookup = lookup
        self.code = code
        self.kb = kb

    def check(self, passage: Passage, mentions: list[Mention], context: FileContext | None = None) \
            -> list[Finding]:
        """The findings of one passage (`context`: what its file says for all its passages)."""
        if historical(passage.path):
            return []
        out: list[Finding] = []
        seen: set[tuple[str, str]] = set()
        for m in in_context(mentions, context, self.lookup):
            for f in self._check_one(m, passage, mentions):
                key = (f.kind, f.message)
                if key not in seen:
                    seen.add(key)
                    out.append(f)
        return out

    def _check_one(self, m: Mention, passage: Passage, mentions: list[Mention]) -> list[Finding]:
        if m.language and m.language != "python":
            return self._script_call(m, passage) if m.how == CALL else []
        if m.how == DEFAULT:
            return self._default(m, passage)
        block = bool(m.language)
        res, shown = self._resolve(m)
        if res is None:
            return []
        if res.state == MISSING:
            if not self._certain(m, res, block):
                return []
            return [self._missing(m, res, shown, passage, block)]
        if res.state != FOUND or m.how != CALL:
            return []
        return self._call(m, res.symbol, shown, passage, block)

    # -- names -------------------------------------------------------------------------------------
    def _certain(self, m: Mention, res: Resolution, block: bool) -> bool:
        """A MISSING name that surely means the library's: not `mcp.run()` in prose (a variable named like
        the package: the package itself lacks the member), not a placeholder (`your_provider`), not a
        bare cross-reference the current module does not hold but the library defines elsewhere
        (`{class}`BoolParamType`` is click.types')."""
        if not block and m.how in (CODE, CALL) and res.parent is not None and res.parent.kind == "module" \
                and "." not in res.parent.path:
            return False
        if any(PLACEHOLDER.match(part) for part in m.name.split(".")):
            return False
        return not (m.scoped and "." not in m.name.split(".", 1)[1] and self.lookup.by_name.get(res.missing))

    def _resolve(self, m: Mention) -> tuple[Resolution | None, str]:
        """How `m` resolves, and the name as the finding shows it; None when it is not checked."""
        L = self.lookup
        name = m.name
        if m.instance:  # an attribute of what the block made by calling a class (or a function returning one)
            made, _, member = name.rpartition(".")
            cls = instance_class(L, made, m.awaited)
            if cls is None:
                return None, ""
            return L.resolve(member, head=cls, head_written=cls.name), f"{cls.name}.{member}"
        if m.language and not m.imported:
            # A name a block uses without its file's blocks importing it (`mcp.tool()` on a variable named
            # like the package, an earlier block's own `class Response`): whose it is, is a guess.
            return None, ""
        if L.in_library(name):
            if not m.imported and m.how not in (REF, CODE, CALL):
                return None, ""
            return L.resolve(name), name
        if m.how in (IMPORT, NAME) or m.language:
            return None, ""  # another library's, or the standard library's
        head, _, rest = name.partition(".")
        if not rest and m.how == CALL and "_" in head.strip("_"):  # `set_tracing_disabled(True)`
            fn = L.unique(head, ("function",))
            return (Resolution(FOUND, fn), head) if fn is not None else (None, "")
        if not CAMEL.match(head):
            return None, ""  # `result.final_output`: an instance's attribute, of a type the doc does not say
        cls = L.unique(head, ("class",))
        if cls is None:
            return None, ""
        if not rest:
            return (Resolution(FOUND, cls), head) if m.how == CALL else (None, "")
        return L.resolve(rest, head=cls, head_written=head), name

    def _missing(self, m: Mention, res: Resolution, shown: str, passage: Passage, block: bool) -> Finding:
        L = self.lookup
        suggestion = L.suggest(res) or ""
        parent_shown = res.written_parent or (L.display(res.parent) if res.parent is not None else "")
        what = "module" if res.parent is not None and res.parent.kind == "module" else "class"
        new = f"; it may now be `{suggestion}`" if suggestion else ""
        where = "its example uses" if block else "it names"
        msg = f"{where} `{shown}`, but the {what} `{parent_shown}` has no `{res.missing}`{new}"
        target = L.get(suggestion) if suggestion else None
        if target is None and suggestion and res.parent is not None:
            target, _ = L.member(res.parent, suggestion.rsplit(".", 1)[-1])
        return self._finding("example" if block else "missing", msg, m, passage, target or res.parent, suggestion)

    # -- calls -------------------------------------------------------------------------------------
    def _call(self, m: Mention, sym: Symbol, shown: str, passage: Passage, block: bool) -> list[Finding]:
        L = self.lookup
        sigs = L.signatures(sym, bound=m.instance)
        if not sigs:
            return []
        problems = [_mismatch(sig, m.keywords, m.positional) for sig in sigs]
        if any(p is None for p in problems):
            return []
        unknown, extra = problems[-1]
        label = L.display(sym) if not m.instance else shown
        if unknown:
            kws = ", ".join(f"`{k}=`" for k in unknown)
            accepted = sorted({p.name for sig in sigs for p in sig if p.kind in ("positional", "keyword-only")})
            close = [c for k in unknown for c in difflib.get_close_matches(k, accepted, n=1, cutoff=0.7)]
            hint = f" (did it become `{close[0]}=`?)" if len(unknown) == 1 and close else ""
            msg = (f"{'its example calls' if block else 'it calls'} `{label}` with {kws}, which the signature "
                   f"of `{label}` lacks{hint}")
            return [self._finding("example" if block else "keyword", msg, m, passage, sym, close[0] if hint else "")]
        most = max(sum(1 for p in sig if p.kind in ("positional", "positional-only")) for sig in sigs)
        msg = (f"{'its example calls' if block else 'it calls'} `{label}` with {m.positional} positional "
               f"arguments; it takes at most {most}")
        return [self._finding("example" if block else "keyword", msg, m, passage, sym)] if extra else []

    def _script_call(self, m: Mention, passage: Passage) -> list[Finding]:
        """A TypeScript / JavaScript block's call of a function the KB defines once: too many arguments."""
        if m.positional <= 0:
            return []
        last = m.name.rsplit(".", 1)[-1]
        found = [s for s in self.lookup.symbols.values()
                 if s.language in ("typescript", "tsx", "javascript") and s.name == last and not s.side
                 and (s.path == m.name or s.path.endswith("." + m.name) or "." not in m.name)]
        if len(found) != 1 or found[0].params is None or found[0].kind != "function":
            return []
        sym = found[0]
        if any(p.kind == "*args" for p in sym.params) or m.positional <= len(sym.params):
            return []
        msg = f"its example calls `{m.name}` with {m.positional} arguments; it takes at most {len(sym.params)}"
        return [self._finding("example", msg, m, passage, sym)]

    # -- defaults ----------------------------------------------------------------------------------
    def _default(self, m: Mention, passage: Passage) -> list[Finding]:
        L = self.lookup
        for near in m.near:
            sym = L.get(near) if L.in_library(near) else None
            if sym is None:
                head, _, rest = near.partition(".")
                cls = L.unique(head, ("class", "function")) if CAMEL.match(head) or not rest else None
                if cls is None:
                    continue
                res = L.resolve(rest, head=cls, head_written=head) if rest else Resolution(FOUND, cls)
                sym = res.symbol if res.state == FOUND else None
            if sym is None or sym.kind not in ("class", "function"):
                continue
            default = self._default_of(sym, m.param)
            if default is None:
                continue
            code_value, where = default
            said, code = _literal(m.value), _literal(code_value)
            if said is _UNREAD or code is _UNREAD or code is None:
                return []  # not comparable (an expression, or None the code replaces at run time)
            if _same(said, code):
                return []
            msg = (f"it says `{m.param}` defaults to `{m.value}`; the code's default for `{L.display(sym)}` is "
                   f"`{code_value}`" + (f" (`{where}`)" if where else ""))
            return [self._finding("default", msg, m, passage, sym)]
        return []

    def _default_of(self, sym: Symbol, param: str) -> tuple[str, str] | None:
        """(the code's default of `param` in `sym`'s signature, the constant it is read from), or None."""
        L = self.lookup
        if sym.kind == "function" and sym.params is not None:
            sigs = [sym.params]  # the implementation's defaults, not an @overload's narrowed ones
        else:
            sigs = L.signatures(sym, bound=True) or []
        for sig in sigs:
            for p in sig:
                if p.name == param and p.default is not None:
                    value, where = p.default, ""
                    if re.fullmatch(r"[A-Za-z_][\w.]*", value) and value not in ("None", "True", "False"):
                        const = self._constant(sym, value)
                        if const is None:
                            return None
                        value, where = const, p.default
                    return value, where
        return None

    def _constant(self, sym: Symbol, name: str) -> str | None:
        """The literal a module constant named in a default holds (`DEFAULT_MAX_TURNS` is 10)."""
        module = sym.path
        while module and (s := self.lookup.symbols.get(module)) is not None and s.kind != "module":
            module = module.rpartition(".")[0]
        const = self.lookup.get(f"{module}.{name}") or self.lookup.get(name)
        return const.value if const is not None and const.kind == "attribute" else None

    # -- citations ---------------------------------------------------------------------------------
    def _finding(self, kind: str, message: str, m: Mention, passage: Passage, sym: Symbol | None,
                 suggestion: str = "") -> Finding:
        f = Finding(kind, message[0].upper() + message[1:] + ".", m.written, passage.path, m.line, m.line,
                    anchored(passage.link, m.line, m.line), suggestion, doc_id=passage.id, kb=self.kb,
                    library=passage.library, version=passage.version)
        if sym is not None:
            f.symbol = self.lookup.display(sym)
            chunk = self.code.of(sym)
            f.code_path, f.code_start, f.code_end = sym.file, sym.start, sym.end
            f.code_link = anchored(chunk.link, sym.start, sym.end) if chunk is not None else ""
        return f


def instance_class(lookup: Lookup, made: str, awaited: bool) -> Symbol | None:
    """The library class of what calling `made` gives: the class itself, or the class a function's return
    annotation names (an `async def`'s only when awaited)."""
    callee = lookup.get(made) if lookup.in_library(made) else None
    if callee is None:
        return None
    if callee.kind == "class":
        return callee
    if callee.kind == "function" and callee.returns and callee.coroutine == awaited:
        cls = lookup.get(callee.returns)
        return cls if cls is not None and cls.kind == "class" else None
    return None


@dataclass
class FileContext:
    """What a doc file says that holds for all its passages."""
    scopes: list[tuple[int, str]] = field(default_factory=list)  # (line, module) of its `currentmodule`s
    imports: dict[str, str] = field(default_factory=dict)  # what its Python blocks import: local -> full name


def in_context(mentions: list[Mention], context: FileContext | None, lookup: Lookup) -> list[Mention]:
    """The mentions read in their file's context: a cross-reference to a bare name (`:class:`Group``)
    qualified by the module the file's last `currentmodule` above it names (`click.Group`); a name a code
    block uses without importing it, by what the file's other blocks import (a guide's second block
    calls `Agent(...)`, its first imported it)."""
    if context is None or not (context.scopes or context.imports):
        return mentions
    out = []
    for m in mentions:
        if m.how == REF and not lookup.in_library(m.name) and scoped(m):
            module = next((mod for line, mod in reversed(context.scopes) if line <= m.line), "")
            if module and lookup.in_library(module):
                m = replace(m, name=f"{module}.{m.name}", scoped=True)
        elif m.language == "python" and not m.imported and m.how in (CALL, NAME):
            head, _, rest = m.name.partition(".")
            full = context.imports.get(head)
            if full:
                m = replace(m, name=f"{full}.{rest}" if rest else full, imported=True)
        out.append(m)
    return out


BUILTINS = set(dir(builtins)) | set(sys.stdlib_module_names)


def scoped(m: Mention) -> bool:
    """A cross-reference the current module qualifies: not Python's own (`EOFError`, `sys.exit`), and
    not a method or attribute named alone (`:meth:`invoke``: of a class the sentence has in mind)."""
    head = m.name.split(".", 1)[0]
    if head in BUILTINS:
        return False
    return "." in m.name or m.role not in ("meth", "attr", "method", "attribute", "property")


def _mismatch(sig: list[Param], keywords: list[str], positional: int) -> tuple[list[str], bool] | None:
    """None when a call with these arguments fits `sig`; else (unknown keywords, too many positional)."""
    takes_any_kw = any(p.kind == "**kwargs" for p in sig)
    names = {p.name for p in sig if p.kind in ("positional", "keyword-only")}
    unknown = [] if takes_any_kw else [k for k in keywords if k not in names]
    room = sum(1 for p in sig if p.kind in ("positional", "positional-only"))
    extra = positional > room and not any(p.kind == "*args" for p in sig)
    # A keyword also given positionally is the call's own error, not the docs' drift: not judged.
    return None if not unknown and not extra else (unknown, extra)


_UNREAD = object()


def _literal(text: str):
    """A stated or coded default as a Python value (true/false/null read as JSON); _UNREAD if not a literal."""
    t = text.strip().strip("`")
    if t in ("true", "false", "null"):
        return json.loads(t)
    try:
        value = ast.literal_eval(t)
        return _UNREAD if value is Ellipsis else value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _UNREAD


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


# -- reading the findings ----------------------------------------------------------------------------

def checked(catalog, kb: str) -> bool:
    """The KB's docs were checked against its code (by an ingest since this check exists)."""
    return catalog.get_meta(f"doc_links:{kb}") is not None


def findings(catalog, kb: str, kinds: list[str] | None = None) -> list[Finding]:
    """Every finding of the KB, by doc file and line."""
    out: list[Finding] = []
    for (text,) in catalog.db.execute("SELECT findings FROM drift_findings WHERE kb=?", (kb,)):
        out += [Finding.from_json(d) for d in json.loads(text)]
    if kinds:
        out = [f for f in out if f.kind in kinds]
    return sorted(out, key=lambda f: (f.doc_path, f.doc_start, KINDS.index(f.kind), f.message))


def findings_of(catalog, kb: str, doc_ids: list[str], read_from: dict[str, str] | None = None) \
        -> dict[str, list[Finding]]:
    """The findings of these doc chunks (those with none are left out). `read_from`: doc chunk -> the source
    it is read from (a hit's); of a passage several versions hold, only the findings at that source's version."""
    out: dict[str, list[Finding]] = {}
    at: dict[str, tuple[str, str]] = {}
    for i in range(0, len(doc_ids), 500):
        part = doc_ids[i:i + 500]
        q = f"SELECT doc_id, findings FROM drift_findings WHERE kb=? AND doc_id IN ({','.join('?' * len(part))})"
        for doc_id, text in catalog.db.execute(q, [kb, *part]):
            found = [Finding.from_json(d) for d in json.loads(text)]
            if read_from and any(f.version for f in found):
                at = at or {sid: (lib, v.version) for lib, vs in library_versions(catalog, kb).items() for v in vs
                            for sid in v.source_ids}
                here = at.get(read_from.get(doc_id, ""))
                found = [f for f in found if not f.version or here is None or (f.library, f.version) == here]
            if found:
                out[doc_id] = found
    return out


def at_versions(found: list[Finding], answered: dict[str, str]) -> list[Finding]:
    """The findings at the versions chosen (`answered`: library -> version, a versions.Scope's); a finding of
    no particular version (its library has one in the KB) is kept."""
    chosen = {canonical_name(lib): v for lib, v in answered.items()}
    return [f for f in found if not f.version or canonical_name(f.library) not in chosen
            or same_version(f.version, chosen[canonical_name(f.library)])]


def out_of_date_note(n: int, found: list[Finding]) -> str:
    """The line an answer adds under itself when it cites passage [n], which the checks flagged."""
    first = found[0]
    said = first.message[0].lower() + first.message[1:].rstrip(".")
    more = f" (and {len(found) - 1} more difference{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
    return f"Note: [{n}] may be out of date: {said}{more}."


def counts(found: list[Finding]) -> dict[str, int]:
    return {k: sum(1 for f in found if f.kind == k) for k in KINDS}


def render_text(found: list[Finding], kb: str) -> str:
    """The findings as `devcopilot drift` prints them."""
    if not found:
        return f"KB '{kb}': no doc passage found out of step with the code."
    c = counts(found)
    head = (f"KB '{kb}': {len(found)} doc passage finding{'s' if len(found) != 1 else ''} ("
            + ", ".join(f"{n} {k}" for k, n in c.items() if n) + ")")
    lines = [head]
    for f in found:
        at = f" ({f.version_label})" if f.version else ""
        lines.append(f"\n[{f.kind}] {f.doc_place}{at}  {f.says}")
        lines.append(f"    {f.message}")
        lines.append(f"    doc:  {f.doc_link}")
        if f.code_path:
            lines.append(f"    code: {f.code_place}  {f.symbol}  {f.code_link}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(found: list[Finding], kb: str) -> str:
    """The findings as a Markdown table (`devcopilot drift --markdown`)."""
    if not found:
        return f"No doc passage of KB '{kb}' found out of step with the code."
    c = counts(found)
    out = [f"## Docs out of step with the code: KB '{kb}'", "",
           ", ".join(f"{n} {k}" for k, n in c.items() if n), "",
           "| kind | doc | finding | code |", "|---|---|---|---|"]
    for f in found:
        doc = f"[{f.doc_place}]({f.doc_link})" if f.doc_link else f.doc_place
        doc += f" ({f.version_label})" if f.version else ""
        code = (f"[{f.code_place}]({f.code_link})" if f.code_link else f.code_place) if f.code_path else ""
        out.append(f"| {f.kind} | {_md(doc)} | {_md(f.message)} | {_md(code)} |")
    return "\n".join(out)
