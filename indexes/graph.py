"""The code graph, queried: where a symbol is defined, what references it, who calls it (to a depth:
"what breaks if I change X"), what it calls. Every door asks here: `devcopilot refs`, the MCP tools
`find_references` and `call_graph`, the API's /v1/graph routes, the Coding assistant's tools, and
`retrieve()` for a question that asks who calls or what is called.

Each file's rows (ingest/references.py) are resolved across the KB here, against a `Resolver` built
from the whole KB's definitions, module-level imports and re-exports, and base classes (cached until
the KB changes):
- a dotted target (`agents.Runner.run`) is split where its longest prefix names a module of the KB
  (the module itself, or one whose dotted name ends with it: `agents.run` answers `run`; for Python, its
  file's path counts too, so the modules of a namespace package (`src/google/cloud/x/`, no `__init__.py`
  above `x`), named `x...`, still answer `google.cloud.x`), then
  followed through definitions, re-exports (`from .run import Runner` in a package's `__init__`,
  TypeScript's `export { a } from './x'` and `export *`) and base classes (an inherited method);
- a path target (TypeScript's `src/util/x`, Go's `github.com/o/r/pkg/store`) names a file or folder
  of the KB (`src/util/x`, `src/util/x/index`; the folder an import path ends with).

A reference resolves to a definition, or it does not: it is *external* (its module is not in the KB:
`os.path.join`, a package not indexed), dropped; or *unresolved*: only its name is known (`x.save()`)
or its module is the KB's but not the member. Unresolved references are matched by their last name
part (a bare `save()` only by a top-level `save`, `x.save()` only by a member named `save`) and are
always flagged as such, never shown as resolved.

A question is answered at a version (`within`: kb -> the source ids of the versions chosen, as
`Index.scope` gives them; None, or a KB not named, reads every source): definitions, sites and the
calls followed stay within those sources. The resolver still reads the whole KB (one per generation),
and where it answers with another version's definition of a name, the chosen version's is taken.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from indexes.catalog import MEMBER_COLS, row_to_chunk
from indexes.versions import library_versions
from ingest.chunk import Chunk
from ingest.code_graph import GRAPH_VERSION
from ingest.refs_python import python_module

# The reference kinds each question follows.
CALLER_KINDS = ("call", "decorator", "inherit", "use")  # who depends on X's behaviour
CALL_KINDS = ("call", "decorator", "inherit")  # what X calls (its bases count: their code runs)
ALL_KINDS = ("call", "import", "export", "inherit", "decorator", "type", "use")
MAX_DEPTH = 5
MAX_SITES = 500  # references returned at most (the doors show fewer)

EXTERNAL = "external"  # resolution results that are no definition
INKB = "unresolved"
MODULE = "module"

# kb -> the source ids to read (indexes/versions.py: Scope.sources); None, or a KB not named: every source
Within = dict[str, frozenset[str] | None] | None


class GraphError(ValueError):
    """A graph question that cannot be answered as asked; one sentence saying what to do."""


@dataclass(frozen=True)
class Symbol:
    """A definition in the code graph."""
    kb: str
    source_id: str
    path: str
    language: str
    module: str
    symbol: str  # as the chunks name it: Class.method
    kind: str
    start_line: int
    end_line: int

    @property
    def key(self) -> tuple[str, str, str, str]:  # by source: two versions of a library define the same symbol
        return self.kb, self.source_id, self.module, self.symbol

    @property
    def qualified(self) -> str:
        """The module-qualified name (`agents.run.Runner.run`, `src/util/x:parse`)."""
        sep = ":" if "/" in self.module or self.language in ("go",) else "."
        return f"{self.module}{sep}{self.symbol}" if self.module else self.symbol


@dataclass
class Site:
    """One reference: where it is, in what, to what; with the chunk that holds it, to cite."""
    kb: str
    path: str
    line: int
    caller: str  # the symbol it sits in ("" at module level)
    kind: str
    resolved: bool  # False: matched by name only (flagged)
    target: str  # the definition it refers to (qualified), or the name as written when unresolved
    text: str = ""  # the source line
    link: str = ""  # to the line
    chunk: Chunk | None = None
    depth: int = 1  # 1: refers to the symbol asked about; 2: to one of its callers; ...
    via: str = ""  # at depth > 1: the caller (of the level before) it refers to
    source_id: str = ""
    to: Symbol | None = None  # the definition it resolved to

    def to_json(self) -> dict:
        return {"kb": self.kb, "path": self.path, "line": self.line, "caller": self.caller, "kind": self.kind,
                "resolved": self.resolved, "target": self.target, "text": self.text, "link": self.link,
                "depth": self.depth, "via": self.via}


def symbol_json(s: Symbol, link: str = "") -> dict:
    return {"kb": s.kb, "symbol": s.symbol, "qualified": s.qualified, "kind": s.kind, "path": s.path,
            "start_line": s.start_line, "end_line": s.end_line, "language": s.language, "link": link}


@dataclass
class GraphAnswer:
    """The answer to one graph question: the symbol's definitions and the sites found."""
    question: str  # references | callers | callees
    name: str
    definitions: list[Symbol]
    sites: list[Site] = field(default_factory=list)
    links: dict[tuple, str] = field(default_factory=dict)  # definition key -> link
    versions: dict[tuple, str] = field(default_factory=dict)  # definition key -> "library version", when a KB
    # holds several versions of the definition's library
    unparsed: int = 0  # code files of the KBs left out of the graph (they do not parse)
    truncated: bool = False

    @property
    def resolved(self) -> list[Site]:
        return [s for s in self.sites if s.resolved]

    @property
    def unresolved(self) -> list[Site]:
        return [s for s in self.sites if not s.resolved]

    def by_file(self) -> dict[str, list[Site]]:
        """Sites grouped by file (files in order of their first site), resolved ones first."""
        out: dict[str, list[Site]] = {}
        for s in sorted(self.sites, key=lambda s: (not s.resolved, s.depth)):
            out.setdefault(f"{s.path}" if len({x.kb for x in self.sites}) < 2 else f"{s.kb}:{s.path}", []).append(s)
        return {k: sorted(v, key=lambda s: (s.depth, s.line)) for k, v in out.items()}

    def chunks(self) -> list[tuple[str, Chunk]]:
        """(kb, chunk) holding the sites, each once, in the sites' order: what an answer cites."""
        seen, out = set(), []
        for s in sorted(self.sites, key=lambda s: not s.resolved):  # resolved sites first
            if s.chunk is not None and s.chunk.id not in seen:
                seen.add(s.chunk.id)
                out.append((s.kb, s.chunk))
        return out

    def to_json(self) -> dict:
        return {"question": self.question, "symbol": self.name,
                "definitions": [symbol_json(d, self.links.get(d.key, "")) | {"version": self.versions.get(d.key, "")}
                                for d in self.definitions],
                "sites": [s.to_json() for s in self.sites], "resolved": len(self.resolved),
                "unresolved": len(self.unresolved), "unparsed_files": self.unparsed, "truncated": self.truncated}


