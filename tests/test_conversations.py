"""Conversations, sources and feedback persist in SQLite; secrets are not stored."""
from __future__ import annotations

import sqlite3

import pytest

from copilot.conversations import ConversationError, Conversations
from copilot.events import Source


def test_messages_sources_and_feedback_persist(tmp_path):
    path = tmp_path / "c.sqlite"
    store = Conversations(path)
    cid = store.new()
    store.add(cid, "user", "How do retries work?")
    src = Source(1, "docs/guide.md", 3, 6, "Guide > Retries", "https://x/docs/guide.md#L3-L6", "doc", "markdown",
                 "Calls that fail are retried.")
    mid = store.add(cid, "assistant", "With backoff [1].", "Tutoring", [src], "gpt-4o-mini")
    store.feedback(mid, False, "too short")
    store.close()

    again = Conversations(path)
    msgs = again.messages(cid)
    assert [(m["role"], m["assistant"], m["content"]) for m in msgs] == [
        ("user", "", "How do retries work?"), ("assistant", "Tutoring", "With backoff [1].")]
    assert msgs[1]["sources"] == [src] and msgs[1]["message_id"] == mid
    assert again.get_feedback(mid)["up"] is False and again.get_feedback(mid)["comment"] == "too short"
    again.feedback(mid, True)  # changing one's mind replaces the vote
    assert again.feedback_counts() == {"up": 1, "down": 0}


def test_feedback_on_an_unknown_message_is_a_clear_error(tmp_path):
    with pytest.raises(ConversationError, match="no message"):
        Conversations(tmp_path / "c.sqlite").feedback("nope", True)


def test_keys_in_messages_are_not_stored(tmp_path):
    path = tmp_path / "c.sqlite"
    store = Conversations(path)
    cid = store.new()
    store.add(cid, "user", "my key sk-proj-abcdefghijklmnopqrstuvwxyz012345 fails with Bearer abcdefghijklmnopqrstu")
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("c.sqlite*"))
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "abcdefghijklmnopqrstuvwxyz012345" not in dump and b"abcdefghijklmnopqrstuvwxyz012345" not in raw
    assert "[secret removed]" in store.messages(cid)[0]["content"]


def test_conversations_are_listed_titled_and_owned(tmp_path):
    check_listing(Conversations(tmp_path / "c.sqlite"))


def check_listing(store: Conversations) -> None:
    """Listed by owner and door, titled by the first question, newest first (also run on PostgreSQL)."""
    first = store.new(owner="alice", origin="web")
    store.add(first, "user", "How do   retries work?")
    store.add(first, "user", "And backoff?")
    empty = store.new(owner="alice", origin="web")  # nothing asked yet: not listed
    api = store.new(origin="api")
    store.add(api, "user", "from a script")
    bobs = store.new(owner="bob", origin="web")
    store.add(bobs, "user", "Bob's question")
    second = store.new(owner="alice", origin="web")
    store.add(second, "user", "Where is the config?")
    assert [(c["id"], c["title"]) for c in store.listing(owner="alice")] == [
        (second, "Where is the config?"), (first, "How do retries work?")]  # newest first, first question
    assert store.owner_of(bobs) == "bob" and store.owner_of(empty) == "alice" and store.owner_of("nope") is None
    assert [c["id"] for c in store.listing(owner="", origin="api")] == [api]
    assert [c["id"] for c in store.listing(owner="bob")] == [bobs] and len(store.listing(owner="alice", limit=1)) == 1


def test_a_file_written_before_owners_and_outcomes_opens_and_keeps_its_messages(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at REAL, title TEXT);
        CREATE TABLE messages (id TEXT PRIMARY KEY, conversation_id TEXT, seq INTEGER, role TEXT, assistant TEXT,
            content TEXT, model TEXT, created_at REAL);
        CREATE TABLE sources (message_id TEXT, n INTEGER, path TEXT, start_line INTEGER, end_line INTEGER,
            title TEXT, link TEXT, kind TEXT, language TEXT, excerpt TEXT, PRIMARY KEY (message_id, n));
        CREATE TABLE feedback (message_id TEXT PRIMARY KEY, up INTEGER, comment TEXT, created_at REAL);
        INSERT INTO conversations VALUES ('c1', 1.0, 'Old question');
        INSERT INTO messages VALUES ('m1', 'c1', 1, 'user', '', 'Old question', '', 1.0);
        INSERT INTO messages VALUES ('m2', 'c1', 2, 'assistant', 'Tutoring', 'Old answer', '', 2.0);
        INSERT INTO sources VALUES ('m2', 1, 'a.md', 1, 2, 'A', '/r/a.md#L1-L2', 'doc', 'markdown', 'text');
    """)
    db.commit()
    db.close()
    store = Conversations(path)
    msgs = store.messages("c1")
    assert [m["content"] for m in msgs] == ["Old question", "Old answer"]
    assert msgs[1]["sources"][0].path == "a.md" and msgs[1]["sources"][0].kb == "" and msgs[1]["outcome"] == ""
    store.add("c1", "assistant", "New answer", "Tutoring", outcome="dont_know")
    assert store.messages("c1")[-1]["outcome"] == "dont_know"
