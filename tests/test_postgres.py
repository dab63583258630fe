"""PostgreSQL as the shared conversation store (`[server] database_url`): every behaviour of the SQLite
store, the same on both, and several servers ("replicas") on one database seeing each other's
conversations, feedback and coverage gaps.

Real parts: a PostgreSQL server (Debian's package) started here in a temporary folder, on a free port on
loopback, run as the `postgres` system user when the tests run as root (postgres refuses root).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from support.conversations import check_listing, conversation
from support.servers import free_port

from copilot.config import ConfigError, load_config
from copilot.conversations import ConversationError, Conversations, open_conversations
from copilot.database import DatabaseDown
from copilot.events import Source

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
SRC = Source(1, "docs/guide.md", 3, 6, "Guide > Retries", "https://x/docs/guide.md#L3-L6", "doc", "markdown",
             "Calls that fail are retried.", "default")


class PostgresServer:
    """`postgres` in a temporary folder, trust auth, on 127.0.0.1:port; `fresh()` makes an empty database."""

    def __init__(self):
        if not PG_BINS or not Path(PG_BINS[-1], "postgres").exists():
            pytest.skip("PostgreSQL is not installed (Debian package postgresql; `make test` installs it)")
        self.bin = Path(PG_BINS[-1])
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres will not run as root: it runs as the postgres system user
            if shutil.which("runuser") is None or subprocess.run(["id", "-u", "postgres"], capture_output=True
                                                                  ).returncode != 0:
                pytest.skip("running as root without a postgres system user (or runuser) to run PostgreSQL as")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="devcopilot-pg-"))
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self.port = free_port()
        self.run(str(self.bin / "initdb"), "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C", "--no-sync")
        self.process: subprocess.Popen | None = None
        self.start()

    def run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.log = open(self.root / "server.log", "ab")  # noqa: SIM115 (open while the server runs)
        self.process = subprocess.Popen(
            [*self.as_user, str(self.bin / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port),
             "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"],
            stdout=self.log, stderr=subprocess.STDOUT)
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("PostgreSQL did not start: "
                                       + (self.root / "server.log").read_text(errors="replace")[-2000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.root / "data"), "-m", "fast")
            self.process.wait(30)
        self.log.close()

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request, tmp_path) -> Path | str:
    """Where a store lives: a SQLite file, or a fresh database on the test's PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path / "conversations.sqlite"
    return request.getfixturevalue("postgres").fresh()


# -- the same behaviour on both -----------------------------------------------------------------------
def test_messages_sources_and_feedback_persist(where):
    store = Conversations(where)
    cid = store.new()
    store.add(cid, "user", "How do retries work? my key sk-proj-abcdefghijklmnopqrstuvwxyz012345")
    mid = store.add(cid, "assistant", "With backoff [1].", "Tutoring", [SRC], "gpt-4o-mini", outcome="model")
    store.feedback(mid, False, "too short")
    store.close()

    again = Conversations(where)
    msgs = again.messages(cid)
    assert [(m["role"], m["assistant"], m["content"], m["outcome"]) for m in msgs] == [
        ("user", "", "How do retries work? my key [secret removed]", ""),
        ("assistant", "Tutoring", "With backoff [1].", "model")]
    assert msgs[1]["sources"] == [SRC] and msgs[1]["message_id"] == mid and msgs[1]["model"] == "gpt-4o-mini"
    assert again.get_feedback(mid)["up"] is False and again.get_feedback(mid)["comment"] == "too short"
    again.feedback(mid, True)  # changing one's mind replaces the vote
    assert again.feedback_counts() == {"up": 1, "down": 0}
    assert again.get_feedback("nope") is None and again.exists(cid) and not again.exists("nope")
    assert '"Calls that fail are retried."' in again.export(cid)
    with pytest.raises(ConversationError, match="no message"):
        again.feedback("nope", True)


def test_listing_is_titled_owned_and_newest_first(where):
    check_listing(Conversations(where))


def test_gaps_answers_and_feedback_by_day(where):
    store = Conversations(where)
    conversation(store, "How do I bake bread?", "dont_know")
    conversation(store, "how do I  bake bread", "dont_know")  # the same question, written differently
    conversation(store, "What is a widget?", "offline", down=True)
    conversation(store, "What is a gadget?", "offline")  # answered, no complaint: not a gap
    assert [(g["question"], g["asked"], g["dont_know"], g["thumbs_down"]) for g in store.gaps()] == [
        ("how do I  bake bread", 2, 2, 0), ("What is a widget?", 1, 0, 1)]
    today = time.strftime("%Y-%m-%d")
    assert store.outcomes_by_day() == {today: {"guide": 4, "dont_know": 2, "offline": 2}}
    assert store.feedback_by_day() == {today: {"up": 0, "down": 1}}