# -- resolving across a KB ------------------------------------------------------------------------------
class Resolver:
    """One KB's definitions, module-level imports and re-exports, and base classes: what a reference's
    target is resolved against. Built once per KB generation."""

    def __init__(self, catalog, kb: str):
        self.kb = kb
        self.defs: dict[tuple[str, str], list[Symbol]] = {}
        self.by_symbol: dict[str, list[Symbol]] = {}
        self.modules: dict[str, str] = {}  # module -> language
        self.suffixes: dict[str, set[str]] = {}  # a dotted module's every suffix -> modules
        self.go_dirs: dict[str, set[str]] = {}  # a Go folder's every suffix -> folders
        self.exports: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.stars: dict[str, list[tuple[str, str]]] = {}
        self.bases: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.file_module: dict[tuple[str, str], tuple[str, str]] = {}  # (source, path) -> (module, language)
        self.unparsed = 0  # files left out of the graph: they do not parse
        self._memo: dict[tuple[str, str], object] = {}
        self._aliases: dict[tuple[str, str], set[str]] | None = None
        self._lock = threading.RLock()
        db = catalog.db
        for sid, path, language, module, parsed in db.execute("SELECT source_id, path, language, module, parsed FROM "
                                                              "graph_files WHERE kb=?", (kb,)):
            self.unparsed += not parsed
            self.file_module[(sid, path)] = (module, language)
            self.modules.setdefault(module, language)
            if language in ("go",):
                parts = module.split("/")
                for i in range(len(parts)):
                    self.go_dirs.setdefault("/".join(parts[i:]), set()).add(module)
            elif language in ("python", "java", "rust"):
                parts = module.split(".")
                for i in range(len(parts)):
                    self.suffixes.setdefault(".".join(parts[i:]), set()).add(module)
                if language == "python":  # its path's name too: a namespace package's files are named below it
                    parts = python_module(path).split(".")
                    for i in range(len(parts)):
                        self.suffixes.setdefault(".".join(parts[i:]), set()).add(module)
        for row in db.execute("SELECT source_id, path, language, module, symbol, kind, start_line, end_line FROM "
                              "graph_defs WHERE kb=?", (kb,)):
            s = Symbol(kb, row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])
            self.defs.setdefault((s.module, s.symbol), []).append(s)
            self.by_symbol.setdefault(s.symbol, []).append(s)
        for sid, path, caller, kind, module, target, alias in db.execute(
                "SELECT source_id, path, caller, kind, module, target, alias FROM graph_refs WHERE kb=? AND "
                "((alias != '' AND caller = '') OR kind = 'inherit')", (kb,)):
            own = self.file_module.get((sid, path), ("", ""))[0]
            if kind == "inherit":
                self.bases.setdefault((own, caller), []).append((module, target))
            elif alias == "*":
                self.stars.setdefault(own, []).append((module, target))
            elif alias:
                self.exports.setdefault((own, alias), []).append((module, target))

    # -- modules ------------------------------------------------------------------------------------
    def path_modules(self, module: str) -> list[str]:
        """The KB's modules a path target names: a file (TypeScript), or a folder (Go)."""
        found = [m for m in (module, f"{module}/index") if m in self.modules]
        if found:
            return found
        parts = module.split("/")
        for i in range(len(parts)):  # a Go import path names the folder it ends with
            dirs = self.go_dirs.get("/".join(parts[i:]))
            if dirs:
                return sorted(dirs)
        return []

    def dotted_modules(self, dotted: str) -> list[str]:
        if dotted in self.modules:
            return [dotted]
        return sorted(self.suffixes.get(dotted, ()))

    # -- targets ------------------------------------------------------------------------------------
    def resolve(self, module: str, target: str, depth: int = 0):
        """The Symbol a target names, or EXTERNAL, INKB (the KB's module, not the member) or MODULE."""
        key = (module, target)
        with self._lock:  # searches run side by side; the memo's cycle guard must not be seen by another
            if key in self._memo:
                return self._memo[key]
            self._memo[key] = INKB  # a cycle of re-exports ends here
            found = self._resolve(module, target, depth) if depth < 12 else INKB
            self._memo[key] = found
            return found

    def _resolve(self, module: str, target: str, depth: int):
        parts = [p for p in target.split(".") if p]
        if module:
            mods = self.path_modules(module)
            if not mods:
                return EXTERNAL
            return self._first(self.member(m, parts, depth) for m in mods)
        for i in range(len(parts), 0, -1):
            mods = self.dotted_modules(".".join(parts[:i]))
            if mods:
                return self._first(self.member(m, parts[i:], depth) for m in mods)
        return EXTERNAL

    @staticmethod
    def _first(results: Iterable):
        out = []
        for r in results:
            if isinstance(r, Symbol):
                return r
            out.append(r)
        return INKB if INKB in out or not out else out[0]

    def member(self, module: str, rest: list[str], depth: int):
        """What `rest` (dotted parts) names inside `module`."""
        if not rest:
            return MODULE
        for j in range(len(rest), 0, -1):
            sym = ".".join(rest[:j])
            found = self.defs.get((module, sym))
            if found:
                if j == len(rest):
                    return found[0]
                return self.inherited(module, sym, rest[j:], depth) or self.elsewhere(found[0], rest[j:]) or INKB
        for m, t in self.exports.get((module, rest[0]), ()):
            r = self.resolve(m, ".".join([t, *rest[1:]]) if t else ".".join(rest[1:]), depth + 1)
            if isinstance(r, Symbol) or r == MODULE:
                return r
        for m, t in self.stars.get(module, ()):
            r = self.resolve(m, ".".join([t, *rest]) if t else ".".join(rest), depth + 1)
            if isinstance(r, Symbol):
                return r
        return INKB

    def inherited(self, module: str, cls: str, rest: list[str], depth: int) -> Symbol | None:
        """A member `rest` of class `cls` found on its bases (a method it inherits)."""
        for m, t in self.bases.get((module, cls), ()):
            base = self.resolve(m, t, depth + 1)
            if isinstance(base, Symbol):
                found = self.member(base.module, [*base.symbol.split("."), *rest], depth + 1)
                if isinstance(found, Symbol):
                    return found
        return None

    def elsewhere(self, owner: Symbol, rest: list[str]) -> Symbol | None:
        """Rust's methods live in `impl` blocks of any file: `Type.method` defined once in the crate."""
        if owner.language != "rust":
            return None
        same = [s for s in self.by_symbol.get(".".join([owner.symbol, *rest]), []) if s.language == "rust"]
        return same[0] if len(same) == 1 else None

    def aliases(self, s: Symbol) -> set[str]:
        """The names `s` is exported under besides its own (`from .cart import Cart as ShoppingCart`)."""
        if self._aliases is None:
            found: dict[tuple[str, str], set[str]] = {}
            for (_module, alias), targets in list(self.exports.items()):
                for m, t in targets:
                    r = self.resolve(m, t)
                    if isinstance(r, Symbol) and alias != r.symbol.rsplit(".", 1)[-1]:
                        found.setdefault((r.module, r.symbol), set()).add(alias)
            self._aliases = found
        return self._aliases.get((s.module, s.symbol), set())

    def of_file(self, source_id: str, path: str) -> str:
        return self.file_module.get((source_id, path), ("", ""))[0]


