"""Conversations, messages, their sources and feedback: in SQLite in the data dir, or in a PostgreSQL
database that several servers share (`[server] database_url`).

No secrets are stored: no keys or config, and anything in a message that looks like an API
key or a bearer token is masked before it is written.
"""
from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from copilot.database import Database
from copilot.events import Source

# Written for both databases; DOUBLE PRECISION for times (PostgreSQL's REAL keeps 6 digits, too few for a Unix time).
SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, created_at DOUBLE PRECISION, title TEXT, owner TEXT DEFAULT '', origin TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, conversation_id TEXT, seq INTEGER, role TEXT, assistant TEXT, content TEXT,
    model TEXT, created_at DOUBLE PRECISION, outcome TEXT DEFAULT '');
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, seq);
CREATE TABLE IF NOT EXISTS sources (
    message_id TEXT, n INTEGER, path TEXT, start_line INTEGER, end_line INTEGER, title TEXT, link TEXT,
    kind TEXT, language TEXT, excerpt TEXT, kb TEXT DEFAULT '', PRIMARY KEY (message_id, n));
CREATE TABLE IF NOT EXISTS feedback (
    message_id TEXT PRIMARY KEY, up INTEGER, comment TEXT, created_at DOUBLE PRECISION);
"""
# Columns added after the first release: (table, column, declaration). Older files get them on open.
ADDED_COLUMNS = [("conversations", "owner", "TEXT DEFAULT ''"), ("conversations", "origin", "TEXT DEFAULT ''"),
                 ("messages", "outcome", "TEXT DEFAULT ''"), ("sources", "kb", "TEXT DEFAULT ''")]

# What an answer was, recorded with it (the Usage tab counts them; "I don't know" feeds the coverage gaps).
OUTCOMES = ("model", "offline", "dont_know", "guide", "missing", "down")

SECRET = re.compile(r"\b(sk-[A-Za-z0-9_\-]{12,}|sk-ant-[A-Za-z0-9_\-]{12,}|(?i:bearer)\s+[A-Za-z0-9_\-\.=]{12,}"
                    r"|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})")


def scrub(text: str) -> str:
    return SECRET.sub("[secret removed]", text)


def question_key(text: str) -> str:
    """A question's words, for counting the same question asked twice as one."""
    return " ".join(text.lower().split()).rstrip(" ?!.。？！")


def local_day(quarter_hour: float) -> str:
    """The local date of a quarter hour since 1970 (Database.quarter_hour)."""
    return time.strftime("%Y-%m-%d", time.localtime(quarter_hour * 900))


def gaps_csv(gaps: list[dict]) -> str:
    """Coverage gaps (Conversations.gaps) as CSV, for a spreadsheet or an issue tracker."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["question", "asked", "dont_know", "thumbs_down", "last_asked"])
    for g in gaps:
        w.writerow([g["question"], g["asked"], g["dont_know"], g["thumbs_down"], g["last_asked"]])
    return out.getvalue()


def open_conversations(cfg) -> Conversations:
    """The store the configuration names: the PostgreSQL database at `server.database_url`, else SQLite
    in the data dir."""
    return Conversations(cfg.server.database_url or cfg.data_dir / "conversations.sqlite")


def _owned(conversation: str, owner: str | None) -> tuple[str, tuple]:
    """(SQL condition, its arguments): the conversation `conversation` names is `owner`'s; any, for None."""
    if owner is None:
        return "1 = 1", ()
    return f"{conversation} IN (SELECT id FROM conversations WHERE COALESCE(owner, '') = ?)", (owner,)


class ConversationError(ValueError):
    """e.g. feedback on a message that does not exist; one clear sentence."""


