"""The web UI in headless Chromium: a real server, a real Copilot (offline mode), real indexes.

The server runs uvicorn in a thread on a free loopback port; Playwright drives Debian's Chromium.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from support.browser import (
    answers,
    ask,
    bot_messages,
    cited,
    first_cited_path,
    have_chromium,
    open_chat,
    settle,
    small_project_server,
    wait_idle,
)
from support.corpus import write_tree
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

ZORB = {"engines/fluxring.md": """
    # FluxRing

    A FluxRing is the rotating core of a Zorb engine. A FluxRing can have at most seven spokes;
    each spoke carries one phase coil. Fit the spokes clockwise, starting at the index mark.
    """}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with small_project_server(tmp_path_factory.mktemp("ui")) as world:
        yield world


@pytest.fixture
def page(browser, world):
    page = open_chat(browser, world["url"])
    yield page
    page.context.close()


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
    # Each citation says which knowledge base it came from.
    assert "KB default" in answer["text"]
    # The link opens the cited file with the cited lines marked.
    view = browser.new_page()
    view.goto(world["url"] + href)
    marked = view.locator("tr.hit")
    assert marked.count() >= 1
    assert "MemoryStore" in " ".join(marked.all_inner_texts())
    view.close()


def test_citation_text_and_its_link_name_the_same_lines(page):
    ask(page, "@Coding how does MemoryStore save a conversation?")
    answer = answers(page)[-1]
    text = answer["text"]
    # The quoted passage's head ("[1] path lines a-b (open)") and its link agree...
    head = re.search(r"\[1\] (\S+) lines (\d+)-(\d+)", text)
    assert head, text
    opened = [a for a in answer["links"] if a["text"] == "open"]
    assert opened, answer["links"]
    query = parse_qs(urlparse(opened[0]["href"]).query)
    assert query["lines"] == [f"{head.group(2)}-{head.group(3)}"]
    assert query["path"][0].endswith(head.group(1))
    # ...and so does every numbered source with its link.
    for a in cited(answer):
        lines = parse_qs(urlparse(a["href"]).query)["lines"][0]
        assert a["text"].endswith(":" + lines), a


def test_at_coding_is_answered_by_coding_with_code_sources(page):
    ask(page, "@Coding what arguments does build_gadget take?")
    answer = answers(page)[-1]
    assert answer["speaker"].endswith("Coding")
    assert first_cited_path(answer) == "widgets/core.py", answer["links"]
    assert "build_gadget" in answer["text"]


def test_example_buttons_send(page):
    page.get_by_text("Hello! Who can help me here?").first.click()
    page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length > 0", timeout=60_000)
    wait_idle(page)
    assert page.locator("#dc-chat [data-testid='user']").count() == 1
    greeting = bot_messages(page)[-1]
    assert greeting["speaker"].endswith("Guide")
    # The greeting says which knowledge bases the chat reads.
    assert "KB 'default'" in greeting["text"]


def test_knowledge_tab_adds_a_new_kb_that_the_next_message_uses(page, world):
    folder = write_tree(world["allowed"] / "zorb", ZORB)
    page.get_by_role("tab", name="Knowledge").click()
    page.fill("#dc-source textarea, #dc-source input", str(folder))
    page.fill("#dc-kb textarea, #dc-kb input", "zorb")
    page.click("#dc-add")
    page.wait_for_function("() => /Indexed|❌/.test(document.querySelector('#dc-index-status').innerText)",
                           timeout=120_000)
    status = page.inner_text("#dc-index-status")
    assert "Indexed" in status and "zorb" in status, status
    page.wait_for_function("() => document.querySelector('#dc-kbs').innerText.includes('zorb')", timeout=10_000)
    assert str(folder) in page.inner_text("#dc-sources")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How many spokes can a FluxRing have?")
    answer = answers(page)[-1]
    assert first_cited_path(answer) == "engines/fluxring.md", answer["links"]
    assert "seven spokes" in answer["text"] and "KB zorb" in answer["text"]
    # Questions about the other KB still answer from it.
    ask(page, "@Coding what arguments does build_gadget take?")
    assert first_cited_path(answers(page)[-1]) == "widgets/core.py"


def test_kb_selector_narrows_the_chat_to_one_kb(page, world):
    if world["index"].catalog.kb("zorb") is None:
        ingest(world["index"], [str(write_tree(world["allowed"] / "zorb", ZORB))], "zorb")
    page.locator("#dc-kb-select input").click()
    page.get_by_role("option", name="zorb").click()
    ask(page, "@Tutoring how do I give an agent long-term memory?")
    narrowed = answers(page)[-1]
    assert all("fluxring" in a["text"] for a in cited(narrowed)), narrowed["links"]
    assert "KB default" not in narrowed["text"]
    page.locator("#dc-kb-select input").click()
    page.get_by_role("option", name="All knowledge bases").click()
    ask(page, "@Tutoring how do I give an agent long-term memory?")
    assert first_cited_path(answers(page)[-1]) == "README.md"


@pytest.mark.parametrize("spec, says", [
    ("/etc", "outside the folders this server may index"),
    ("{allowed}/../outside", "contains '..'"),
])
def test_knowledge_tab_refuses_paths_outside_allowed_roots(page, world, spec, says):
    chunks = world["index"].catalog.count_chunks("default")
    page.get_by_role("tab", name="Knowledge").click()
    page.fill("#dc-source textarea, #dc-source input", spec.format(allowed=world["allowed"]))
    page.click("#dc-add")
    # The message, once Gradio's "processing" overlay on the element has gone.
    page.wait_for_function("() => { const t = document.querySelector('#dc-index-status').innerText; "
                           "return t.includes('❌') && !t.includes('processing'); }", timeout=30_000)
    status = page.inner_text("#dc-index-status")
    assert says in status
    assert "Traceback" not in status and len(status.strip().splitlines()) == 1
    assert world["index"].catalog.count_chunks("default") == chunks


def test_thumbs_up_is_stored_with_the_exchange(page, world):
    ask(page, "@Tutoring how are rate limits retried?")
    conversations = world["copilot"].conversations
    before = conversations.feedback_counts()["up"]
    liked = page.locator("#dc-chat button[aria-label='Like']").last
    liked.click()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and conversations.feedback_counts()["up"] == before:
        time.sleep(0.2)
    assert conversations.feedback_counts() == {"up": before + 1, "down": 0}  # stored, as a thumbs up


def test_usage_tab_draws_charts_and_lists_a_gap_after_i_dont_know(page):
    question = "How do I bake sourdough bread with a levain?"
    ask(page, question)
    assert "I don't know" in bot_messages(page)[-1]["text"]
    page.get_by_role("tab", name="Usage").click()
    page.wait_for_function("q => document.querySelector('#dc-gaps').innerText.includes(q)", arg=question,
                           timeout=30_000)
    # A chart drawn by the plotting library (an image), not text.
    chart = page.locator("#dc-usage-chart img")
    chart.wait_for(timeout=30_000)
    box = chart.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 200
    rows = page.evaluate("() => [...document.querySelectorAll('#dc-gaps [role=row]')].map(r => r.innerText)")
    row = [r.split("\n") for r in rows if question in r]
    assert row and row[0][1:3] == ["1", "1"], rows  # asked once, answered "I don't know" once
    assert "❌" not in page.inner_text("#dc-usage")
    # The gaps download as CSV.
    with page.expect_download() as dl:
        page.click("#dc-gaps-csv")
    assert question in Path(dl.value.path()).read_text(encoding="utf-8")


def test_answer_streams_from_a_model_token_by_token(browser, world, tmp_path):
    """With a model (the local OpenAI-compatible test server), the answer grows in the page as pieces arrive."""
    from support.llm_server import LLMServer, Reply

    from ui.server import create_app

    words = [f"word{i}" for i in range(40)]
    llm = LLMServer().start()
    llm.default = Reply(text="Call build_gadget with a name [1]. " + " ".join(words), token_delay=0.08)
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"), "chat": {
        "provider": "openai", "base_url": llm.url, "api_key": "sk-test-key-0123456789", "model": "test-model"}})
    copilot = Copilot(cfg, index=world["index"])
    try:
        with ServerThread(create_app(copilot, cfg)) as url:
            page = open_chat(browser, url)
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
            page.context.close()
    finally:
        llm.stop()


def test_retry_answers_again_and_new_chat_starts_empty(page):
    ask(page, "@Coding what arguments does build_gadget take?")
    first = answers(page)
    assert first and first[-1]["speaker"].endswith("Coding")
    # Retry keeps Send enabled: the turn has begun once the answer's speaker line is a new one.
    page.evaluate("() => { [...document.querySelectorAll('#dc-chat .dc-speaker')].pop().dataset.old = '1'; }")
    page.locator("#dc-chat button[aria-label='Retry']").last.click()
    page.wait_for_function("() => { const s = [...document.querySelectorAll('#dc-chat .dc-speaker')].pop(); "
                           "return s && !s.dataset.old; }", timeout=60_000)
    wait_idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('#dc-chat .dc-speaker')]"
                           ".some(s => s.innerText.includes('Coding'))", timeout=60_000)
    again = answers(page)
    # The retried turn replaces the old answer rather than adding a second copy of the question.
    assert len(again) == len(first)
    assert page.locator("#dc-chat [data-testid='user']").count() == 1
    page.click("#dc-new")
    page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length === 0", timeout=10_000)


@pytest.mark.parametrize("width, height", [(1280, 800), (1280, 1100), (900, 650)])
def test_chat_fills_the_window_and_the_input_stays_in_view(browser, world, width, height):
    page = open_chat(browser, world["url"], width, height)
    chat = page.locator("#dc-chat").bounding_box()
    send = page.locator("#dc-send").bounding_box()
    box = page.locator("#dc-input textarea").bounding_box()
    assert chat["height"] > 0.55 * height, chat  # no fixed ~430 px panel
    assert send["y"] + send["height"] <= height and box["y"] + box["height"] <= height, (send, box, height)
    page.set_viewport_size({"width": width, "height": height + 200})
    settle(page)
    taller = page.locator("#dc-chat").bounding_box()
    assert taller["height"] >= chat["height"] + 150  # follows the window
    page.context.close()


def test_view_lands_on_the_start_of_each_new_answer_and_code_wraps(browser, world):
    page = open_chat(browser, world["url"], 1280, 700)
    for q in ("@Coding what arguments does build_gadget take?", "@Coding how does MemoryStore save a conversation?",
              "@Coding what arguments does build_gadget take?"):
        ask(page, q)
    # The last answer's first line is in view at the top of the chat, not its source list at the bottom.
    top = page.evaluate("""() => {
        const chat = document.querySelector('#dc-chat').getBoundingClientRect();
        const s = [...document.querySelectorAll('#dc-chat .dc-speaker')].pop().getBoundingClientRect();
        return {chatTop: chat.top, chatBottom: chat.bottom, speaker: s.top};
    }""")
    assert top["chatTop"] - 5 <= top["speaker"] <= top["chatTop"] + 0.4 * (top["chatBottom"] - top["chatTop"]), top
    # Code blocks wrap: none is wider than its box at 1280 px.
    wide = page.evaluate("() => [...document.querySelectorAll('#dc-chat pre')]"
                         ".filter(p => p.scrollWidth > p.clientWidth + 1).length")
    assert page.locator("#dc-chat pre").count() > 0 and wide == 0
    page.context.close()
