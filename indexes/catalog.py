"""The catalog: SQLite source of truth for KBs, sources, the file manifest and chunks.

Vector stores and the lexical index are derived from it: a hit whose chunk is not in the
catalog is dropped, so an interrupted ingest never shows half-written data.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.chunk import Chunk

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
]

CHUNK_COLS = "id, source_id, path, start_line, end_line, kind, language, symbol, headings, context, link, text"


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
            self.db.executescript(DOCS_SCHEMA)
            self._add_columns()
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
            for table in ("chunks", "files", "sources"):
                self.db.execute(f"DELETE FROM {table} WHERE kb=?", (name,))
            for table in DOCS_TABLES:
                self.db.execute(f"DELETE FROM {table} WHERE kb=?", (name,))
            self.db.execute("DELETE FROM meta WHERE key=?", (f"doc_links:{name}",))
            self.db.execute("DELETE FROM kbs WHERE name=?", (name,))
            self.mark_written()

    # -- sources and manifest -------------------------------------------------------------
    def upsert_source(self, kb: str, sid: str, spec: str, kind: str, root: str, version: str, ref: str = "",
                      include: list[str] | None = None, exclude: list[str] | None = None) -> None:
        """Record a source as its ingest begins: what it is read from now (commit, tag, version), when
        it was scanned, and the globs it is indexed with. `indexed_at` moves only when it finishes."""
        self.db.execute("INSERT INTO sources (kb, id, spec, kind, root, version, ref, scanned_at, include, exclude) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kb, id) DO UPDATE SET root=excluded.root, "
                        "version=excluded.version, ref=excluded.ref, scanned_at=excluded.scanned_at, "
                        "include=excluded.include, exclude=excluded.exclude",
                        (kb, sid, spec, kind, root, version, ref, time.time(), json.dumps(include or []),
                         json.dumps(exclude or [])))

    def finish_source(self, kb: str, sid: str, skipped: dict) -> None:
        self.db.execute("UPDATE sources SET indexed_at=?, skipped=? WHERE kb=? AND id=?",
                        (time.time(), json.dumps(skipped), kb, sid))

    def sources(self, kb: str | None = None) -> list[dict]:
        q = ("SELECT kb, id, spec, kind, root, version, indexed_at, skipped, ref, scanned_at, include, exclude "
             "FROM sources")
        rows = self.db.execute(q + (" WHERE kb=?" if kb else "") + " ORDER BY kb, spec", (kb,) if kb else ()).fetchall()
        out = []
        for r in rows:
            files, chunks = self.db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM files WHERE kb=? AND "
                                            "source_id=?", (r[0], r[1])).fetchone()
            out.append({"kb": r[0], "id": r[1], "spec": r[2], "kind": r[3], "root": r[4], "version": r[5],
                        "indexed_at": r[6], "skipped": json.loads(r[7] or "{}"), "files": files, "chunks": chunks,
                        "ref": r[8] or "", "scanned_at": r[9], "include": json.loads(r[10] or "[]"),
                        "exclude": json.loads(r[11] or "[]"),
                        # begun and not finished: running now, or interrupted (writer.holder() tells which)
                        "unfinished": r[9] is not None and (r[6] is None or r[9] > r[6])})
        return out

    def describe(self) -> list[dict]:
        """Every KB with its model, store, counts, last indexing time and sources, as `devcopilot status`
        and the MCP server's `list_knowledge_bases` show them (times are Unix seconds or None)."""
        out = []
        for info in self.kbs():
            sources = self.sources(info.name)
            out.append({"name": info.name, "embedding_model": info.embed_model, "store": info.store,
                        "files": sum(s["files"] for s in sources), "chunks": self.count_chunks(info.name),
                        "last_indexed": info.indexed_at, "interrupted": info.dirty,
                        "sources": [{"spec": s["spec"], "kind": s["kind"], "version": s["version"],
                                     "files": s["files"], "chunks": s["chunks"], "skipped": s["skipped"],
                                     "last_indexed": s["indexed_at"]} for s in sources]})
        return out

    def drop_source(self, kb: str, sid: str) -> None:
        with self.transaction():
            for table in ("chunks", "files"):
                self.db.execute(f"DELETE FROM {table} WHERE kb=? AND source_id=?", (kb, sid))
            self.db.execute("DELETE FROM sources WHERE kb=? AND id=?", (kb, sid))
            self.mark_written()

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
        return [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE kb=? AND source_id=? AND path=?",
                                              (kb, sid, path))]

    def replace_file(self, kb: str, sid: str, path: str, file_hash: str, chunks: list[Chunk],
                     tokens: list[str]) -> None:
        """Within an open transaction: the file's chunks and manifest entry, replaced at once."""
        self.db.execute("DELETE FROM chunks WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))
        self.db.executemany(
            "INSERT OR REPLACE INTO chunks (kb, id, source_id, path, start_line, end_line, kind, language, symbol, "
            "headings, context, link, text, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(kb, c.id, sid, c.path, c.start_line, c.end_line, c.kind, c.language, c.symbol,
              json.dumps(c.headings, ensure_ascii=False), c.context, c.link, c.text, t)
             for c, t in zip(chunks, tokens)])
        self.db.execute("INSERT OR REPLACE INTO files (kb, source_id, path, hash, chunks) VALUES (?, ?, ?, ?, ?)",
                        (kb, sid, path, file_hash, len(chunks)))

    def remove_file(self, kb: str, sid: str, path: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))
        self.db.execute("DELETE FROM files WHERE kb=? AND source_id=? AND path=?", (kb, sid, path))

    def chunk_ids(self, kb: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks WHERE kb=?", (kb,))}

    def chunk_ids_of_source(self, kb: str, sid: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE kb=? AND source_id=?", (kb, sid))]

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

    def get_chunks(self, kb: str, ids: list[str]) -> dict[str, Chunk]:
        out = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            q = f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND id IN ({','.join('?' * len(part))})"
            for row in self.db.execute(q, [kb, *part]):
                out[row[0]] = row_to_chunk(row)
        return out

    def code_symbols(self, kb: str):
        """The distinct qualified names of the KB's code chunks."""
        return (sym for (sym,) in self.db.execute(
            "SELECT DISTINCT symbol FROM chunks WHERE kb=? AND kind='code' AND symbol != ''", (kb,)))

    def definition(self, kb: str, symbol: str) -> Chunk | None:
        """The first chunk of the code chunks named exactly `symbol` (a class's header, a function's start)."""
        row = self.db.execute(f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND kind='code' AND symbol=? "
                              "ORDER BY path, start_line LIMIT 1", (kb, symbol)).fetchone()
        return row_to_chunk(row) if row else None

    def symbol_chunks(self, kb: str, name: str, limit: int = 8) -> list[Chunk]:
        """Code chunks whose symbol is `name` or ends with `.name` (a method named without its class)."""
        like = "%." + name.replace("%", "").replace("_", "\\_")
        rows = self.db.execute(f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND kind='code' "
                               "AND (symbol=? OR symbol LIKE ? ESCAPE '\\') ORDER BY path, start_line LIMIT ?",
                               (kb, name, like, limit))
        return [row_to_chunk(r) for r in rows]

    def file_chunks(self, kb: str, path: str) -> list[Chunk]:
        q = f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? AND path=? ORDER BY start_line"
        return [row_to_chunk(r) for r in self.db.execute(q, (kb, path))]

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
