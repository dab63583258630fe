"""Conversation stores filled the same way on SQLite and PostgreSQL (tests/test_conversations.py,
tests/test_usage_gaps.py, tests/test_postgres.py)."""
from __future__ import annotations

from copilot.conversations import Conversations
from copilot.events import Source

SRC = Source(1, "README.md", 1, 3, "Intro", "/r/README.md#L1-L3", "doc", "markdown", "Hello", "default")


def conversation(store: Conversations, question: str, outcome: str, down: bool = False) -> str:
    """A web conversation: the question, the Guide's hand-over, an answer of that outcome citing SRC (given a
    thumbs-down if `down`); its id."""
    cid = store.new(origin="web")
    store.add(cid, "user", question)
    store.add(cid, "assistant", "@Tutoring will take this.", "Guide", outcome="guide")
    mid = store.add(cid, "assistant", "I don't know." if outcome == "dont_know" else "An answer.", "Tutoring",
                    [SRC], outcome=outcome)
    if down:
        store.feedback(mid, False)
    return cid


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