def test_delete_removes_messages_feedback_and_gaps(where):
    store = Conversations(where)
    cid = conversation(store, "How do I bake bread?", "dont_know", down=True)
    kept = conversation(store, "What is a widget?", "offline", down=True)
    store.delete(cid)
    assert store.messages(cid) == [] and store.owner_of(cid) is None
    assert [g["question"] for g in store.gaps()] == ["What is a widget?"]
    assert store.feedback_counts() == {"up": 0, "down": 1} and len(store.messages(kept)) == 3


# -- several servers on one database ---------------------------------------------------------------
def test_two_replicas_see_each_others_conversations_feedback_and_gaps(where):
    a, b = Conversations(where), Conversations(where)
    cid = conversation(a, "How do I bake bread?", "dont_know")
    assert [c["id"] for c in b.listing()] == [cid] and b.listing(owner="bob") == []
    answer = b.messages(cid)[-1]
    assert answer["content"] == "I don't know." and [s.path for s in answer["sources"]] == ["README.md"]
    b.add(cid, "user", "And rye bread?")  # the conversation goes on on the other replica
    b.feedback(answer["message_id"], False, "no help")
    assert [m["content"] for m in a.messages(cid)][-1] == "And rye bread?"
    assert a.get_feedback(answer["message_id"])["comment"] == "no help"
    assert a.gaps()[0]["thumbs_down"] == 1 and a.feedback_counts() == {"up": 0, "down": 1}
    a.delete(cid)
    assert b.owner_of(cid) is None and b.gaps() == []


def test_concurrent_writes_from_threads_and_replicas_keep_every_message_in_order(where):
    stores = [Conversations(where) for _ in range(3)]  # three replicas, each written by three threads
    cid = stores[0].new(owner="alice", origin="web")
    errors: list[BaseException] = []

    def write(store: Conversations, worker: int) -> None:
        try:
            for i in range(10):
                store.add(cid, "user", f"w{worker} q{i}")
                store.add(store.new(origin="api"), "user", f"w{worker} alone {i}")
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(stores[n % 3], n)) for n in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    msgs = stores[1].messages(cid)
    assert len(msgs) == 90 and len({m["message_id"] for m in msgs}) == 90
    for worker in range(9):  # each writer's messages come in the order it wrote them
        assert [m["content"] for m in msgs if m["content"].startswith(f"w{worker} ")] == [
            f"w{worker} q{i}" for i in range(10)]
    assert len(stores[2].listing(owner="", origin="api")) == 90


# -- PostgreSQL only ------------------------------------------------------------------------------
@pytest.mark.postgres
def test_servers_starting_at_once_create_the_schema_once(postgres):
    url = postgres.fresh()
    opened: list[Conversations] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(Conversations(url))
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(opened) == 8
    cid = opened[0].new()
    opened[7].add(cid, "user", "hello")
    assert opened[3].messages(cid)[0]["content"] == "hello"


@pytest.mark.postgres
def test_a_database_made_before_owners_and_outcomes_gets_them(postgres):
    import psycopg

    url = postgres.fresh()
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in [
            "CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at DOUBLE PRECISION, title TEXT)",
            "CREATE TABLE messages (id TEXT PRIMARY KEY, conversation_id TEXT, seq INTEGER, role TEXT, "
            "assistant TEXT, content TEXT, model TEXT, created_at DOUBLE PRECISION)",
            "CREATE TABLE sources (message_id TEXT, n INTEGER, path TEXT, start_line INTEGER, end_line INTEGER, "
            "title TEXT, link TEXT, kind TEXT, language TEXT, excerpt TEXT, PRIMARY KEY (message_id, n))",
            "CREATE TABLE feedback (message_id TEXT PRIMARY KEY, up INTEGER, comment TEXT, "
            "created_at DOUBLE PRECISION)",
            "INSERT INTO conversations VALUES ('c1', 1.0, 'Old question')",
            "INSERT INTO messages VALUES ('m1', 'c1', 1, 'user', '', 'Old question', '', 1.0)",
            "INSERT INTO messages VALUES ('m2', 'c1', 2, 'assistant', 'Tutoring', 'Old answer', '', 2.0)",
            "INSERT INTO sources VALUES ('m2', 1, 'a.md', 1, 2, 'A', '/r/a.md#L1-L2', 'doc', 'markdown', 'text')",
        ]:
            conn.execute(sql)
    store = Conversations(url)
    msgs = store.messages("c1")
    assert [m["content"] for m in msgs] == ["Old question", "Old answer"]
    assert msgs[1]["sources"][0].kb == "" and msgs[1]["outcome"] == "" and store.owner_of("c1") == ""
    store.add("c1", "assistant", "New answer", "Tutoring", outcome="dont_know")
    assert store.messages("c1")[-1]["outcome"] == "dont_know"


