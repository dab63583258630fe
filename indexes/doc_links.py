"""Docs and code linked: each doc passage knows the code symbols it names, each code chunk the
passages that name it; and the docs checked against the code (indexes/drift.py).

Worked out at the end of every ingest, from the catalog alone (no file is read again, nothing is
re-embedded), incrementally:

1. **Mentions**: each doc chunk not read before has its names read (ingest/doc_symbols.py), stored
   per chunk; chunks gone are forgotten. Chunk ids derive from their content, so an edited passage is
   a new chunk and only it is read.
2. **Symbol tables**: each source whose code changed (the fingerprint of its code files' hashes moved)
   has its table built again (indexes/api_surface.py: griffe for Python, tree-sitter for the rest).
3. **Links and findings**: for the new doc chunks, or for every doc chunk when a table changed (a name
   may have appeared or gone), the mentions are resolved to code chunks (the links) and checked
   (the findings). All of it is written in one transaction.

A passage is checked against the code of its own version: in a KB holding several versions of a
library, each version's doc passages are linked to and checked against that version's code (with
the newest of each other library: `version_scopes`), a passage two versions share once at each,
its findings naming their version. A KB with one version of each library is one scope, every source.

A KB indexed before this existed gets it all on its next ingest (`devcopilot ingest` with nothing
changed does it). The links are read by `links_of` (both ways) and by the retrieval rule
`linked_code` (indexes/search.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from indexes.api_surface import (
    FOUND,
    TABLE_VERSION,
    Lookup,
    Table,
    files_from_chunks,
    python_table,
    tree_sitter_table,
)
from indexes.catalog import DOCS_TABLES
from indexes.drift import CAMEL, Checker, CodeChunks, FileContext, Passage, in_context, instance_class
from indexes.lexical import tokenize
from indexes.versions import Pin, VersionChoice, library_versions, scope_for
from ingest.doc_symbols import IMPORT, SCOPE_OF, Mention, mentions
from ingest.languages import classify
from ingest.refs_python import python_package

log = logging.getLogger("devcopilot.links")

# Bump when the mentions read from a passage change: every doc chunk is read again.
MENTIONS_VERSION = "5"
# Bump when linking or checking changes: links and findings are worked out again.
CHECKS_VERSION = "4"



@dataclass
class Link:
    doc_id: str
    code_id: str
    symbol: str  # the code symbol, qualified (agents.run.Runner.run)
    how: str  # how the passage names it: ref | code | call | import | name
    line: int  # the doc line that names it


@dataclass
class Refreshed:
    """What one refresh did, for the log and the bench."""
    read: int = 0  # doc chunks whose mentions were read
    tables: int = 0  # sources whose symbol table was built
    checked: int = 0  # doc chunks linked and checked
    links: int = 0
    findings: int = 0
    skipped: int = 0  # files or packages the symbol tables could not read
    worded: set[str] = field(default_factory=set)  # code chunks whose words from the docs changed
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)


def refresh(catalog, kb: str) -> Refreshed:
    """Bring the KB's mentions, symbol tables, links and findings up to date with its chunks."""
    t0 = time.perf_counter()
    db = catalog.db
    done = Refreshed()
    version = f"{MENTIONS_VERSION}/{TABLE_VERSION}/{CHECKS_VERSION}"
    key = f"doc_links:{kb}"
    stored_meta = catalog.get_meta(key)
    stale = stored_meta is None or stored_meta.partition(";")[0] != version
    if stale:
        with catalog.transaction():
            for table in DOCS_TABLES:
                db.execute(f"DELETE FROM {table} WHERE kb=?", (kb,))
    # 1. the mentions of doc chunks read for the first time
    new = db.execute("SELECT c.id, c.text, c.start_line, c.language, c.headings FROM chunks c LEFT JOIN doc_mentions m "
                     "ON m.kb = c.kb AND m.chunk_id = c.id WHERE c.kb=? AND c.kind='doc' AND m.chunk_id IS NULL",
                     (kb,)).fetchall()
    read = [(cid, json.dumps([m.to_json() for m in _mentions_of(text, start, language, headings)]))
            for cid, text, start, language, headings in new]
    done.read = len(read)
    done.timings["mentions"] = time.perf_counter() - t0
    # 2. the symbol tables of sources whose code changed
    t1 = time.perf_counter()
    stored = dict(db.execute("SELECT source_id, fingerprint FROM api_tables WHERE kb=?", (kb,)).fetchall())
    rebuilt: dict[str, tuple[str, Table]] = {}
    rows = catalog.sources(kb)
    sources = [s["id"] for s in rows]
    for src in rows:
        sid, package = src["id"], source_package(src)
        fp = _fingerprint(db, kb, sid, package)
        if stored.get(sid) != fp:
            rebuilt[sid] = (fp, build_table(db, kb, sid, package))
            done.tables += 1
    gone = [sid for sid in stored if sid not in sources]
    done.timings["tables"] = time.perf_counter() - t1
    # The version each doc passage is checked at; when which passages the versions share changed, all again.
    scopes = version_scopes(catalog, kb, sources)
    assigned = _assign_docs(db, kb, scopes) if len(scopes) > 1 else ""
    moved = (stored_meta or "").partition(";")[2] != assigned
    if not read and not rebuilt and not gone and not stale and not moved:
        _forget_gone(catalog, kb)
        done.seconds = time.perf_counter() - t0
        return done
    tables = dict(rebuilt)
    for sid, fp, data in db.execute("SELECT source_id, fingerprint, data FROM api_tables WHERE kb=?", (kb,)):
        if sid in sources and sid not in tables:
            tables[sid] = (fp, Table.from_json(json.loads(zlib.decompress(data))))
    # 3. links and findings: of the new passages, or of all when a table changed
    t2 = time.perf_counter()
    done.skipped = sum(tables[sid][1].skipped for sid in sources if sid in tables)
    everything = bool(rebuilt or gone or stale or moved)
    if everything:
        targets = db.execute("SELECT chunk_id, mentions FROM doc_mentions WHERE kb=?", (kb,)).fetchall() + read
    else:
        targets = read
    links, found = _link_and_check(db, kb, scopes, tables, targets, read)
    findings = [(kb, cid, json.dumps(fs)) for cid, fs in found.items() if fs]
    done.checked, done.links = len(targets), len(links)
    done.findings = sum(len(fs) for fs in found.values())
    done.timings["links"] = time.perf_counter() - t2
    with catalog.transaction():
        db.executemany("INSERT OR REPLACE INTO doc_mentions (kb, chunk_id, mentions) VALUES (?, ?, ?)",
                       [(kb, cid, text) for cid, text in read])
        for sid, (fp, table) in rebuilt.items():
            db.execute("INSERT OR REPLACE INTO api_tables (kb, source_id, fingerprint, data) VALUES (?, ?, ?, ?)",
                       (kb, sid, fp, zlib.compress(json.dumps(table.to_json()).encode())))
        for sid in gone:
            db.execute("DELETE FROM api_tables WHERE kb=? AND source_id=?", (kb, sid))
        if everything:
            db.execute("DELETE FROM doc_links WHERE kb=?", (kb,))
            db.execute("DELETE FROM drift_findings WHERE kb=?", (kb,))
        else:
            for i in range(0, len(targets), 500):
                ids = [cid for cid, _ in targets[i:i + 500]]
                marks = ",".join("?" * len(ids))
                db.execute(f"DELETE FROM doc_links WHERE kb=? AND doc_id IN ({marks})", [kb, *ids])
                db.execute(f"DELETE FROM drift_findings WHERE kb=? AND doc_id IN ({marks})", [kb, *ids])
        db.executemany("INSERT INTO doc_links (kb, doc_id, code_id, symbol, how, line) VALUES (?, ?, ?, ?, ?, ?)",
                       list(links.values()))
        db.executemany("INSERT OR REPLACE INTO drift_findings (kb, doc_id, findings) VALUES (?, ?, ?)", findings)
        catalog.set_meta(key, f"{version};{assigned}" if assigned else version)
    _forget_gone(catalog, kb)
    done.worded = _refresh_words(catalog, kb)
    done.seconds = time.perf_counter() - t0
    return done