_RESOLVERS: dict[tuple[str, str], tuple[int, Resolver]] = {}
_LOCK = threading.Lock()


def resolver(index, kb: str) -> Resolver:
    """The KB's Resolver, made again when the KB changed (its generation moved)."""
    info = index.catalog.kb(kb)
    generation = info.generation if info is not None else -1
    key = (str(index.cfg.catalog_path), kb)
    with _LOCK:
        cached = _RESOLVERS.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
    made = Resolver(index.catalog, kb)
    with _LOCK:
        _RESOLVERS[key] = (generation, made)
    return made


# -- questions --------------------------------------------------------------------------------------------
def graph_kbs(index, kbs: Iterable[str]) -> list[str]:
    """The KBs (of `kbs`) that have a code graph; GraphError when none has."""
    kbs = [kb for kb in dict.fromkeys(kbs) if index.catalog.kb(kb) is not None]
    have = [kb for kb in kbs if index.catalog.get_meta(f"graph:{kb}") == GRAPH_VERSION]
    if kbs and not have:
        names = ", ".join(f"'{kb}'" for kb in kbs)
        off = "" if index.cfg.ingest.graph else " with `[ingest] graph = true`"
        raise GraphError(f"Knowledge base {names} has no code graph yet: run `devcopilot ingest SOURCE --kb "
                         f"{kbs[0]}`{off} to make it (its chunks are not embedded again).")
    if not kbs:
        raise GraphError("Nothing is indexed yet: run `devcopilot ingest SOURCE` first.")
    return have