@pytest.mark.postgres
def test_the_setting_comes_from_the_config_file_or_the_environment(tmp_path, postgres):
    url = postgres.fresh()
    conf = tmp_path / "devcopilot.toml"
    conf.write_text(f'[server]\ndatabase_url = "{url}"\n')
    cfg = load_config(conf, env={}, overrides={"data_dir": str(tmp_path / "a")})
    open_conversations(cfg).new(owner="alice")
    env_cfg = load_config(env={"DEVCOPILOT_DATABASE_URL": url}, overrides={"data_dir": str(tmp_path / "b")})
    store = open_conversations(env_cfg)
    cid = store.new(owner="bob")
    assert store.owner_of(cid) == "bob" and store.db.describe() == f"PostgreSQL at {url}"
    assert not (tmp_path / "a" / "conversations.sqlite").exists()  # nothing in the data dir
    socket_url = f"postgresql://postgres@/{url.rsplit('/', 1)[1]}?host={postgres.root}&port={postgres.port}"
    assert open_conversations(load_config(env={"DEVCOPILOT_DATABASE_URL": socket_url})).owner_of(cid) == "bob"
    assert load_config(env={}).server.database_url == ""  # default: SQLite in the data dir


def test_a_bad_url_is_one_sentence_at_load():
    for bad in ["mysql://u:secretpw@h/db", "postgresql://h:notaport/db", "not a url"]:
        with pytest.raises(ConfigError, match="is not a PostgreSQL URL") as e:
            load_config(env={"DEVCOPILOT_DATABASE_URL": bad})
        assert "secretpw" not in str(e.value) and "\n" not in str(e.value)


def test_an_unreachable_server_is_one_sentence_without_the_password():
    url = f"postgresql://me:secretpw@127.0.0.1:{free_port()}/devcopilot"
    with pytest.raises(DatabaseDown, match="cannot be reached") as e:
        Conversations(url)
    message = str(e.value)
    assert "secretpw" not in message and "me:***@127.0.0.1" in message and "\n" not in message


