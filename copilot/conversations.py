"""Conversations, messages, their sources and feedback, in SQLite in the data dir.

No secrets are stored: no keys or config, and anything in a message that looks like an API
key or a bearer token is masked before it is written.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from copilot.events import Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, created_at REAL, title TEXT);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, conversation_id TEXT, seq INTEGER, role TEXT, assistant TEXT, content TEXT,
    model TEXT, created_at REAL);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, seq);
CREATE TABLE IF NOT EXISTS sources (
    message_id TEXT, n INTEGER, path TEXT, start_line INTEGER, end_line INTEGER, title TEXT, link TEXT,
    kind TEXT, language TEXT, excerpt TEXT, PRIMARY KEY (message_id, n));
CREATE TABLE IF NOT EXISTS feedback (
    message_id TEXT PRIMARY KEY, up INTEGER, comment TEXT, created_at REAL);
"""

SECRET = re.compile(r"\b(sk-[A-Za-z0-9_\-]{12,}|sk-ant-[A-Za-z0-9_\-]{12,}|(?i:bearer)\s+[A-Za-z0-9_\-\.=]{12,}"
                    r"|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})")


def scrub(text: str) -> str:
    return SECRET.sub("[secret removed]", text)


class ConversationError(ValueError):
    """e.g. feedback on a message that does not exist; one clear sentence."""


class Conversations:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across crashes of the process, and fast
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def new(self, title: str = "") -> str:
        cid = uuid.uuid4().hex
        with self._lock:
            self.db.execute("INSERT INTO conversations VALUES (?, ?, ?)", (cid, time.time(), scrub(title)[:200]))
        return cid

    def exists(self, cid: str) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM conversations WHERE id=?", (cid,)).fetchone() is not None

    def add(self, cid: str, role: str, content: str, assistant: str = "", sources: list[Source] | None = None,
            model: str = "", message_id: str | None = None) -> str:
        mid = message_id or uuid.uuid4().hex
        with self._lock:
            # IMMEDIATE: the write lock is taken before seq is read, so two processes (`serve --workers`)
            # adding to one conversation queue up instead of one failing on a stale read.
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if self.db.execute("SELECT 1 FROM conversations WHERE id=?", (cid,)).fetchone() is None:
                    self.db.execute("INSERT INTO conversations VALUES (?, ?, ?)",
                                    (cid, time.time(), scrub(content)[:200] if role == "user" else ""))
                seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id=?",
                                      (cid,)).fetchone()[0]
                self.db.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (mid, cid, seq, role, assistant, scrub(content), model, time.time()))
                self.db.executemany(
                    "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(mid, s.n, s.path, s.start_line, s.end_line, s.title, s.link, s.kind, s.language,
                      scrub(s.excerpt)) for s in sources or []])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return mid

    def messages(self, cid: str) -> list[dict]:
        with self._lock:
            rows = self.db.execute("SELECT id, role, assistant, content, model FROM messages WHERE conversation_id=? "
                                   "ORDER BY seq", (cid,)).fetchall()
            src: dict[str, list[Source]] = {}
            for r in self.db.execute(
                    "SELECT s.message_id, n, path, start_line, end_line, title, link, kind, language, excerpt "
                    "FROM sources s JOIN messages m ON m.id = s.message_id WHERE m.conversation_id=? ORDER BY n",
                    (cid,)):
                src.setdefault(r[0], []).append(Source(*r[1:]))
        return [{"role": r[1], "assistant": r[2], "content": r[3], "sources": src.get(r[0], []),
                 "message_id": r[0], "model": r[4]} for r in rows]

    def feedback(self, message_id: str, up: bool, comment: str = "") -> None:
        with self._lock:
            if self.db.execute("SELECT 1 FROM messages WHERE id=?", (message_id,)).fetchone() is None:
                raise ConversationError(f"There is no message '{message_id[:40]}' to give feedback on.")
            self.db.execute("INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?)",
                            (message_id, int(bool(up)), scrub(comment)[:2000], time.time()))

    def get_feedback(self, message_id: str) -> dict | None:
        with self._lock:
            r = self.db.execute("SELECT up, comment, created_at FROM feedback WHERE message_id=?",
                                (message_id,)).fetchone()
        return {"up": bool(r[0]), "comment": r[1], "created_at": r[2]} if r else None

    def feedback_counts(self) -> dict:
        with self._lock:
            up, down = self.db.execute("SELECT COALESCE(SUM(up), 0), COALESCE(SUM(1 - up), 0) FROM feedback").fetchone()
        return {"up": up, "down": down}

    def export(self, cid: str) -> str:
        return json.dumps(self.messages(cid), default=lambda o: o.__dict__, ensure_ascii=False)

    def close(self) -> None:
        self.db.close()