def clean_name(name: str) -> str:
    return re.sub(r"\(.*\)$", "", name.strip().strip("`").strip()).replace("::", ".").replace("#", ".")


def definitions(index, kbs: Iterable[str], name: str, limit: int = 20, within: Within = None) -> list[Symbol]:
    """Definitions named `name`: a symbol (`Runner.run`), its last part (`run`), or a module-qualified
    name (`agents.run.Runner.run`, or for Python the file's path dotted: `src.agents.run.Runner.run`), in
    the sources `within` allows. Exact symbols first, then library code before tests and examples."""
    name = clean_name(name)
    if not name:
        return []
    dotted = name.replace(":", ".").replace("/", ".")
    last = dotted.rsplit(".", 1)[-1]
    out = []
    for kb in graph_kbs(index, kbs):
        r = resolver(index, kb)
        allowed = _allowed(within, kb)
        for row in index.catalog.db.execute("SELECT module, symbol FROM graph_defs WHERE kb=? AND name=?", (kb, last)):
            for s in r.defs.get((row[0], row[1]), []):
                if allowed is not None and s.source_id not in allowed:
                    continue
                full = s.qualified.replace(":", ".").replace("/", ".")
                # a Python symbol by its file's path too, as imports are resolved (Resolver: namespace packages)
                by_path = f"{python_module(s.path)}.{s.symbol}" if s.language == "python" else full
                named = s.symbol == name or s.symbol.endswith("." + name) or full == dotted or \
                    full.endswith("." + dotted) or by_path == dotted or by_path.endswith("." + dotted)
                if named and s not in out:
                    out.append(s)
    from indexes.side_folders import in_side_folder

    out.sort(key=lambda s: (s.symbol != name and s.qualified != name, in_side_folder(s.path), s.kind == "impl",
                            s.path, s.start_line))
    return out[:limit]