def test_the_command_line_says_so_in_one_sentence(tmp_path):
    env = {**os.environ, "DEVCOPILOT_DATABASE_URL": f"postgresql://me:secretpw@127.0.0.1:{free_port()}/x"}
    for command in (["usage", "--gaps"], ["usage"], ["serve", "--port", str(free_port())]):
        r = subprocess.run([sys.executable, "-m", "devcopilot", "--data-dir", str(tmp_path / "d"), *command],
                           env=env, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "cannot be reached" in r.stderr and "Traceback" not in r.stderr
        assert "secretpw" not in r.stderr
    bad = {**os.environ, "DEVCOPILOT_DATABASE_URL": "mysql://h/x"}
    r = subprocess.run([sys.executable, "-m", "devcopilot", "usage", "--gaps"], env=bad, capture_output=True,
                       text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert r.returncode == 2 and "is not a PostgreSQL URL" in r.stderr and "Traceback" not in r.stderr


# -- servers on one database ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """The small project, indexed once; each server below reads it with a data dir of its own."""
    from support.corpus import SMALL_PROJECT, write_tree

    from indexes.build import ingest
    from indexes.search import Index

    root = tmp_path_factory.mktemp("kb")
    index = Index(load_config(env={}, overrides={"data_dir": str(root / "data")}))
    ingest(index, [str(write_tree(root / "project", SMALL_PROJECT))])
    return index


def copilot_on(url: str, data_dir: Path, index):
    from copilot.chat import Copilot

    cfg = load_config(env={"DEVCOPILOT_DATABASE_URL": url}, overrides={"data_dir": str(data_dir)})
    return Copilot(cfg, index=index)


@pytest.mark.postgres
def test_two_servers_with_their_own_data_dirs_share_conversations_through_the_api(postgres, indexed, tmp_path):
    import openai
    from support.servers import serve

    from ui.server import create_app

    url = postgres.fresh()
    a, b = copilot_on(url, tmp_path / "a", indexed), copilot_on(url, tmp_path / "b", indexed)
    servers = [serve(create_app(c, c.cfg)) for c in (a, b)]
    try:
        ask = [openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0, timeout=60).chat.completions
               for base, _, _ in servers]
        question = "How are failed calls retried with backoff?"
        answer = ask[0].create(model="tutoring", messages=[{"role": "user", "content": question}])
        assert "guide.md" in answer.choices[0].message.content

        (listed,) = b.conversations.listing(origin="api")  # made on server A, listed by server B
        assert listed["title"] == question
        said = b.history(listed["id"])
        assert [m["role"] for m in said] == ["user", "assistant"] and said[1]["content"]
        assert any(s.path == "docs/guide.md" for s in said[1]["sources"])
        b.feedback(said[1]["message_id"], False, "not what I asked")  # a thumbs-down on B...
        gaps = a.usage()["gaps"]  # ...is a coverage gap on A
        assert [(g["question"], g["thumbs_down"]) for g in gaps] == [(question, 1)]
        assert a.usage()["feedback"] == {"up": 0, "down": 1}

        ask[1].create(model="tutoring", messages=[{"role": "user", "content": "What does the widget module do?"}])
        assert [c["title"] for c in a.conversations.listing(origin="api")] == ["What does the widget module do?",
                                                                              question]
        assert not (tmp_path / "a" / "conversations.sqlite").exists()
        assert not (tmp_path / "b" / "conversations.sqlite").exists()
    finally:
        for _, server, thread in servers:
            server.should_exit = True
            thread.join(5)


@pytest.mark.postgres
def test_a_database_outage_during_a_chat_costs_the_record_not_the_answer(postgres, indexed, tmp_path, monkeypatch):
    monkeypatch.setattr("copilot.database.RETRY_AFTER_S", 0.0)
    url = postgres.fresh()
    name = url.rsplit("/", 1)[1]
    copilot = copilot_on(url, tmp_path / "a", indexed)
    sid = copilot.new_session(owner="alice", origin="web")
    question = "How are failed calls retried with backoff?"

    postgres.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")  # the database goes away...
    postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    events = list(copilot.chat(question, sid, "Tutoring"))
    assert [e.type for e in events if e.type == "error"] == []
    assert "guide.md" in [e for e in events if e.type == "end"][-1].text
    down_sid = copilot.new_session(origin="api")  # a new conversation is answered too, recorded later
    assert [e.type for e in copilot.chat(question, down_sid, "Tutoring") if e.type == "error"] == []

    postgres.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")  # ...and comes back: no restart needed
    list(copilot.chat("And how long does it wait?", sid, "Tutoring"))
    stored = copilot.conversations.messages(sid)
    assert [m["content"] for m in stored if m["role"] == "user"] == ["And how long does it wait?"]
    assert [c["id"] for c in copilot.conversations.listing(owner="alice")] == [sid]


# -- usage figures ----------------------------------------------------------------------------------
def monitor_on(where: Path | str, data_dir: Path, **budget):
    from copilot.monitor import Monitor

    env = {"DEVCOPILOT_DATABASE_URL": where} if isinstance(where, str) else {}
    return Monitor(load_config(env=env, overrides={"data_dir": str(data_dir), "budget": budget or None}))


def test_usage_figures_and_the_budget_are_shared_by_every_server(where, tmp_path):
    def server(name: str):
        """PostgreSQL: a server with a data dir of its own; SQLite: a worker process on the shared data dir."""
        return monitor_on(where, tmp_path / (name if isinstance(where, str) else "data"), limit_usd=1.0)

    a, b = server("a"), server("b")
    a.record("gpt-4o-mini", "Coding", 1_000_000, 0)  # $0.15
    b.record("gpt-4o-mini", "Tutoring", 0, 1_000_000)  # $0.60
    b.count("retrieval_calls", 3)
    b.flush()
    a.count("retrieval_calls")
    a.flush()
    figures = server("c").figures()
    assert figures["totals"]["calls"] == 2 and figures["cost_usd"] == pytest.approx(0.75)
    assert figures["counters"]["retrieval_calls"] == 4 and set(figures["assistants"]) == {"Coding", "Tutoring"}
    a.record("gpt-4o-mini", "Coding", 1_000_000, 0)  # a sees b's spending: $0.90 of $1 is a warning
    assert a.budget_state() == "warn"
    b.reset()
    assert server("c").figures()["totals"]["calls"] == 0
    if isinstance(where, str):
        assert not any((tmp_path / d / "usage.json").exists() for d in "abc")


@pytest.mark.postgres
def test_usage_counted_while_the_database_is_down_is_added_once_it_is_back(postgres, tmp_path, monkeypatch):
    monkeypatch.setattr("copilot.database.RETRY_AFTER_S", 0.0)
    url = postgres.fresh()
    name = url.rsplit("/", 1)[1]
    m = monitor_on(url, tmp_path / "a", limit_usd=100.0)  # with a budget, every record is saved at once
    m.record("gpt-4o-mini", "Coding", 10, 10)
    postgres.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    m.record("gpt-4o-mini", "Coding", 10, 10)  # kept in memory, no error
    assert m.figures()["totals"]["calls"] == 2
    postgres.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    m.record("gpt-4o-mini", "Coding", 10, 10)
    assert monitor_on(url, tmp_path / "b").figures()["totals"]["calls"] == 3


# -- the web UI on two servers ------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.browser
def test_the_web_ui_on_another_server_lists_and_reopens_a_conversation_and_answers_through_an_outage(
        postgres, indexed, tmp_path, monkeypatch):
    from support.browser import answers, ask, first_cited_path, have_chromium, launch, open_chat, wait_idle
    from support.servers import ServerThread

    from ui.server import create_app

    if not have_chromium():
        pytest.skip("Debian chromium is not installed")
    playwright = pytest.importorskip("playwright.sync_api")
    monkeypatch.setattr("copilot.database.RETRY_AFTER_S", 0.0)
    url = postgres.fresh()
    name = url.rsplit("/", 1)[1]
    login = {"http_credentials": {"username": "alice", "password": "pw-alice"}}
    a, b = copilot_on(url, tmp_path / "a", indexed), copilot_on(url, tmp_path / "b", indexed)
    with ServerThread(create_app(a, a.cfg, auth="alice:pw-alice")) as url_a, \
            ServerThread(create_app(b, b.cfg, auth="alice:pw-alice")) as url_b, \
            playwright.sync_playwright() as p:
        browser = launch(p)
        on_a = open_chat(browser, url_a, **login)
        ask(on_a, "@Tutoring how are rate limits retried?")
        first = answers(on_a)

        on_b = open_chat(browser, url_b, **login)  # the same user, through the other server
        on_b.wait_for_function("() => document.querySelectorAll('#dc-conversations label').length === 1")
        on_b.locator("#dc-conversations label").first.click()
        on_b.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length >= 1", timeout=30_000)
        wait_idle(on_b)
        assert [first_cited_path(x) for x in answers(on_b)] == [first_cited_path(x) for x in first]
        on_b.screenshot(path=str(tmp_path / "reopened-on-b.png"))

        postgres.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")  # the database goes away
        postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        ask(on_b, "@Coding what arguments does build_gadget take?")
        assert "build_gadget" in answers(on_b)[-1]["text"] and "went wrong" not in on_b.inner_text("#dc-chat")
        on_b.screenshot(path=str(tmp_path / "answered-while-down.png"))
        postgres.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        browser.close()


def test_status_says_where_conversations_live_without_the_password(tmp_path, capsys):
    from ui.cli import main

    url = "postgresql://me:secretpw@db.example.com:5432/devcopilot"
    conf = tmp_path / "c.toml"
    conf.write_text(f'[server]\ndatabase_url = "{url}"\n')
    assert main(["--data-dir", str(tmp_path / "d"), "--config", str(conf), "status"]) == 0
    out = capsys.readouterr().out
    assert "conversations: PostgreSQL at postgresql://me:***@db.example.com:5432/devcopilot" in out
    assert "secretpw" not in out


@pytest.mark.postgres
def test_a_connection_dropped_while_idle_is_replaced_without_losing_the_call(postgres):
    url = postgres.fresh()
    store = Conversations(url)
    cid = store.new()
    name = url.rsplit("/", 1)[1]
    postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    store.add(cid, "user", "kept")  # a proxy or a restart dropped the idle connection: a new one is opened
    postgres.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    assert [m["content"] for m in store.messages(cid)] == ["kept"]


@pytest.mark.postgres
def test_a_connection_lost_inside_a_transaction_commits_nothing_and_is_not_retried(postgres):
    store = Conversations(postgres.fresh())
    cid = store.new()
    with pytest.raises(DatabaseDown, match="cannot be reached"), store.db.transaction() as tx:
        tx.all("INSERT INTO messages (id, conversation_id, seq, role, content) VALUES ('m1', ?, 1, 'user', 'x')",
               (cid,))
        tx.all("SELECT pg_terminate_backend(pg_backend_pid())")  # the connection dies mid-transaction
    assert store.messages(cid) == []  # nothing half-written; the next call has a new connection
    store.add(cid, "user", "after")
    assert [m["content"] for m in store.messages(cid)] == ["after"]
