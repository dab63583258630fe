"""Conversations, sources and feedback persist in SQLite; secrets are not stored; writers at once are
committed together."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from support.conversations import check_listing
from support.waiting import wait_until

from copilot.conversations import ConversationError, Conversations
from copilot.database import Database
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


def test_writes_from_many_threads_at_once_are_committed_together_each_in_its_order(tmp_path, monkeypatch):
    store = Conversations(tmp_path / "conversations.sqlite")
    cids = [store.new(origin="api") for _ in range(4)]
    transactions = []
    real = store.db.transaction

    def counted():
        transactions.append(threading.get_ident())
        return real()

    monkeypatch.setattr(store.db, "transaction", counted)

    def write(worker: int) -> None:
        for i in range(5):
            store.add(cids[worker % 4], "user", f"w{worker} q{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(40)]
    with store.db.lock:  # the first commit waits, and the other writers queue up behind it meanwhile
        for t in threads:
            t.start()
        # every other writer waits in the next group commit (the first holds the batch it leads)
        wait_until(lambda: len(store.db._queued) == 39, "the 39 other writers to queue up")
    for t in threads:
        t.join()
    # 200 messages: the 40 queued up go in one or two transactions (one each would make 200), later
    # ones as they meet
    assert len(transactions) <= 200 - 38
    for worker in range(40):  # each writer's messages are all there, in the order it wrote them
        said = [m["content"] for m in store.messages(cids[worker % 4]) if m["content"].startswith(f"w{worker} ")]
        assert said == [f"w{worker} q{i}" for i in range(5)]


def test_a_write_that_fails_in_a_batch_costs_only_its_own_caller(tmp_path):
    db = Database(tmp_path / "t.sqlite", "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);")
    go, holding = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def insert(key: str, wait: bool = False):
        def fn(tx):
            tx.all("INSERT INTO t (k) VALUES (?)", (key,))
            if wait:
                holding.set()
                go.wait(10)
            return key
        return fn

    def write(name: str, fn) -> None:
        try:
            outcomes[name] = db.write(fn)
        except Exception as e:  # noqa: BLE001 - the outcome under test
            outcomes[name] = e

    first = threading.Thread(target=write, args=("first", insert("a", wait=True)))
    first.start()  # commits alone, held open while the others queue up for the next batch
    assert holding.wait(10)
    queued = [threading.Thread(target=write, args=(name, insert(key))) for name, key in
              (("b", "b"), ("again", "a"), ("d", "d"))]
    for t in queued:
        t.start()
    # all three queued (Database's list of writes waiting for the next group commit): they go in one batch,
    # which the duplicate key breaks
    wait_until(lambda: len(db._queued) == 3, "the three writes to queue up")
    go.set()
    for t in [first, *queued]:
        t.join()
    assert outcomes["first"] == "a" and outcomes["b"] == "b" and outcomes["d"] == "d"
    assert isinstance(outcomes["again"], sqlite3.IntegrityError)  # its own error, and only its own
    assert sorted(r[0] for r in db.all("SELECT k FROM t")) == ["a", "b", "d"]