def _allowed(within: Within, kb: str) -> frozenset[str] | None:
    return (within or {}).get(kb)


def _at(r: Resolver, s: Symbol, allowed: frozenset[str] | None, prefer: str = "") -> Symbol | None:
    """`s` as the sources `allowed` (None: all) define it, None when none does. The resolver answers a name two
    versions define with one of them: the definition in `prefer` (the site's own source, its own version) is
    taken, else `s`, else another allowed one."""
    same = [d for d in r.defs.get((s.module, s.symbol), [s]) if allowed is None or d.source_id in allowed]
    return next((d for d in same if d.source_id == prefer), s if s in same else same[0] if same else None)


def _names_for(r: Resolver, wanted: list[Symbol]) -> set[str]:
    """The names references to `wanted` may carry: their own, and the aliases they are exported under."""
    return {s.symbol.rsplit(".", 1)[-1] for s in wanted} | {a for s in wanted for a in r.aliases(s)}


def _sites_to(index, kb: str, wanted: list[Symbol], kinds: tuple[str, ...], unresolved: bool,
              allowed: frozenset[str] | None = None) -> list[Site]:
    """The references in `kb` to any of `wanted` (of `kinds`), in the sources `allowed` (None: all): resolved
    ones, and (with `unresolved`) those matched by name only, flagged."""
    r = resolver(index, kb)
    keys = {(s.module, s.symbol): s for s in wanted if s.kb == kb}
    if not keys:
        return []
    names = _names_for(r, list(keys.values()))
    last = {s.symbol.rsplit(".", 1)[-1] for s in keys.values()}
    members = {s.symbol.rsplit(".", 1)[-1] for s in keys.values() if "." in s.symbol}
    top = {s.symbol for s in keys.values() if "." not in s.symbol}
    marks = ",".join("?" * len(names))
    kind_marks = ",".join("?" * len(kinds))
    out = []
    rows = index.catalog.db.execute(
        f"SELECT source_id, path, line, caller, kind, module, target, qualified FROM graph_refs WHERE kb=? AND "
        f"name IN ({marks}) AND kind IN ({kind_marks}) ORDER BY path, line", (kb, *names, *kinds))
    for sid, path, line, caller, kind, module, target, qualified in rows:
        if allowed is not None and sid not in allowed:
            continue  # another version's code
        if qualified:
            found = r.resolve(module, target)
            if isinstance(found, Symbol):
                if (found.module, found.symbol) in keys:
                    to = _at(r, found, allowed, sid) or keys[(found.module, found.symbol)]
                    out.append(Site(kb, path, line, caller, kind, True, found.qualified, source_id=sid, to=to))
                continue
            if found != INKB or not unresolved:
                continue
        elif not unresolved:
            continue
        name = target.rsplit(".", 1)[-1]
        member_call = target.startswith(".") or (qualified and "." in target)
        if name in last and ((member_call and name in members) or (not member_call and name in top)):
            out.append(Site(kb, path, line, caller, kind, False, (module + ":" if module else "") + target,
                            source_id=sid))
    return out