def _link_and_check(db, kb: str, scopes: list[VersionScope], tables: dict[str, tuple[str, Table]],
                    targets: list[tuple[str, str]], read: list[tuple[str, str]]) \
        -> tuple[dict[tuple[str, str], tuple], dict[str, list[dict]]]:
    """The links (doc_links rows by (doc, code) chunk) and the findings (doc chunk -> their JSON) of the
    `targets` (doc chunk, mentions), each scope's passages against its code; `read`: those read now."""
    places = _doc_places(db, kb, [cid for cid, _ in targets])
    context_rows = _context_rows(db, kb, [(cid, places.get(cid, ("", ""))[0], text) for cid, text in read])
    links: dict[tuple[str, str], tuple] = {}
    found: dict[str, list[dict]] = {}
    views: dict[frozenset[str], tuple[Lookup, CodeChunks]] = {}
    for scope in scopes:
        mine = targets if scope.docs is None else [t for t in targets if t[0] in scope.docs]
        if not mine:
            continue
        seen = frozenset(scope.sources)  # the newest of each library is also the newest version's scope
        if seen not in views:
            views[seen] = _view(db, kb, tables, scope, whole=len(scopes) == 1)
        lookup, code = views[seen]
        checker = Checker(lookup, code, kb)
        contexts = _contexts(context_rows, scope.docs)
        for cid, text in mine:
            ms = [Mention.from_json(d) for d in json.loads(text)]
            path, link = places.get(cid, ("", ""))
            ms = in_context(ms, contexts.get(path), lookup)
            for ln in link_mentions(lookup, code, cid, ms):
                links.setdefault((ln.doc_id, ln.code_id), (kb, ln.doc_id, ln.code_id, ln.symbol, ln.how, ln.line))
            passage = Passage(cid, path, scope.links.get(cid, link), scope.library, scope.version)
            found.setdefault(cid, []).extend(f.to_json() for f in checker.check(passage, ms))
    return links, found


