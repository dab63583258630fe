"""The web UI in headless Chromium: a real server, a real Copilot (offline mode), real indexes.

The server runs uvicorn in a thread on a free loopback port; Playwright drives Debian's Chromium.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import SMALL_PROJECT, write_tree
from serve_support import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    allowed = root / "allowed"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"),
                                         "server": {"allowed_roots": [str(allowed)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)

    from ui.server import create_app

    with ServerThread(create_app(copilot, cfg)) as url:
        yield {"url": url, "allowed": allowed, "copilot": copilot, "index": index, "project": project}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, world):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(world["url"] + "/")
    page.wait_for_selector("#dc-input textarea", timeout=60_000)
    yield page
    page.close()


def ask(page, question: str, speakers_before: int | None = None):
    """Send a question; wait until an answer with its sources has finished streaming."""
    before = page.locator("#dc-chat .dc-speaker").count() if speakers_before is None else speakers_before
    page.fill("#dc-input textarea", question)
    page.click("#dc-send")
    page.wait_for_function(
        "n => document.querySelectorAll('#dc-chat .dc-speaker').length > n", arg=before, timeout=60_000)
    # Streaming is over when the send event finishes: the chat's progress tracker hides again.
    page.wait_for_function("() => !document.querySelector('#dc-chat .generating') && "
                           "document.querySelector('#dc-input textarea').value === ''", timeout=60_000)
    page.wait_for_timeout(300)


def bot_messages(page) -> list[dict]:
    """Each assistant message: speaker name, text, and its links."""
    return page.evaluate("""() => [...document.querySelectorAll('#dc-chat .dc-speaker')].map(s => {
        const msg = s.closest('.message') || s.parentElement.parentElement;
        return {speaker: s.innerText.trim(), text: msg.innerText,
                links: [...msg.querySelectorAll('a')].map(a => ({text: a.innerText, href: a.getAttribute('href')}))};
    })""")


def answers(page) -> list[dict]:
    return [m for m in bot_messages(page) if m["links"]]


def test_question_gets_answer_from_tutoring_with_clickable_sources(page, world, browser):
    ask(page, "How do I give an agent long-term memory?")
    msgs = answers(page)
    assert msgs, bot_messages(page)
    answer = msgs[-1]
    assert answer["speaker"].endswith("Tutoring")
    readme = [a for a in answer["links"] if a["text"].startswith("README.md:")]
    assert readme, answer["links"]
    href = readme[0]["href"]
    assert href.startswith("/source?path=") and str(world["project"] / "README.md") in href
    # Every link in the answer opens in the browser: a web URL or the server's source view, never a server path.
    assert all(a["href"].startswith(("/source?", "http://", "https://")) for a in answer["links"]), answer["links"]
    # The link opens the cited file with the cited lines marked.
    view = browser.new_page()
    view.goto(world["url"] + href)
    marked = view.locator("tr.hit")
    assert marked.count() >= 1
    assert "MemoryStore" in " ".join(marked.all_inner_texts())
    view.close()


def test_at_coding_is_answered_by_coding_with_code_sources(page):
    ask(page, "@Coding what arguments does build_gadget take?")
    answer = answers(page)[-1]
    assert answer["speaker"].endswith("Coding")
    assert any(a["text"].startswith("widgets/core.py:") for a in answer["links"]), answer["links"]
    assert "build_gadget" in answer["text"]


def test_knowledge_tab_adds_a_folder_then_chat_cites_it(page, world):
    fresh = write_tree(world["allowed"] / "newdocs", {"ops/ports.md": """
        # Operations

        ## Quokka protocol

        The quokka protocol listens on port 4242 and rotates its keys every ninety minutes.
        """})
    kb_before = world["index"].catalog.count_chunks("default")
    page.get_by_role("tab", name="Knowledge").click()
    page.wait_for_function("n => { const t = document.querySelector('#dc-kbs').innerText; "
                           "return t.includes('default') && new RegExp('\\\\b' + n + '\\\\b').test(t); }",
                           arg=kb_before, timeout=10_000)
    page.fill("#dc-source textarea, #dc-source input", str(fresh))
    page.click("#dc-add")
    page.wait_for_function("() => /Indexed|❌/.test(document.querySelector('#dc-index-status').innerText)",
                           timeout=120_000)
    assert "Indexed" in page.inner_text("#dc-index-status")
    kb_after = world["index"].catalog.count_chunks("default")
    assert kb_after > kb_before
    page.wait_for_function("n => document.querySelector('#dc-kbs').innerText.includes(String(n))",
                           arg=kb_after, timeout=10_000)
    assert str(fresh) in page.inner_text("#dc-sources")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "Which port does the quokka protocol listen on?")
    answer = answers(page)[-1]
    assert any(a["text"].startswith("ops/ports.md:") for a in answer["links"]), answer
    assert "4242" in answer["text"]


@pytest.mark.parametrize("spec, says", [
    ("/etc", "outside the folders this server may index"),
    ("{allowed}/../outside", "contains '..'"),
])
def test_knowledge_tab_refuses_paths_outside_allowed_roots(page, world, spec, says):
    chunks = world["index"].catalog.count_chunks("default")
    page.get_by_role("tab", name="Knowledge").click()
    page.fill("#dc-source textarea, #dc-source input", spec.format(allowed=world["allowed"]))
    page.click("#dc-add")
    page.wait_for_function("() => document.querySelector('#dc-index-status').innerText.includes('❌')",
                           timeout=30_000)
    status = page.inner_text("#dc-index-status")
    assert says in status
    assert "Traceback" not in status and len(status.strip().splitlines()) == 1
    assert world["index"].catalog.count_chunks("default") == chunks


def test_thumbs_up_is_stored_with_the_exchange(page, world):
    ask(page, "@Tutoring how are rate limits retried?")
    liked = page.locator("#dc-chat button[aria-label='Like']").last
    liked.click()
    mid = None
    deadline = time.monotonic() + 10
    db = world["copilot"]
    while time.monotonic() < deadline and mid is None:
        rows = _feedback_rows(db)
        mid = rows[-1] if rows else None
        time.sleep(0.2)
    assert mid is not None and mid[1] in (1, True)


def _feedback_rows(copilot) -> list[tuple]:
    conv = copilot.conversations
    return conv.db.execute("SELECT message_id, up FROM feedback").fetchall()


def test_usage_tab_shows_the_monitor(page):
    page.get_by_role("tab", name="Usage").click()
    page.click("#dc-usage-refresh")
    page.wait_for_function("() => document.querySelector('#dc-usage').innerText.trim().length > 0",
                           timeout=10_000)
    assert "❌" not in page.inner_text("#dc-usage")


def test_answer_streams_from_a_model_token_by_token(browser, world, tmp_path):
    """With a model (the local OpenAI-compatible test server), the answer grows in the page as pieces arrive."""
    from llm_server import LLMServer, Reply

    from ui.server import create_app

    words = [f"word{i}" for i in range(40)]
    llm = LLMServer().start()
    llm.default = Reply(text="Call build_gadget with a name [1]. " + " ".join(words), token_delay=0.08)
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"), "chat": {
        "provider": "openai", "base_url": llm.url, "api_key": "sk-test-key-0123456789", "model": "test-model"}})
    copilot = Copilot(cfg, index=world["index"])
    try:
        with ServerThread(create_app(copilot, cfg)) as url:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#dc-input textarea", timeout=60_000)
            page.fill("#dc-input textarea", "@Coding how do I call build_gadget?")
            page.click("#dc-send")
            # Part of the answer is on screen while the rest is still coming.
            page.wait_for_function("() => document.querySelector('#dc-chat').innerText.includes('word3')",
                                   timeout=60_000)
            partial = page.inner_text("#dc-chat")
            assert "word39" not in partial
            page.wait_for_function("() => document.querySelector('#dc-chat').innerText.includes('word39')",
                                   timeout=60_000)
            page.wait_for_function("() => [...document.querySelectorAll('#dc-chat a')]"
                                   ".some(a => a.innerText.startsWith('widgets/core.py:'))", timeout=30_000)
            assert any(m["speaker"].endswith("Coding") for m in answers(page))
            page.close()
    finally:
        llm.stop()


def test_retry_answers_again_and_new_chat_starts_empty(page):
    ask(page, "@Coding what arguments does build_gadget take?")
    first = answers(page)
    assert first and first[-1]["speaker"].endswith("Coding")
    page.locator("#dc-chat button[aria-label='Retry']").last.click()
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('#dc-chat .generating')", timeout=60_000)
    page.wait_for_function("() => [...document.querySelectorAll('#dc-chat .dc-speaker')]"
                           ".some(s => s.innerText.includes('Coding'))", timeout=60_000)
    again = answers(page)
    # The retried turn replaces the old answer rather than adding a second copy of the question.
    assert len(again) == len(first)
    assert page.locator("#dc-chat [data-testid='user']").count() == 1
    page.click("#dc-clear")
    page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length === 0", timeout=10_000)