def references(index, kbs: Iterable[str], name: str, kinds: tuple[str, ...] = ALL_KINDS,
               unresolved: bool = True, limit: int = MAX_SITES, within: Within = None) -> GraphAnswer:
    """Every reference to the symbol `name` (its calls, imports, subclasses, decorator uses, type uses...),
    in the sources `within` allows (the versions chosen)."""
    found = _defined(index, kbs, name, within)
    sites = []
    for kb in dict.fromkeys(s.kb for s in found):
        sites += _sites_to(index, kb, found, kinds, unresolved, _allowed(within, kb))
    return _finish(index, GraphAnswer("references", name, found), sites, limit)


def callers(index, kbs: Iterable[str], name: str, depth: int = 1, unresolved: bool = True,
            limit: int = MAX_SITES, within: Within = None) -> GraphAnswer:
    """Who calls (or subclasses, decorates with, passes on) `name`, and, to `depth`, who calls them:
    what may break if it changes; in the sources `within` allows. Sites at depth > 1 are followed from
    resolved callers only."""
    depth = max(1, min(depth, MAX_DEPTH))
    found = _defined(index, kbs, name, within)
    sites: list[Site] = []
    level, seen = list(found), {s.key for s in found}
    for d in range(1, depth + 1):
        next_level: list[Symbol] = []
        for kb in dict.fromkeys(s.kb for s in level):
            for site in _sites_to(index, kb, level, CALLER_KINDS, unresolved and d == 1, _allowed(within, kb)):
                site.depth = d
                if d > 1:  # the caller of the level before it reaches
                    site.via = site.target
                sites.append(site)
                caller = _caller_symbol(index, site)
                if site.resolved and caller is not None and caller.key not in seen:
                    seen.add(caller.key)
                    next_level.append(caller)
        if not next_level or len(sites) >= limit:
            break
        level = next_level
    return _finish(index, GraphAnswer("callers", name, found), sites, limit)


def callees(index, kbs: Iterable[str], name: str, depth: int = 1, limit: int = MAX_SITES,
            within: Within = None) -> GraphAnswer:
    """What `name` calls (and, to `depth`, what those call): each call site in its code, resolved to the
    definition it calls when the graph knows it, else flagged (external calls are left out); in the
    sources `within` allows, whose definitions are the ones followed."""
    depth = max(1, min(depth, MAX_DEPTH))
    found = _defined(index, kbs, name, within)
    sites: list[Site] = []
    level, seen = list(found), {s.key for s in found}
    for d in range(1, depth + 1):
        next_level: list[Symbol] = []
        for s in level:
            r = resolver(index, s.kb)
            rows = index.catalog.db.execute(
                "SELECT line, caller, kind, module, target, qualified FROM graph_refs WHERE kb=? AND source_id=? AND "
                f"path=? AND (caller=? OR caller LIKE ? ESCAPE '\\') AND kind IN ({','.join('?' * len(CALL_KINDS))}) "
                "ORDER BY line", (s.kb, s.source_id, s.path, s.symbol, _like_prefix(s.symbol), *CALL_KINDS))
            for line, caller, kind, module, target, qualified in rows:
                got = r.resolve(module, target) if qualified else INKB
                if isinstance(got, Symbol):  # followed at the chosen version; defined only at another: unresolved
                    got = _at(r, got, _allowed(within, s.kb), s.source_id) or INKB
                if isinstance(got, Symbol):
                    sites.append(Site(s.kb, s.path, line, caller, kind, True, got.qualified, depth=d,
                                      via=s.symbol if d > 1 else "", source_id=s.source_id, to=got))
                    if got.key not in seen:
                        seen.add(got.key)
                        next_level.append(got)
                elif got == INKB:
                    sites.append(Site(s.kb, s.path, line, caller, kind, False,
                                      (module + ":" if module else "") + target.lstrip("."), depth=d,
                                      via=s.symbol if d > 1 else "", source_id=s.source_id))
        if not next_level or len(sites) >= limit:
            break
        level = next_level
    return _finish(index, GraphAnswer("callees", name, found), sites, limit)


def _like_prefix(symbol: str) -> str:
    return symbol.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"


