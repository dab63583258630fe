"""A library's public API at one version, as comparable records, and the difference between two.

Two readers fill the records: indexes/api_python.py (griffe, for Python) and indexes/api_chunks.py
(the index's tree-sitter symbol chunks, for TypeScript, JavaScript, Go, Java and Rust, and for Python
when its folder is gone). `diff_apis` compares them the same way whichever read them.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

# Names of folders whose code is no part of a library's API.
NOT_API_DIRS = {"tests", "test", "__tests__", "examples", "example", "docs", "doc", "benchmarks",
                "bench", "scripts", "samples", "e2e", "fixtures", "node_modules"}


@dataclass
class Param:
    name: str
    kind: str = "positional or keyword"  # griffe's words: positional-only, keyword-only, variadic positional...
    annotation: str = ""
    default: str = ""  # "" when there is none
    required: bool = True


@dataclass
class ApiSymbol:
    """One public symbol: what it is, where it is defined, and what can change about it."""
    name: str  # its public qualified name: `agents.Runner.run` (Python), `Runner.run` (other languages)
    what: str  # class | function | method | attribute | interface | type | enum | ...
    path: str  # file relative to the source root
    start_line: int
    end_line: int
    canonical: str = ""  # where it is defined (Python: agents.run.Runner.run); "" when the same as name
    params: list[Param] | None = None  # None: not callable (attributes, types)
    returns: str = ""
    declaration: str = ""  # what else makes its signature: bases, an attribute's type, a type's body
    docstring: str = ""
    deprecated: str = ""  # the evidence, e.g. "@deprecated('use run_sync')"; "" when not deprecated

    @property
    def key(self) -> str:
        return self.name


@dataclass
class SymbolChange:
    """How one symbol differs between two versions (old or new is None when it was added or removed)."""
    kind: str  # added | removed | signature | deprecated | docstring
    name: str
    what: str
    old: ApiSymbol | None
    new: ApiSymbol | None
    details: list[str] = field(default_factory=list)
    breaking: bool = False


def _q(text: str) -> str:
    return f"`{text}`" if text else "none"


def param_changes(old: list[Param], new: list[Param]) -> list[str]:
    """Parameters removed, added, renamed, moved, and changed in kind, default, annotation or required."""
    out: list[str] = []
    old_names = {p.name for p in old}
    new_names = {p.name for p in new}
    renamed: dict[str, str] = {}
    # A positional parameter whose name changed in place (the old name gone, the new one new) was renamed.
    for i, p in enumerate(old):
        if i < len(new) and p.name not in new_names and new[i].name not in old_names and p.kind == new[i].kind:
            renamed[p.name] = new[i].name
            out.append(f"parameter `{p.name}` renamed to `{new[i].name}`")
    by_new = {p.name: (i, p) for i, p in enumerate(new)}
    moved: dict[int, list[str]] = {}  # shift -> the positional parameters it moved
    for i, p in enumerate(old):
        if p.name in renamed:
            q = new[i]
        elif p.name not in by_new:
            out.append(f"parameter `{p.name}` removed")
            continue
        else:
            j, q = by_new[p.name]
            positional = ("positional-only", "positional or keyword")
            if j != i and p.kind in positional and q.kind in positional:
                moved.setdefault(j - i, []).append(f"`{p.name}`")
        out += _one_param(q.name, p, q)
    for shift, names in moved.items():  # one line for the parameters an insertion pushed along
        out.append(f"parameter{'s' if len(names) > 1 else ''} {', '.join(names)} moved {abs(shift)} "
                   f"position{'s' if abs(shift) > 1 else ''} {'later' if shift > 0 else 'earlier'}")
    for p in new:
        if p.name not in old_names and p.name not in renamed.values():
            how = f"default {_q(p.default)}" if not p.required else "required"
            if p.kind.startswith("variadic"):
                how = p.kind
            out.append(f"parameter `{p.name}` added ({how}" + (f", {p.annotation}" if p.annotation else "") + ")")
    return out


def _one_param(name: str, p: Param, q: Param) -> list[str]:
    out = []
    if p.kind != q.kind:
        out.append(f"parameter `{name}` kind: {p.kind} → {q.kind}")
    if p.required != q.required:
        now = "now required" if q.required else f"now optional (default {_q(q.default)})"
        out.append(f"parameter `{name}` {now}")
    elif not q.required and p.default != q.default and not q.kind.startswith("variadic"):
        out.append(f"parameter `{name}` default: {_q(p.default)} → {_q(q.default)}")
    if p.annotation != q.annotation:
        out.append(f"parameter `{name}` annotation: {_q(p.annotation)} → {_q(q.annotation)}")
    return out


def signature_changes(old: ApiSymbol, new: ApiSymbol) -> list[str]:
    out: list[str] = []
    if old.what != new.what:
        out.append(f"now a {new.what} (was a {old.what})")
    if old.params is not None and new.params is not None:
        out += param_changes(old.params, new.params)
    elif (old.params is None) != (new.params is None):
        out.append("parameters " + ("removed" if new.params is None else "added"))
    if old.returns != new.returns:
        out.append(f"return type: {_q(old.returns)} → {_q(new.returns)}")
    if old.declaration != new.declaration:
        out.append(f"declaration: {_q(_short(old.declaration))} → {_q(_short(new.declaration))}")
    return out


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def docstring_diff(old: str, new: str, lines: int = 6) -> list[str]:
    """The changed lines of a docstring, as a few `-`/`+` lines."""
    diff = [ln for ln in difflib.unified_diff(old.strip().splitlines(), new.strip().splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---")) and ln[1:].strip()]
    more = [f"… {len(diff) - lines} more lines"] if len(diff) > lines else []
    return [_short(ln, 120) for ln in diff[:lines]] + more


def diff_apis(old: dict[str, ApiSymbol], new: dict[str, ApiSymbol]) -> list[SymbolChange]:
    """Every difference between two versions' public symbols, in the order of their names."""
    pairs, removed, added = match(old, new)
    out: list[SymbolChange] = []
    for s in removed:
        out.append(SymbolChange("removed", s.name, s.what, s, None, _renamed_note(s, added, "to"), breaking=True))
    for s in added:
        out.append(SymbolChange("added", s.name, s.what, None, s, _renamed_note(s, removed, "from")))
    for a, b in pairs:
        details = signature_changes(a, b)
        if details:
            out.append(SymbolChange("signature", b.name, b.what, a, b, details))
        if b.deprecated and not a.deprecated:
            out.append(SymbolChange("deprecated", b.name, b.what, a, b, [b.deprecated]))
        elif a.deprecated and not b.deprecated:
            out.append(SymbolChange("undeprecated", b.name, b.what, a, b, [f"no longer marked deprecated (was: "
                                                                           f"{a.deprecated})"]))
        if _doc(a.docstring) != _doc(b.docstring):
            out.append(SymbolChange("docstring", b.name, b.what, a, b, docstring_diff(a.docstring, b.docstring)))
    out.sort(key=lambda c: c.name)
    return out