def _mentions_of(text: str, start: int, language: str, headings: str) -> list[Mention]:
    try:
        return mentions(text, start, language, json.loads(headings or "[]"))
    except Exception as e:  # one passage the reader trips on is skipped, not the ingest
        log.warning("could not read the names of a doc passage: %s: %s", type(e).__name__, e)
        return []


# A code chunk that at most this many doc passages name gains the words of the lines naming it, for the
# lexical index: a question in plain words then reaches the code the docs describe in those words. A
# symbol named everywhere (`Agent`) would gain half the docs' vocabulary and match every question;
# 5 and 10 measured alike on the six question sets, more let the dev set's code questions slip
# (docs/retrieval.md).
WORDS_FROM_AT_MOST = 5


def _refresh_words(catalog, kb: str) -> set[str]:
    """Each code chunk's words from the doc lines naming it, brought up to date; the ids whose words changed."""
    db = catalog.db
    few = {cid for cid, n in db.execute("SELECT code_id, COUNT(DISTINCT doc_id) FROM doc_links WHERE kb=? "
                                        "GROUP BY code_id", (kb,)) if n <= WORDS_FROM_AT_MOST}
    words: dict[str, list[str]] = {}
    rows = db.execute("SELECT l.code_id, l.line, c.start_line, c.text FROM doc_links l JOIN chunks c ON "
                      "c.kb = l.kb AND c.id = l.doc_id WHERE l.kb=? ORDER BY l.code_id, l.doc_id, l.line", (kb,))
    for code_id, line, start, text in rows:
        if code_id not in few:
            continue
        lines = text.split("\n")
        if 0 <= line - start < len(lines):
            # Latin-script words only: a translated page's words would make the code chunk read as CJK text.
            words.setdefault(code_id, []).extend(t for t in tokenize(lines[line - start]) if t[0] < "\u3040")
    new = {cid: " ".join(dict.fromkeys(ws)) for cid, ws in words.items() if ws}
    old = dict(db.execute("SELECT code_id, tokens FROM doc_words WHERE kb=?", (kb,)).fetchall())
    changed = {cid for cid in old.keys() | new.keys() if old.get(cid) != new.get(cid)}
    if changed:
        with catalog.transaction():
            db.execute("DELETE FROM doc_words WHERE kb=?", (kb,))
            db.executemany("INSERT INTO doc_words (kb, code_id, tokens) VALUES (?, ?, ?)",
                           [(kb, cid, t) for cid, t in new.items()])
    live = {cid for (cid,) in db.execute("SELECT id FROM chunks WHERE kb=? AND kind='code'", (kb,))}
    return changed & live