def _defined(index, kbs: Iterable[str], name: str, within: Within = None) -> list[Symbol]:
    kbs = list(kbs)
    found = definitions(index, kbs, name, within=within)
    if not found and within and (elsewhere := definitions(index, kbs, name)):
        raise GraphError(_not_at_version(index, name, elsewhere, within))
    if not found:
        raise GraphError(f"No definition of '{clean_name(name) or name}' in the code graph of "
                         f"{', '.join(repr(k) for k in graph_kbs(index, kbs))}; give a function, class or method "
                         "name as the code spells it, such as 'Runner.run' or 'run'.")
    exact = [s for s in found if s.symbol == clean_name(name) or s.qualified == clean_name(name)]
    return exact or found


def _not_at_version(index, name: str, elsewhere: list[Symbol], within: Within) -> str:
    """The sentence for a symbol the versions chosen do not define, naming the versions that do."""
    chosen, defining = [], []
    for kb in dict.fromkeys(d.kb for d in elsewhere):
        allowed, sources = _allowed(within, kb) or frozenset(), {d.source_id for d in elsewhere if d.kb == kb}
        for versions in library_versions(index.catalog, kb).values():
            if any(sources & set(v.source_ids) for v in versions):  # a library that defines it, at some version
                chosen += [v.label() for v in versions if allowed & set(v.source_ids)]
                defining += [v.label() for v in versions if sources & set(v.source_ids)]
    at = f" ({', '.join(dict.fromkeys(chosen))})" if chosen else ""
    where = f"; {', '.join(dict.fromkeys(defining))} defines it" if defining else ""
    kbs = ", ".join(repr(k) for k in dict.fromkeys(d.kb for d in elsewhere))
    return (f"'{clean_name(name) or name}' is not defined at the version chosen{at} in the code graph of {kbs}"
            f"{where}: choose that version, or all.")


def _caller_symbol(index, site: Site) -> Symbol | None:
    """The definition a site sits in (its `caller`), to follow it one level up."""
    if not site.caller:
        return None
    r = resolver(index, site.kb)
    for s in r.by_symbol.get(site.caller, []):
        if s.path == site.path and s.source_id == site.source_id and s.start_line <= site.line <= s.end_line:
            return s
    return None


def _finish(index, answer: GraphAnswer, sites: list[Site], limit: int) -> GraphAnswer:
    """The sites, each with its line, its chunk and a link to the line; the definitions' links."""
    unique: dict[tuple, Site] = {}
    for s in sites:
        unique.setdefault((s.kb, s.path, s.line, s.target, s.depth), s)
    # a line that resolves is not listed again as a name match (`c.add(1).add(2)`)
    lines = {(s.kb, s.path, s.line, s.depth) for s in unique.values() if s.resolved}
    sites = [s for s in unique.values() if s.resolved or (s.kb, s.path, s.line, s.depth) not in lines]
    answer.truncated = len(sites) > limit
    answer.sites = sites[:limit]
    cache: dict[tuple, Chunk | None] = {}
    for s in answer.sites:
        chunk = chunk_at(index, s.kb, s.source_id, s.path, s.line, cache)
        if chunk is not None:
            s.chunk = chunk
            lines = chunk.text.split("\n")
            s.text = lines[s.line - chunk.start_line].strip() if 0 <= s.line - chunk.start_line < len(lines) else ""
            s.link = anchored(chunk.link, s.line, s.line)
    for d in answer.definitions:
        chunk = chunk_at(index, d.kb, d.source_id, d.path, d.start_line, cache)
        if chunk is not None:
            answer.links[d.key] = anchored(chunk.link, d.start_line, d.end_line)
    answer.versions = _versions_of(index, answer.definitions)
    answer.unparsed = sum(resolver(index, kb).unparsed for kb in dict.fromkeys(d.kb for d in answer.definitions))
    return answer


def chunk_at(index, kb: str, source_id: str, path: str, line: int, cache: dict | None = None) -> Chunk | None:
    """The code chunk of a file holding `line` (the narrowest, when a class header and a method overlap)."""
    key = (kb, source_id, path, line)
    if cache is not None and key in cache:
        return cache[key]
    # through members: a chunk two versions of a library share is given as this source holds it (its link)
    row = index.catalog.db.execute(f"SELECT {MEMBER_COLS} FROM members m JOIN chunks c ON c.kb=m.kb AND "
                                   "c.id=m.chunk_id WHERE m.kb=? AND m.source_id=? AND c.path=? AND c.kind='code' "
                                   "AND c.start_line<=? AND c.end_line>=? ORDER BY c.end_line - c.start_line LIMIT 1",
                                   (kb, source_id, path, line, line)).fetchone()
    chunk = row_to_chunk(row) if row else None
    if cache is not None:
        cache[key] = chunk
    return chunk


