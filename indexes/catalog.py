"""The catalog: SQLite source of truth for KBs, sources, the file manifest and chunks.

Vector stores and the lexical index are derived from it: a hit whose chunk is not in the
catalog is dropped, so an interrupted ingest never shows half-written data.

Chunks are stored by content (ingest/chunk.py: the id is the address of the place and the text):
two sources holding the same chunk (two versions of a library, a file unchanged between them)
share one `chunks` row, one vector and one lexical entry. `members` says which sources hold
which chunk, each with its own link (a forge URL at its commit, a path into its release's
folder); a chunk no source holds any more is removed. A `chunks` row's own `source_id` and `link`
are those of the source that wrote it last (what a reader sees when it asks for no source);
asking with `sources` gives each chunk as one of those sources holds it.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.chunk import Chunk
from ingest.release_names import library_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS kbs (
    name TEXT PRIMARY KEY, embed_model TEXT, store TEXT, created_at REAL, indexed_at REAL,
    generation INTEGER DEFAULT 0, dirty INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS sources (
    kb TEXT, id TEXT, spec TEXT, kind TEXT, root TEXT, version TEXT, indexed_at REAL,
    skipped TEXT DEFAULT '{}', PRIMARY KEY (kb, id));
CREATE TABLE IF NOT EXISTS files (
    kb TEXT, source_id TEXT, path TEXT, hash TEXT, chunks INTEGER, PRIMARY KEY (kb, source_id, path));
CREATE TABLE IF NOT EXISTS chunks (
    kb TEXT, id TEXT, source_id TEXT, path TEXT, start_line INTEGER, end_line INTEGER, kind TEXT,
    language TEXT, symbol TEXT, headings TEXT, context TEXT, link TEXT, text TEXT, tokens TEXT,
    PRIMARY KEY (kb, id));
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks (kb, source_id, path);
CREATE INDEX IF NOT EXISTS chunks_by_symbol ON chunks (kb, kind, symbol);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

# The code graph (indexes/graph.py reads it): each code file's definitions and references, keyed like
# the chunks by (kb, source, path) and replaced with them in the same transaction (ingest/references.py
# says what a row holds). `graph_files` lists the files whose graph was made, and whether they parsed.
GRAPH_SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_files (
    kb TEXT, source_id TEXT, path TEXT, language TEXT, module TEXT, parsed INTEGER,
    PRIMARY KEY (kb, source_id, path));
CREATE TABLE IF NOT EXISTS graph_defs (
    kb TEXT, source_id TEXT, path TEXT, language TEXT, module TEXT, symbol TEXT, name TEXT, kind TEXT,
    start_line INTEGER, end_line INTEGER);
CREATE INDEX IF NOT EXISTS graph_defs_by_file ON graph_defs (kb, source_id, path);
CREATE INDEX IF NOT EXISTS graph_defs_by_name ON graph_defs (kb, name);
CREATE TABLE IF NOT EXISTS graph_refs (
    kb TEXT, source_id TEXT, path TEXT, line INTEGER, caller TEXT, kind TEXT, module TEXT, target TEXT,
    name TEXT, qualified INTEGER, alias TEXT);
CREATE INDEX IF NOT EXISTS graph_refs_by_file ON graph_refs (kb, source_id, path);
CREATE INDEX IF NOT EXISTS graph_refs_by_name ON graph_refs (kb, name);
"""
GRAPH_TABLES = ("graph_files", "graph_defs", "graph_refs")
# Which sources hold which chunk, each with its link (chunks are stored once, by content).
MEMBERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    kb TEXT, source_id TEXT, path TEXT, chunk_id TEXT, link TEXT, PRIMARY KEY (kb, source_id, chunk_id));
CREATE INDEX IF NOT EXISTS members_by_chunk ON members (kb, chunk_id);
CREATE INDEX IF NOT EXISTS members_by_file ON members (kb, source_id, path);
"""
# Docs and code linked, and the docs checked against the code (indexes/doc_links.py, indexes/drift.py):
# each doc chunk's mentions, links and findings, and each source's symbol table; all derived from the chunks.
DOCS_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_mentions (kb TEXT, chunk_id TEXT, mentions TEXT, PRIMARY KEY (kb, chunk_id));
CREATE TABLE IF NOT EXISTS api_tables (
    kb TEXT, source_id TEXT, fingerprint TEXT, data BLOB, PRIMARY KEY (kb, source_id));
CREATE TABLE IF NOT EXISTS doc_links (kb TEXT, doc_id TEXT, code_id TEXT, symbol TEXT, how TEXT, line INTEGER);
CREATE INDEX IF NOT EXISTS doc_links_by_doc ON doc_links (kb, doc_id);
CREATE INDEX IF NOT EXISTS doc_links_by_code ON doc_links (kb, code_id);
CREATE TABLE IF NOT EXISTS drift_findings (kb TEXT, doc_id TEXT, findings TEXT, PRIMARY KEY (kb, doc_id));
CREATE TABLE IF NOT EXISTS doc_words (kb TEXT, code_id TEXT, tokens TEXT, PRIMARY KEY (kb, code_id));
"""
DOCS_TABLES = ("doc_mentions", "api_tables", "doc_links", "drift_findings", "doc_words")