def _doc(text: str) -> str:
    return " ".join(text.split())


def match(old: dict[str, ApiSymbol], new: dict[str, ApiSymbol]) \
        -> tuple[list[tuple[ApiSymbol, ApiSymbol]], list[ApiSymbol], list[ApiSymbol]]:
    """(pairs, removed, added): by public name, then what is left by where it is defined (a symbol newly
    re-exported under a shorter name, or a TypeScript declaration moved to another file)."""
    pairs = [(old[k], new[k]) for k in old if k in new]
    rest_old = [s for k, s in old.items() if k not in new]
    rest_new = {_where(s): s for k, s in new.items() if k not in old}
    removed = []
    for s in rest_old:
        twin = rest_new.pop(_where(s), None)
        if twin is not None and twin.what == s.what:
            pairs.append((s, twin))
        else:
            if twin is not None:
                rest_new[_where(s)] = twin
            removed.append(s)
    return pairs, removed, list(rest_new.values())


def _where(s: ApiSymbol) -> str:
    return s.canonical or s.name


def _renamed_note(s: ApiSymbol, others: list[ApiSymbol], word: str) -> list[str]:
    """"probably renamed to X" when a symbol of the same kind, in the same place, takes the same parameters."""
    if s.params is None or not s.params:
        return []
    parent = s.name.rpartition(".")[0]
    shape = [(p.name, p.kind) for p in s.params]
    for o in others:
        if o.what == s.what and o.name.rpartition(".")[0] == parent and o.params is not None \
                and [(p.name, p.kind) for p in o.params] == shape:
            return [f"probably renamed {word} `{o.name}` (same parameters)"]
    return []