def _forget_gone(catalog, kb: str) -> None:
    """Drop what belongs to doc chunks no longer in the catalog (files changed or removed)."""
    db = catalog.db
    with catalog.transaction():
        for table, column in (("doc_mentions", "chunk_id"), ("doc_links", "doc_id"), ("drift_findings", "doc_id")):
            db.execute(f"DELETE FROM {table} WHERE kb=? AND {column} NOT IN (SELECT id FROM chunks WHERE kb=?)",
                       (kb, kb))


def _context_rows(db, kb: str, fresh: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(doc chunk, its file, its mentions) of the passages whose mentions say something for their whole file
    (a `currentmodule`, an import), with `fresh`: those read now, not stored yet."""
    rows = db.execute("SELECT m.chunk_id, c.path, m.mentions FROM doc_mentions m JOIN chunks c ON c.kb = m.kb AND "
                      "c.id = m.chunk_id WHERE m.kb=? AND (m.mentions LIKE ? OR m.mentions LIKE ?)",
                      (kb, f'%"how": "{SCOPE_OF}"%', f'%"how": "{IMPORT}"%')).fetchall()
    return [*rows, *fresh]


def _contexts(rows: list[tuple[str, str, str]], docs: set[str] | None = None) -> dict[str, FileContext]:
    """doc file -> what it says for all its passages: its `currentmodule` directives, what its Python
    blocks import; of the passages `docs` (one version's) when given, else of all."""
    out: dict[str, FileContext] = {}
    for cid, path, text in rows:
        if docs is not None and cid not in docs:
            continue
        for d in json.loads(text):
            if d["how"] == SCOPE_OF:
                out.setdefault(path, FileContext()).scopes.append((d["line"], d["name"]))
            elif d["how"] == IMPORT and d.get("alias") and d.get("language") == "python":
                out.setdefault(path, FileContext()).imports.setdefault(d["alias"], d["name"])
    for ctx in out.values():
        ctx.scopes = sorted(set(ctx.scopes))
    return out


def _doc_places(db, kb: str, ids: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        q = f"SELECT id, path, link FROM chunks WHERE kb=? AND id IN ({','.join('?' * len(part))})"
        out.update({cid: (path, link) for cid, path, link in db.execute(q, [kb, *part])})
    return out


def source_package(source: dict) -> str:
    """The dotted Python package a folder or git source's root is (`devcopilot ingest src/fw`: its modules are
    `fw.x`), as the code graph names it (ingest/refs_python.py `python_package`); "" for a root that is no
    package, an installed package (its paths are import paths already) or other sources."""
    if source.get("kind") not in ("folder", "git") or not source.get("root"):
        return ""
    return python_package(Path(source["root"]))


def _fingerprint(db, kb: str, sid: str, package: str = "") -> str:
    """What a source's symbol table is made from: its code files and their content hashes, and the package its
    root is (only when it is one, so the tables of the other sources stay as they were made)."""
    h = hashlib.sha256(TABLE_VERSION.encode())
    if package:
        h.update(f"package {package}\n".encode())
    for path, file_hash in db.execute("SELECT path, hash FROM files WHERE kb=? AND source_id=? ORDER BY path",
                                      (kb, sid)):
        kind = classify(path)
        if kind is not None and kind[0] == "code":
            h.update(f"{path}\0{file_hash}\n".encode())
    return h.hexdigest()[:24]


def build_table(db, kb: str, sid: str, package: str = "") -> Table:
    """A source's symbol table, from its code chunks put back together as files; `package`: the Python package
    the source's root is (`source_package`), whose name its modules are read under."""
    # members: the chunks the source holds, those it shares with another version of the library included
    rows = db.execute("SELECT c.path, c.start_line, c.text, c.language FROM members m JOIN chunks c ON c.kb=m.kb AND "
                      "c.id=m.chunk_id WHERE m.kb=? AND m.source_id=? AND c.kind='code' ORDER BY c.path, c.start_line",
                      (kb, sid)).fetchall()
    languages = {path: language for path, _, _, language in rows}
    files = files_from_chunks((path, start, text) for path, start, text, _ in rows)
    for (path,) in db.execute("SELECT path FROM files WHERE kb=? AND source_id=? AND chunks=0", (kb, sid)):
        kind = classify(path)
        if kind is not None and kind[0] == "code":  # an empty file (`__init__.py`) has no chunk, but counts
            files.setdefault(path, "")
            languages.setdefault(path, kind[1])
    py = {p: t for p, t in files.items() if languages.get(p) == "python"}
    other = {p: t for p, t in files.items() if languages.get(p) != "python"}
    table = Table()
    try:
        table = python_table(py, package)
    except Exception as e:  # griffe failing on one source costs its Python symbols, not the ingest
        log.warning("could not read the Python code of a source: %s: %s", type(e).__name__, e)
        table.skipped += 1
    return table.merged(tree_sitter_table(other, languages)) if other else table


# -- versions ------------------------------------------------------------------------------------------

@dataclass
class VersionScope:
    """The code one version's doc passages are linked to and checked against."""
    library: str  # "" for the newest of each library (every source, in a KB with one version of each)
    version: str
    sources: list[str]  # whose code: this version, with the newest of each other library (and the websites)
    own: set[str]  # whose doc passages are checked here
    docs: set[str] | None = None  # those passages (None: every doc chunk of the KB)
    links: dict[str, str] = field(default_factory=dict)  # doc chunk -> its link as this version holds it


def version_scopes(catalog, kb: str, sources: list[str]) -> list[VersionScope]:
    """A KB with one version of each library: one scope, every source. Else the newest of each library (for
    the passages of the sources no other version shares a library with: a website, a library indexed once),
    then each version of each library held at several (indexes/versions.py: `scope_for`, the way a question
    pinning that version is answered)."""
    several = {lib: vs for lib, vs in library_versions(catalog, kb).items() if len(vs) > 1}
    if not several:
        return [VersionScope("", "", sources, set(sources))]
    versioned = {sid for vs in several.values() for v in vs for sid in v.source_ids}
    newest = scope_for(catalog, kb).sources or frozenset(sources)
    out = [VersionScope("", "", [s for s in sources if s in newest], set(sources) - versioned)]
    for lib, vs in several.items():
        for v in vs:
            chosen = scope_for(catalog, kb, VersionChoice((Pin(lib, v.version),))).sources or frozenset(sources)
            out.append(VersionScope(lib, v.version, [s for s in sources if s in chosen], set(v.source_ids)))
    return out


def _assign_docs(db, kb: str, scopes: list[VersionScope]) -> str:
    """Each scope's doc passages (those its own sources hold, with their links there). Returns a fingerprint
    of what decides how an old passage is checked beyond its table: the scopes, and which passages several
    versions share (a passage one version alone holds is new when it changes, and read then)."""
    owner = {sid: scope for scope in scopes for sid in scope.own}
    for scope in scopes:
        scope.docs = set()
    for cid, sid, link in db.execute("SELECT m.chunk_id, m.source_id, m.link FROM members m JOIN chunks c ON "
                                     "c.kb = m.kb AND c.id = m.chunk_id WHERE m.kb=? AND c.kind='doc' ORDER BY "
                                     "m.chunk_id, m.source_id", (kb,)):
        scope = owner.get(sid)
        if scope is not None and cid not in scope.docs:
            scope.docs.add(cid)
            scope.links[cid] = link
    for scope in scopes[1:]:  # a passage a version shares with a website (same place, same text) is the version's
        scopes[0].docs -= scope.docs
    h = hashlib.sha256()
    held: dict[str, list[str]] = {}
    for scope in scopes:
        label = f"{scope.library}\0{scope.version}"
        h.update(f"{label}\0{','.join(scope.sources)}\0{','.join(sorted(scope.own))}\n".encode())
        for cid in scope.docs:
            held.setdefault(cid, []).append(label)
    for cid in sorted(c for c, labels in held.items() if len(labels) > 1):
        h.update(f"{cid}\0{'|'.join(held[cid])}\n".encode())
    return h.hexdigest()[:24]


def _view(db, kb: str, tables: dict[str, tuple[str, Table]], scope: VersionScope, whole: bool) \
        -> tuple[Lookup, CodeChunks]:
    """The symbol table merged over the scope's sources, and the code chunks they hold (`whole`: every code
    chunk of the KB, its one scope)."""
    merged = Table()
    for sid in scope.sources:
        if sid in tables:
            merged = merged.merged(tables[sid][1])
    if whole:
        return Lookup(merged), CodeChunks(db.execute("SELECT id, path, start_line, end_line, symbol, link FROM chunks "
                                                     "WHERE kb=? AND kind='code'", (kb,)))
    rows: dict[str, tuple] = {}
    for sid in scope.sources:  # each chunk as the first of the scope's sources holding it has it (its link)
        for row in db.execute("SELECT c.id, c.path, c.start_line, c.end_line, c.symbol, m.link FROM members m JOIN "
                              "chunks c ON c.kb = m.kb AND c.id = m.chunk_id WHERE m.kb=? AND m.source_id=? AND "
                              "c.kind='code'", (kb, sid)):
            rows.setdefault(row[0], row)
    return Lookup(merged), CodeChunks(rows.values())


# -- links ---------------------------------------------------------------------------------------------

LINKED = ("ref", "code", "call", "import", "name")


def link_mentions(lookup: Lookup, code: CodeChunks, doc_id: str, found: list[Mention]) -> list[Link]:
    """The code chunks the passage's names stand for: a name resolved through the table (a re-export
    to its definition, a method through the base classes); a bare name only when the library defines
    it once; in other languages, a code chunk whose symbol is the name."""
    out: dict[str, Link] = {}
    for m in found:
        if m.how not in LINKED:
            continue
        sym = _symbol_of(lookup, m)
        if sym is None:
            continue
        chunk = code.of(sym)
        if chunk is not None and chunk.id not in out:
            out[chunk.id] = Link(doc_id, chunk.id, sym.path, m.how, m.line)
    return list(out.values())


def _symbol_of(lookup: Lookup, m: Mention):
    name = m.name
    if m.instance:
        made, _, member = name.rpartition(".")
        cls = instance_class(lookup, made, m.awaited)
        res = lookup.resolve(member, head=cls) if cls is not None else None
        return res.symbol if res is not None and res.state == FOUND else None
    if lookup.in_library(name):
        res = lookup.resolve(name)
        return res.symbol if res.state == FOUND else None
    if m.language and m.imported and m.language == "python":
        return None  # imported from another library
    head, _, rest = name.partition(".")
    if m.language not in ("", "python"):
        found = [s for s in lookup.symbols.values() if s.language == m.language or s.language in
                 ("typescript", "tsx", "javascript") and m.language in ("typescript", "tsx", "javascript")]
        same = [s for s in found if s.path == name or s.path.endswith("." + name)]
        return same[0] if len(same) == 1 else None
    sym = lookup.unique(head, ("class", "function")) if (CAMEL.match(head) or "_" in head or rest) else None
    if sym is None:
        return None
    if not rest:
        return sym
    res = lookup.resolve(rest, head=sym)
    return res.symbol if res.state == FOUND else None


def links_of(catalog, kb: str, chunk_id: str) -> list[Link]:
    """The links of a chunk: for a doc chunk, the code it names; for a code chunk, the doc passages
    that name it."""
    rows = catalog.db.execute("SELECT doc_id, code_id, symbol, how, line FROM doc_links WHERE kb=? AND "
                              "(doc_id=? OR code_id=?) ORDER BY line", (kb, chunk_id, chunk_id)).fetchall()
    return [Link(*r) for r in rows]


def linked_code(catalog, kb: str, doc_ids: list[str]) -> dict[str, list[str]]:
    """doc chunk -> the code chunks it links to, for these doc chunks (those with none left out)."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(doc_ids), 500):
        part = doc_ids[i:i + 500]
        q = (f"SELECT doc_id, code_id FROM doc_links WHERE kb=? AND doc_id IN ({','.join('?' * len(part))}) "
             "ORDER BY line")
        for doc_id, code_id in catalog.db.execute(q, [kb, *part]):
            out.setdefault(doc_id, []).append(code_id)
    return out