# Columns added after the first release: (table, column, type); a catalog made before gets them on open.
ADDED_COLUMNS = [
    ("sources", "ref", "TEXT DEFAULT ''"),  # the git tag (or branch) the commit in `version` was indexed from
    ("sources", "scanned_at", "REAL"),  # when the source was last scanned (an ingest of it began)
    ("sources", "include", "TEXT DEFAULT '[]'"),  # the --include / --exclude globs it is indexed with
    ("sources", "exclude", "TEXT DEFAULT '[]'"),
    # Who added the source: "cli" (the operator: its fetches go where they are told), "api" or "ui" (a
    # door: its re-syncs are fetched under the outbound policy, ingest/outbound.py). Older rows: "cli".
    ("sources", "added_by", "TEXT DEFAULT 'cli'"),
]
# What a source holds and at which version (indexes/versions.py): the library's name, a git source's full
# commit, a release archive's checked hash.
ADDED_COLUMNS += [
    ("sources", "library", "TEXT DEFAULT ''"),
    ("sources", "commit_id", "TEXT DEFAULT ''"),
    ("sources", "digest", "TEXT DEFAULT ''"),
]

CHUNK_COLS = "id, source_id, path, start_line, end_line, kind, language, symbol, headings, context, link, text"
# The same, for a chunk as one source holds it (members m joined with chunks c).
MEMBER_COLS = ("c.id, m.source_id, c.path, c.start_line, c.end_line, c.kind, c.language, c.symbol, c.headings, "
               "c.context, m.link, c.text")


class CatalogError(RuntimeError):
    """The catalog file is unusable; the message says how to rebuild."""


@dataclass
class KBInfo:
    name: str
    embed_model: str
    store: str
    indexed_at: float | None
    generation: int
    dirty: bool


def _marks(ids) -> str:
    return ",".join("?" * len(ids))


def row_to_chunk(row) -> Chunk:
    (cid, source_id, path, start, end, kind, language, symbol, headings, context, link, text) = row
    return Chunk(text=text, path=path, start_line=start, end_line=end, kind=kind, language=language,
                 symbol=symbol or "", headings=json.loads(headings or "[]"), context=context or "",
                 source_id=source_id, link=link, id=cid)


