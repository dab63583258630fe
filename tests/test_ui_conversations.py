"""Conversations in the web UI, in headless Chromium against a real server: listed in the sidebar
(titled by their first question, newest first), reopened with their sources, kept across a page
reload and a server restart, deleted; with --auth each user sees only their own."""
from __future__ import annotations

import threading

import pytest
from support.browser import answers, ask, first_cited_path, have_chromium, open_chat, wait_idle
from support.corpus import SMALL_PROJECT, write_tree
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv")
    project = write_tree(root / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
    ingest(Index(cfg), [str(project)], "default")
    return cfg


def serve(cfg, auth: str | list[str] = "", port: int | None = None):
    """A fresh server over the data dir (a new Index, Copilot and app, as after a restart)."""
    from ui.server import create_app

    return ServerThread(create_app(Copilot(cfg, index=Index(cfg)), cfg, auth=auth), port)


def sidebar(page) -> list[str]:
    return [t.strip() for t in page.locator("#dc-conversations label").all_inner_texts()]


def selected(page) -> str:
    return page.evaluate("() => { const r = document.querySelector('#dc-conversations input:checked'); "
                         "return r ? r.closest('label').innerText.trim() : ''; }")


def test_a_conversation_survives_a_reload_and_a_restart_and_reopens_from_the_sidebar(browser, data):
    with serve(data) as url:
        page = open_chat(browser, url)
        ask(page, "@Coding what arguments does build_gadget take?")
        ask(page, "@Tutoring how are rate limits retried?")
        first = answers(page)
        page.wait_for_function("() => document.querySelectorAll('#dc-conversations label').length > 0")
        assert sidebar(page)[0] == "@Coding what arguments does build_gadget take?"  # titled by its first question

        page.reload()
        page.wait_for_selector("#dc-input textarea")
        page.wait_for_function("n => document.querySelectorAll('#dc-chat .dc-speaker').length >= n",
                               arg=len(first), timeout=30_000)
        again = answers(page)
        assert [first_cited_path(a) for a in again] == [first_cited_path(a) for a in first]
        # Its sources come back with it, links and all.
        assert again[-1]["links"] == first[-1]["links"]

        page.click("#dc-new")
        page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length === 0")
        ask(page, "@Coding how does MemoryStore save a conversation?")
        page.wait_for_function("() => document.querySelectorAll('#dc-conversations label').length === 2")
        assert sidebar(page)[0].startswith("@Coding how does MemoryStore")  # newest first
    # The server stops and starts again over the same data dir and address; the browser keeps its page.
    with serve(data, port=int(url.rsplit(":", 1)[1])) as url:
        page.goto(url + "/")
        page.wait_for_selector("#dc-input textarea")
        page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length > 0", timeout=30_000)
        assert "MemoryStore" in answers(page)[-1]["text"]  # the conversation open before the restart
        titles = sidebar(page)
        assert titles[1] == "@Coding what arguments does build_gadget take?"
        page.locator("#dc-conversations label").nth(1).click()
        page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length >= 2", timeout=30_000)
        wait_idle(page)
        reopened = answers(page)
        assert [first_cited_path(a) for a in reopened] == [first_cited_path(a) for a in first]
        assert selected(page) == titles[1]
        # It goes on from where it was: the next answer joins it.
        ask(page, "@Coding what arguments does build_gadget take?")
        assert len(answers(page)) == len(first) + 1
        page.context.close()


def test_a_question_asked_before_the_page_finished_loading_is_not_wiped(browser, data):
    """The page's load event restores the browser's last conversation and fills the sidebar; on a
    busy server its answer can come after the first question's. With nothing to restore it must
    leave the chat alone (it used to empty it, answer and all)."""
    from ui.server import create_app

    copilot = Copilot(data, index=Index(data))
    app = create_app(copilot, data)
    listing, calls, loaded, answered = copilot.conversations.listing, [], threading.Event(), threading.Event()

    def slow_first_listing(*args, **kwargs):  # the load event's sidebar, slow as on a busy server: after the answer
        first = not calls
        calls.append(1)
        if first:
            answered.wait(60)
        try:  # the load event's sidebar also lists a row the page shows once that answer reached it
            return listing(*args, **kwargs) + ([{"id": "loaded", "title": "Listed by the load event"}] if first else [])
        finally:
            if first:
                loaded.set()

    copilot.conversations.listing = slow_first_listing
    with ServerThread(app) as url:
        page = browser.new_context().new_page()
        page.goto(url + "/")
        page.wait_for_selector("#dc-input textarea", timeout=60_000)
        ask(page, "@Coding what arguments does build_gadget take?")
        assert not loaded.is_set()  # the answer came first
        answered.set()
        assert loaded.wait(30)
        page.wait_for_function("() => [...document.querySelectorAll('#dc-conversations label')]"
                               ".some(l => l.innerText.includes('Listed by the load event'))", timeout=30_000)
        found = answers(page)
        assert found and first_cited_path(found[-1]) == "widgets/core.py", found


def test_delete_removes_the_conversation_and_new_chat_starts_empty(browser, data):
    with serve(data) as url:
        page = open_chat(browser, url)
        ask(page, "@Coding what does build_gadget return?")  # kept: after the delete, the sidebar still lists it
        page.click("#dc-new")
        page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length === 0")
        ask(page, "@Tutoring how do I give an agent long-term memory?")
        page.wait_for_function("() => [...document.querySelectorAll('#dc-conversations label')]"
                               ".some(l => l.innerText.includes('long-term memory'))")
        before = len(sidebar(page))
        page.click("#dc-delete")
        page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length === 0")
        page.wait_for_function("n => document.querySelectorAll('#dc-conversations label').length === n - 1",
                               arg=before)
        assert not any("long-term memory" in t for t in sidebar(page))
        page.reload()
        page.wait_for_selector("#dc-input textarea")
        # The load event's answer (a conversation to restore, and the sidebar) has reached the page.
        page.wait_for_function("n => document.querySelectorAll('#dc-conversations label').length === n - 1",
                               arg=before)
        assert page.locator("#dc-chat .dc-speaker").count() == 0  # the deleted one does not come back
        page.context.close()


def test_with_auth_each_user_sees_only_their_own(browser, data):
    with serve(data, auth=["alice:pw-alice", "bob:pw-bob"]) as url:
        alice = open_chat(browser, url, http_credentials={"username": "alice", "password": "pw-alice"})
        ask(alice, "@Coding what arguments does build_gadget take?")
        alice.wait_for_function("() => document.querySelectorAll('#dc-conversations label').length === 1")
        bob = open_chat(browser, url, http_credentials={"username": "bob", "password": "pw-bob"})
        assert sidebar(bob) == []  # nothing of alice's
        ask(bob, "@Tutoring how are rate limits retried?")
        bob.wait_for_function("() => document.querySelectorAll('#dc-conversations label').length === 1")
        assert sidebar(bob) == ["@Tutoring how are rate limits retried?"]
        # Alice, reloading, sees hers alone, and cannot open bob's by its id.
        bobs = bob.evaluate("() => document.querySelector('#dc-conversations input').value")
        alice.reload()
        alice.wait_for_selector("#dc-input textarea")
        alice.wait_for_function("() => document.querySelectorAll('#dc-conversations label').length === 1")
        assert sidebar(alice) == ["@Coding what arguments does build_gadget take?"]
        from copilot.conversations import Conversations

        store = Conversations(data.data_dir / "conversations.sqlite")
        assert store.owner_of(bobs) == "bob"
        alice.context.close()
        bob.context.close()