class Conversations:
    """The store. `where` is a SQLite file, or a PostgreSQL URL (`[server] database_url`) that several
    servers share; both behave the same (copilot/database.py holds their few differences)."""

    def __init__(self, where: Path | str):
        self.db = Database(where, SCHEMA, ADDED_COLUMNS)
        self.db.connect()  # here, so a server that cannot be reached is said at start-up

    def new(self, title: str = "", owner: str = "", origin: str = "",
            messages: Sequence[tuple[str, str, str]] = ()) -> str:
        """A new conversation; `owner` is the signed-in user (empty without --auth), `origin` the door
        it came through ("web", "api", "cli"): the web UI lists its own. `messages` ((role, content,
        assistant)) seed it, in the same transaction (an API request brings its whole history)."""
        cid = uuid.uuid4().hex

        def write(tx: Database) -> None:
            tx.all("INSERT INTO conversations (id, created_at, title, owner, origin) VALUES (?, ?, ?, ?, ?)",
                   (cid, time.time(), scrub(title)[:200], owner, origin))
            for role, content, assistant in messages:
                self._add(tx, cid, role, content, assistant)

        self.db.write(write)
        return cid

    def exists(self, cid: str) -> bool:
        return self.db.one("SELECT 1 FROM conversations WHERE id=?", (cid,)) is not None

    def add(self, cid: str, role: str, content: str, assistant: str = "", sources: list[Source] | None = None,
            model: str = "", message_id: str | None = None, outcome: str = "") -> str:
        # Writers of one conversation (threads, `serve --workers`, replicas) queue up on it, so each
        # reads the last seq after the previous one wrote it.
        def write(tx: Database) -> str:
            tx.all("INSERT INTO conversations (id, created_at, title) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
                   (cid, time.time(), ""))
            tx.lock_row("conversations", "id", cid)
            return self._add(tx, cid, role, content, assistant, sources, model, message_id, outcome)

        return self.db.write(write)

    @staticmethod
    def _add(tx: Database, cid: str, role: str, content: str, assistant: str = "", sources: list[Source] | None = None,
             model: str = "", message_id: str | None = None, outcome: str = "") -> str:
        """Inside a transaction holding the conversation's row: one message, after the last."""
        mid = message_id or uuid.uuid4().hex
        title = " ".join(scrub(content).split())[:200] if role == "user" else ""
        if title:  # titled by its first question
            tx.all("UPDATE conversations SET title=? WHERE id=? AND COALESCE(title, '')=''", (title, cid))
        seq = tx.one("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id=?", (cid,))[0]
        tx.all("INSERT INTO messages (id, conversation_id, seq, role, assistant, content, model, created_at, "
               "outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (mid, cid, seq, role, assistant, scrub(content), model, time.time(), outcome))
        tx.many("INSERT INTO sources (message_id, n, path, start_line, end_line, title, link, kind, language, "
                "excerpt, kb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id, n) DO UPDATE SET "
                "path=excluded.path, start_line=excluded.start_line, end_line=excluded.end_line, "
                "title=excluded.title, link=excluded.link, kind=excluded.kind, language=excluded.language, "
                "excerpt=excluded.excerpt, kb=excluded.kb",
                [(mid, s.n, s.path, s.start_line, s.end_line, s.title, s.link, s.kind, s.language,
                  scrub(s.excerpt), s.kb) for s in sources or []])
        return mid

    def messages(self, cid: str) -> list[dict]:
        with self.db.lock:  # both reads see the same conversation
            rows = self.db.all("SELECT id, role, assistant, content, model, outcome FROM messages "
                               "WHERE conversation_id=? ORDER BY seq", (cid,))
            src: dict[str, list[Source]] = {}
            for r in self.db.all(
                    "SELECT s.message_id, n, path, start_line, end_line, title, link, kind, language, excerpt, "
                    "s.kb "
                    "FROM sources s JOIN messages m ON m.id = s.message_id WHERE m.conversation_id=? ORDER BY n",
                    (cid,)):
                src.setdefault(r[0], []).append(Source(*r[1:]))
        return [{"role": r[1], "assistant": r[2], "content": r[3], "sources": src.get(r[0], []),
                 "message_id": r[0], "model": r[4], "outcome": r[5] or ""} for r in rows]

    def listing(self, owner: str = "", origin: str = "web", limit: int = 100) -> list[dict]:
        """The owner's conversations that hold a message, newest activity first: id, title, updated_at."""
        rows = self.db.all(
            "SELECT c.id, COALESCE(c.title, ''), MAX(m.created_at) AS last_at FROM conversations c "
            "JOIN messages m ON m.conversation_id = c.id WHERE COALESCE(c.owner, '')=? AND "
            "COALESCE(c.origin, '')=? GROUP BY c.id ORDER BY last_at DESC LIMIT ?", (owner, origin, limit))
        return [{"id": r[0], "title": r[1] or "(untitled)", "updated_at": r[2]} for r in rows]

    def owner_of(self, cid: str) -> str | None:
        """The conversation's owner ("" for none), or None when there is no such conversation."""
        r = self.db.one("SELECT COALESCE(owner, '') FROM conversations WHERE id=?", (cid,))
        return r[0] if r else None

    def delete(self, cid: str) -> None:
        """The conversation, its messages, their sources and feedback, gone."""
        with self.db.transaction() as tx:
            tx.lock_row("conversations", "id", cid)  # a message being added to it lands first, then goes too
            ids = "SELECT id FROM messages WHERE conversation_id=?"
            tx.all(f"DELETE FROM sources WHERE message_id IN ({ids})", (cid,))
            tx.all(f"DELETE FROM feedback WHERE message_id IN ({ids})", (cid,))
            tx.all("DELETE FROM messages WHERE conversation_id=?", (cid,))
            tx.all("DELETE FROM conversations WHERE id=?", (cid,))

    def feedback(self, message_id: str, up: bool, comment: str = "") -> None:
        if self.db.one("SELECT 1 FROM messages WHERE id=?", (message_id,)) is None:
            raise ConversationError(f"There is no message '{message_id[:40]}' to give feedback on.")
        self.db.all("INSERT INTO feedback (message_id, up, comment, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (message_id) DO UPDATE SET up=excluded.up, comment=excluded.comment, "
                    "created_at=excluded.created_at",
                    (message_id, int(bool(up)), scrub(comment)[:2000], time.time()))

    def get_feedback(self, message_id: str) -> dict | None:
        r = self.db.one("SELECT up, comment, created_at FROM feedback WHERE message_id=?", (message_id,))
        return {"up": bool(r[0]), "comment": r[1], "created_at": r[2]} if r else None

    def feedback_counts(self, owner: str | None = None) -> dict:
        """Thumbs up and down, on every conversation or on `owner`'s."""
        mine, args = _owned("(SELECT conversation_id FROM messages WHERE id = feedback.message_id)", owner)
        up, down = self.db.one(f"SELECT COALESCE(SUM(up), 0), COALESCE(SUM(1 - up), 0) FROM feedback WHERE {mine}",
                               args)
        return {"up": int(up), "down": int(down)}

    def gaps(self, limit: int = 50, owner: str | None = None) -> list[dict]:
        """Coverage gaps: the questions most often answered "I don't know" or given a thumbs-down, with
        how often each was asked so, each reason's count and when it was last asked. Questions are
        grouped by their words (case, spacing and end punctuation aside); the latest wording is shown.
        Every conversation's, or `owner`'s only (a signed-in user sees their own questions)."""
        mine, args = _owned("m.conversation_id", owner)
        rows = self.db.all(
            "SELECT u.id, u.content, u.created_at, m.outcome = 'dont_know', COALESCE(f.up, 1) = 0 "
            "FROM messages m LEFT JOIN feedback f ON f.message_id = m.id "
            "JOIN messages u ON u.conversation_id = m.conversation_id AND u.role = 'user' AND u.seq = ("
            "  SELECT MAX(seq) FROM messages p WHERE p.conversation_id = m.conversation_id AND p.role = 'user' "
            "  AND p.seq < m.seq) "
            f"WHERE m.role = 'assistant' AND (m.outcome = 'dont_know' OR f.up = 0) AND {mine}", args)
        turns: dict[str, dict] = {}  # one question asked once counts once, however many answered it
        for uid, question, at, dont_know, down in rows:
            t = turns.setdefault(uid, {"question": question, "at": at, "dont_know": False, "down": False})
            t["dont_know"] |= bool(dont_know)
            t["down"] |= bool(down)
        groups: dict[str, dict] = {}
        for t in turns.values():
            g = groups.setdefault(question_key(t["question"]), {"question": t["question"], "asked": 0, "dont_know": 0,
                                                                "thumbs_down": 0, "last_asked": 0.0})
            g["asked"] += 1
            g["dont_know"] += t["dont_know"]
            g["thumbs_down"] += t["down"]
            if t["at"] >= g["last_asked"]:
                g["question"], g["last_asked"] = t["question"], t["at"]
        ranked = sorted(groups.values(), key=lambda g: (-g["asked"], -g["last_asked"]))[:limit]
        for g in ranked:
            g["last_asked"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(g["last_asked"]))
        return ranked

    def outcomes_by_day(self, owner: str | None = None) -> dict[str, dict[str, int]]:
        """Answers per day (local time) by what they were: model, offline, dont_know, guide... (in every
        conversation, or in `owner`'s)."""
        quarter = self.db.quarter_hour("created_at")
        mine, args = _owned("conversation_id", owner)
        rows = self.db.all(f"SELECT {quarter} AS q, outcome, COUNT(*) FROM messages "
                           f"WHERE role = 'assistant' AND COALESCE(outcome, '') != '' AND {mine} GROUP BY q, outcome",
                           args)
        out: dict[str, dict[str, int]] = {}
        for q, outcome, n in rows:
            day = out.setdefault(local_day(q), {})
            day[outcome] = day.get(outcome, 0) + int(n)
        return dict(sorted(out.items()))

    def feedback_by_day(self, owner: str | None = None) -> dict[str, dict[str, int]]:
        quarter = self.db.quarter_hour("created_at")
        mine, args = _owned("(SELECT conversation_id FROM messages WHERE id = feedback.message_id)", owner)
        out: dict[str, dict[str, int]] = {}
        for q, up, down in self.db.all(f"SELECT {quarter} AS q, SUM(up), SUM(1 - up) FROM feedback WHERE {mine} "
                                       "GROUP BY q", args):
            day = out.setdefault(local_day(q), {"up": 0, "down": 0})
            day["up"] += int(up)
            day["down"] += int(down)
        return dict(sorted(out.items()))

    def export(self, cid: str) -> str:
        return json.dumps(self.messages(cid), default=lambda o: o.__dict__, ensure_ascii=False)

    def close(self) -> None:
        self.db.close()