class Catalog:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            self.db.executescript(GRAPH_SCHEMA)
            self.db.executescript(MEMBERS_SCHEMA)
            self.db.executescript(DOCS_SCHEMA)
            self._add_columns()
            self._fill_members()
        except sqlite3.DatabaseError as e:
            raise CatalogError(f"The catalog '{path}' is damaged ({e}); move it aside and run `devcopilot ingest` "
                               "again to rebuild it.") from None

    def _add_columns(self) -> None:
        for table, column, kind in ADDED_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                try:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as e:  # another process added it a moment ago
                    if "duplicate column" not in str(e):
                        raise

    def _fill_members(self) -> None:
        """A catalog made before chunks were shared: each chunk belongs to the source that wrote it."""
        if self.get_meta("members") == "1":
            return
        if self.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None:  # a new catalog: nothing to fill
            self.set_meta("members", "1")
            return
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO members (kb, source_id, path, chunk_id, link) "
                            "SELECT kb, source_id, path, id, link FROM chunks")
            self.set_meta("members", "1")

    # -- transactions ---------------------------------------------------------------
    def transaction(self):
        return _Txn(self.db)

    # -- KBs --------------------------------------------------------------------------
    def kb(self, name: str) -> KBInfo | None:
        r = self.db.execute("SELECT name, embed_model, store, indexed_at, generation, dirty FROM kbs WHERE name=?",
                            (name,)).fetchone()
        return KBInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5])) if r else None

    def kbs(self) -> list[KBInfo]:
        rows = self.db.execute("SELECT name, embed_model, store, indexed_at, generation, dirty FROM kbs ORDER BY name")
        return [KBInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def ensure_kb(self, name: str, embed_model: str, store: str) -> KBInfo:
        self.db.execute("INSERT OR IGNORE INTO kbs (name, embed_model, store, created_at) VALUES (?, ?, ?, ?)",
                        (name, embed_model, store, time.time()))
        return self.kb(name)

    def set_kb(self, name: str, **values) -> None:
        cols = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE kbs SET {cols} WHERE name=?", (*values.values(), name))

    def bump(self, name: str) -> None:
        """A KB's content changed: its generation, and the data dir's write mark, move on."""
        self.db.execute("UPDATE kbs SET generation = generation + 1 WHERE name=?", (name,))
        self.mark_written()

    def mark_written(self) -> None:
        """Count a write to the data dir and say which process made it, so that a process serving from
        the same store knows when another one wrote to it (indexes/search.py reopens the store then)."""
        self.db.execute("INSERT INTO meta VALUES ('writes', '1') ON CONFLICT (key) DO UPDATE SET "
                        "value = CAST(value AS INTEGER) + 1")
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('writer', ?)", (str(os.getpid()),))

    def writing(self, kb: str, active: bool) -> None:
        """Record that this process is (or no longer is) writing `kb`, so that `status` can tell the KB a
        running writer works on from one a killed writer left unfinished."""
        if active:
            self.set_meta(f"writing:{kb}", str(os.getpid()))
        else:
            self.db.execute("DELETE FROM meta WHERE key=?", (f"writing:{kb}",))

    def writer_of(self, kb: str) -> int | None:
        """The pid of the process that last began writing `kb` and has not finished (it may be dead)."""
        value = self.get_meta(f"writing:{kb}")
        return int(value) if value and value.isdigit() else None

    def write_mark(self) -> tuple[str, str]:
        """(number of writes so far, pid of the process that made the last one)."""
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('writes', 'writer')").fetchall())
        return rows.get("writes", "0"), rows.get("writer", "")

    def drop_kb(self, name: str) -> None:
        with self.transaction():
            for table in ("chunks", "files", "sources", "members", *GRAPH_TABLES):
                self.db.execute(f"DELETE FROM {table} WHERE kb=?", (name,))
            for table in DOCS_TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE kb=?", (name,))
            self.db.execute("DELETE FROM meta WHERE key=?", (f"doc_links:{name}",))
            self.db.execute("DELETE FROM kbs WHERE name=?", (name,))
            self.mark_written()

    # -- sources and manifest -------------------------------------------------------------
    def upsert_source(self, kb: str, sid: str, spec: str, kind: str, root: str, version: str, ref: str = "",
                      include: list[str] | None = None, exclude: list[str] | None = None,
                      added_by: str | None = None) -> None:
        """Record a source as its ingest begins: what it is read from now (commit, tag, version), when
        it was scanned, and the globs it is indexed with. `indexed_at` moves only when it finishes.
        `added_by`: who adds it (None: a re-index, which keeps what was recorded; a new row is the
        operator's, "cli"). A door adding a source the operator added leaves it the operator's; the
        operator adding one a door added makes it the operator's."""
        self.db.execute("INSERT INTO sources (kb, id, spec, kind, root, version, ref, scanned_at, include, exclude, "
                        "added_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kb, id) DO UPDATE SET "
                        "root=excluded.root, version=excluded.version, ref=excluded.ref, "
                        "scanned_at=excluded.scanned_at, include=excluded.include, exclude=excluded.exclude, "
                        "added_by=CASE WHEN ? = 'cli' THEN 'cli' ELSE sources.added_by END",
                        (kb, sid, spec, kind, root, version, ref, time.time(), json.dumps(include or []),
                         json.dumps(exclude or []), added_by or "cli", added_by))

    def set_identity(self, kb: str, sid: str, library: str, commit: str = "", digest: str = "") -> None:
        """What the source holds (its library) and exactly what it was read from (commit, archive hash)."""
        self.db.execute("UPDATE sources SET library=?, commit_id=?, digest=? WHERE kb=? AND id=?",
                        (library, commit, digest, kb, sid))

    def finish_source(self, kb: str, sid: str, skipped: dict) -> None:
        self.db.execute("UPDATE sources SET indexed_at=?, skipped=? WHERE kb=? AND id=?",
                        (time.time(), json.dumps(skipped), kb, sid))

    def sources(self, kb: str | None = None) -> list[dict]:
        q = ("SELECT kb, id, spec, kind, root, version, indexed_at, skipped, ref, scanned_at, include, exclude, "
             "added_by, library, commit_id, digest FROM sources")
        rows = self.db.execute(q + (" WHERE kb=?" if kb else "") + " ORDER BY kb, spec", (kb,) if kb else ()).fetchall()
        out = []
        for r in rows:
            files, chunks = self.db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM files WHERE kb=? AND "
                                            "source_id=?", (r[0], r[1])).fetchone()
            out.append({"kb": r[0], "id": r[1], "spec": r[2], "kind": r[3], "root": r[4], "version": r[5],
                        "indexed_at": r[6], "skipped": json.loads(r[7] or "{}"), "files": files, "chunks": chunks,
                        "ref": r[8] or "", "scanned_at": r[9], "include": json.loads(r[10] or "[]"),
                        "exclude": json.loads(r[11] or "[]"), "added_by": r[12] or "cli",
                        # begun and not finished: running now, or interrupted (writer.holder() tells which)
                        "unfinished": r[9] is not None and (r[6] is None or r[9] > r[6]),
                        "library": r[13] or library_of(r[2], r[3], r[4]), "commit": r[14] or "",
                        "digest": r[15] or ""})
        return out

    def source_labels(self, kb: str) -> dict[str, tuple[str, str]]:
        """source id -> (library, version) of the KB's sources."""
        rows = self.db.execute("SELECT id, spec, kind, root, library, version FROM sources WHERE kb=?", (kb,))
        return {sid: (library or library_of(spec, kind, root), version or "")
                for sid, spec, kind, root, library, version in rows}

    def describe(self) -> list[dict]:
        """Every KB with its model, store, counts, last indexing time and sources, as `devcopilot status`
        and the MCP server's `list_knowledge_bases` show them (times are Unix seconds or None), with each
        library's versions (indexes/versions.py)."""
        from indexes.versions import indexed_versions

        out = []
        for info in self.kbs():
            sources = self.sources(info.name)
            out.append({"name": info.name, "embedding_model": info.embed_model, "store": info.store,
                        "files": sum(s["files"] for s in sources), "chunks": self.count_chunks(info.name),
                        "last_indexed": info.indexed_at, "interrupted": info.dirty,
                        "sources": [{"spec": s["spec"], "kind": s["kind"], "version": s["version"],
                                     "files": s["files"], "chunks": s["chunks"], "skipped": s["skipped"],
                                     "last_indexed": s["indexed_at"], "library": s["library"]} for s in sources],
                        "versions": indexed_versions(sources)})
        return out

    def drop_source(self, kb: str, sid: str) -> list[str]:
        """Remove a source, its manifest and what it holds; returns the chunks no other source holds,
        removed with it (their vectors are the caller's to delete)."""
        with self.transaction():
            held = self.chunk_ids_of_source(kb, sid)
            for table in ("members", "files", *GRAPH_TABLES):
                self.db.execute(f"DELETE FROM {table} WHERE kb=? AND source_id=?", (kb, sid))
            self.db.execute("DELETE FROM sources WHERE kb=? AND id=?", (kb, sid))
            gone = self._drop_unheld(kb, held, sid)
            self.mark_written()
        return gone

    def manifest(self, kb: str, sid: str) -> dict[str, str]:
        """path -> content hash of every file indexed for this source."""
        rows = self.db.execute("SELECT path, hash FROM files WHERE kb=? AND source_id=?", (kb, sid))
        return dict(rows.fetchall())

    def file_hash(self, kb: str, sid: str, path: str) -> str | None:
        """The content hash the file had when it was indexed (None when it is not indexed)."""
        r = self.db.execute("SELECT hash FROM files WHERE kb=? AND source_id=? AND path=?", (kb, sid, path)).fetchone()
        return r[0] if r else None

    def reset_manifest(self, kb: str) -> None:
        self.db.execute("UPDATE files SET hash='' WHERE kb=?", (kb,))

    # -- chunks -----------------------------------------------------------------------------
    def chunk_ids_for_file(self, kb: str, sid: str, path: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT chunk_id FROM members WHERE kb=? AND source_id=? AND path=?",
                                              (kb, sid, path))]

    def existing_ids(self, kb: str, ids) -> set[str]:
        """Which of these chunks are stored (another source may hold them already)."""
        ids, out = list(ids), set()
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            out.update(r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE kb=? AND id IN ({_marks(part)})",
                                                     [kb, *part]))
        return out

    def replace_file(self, kb: str, sid: str, path: str, file_hash: str, chunks: list[Chunk],
                     tokens: list[str]) -> tuple[list[str], list[str]]:
        """Within an open transaction: the file's chunks and manifest entry, replaced at once. Returns
        (chunks stored anew, chunks removed): a chunk another source holds already is not stored again,
        and one the file held before is removed only when no other source holds it."""
        old = self.chunk_ids_for_file(kb, sid, path)
        self.db.execute("DELETE FROM members WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))
        had = self.existing_ids(kb, [c.id for c in chunks])
        self.db.executemany(
            "INSERT INTO chunks (kb, id, source_id, path, start_line, end_line, kind, language, symbol, headings, "
            "context, link, text, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kb, id) "
            "DO UPDATE SET source_id=excluded.source_id, link=excluded.link",
            [(kb, c.id, sid, c.path, c.start_line, c.end_line, c.kind, c.language, c.symbol,
              json.dumps(c.headings, ensure_ascii=False), c.context, c.link, c.text, t)
             for c, t in zip(chunks, tokens)])
        self.db.executemany("INSERT OR REPLACE INTO members (kb, source_id, path, chunk_id, link) "
                            "VALUES (?, ?, ?, ?, ?)", [(kb, sid, path, c.id, c.link) for c in chunks])
        self.db.execute("INSERT OR REPLACE INTO files (kb, source_id, path, hash, chunks) VALUES (?, ?, ?, ?, ?)",
                        (kb, sid, path, file_hash, len(chunks)))
        new = {c.id for c in chunks}
        return [c.id for c in chunks if c.id not in had], self._drop_unheld(kb, [i for i in old if i not in new], sid)

    def remove_file(self, kb: str, sid: str, path: str) -> list[str]:
        """Within an open transaction: the file's chunks and manifest entry removed; returns the chunks
        removed (those no other source holds)."""
        old = self.chunk_ids_for_file(kb, sid, path)
        self.db.execute("DELETE FROM members WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))
        self.db.execute("DELETE FROM files WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))
        self.replace_graph(kb, sid, path, None)
        return self._drop_unheld(kb, old, sid)

    def _drop_unheld(self, kb: str, ids: list[str], sid: str) -> list[str]:
        """Of these chunks `sid` no longer holds: remove those no source holds; the others, if `sid` wrote
        them last, are handed to a source that holds them (their source and link). Returns the removed."""
        gone: list[str] = []
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            held = {r[0] for r in self.db.execute(f"SELECT DISTINCT chunk_id FROM members WHERE kb=? AND chunk_id IN "
                                                  f"({_marks(part)})", [kb, *part])}
            unheld = [c for c in part if c not in held]
            if unheld:
                self.db.execute(f"DELETE FROM chunks WHERE kb=? AND id IN ({_marks(unheld)})", [kb, *unheld])
                gone += unheld
            if held:
                self.db.execute(
                    "UPDATE chunks SET (source_id, link) = (SELECT m.source_id, m.link FROM members m WHERE "
                    "m.kb=chunks.kb AND m.chunk_id=chunks.id ORDER BY m.rowid DESC LIMIT 1) "
                    f"WHERE kb=? AND source_id=? AND id IN ({_marks(held)})", [kb, sid, *held])
        return gone

    def chunk_ids(self, kb: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks WHERE kb=?", (kb,))}

    def chunk_ids_of_source(self, kb: str, sid: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT chunk_id FROM members WHERE kb=? AND source_id=?", (kb, sid))]

    def member_ids(self, kb: str, sources) -> set[str]:
        """The chunks any of these sources holds."""
        sources, out = list(sources), set()
        for i in range(0, len(sources), 500):
            part = sources[i:i + 500]
            out.update(r[0] for r in self.db.execute(f"SELECT chunk_id FROM members WHERE kb=? AND source_id IN "
                                                     f"({_marks(part)})", [kb, *part]))
        return out

    def count_chunks(self, kb: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks WHERE kb=?", (kb,)).fetchone()[0]

    def tokens(self, kb: str):
        """(id, kind, tokens) for every chunk of the KB, in a stable order, streamed; a code chunk's with the
        words of the doc lines that name it (indexes/doc_links.py)."""
        return self.db.execute("SELECT c.id, c.kind, c.tokens || COALESCE(' ' || w.tokens, '') FROM chunks c "
                               "LEFT JOIN doc_words w ON w.kb = c.kb AND w.code_id = c.id WHERE c.kb=? "
                               "ORDER BY c.rowid", (kb,))

    def retokenize(self, kb: str, tokenize_chunk, batch: int = 1000) -> int:
        """Recompute the stored lexical tokens of every chunk (after a tokenizer change).

        A batch at a time, so memory does not grow with the KB; the caller records the new
        tokenizer version only when all are done, so an interrupted run starts over."""
        n, last = 0, 0
        while True:
            rows = self.db.execute(f"SELECT rowid, {CHUNK_COLS} FROM chunks WHERE kb=? AND rowid>? ORDER BY rowid "
                                   "LIMIT ?", (kb, last, batch)).fetchall()
            if not rows:
                return n
            with self.transaction():
                self.db.executemany("UPDATE chunks SET tokens=? WHERE rowid=?",
                                    [(tokenize_chunk(row_to_chunk(r[1:])), r[0]) for r in rows])
            last, n = rows[-1][0], n + len(rows)

    def get_meta(self, key: str) -> str | None:
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def tokens_of(self, kb: str, ids: list[str]):
        """(id, kind, tokens) of these chunks, streamed in batches."""
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            yield from self.db.execute(f"SELECT c.id, c.kind, c.tokens || COALESCE(' ' || w.tokens, '') FROM chunks c "
                                       "LEFT JOIN doc_words w ON w.kb = c.kb AND w.code_id = c.id WHERE c.kb=? AND "
                                       f"c.id IN ({','.join('?' * len(part))})", [kb, *part])

    def get_chunks(self, kb: str, ids: list[str], sources=None) -> dict[str, Chunk]:
        """The chunks with these ids (ids not stored are left out), each with its source's library and
        version; with `sources`, each as one of those sources holds it (its source id and link)."""
        out = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            q = f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND id IN ({','.join('?' * len(part))})"
            for row in self.db.execute(q, [kb, *part]):
                out[row[0]] = row_to_chunk(row)
        self._held_by(kb, list(out.values()), sources)
        return out

    def _held_by(self, kb: str, chunks: list[Chunk], sources=None) -> list[Chunk]:
        """The chunks, each one labelled with its source's library and version; with `sources`, a chunk
        written last by another source is given as one of `sources` holds it."""
        if sources is not None:
            off = {c.id: c for c in chunks if c.source_id not in sources}
            ids = list(off)
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                for cid, sid, link in self.db.execute(f"SELECT chunk_id, source_id, link FROM members WHERE kb=? AND "
                                                      f"chunk_id IN ({_marks(part)})", [kb, *part]):
                    if sid in sources and off[cid].source_id not in sources:
                        off[cid].source_id, off[cid].link = sid, link
        labels = self.source_labels(kb) if chunks else {}
        for c in chunks:
            c.library, c.version = labels.get(c.source_id, ("", ""))
        return chunks

    def _within(self, sources) -> tuple[str, list]:
        """An SQL condition on `chunks` (and its parameters) keeping the chunks one of `sources` holds."""
        if sources is None:
            return "", []
        sources = list(sources)
        return (f" AND id IN (SELECT chunk_id FROM members WHERE members.kb=chunks.kb AND source_id IN "
                f"({_marks(sources)}))", sources)

    def code_symbols(self, kb: str):
        """The distinct qualified names of the KB's code chunks."""
        return (sym for (sym,) in self.db.execute(
            "SELECT DISTINCT symbol FROM chunks WHERE kb=? AND kind='code' AND symbol != ''", (kb,)))

    def definition(self, kb: str, symbol: str, sources=None) -> Chunk | None:
        """The first chunk of the code chunks named exactly `symbol` (a class's header, a function's start);
        with `sources`, of the chunks those sources hold."""
        within, params = self._within(sources)
        row = self.db.execute(f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND kind='code' AND symbol=?{within} "
                              "ORDER BY path, start_line LIMIT 1", (kb, symbol, *params)).fetchone()
        return self._held_by(kb, [row_to_chunk(row)], sources)[0] if row else None

    def symbol_chunks(self, kb: str, name: str, limit: int = 8, sources=None) -> list[Chunk]:
        """Code chunks whose symbol is `name` or ends with `.name` (a method named without its class);
        with `sources`, of the chunks those sources hold."""
        like = "%." + name.replace("%", "").replace("_", "\\_")
        within, params = self._within(sources)
        rows = self.db.execute(f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND kind='code' "
                               f"AND (symbol=? OR symbol LIKE ? ESCAPE '\\'){within} ORDER BY path, start_line LIMIT ?",
                               (kb, name, like, *params, limit))
        return self._held_by(kb, [row_to_chunk(r) for r in rows], sources)

    def doc_titles(self, kb: str):
        """(id, path, headings) of the KB's doc chunks: what a page's kind is read from (indexes/page_kind.py)."""
        for cid, path, headings in self.db.execute("SELECT id, path, headings FROM chunks WHERE kb=? AND kind='doc'",
                                                   (kb,)):
            yield cid, path, json.loads(headings or "[]")

    def file_chunks(self, kb: str, path: str) -> list[Chunk]:
        """The chunks of the file at `path`, once for each source that holds them (as that source does)."""
        q = (f"SELECT {MEMBER_COLS} FROM members m JOIN chunks c ON c.kb=m.kb AND c.id=m.chunk_id "
             "WHERE m.kb=? AND m.path=? ORDER BY c.start_line, m.source_id")
        return self._held_by(kb, [row_to_chunk(r) for r in self.db.execute(q, (kb, path))])

    # -- the code graph (indexes/graph.py) -------------------------------------------------------------
    def replace_graph(self, kb: str, sid: str, path: str, graph) -> None:
        """Within an open transaction: a file's graph (an ingest.references.FileGraph) replaces what was
        there; None removes it (the file is gone, is no longer code, or the graph is off)."""
        for table in GRAPH_TABLES:
            self.db.execute(f"DELETE FROM {table} WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))
        if graph is None:
            return
        self.db.execute("INSERT INTO graph_files VALUES (?, ?, ?, ?, ?, ?)",
                        (kb, sid, path, graph.language, graph.module, int(graph.parsed)))
        self.db.executemany("INSERT INTO graph_defs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(kb, sid, path, graph.language, graph.module, d.symbol, d.symbol.rsplit(".", 1)[-1],
                              d.kind, d.start_line, d.end_line) for d in graph.defs])
        self.db.executemany("INSERT INTO graph_refs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [(kb, sid, path, r.line, r.caller, r.kind, r.module, r.target, r.name, int(r.qualified),
                              r.alias) for r in graph.refs])

    def drop_graph(self, kb: str) -> None:
        """The KB's whole code graph, removed (the graph is turned off)."""
        with self.transaction():
            for table in GRAPH_TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE kb=?", (kb,))

    def graph_counts(self, kb: str) -> dict[str, int]:
        """Files with a graph, those that did not parse, definitions and references of the KB."""
        files, unparsed = self.db.execute("SELECT COUNT(*), COALESCE(SUM(parsed = 0), 0) FROM graph_files "
                                          "WHERE kb=?", (kb,)).fetchone()
        defs = self.db.execute("SELECT COUNT(*) FROM graph_defs WHERE kb=?", (kb,)).fetchone()[0]
        refs = self.db.execute("SELECT COUNT(*) FROM graph_refs WHERE kb=?", (kb,)).fetchone()[0]
        return {"files": files, "unparsed": unparsed, "definitions": defs, "references": refs}

    def close(self) -> None:
        self.db.close()


class _Txn:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
