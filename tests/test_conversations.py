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