ANCHOR = re.compile(r"#L\d+(?:-L?\d+)?$")


def anchored(link: str, start: int, end: int) -> str:
    """A chunk's link anchored to lines start..end instead (a forge's anchor style kept)."""
    if not link:
        return link
    base = ANCHOR.sub("", link)
    gitlab = link.startswith("http") and "gitlab" in link.split("/")[2].lower()
    return f"{base}#L{start}-{end}" if gitlab else f"{base}#L{start}-L{end}"


# -- as text ------------------------------------------------------------------------------------------------
TITLES = {"references": "References to", "callers": "Callers of", "callees": "Calls made by"}


def _versions_of(index, definitions: list[Symbol]) -> dict[tuple, str]:
    """Each definition's "library version", when its KB holds several versions of that library."""
    out: dict[tuple, str] = {}
    for kb in dict.fromkeys(d.kb for d in definitions):
        label = {sid: v.label() for vs in library_versions(index.catalog, kb).values() if len(vs) > 1
                 for v in vs for sid in v.source_ids}
        out |= {d.key: label[d.source_id] for d in definitions if d.kb == kb and d.source_id in label}
    return out


def describe(answer: GraphAnswer, max_sites: int = 60, links: bool = True) -> str:
    """The answer as plain text: the definition, then the sites grouped by file, each with its line, the
    symbol it sits in, its kind and the code; unresolved ones last, flagged."""
    out = []
    for d in answer.definitions[:3]:
        link = answer.links.get(d.key, "")
        version = f", {answer.versions[d.key]}" if d.key in answer.versions else ""
        out.append(f"{TITLES[answer.question]} {d.qualified} ({d.kind}, {d.path}:{d.start_line}-{d.end_line}, KB "
                   f"{d.kb}{version})" + (f"\n  {link}" if links and link and link != d.path else ""))
    if len(answer.definitions) > 3:
        out.append(f"(and {len(answer.definitions) - 3} more definitions of that name)")
    n_res, n_un = len(answer.resolved), len(answer.unresolved)
    what = "calls" if answer.question == "callees" else "references"
    out.append(f"{n_res} resolved {what}" + (f", {n_un} matched by name only (unresolved)" if n_un else "")
               + (" (more left out)" if answer.truncated else "") + ".")
    if not answer.sites:
        out.append({"callers": "Nothing in the indexed code calls it.",
                    "callees": "It calls nothing the code graph knows of.",
                    "references": "Nothing in the indexed code refers to it."}[answer.question])
    shown = 0
    for flag in (True, False):
        group = [s for s in answer.sites if s.resolved == flag]
        if not group:
            continue
        if not flag:
            out.append("Unresolved (the receiver's type is unknown: matched by name only, may be another "
                       "symbol of that name):")
        files: dict[str, list[Site]] = {}
        for s in sorted(group, key=lambda s: (s.depth, s.path, s.line)):
            files.setdefault(s.path if len({x.kb for x in group}) < 2 else f"{s.kb}:{s.path}", []).append(s)
        for path, sites in files.items():
            if shown >= max_sites:
                break
            out.append(f"{path}")
            for s in sites:
                if shown >= max_sites:
                    break
                shown += 1
                where = f"in {s.caller}" if s.caller else "at module level"
                deep = f" [depth {s.depth}, via {s.via}]" if s.depth > 1 else ""
                target = f" -> {s.target}" if answer.question == "callees" else ""
                out.append(f"  {s.line:>5}  {where}: {s.kind}{target}{deep}  {s.text[:120]}")
                if links and s.link and not s.link.startswith(("/", s.path)):
                    out.append(f"         {s.link}")
    if shown < len(answer.sites):
        out.append(f"({len(answer.sites) - shown} more sites not shown; --json lists them all)")
    if answer.unparsed:
        out.append(f"({answer.unparsed} code files of this knowledge base do not parse and are not in the code graph.)")
    return "\n".join(out)
