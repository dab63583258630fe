"""The web app on a phone's width (400 px) and the Knowledge tab's check of the docs, in headless Chromium
against a real server: the question box keeps the row, the Source box is not a sliver, the usage chart
and the findings table keep a size they can be read at (scrolling sideways inside their box, never the
page), and "Check docs" says what it found, with file names shown as they are."""
from __future__ import annotations

import pytest
from support.browser import have_chromium, open_chat, small_project_server
from support.corpus import write_tree

from indexes.build import ingest

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

NARROW = 400
# Docs out of step with their code: one example imports a name `gadgets/__init__.py` lacks, one names a
# method `Runner` lacks (tests/test_drift.py has every kind).
DRIFTY = {
    "gadgets/__init__.py": '''
        """Gadgets."""
        from gadgets.core import Runner
        ''',
    "gadgets/core.py": '''
        class Runner:
            """Runs a gadget."""

            def run_sync(self, prompt):
                return prompt
        ''',
    "docs/old.md": '''
        # Old guide

        Run it to the end with `Runner.run_synchronously()`.

        ```python
        from gadgets import Sprocket
        ```
        ''',
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with small_project_server(tmp_path_factory.mktemp("narrow")) as world:
        ingest(world["index"], [str(write_tree(world["allowed"] / "drifty", DRIFTY))], "drifty")
        yield world


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def page_overflow(page) -> int:
    """How far the page itself scrolls sideways (0: nothing sticks out of the window)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def check_docs(page, kb: str) -> str:
    page.get_by_role("tab", name="Knowledge").click()
    page.fill("#dc-kb textarea, #dc-kb input", kb)
    if not page.locator("#dc-drift-refresh").is_visible():
        page.locator("#dc-drift-box").get_by_text("Docs out of step with the code").click()
    page.click("#dc-drift-refresh")
    page.wait_for_function("kb => { const t = document.querySelector('#dc-drift-note').innerText; "
                           "return t.includes(`base ${kb}`) && !t.includes('processing'); }", arg=kb, timeout=30_000)
    return page.inner_text("#dc-drift-note")


def test_on_a_phone_the_question_box_keeps_the_row_beside_a_small_send(browser, world):
    page = open_chat(browser, world["url"], NARROW, 800)
    question, send = box(page, "#dc-input textarea"), box(page, "#dc-send")
    assert question["width"] >= 200, question  # not half the row, its placeholder wrapped on three lines
    assert send["x"] >= question["x"] + question["width"] and abs(send["y"] - question["y"]) < 40, (question, send)
    assert send["x"] + send["width"] <= NARROW
    page.context.close()


def test_on_a_phone_the_source_box_takes_the_row(browser, world):
    page = open_chat(browser, world["url"], NARROW, 800)
    page.get_by_role("tab", name="Knowledge").click()
    source = box(page, "#dc-source textarea, #dc-source input")
    assert source["width"] >= 280, source  # not a 130 px sliver beside the knowledge base's name
    page.context.close()


def test_on_a_phone_the_usage_chart_is_readable_and_scrolls_in_its_box(browser, world):
    page = open_chat(browser, world["url"], NARROW, 800)
    page.get_by_role("tab", name="Usage").click()
    chart = page.locator("#dc-usage-chart img")
    chart.wait_for(timeout=30_000)
    assert chart.bounding_box()["width"] >= 700  # four panels squeezed into 336 px: 4 px labels
    assert chart.bounding_box()["x"] >= 0  # its left edge can be seen, not centred off-screen
    scrolls = page.evaluate("() => { const c = document.querySelector('#dc-usage-chart'); "
                            "return c.scrollWidth > c.clientWidth + 100 && getComputedStyle(c).overflowX === 'auto'; }")
    assert scrolls
    assert page_overflow(page) == 0
    page.context.close()


def test_check_docs_says_what_it_found_and_shows_file_names_as_they_are(browser, world):
    page = open_chat(browser, world["url"], 1280, 900)
    assert check_docs(page, "drifty") == "2 findings in knowledge base drifty."
    links = page.evaluate("() => [...document.querySelectorAll('#dc-drift a')].map(a => a.innerText)")
    # Markdown would make `__init__` bold "init": the file name is shown as the file is named.
    assert "gadgets/__init__.py:1-1" in links, links
    assert check_docs(page, "default") == "✅ No doc passage of knowledge base default is out of step with the code."
    page.context.close()


def test_on_a_phone_the_findings_table_keeps_its_words_whole(browser, world):
    page = open_chat(browser, world["url"], NARROW, 800)
    check_docs(page, "drifty")
    # The word on screen: the innermost box whose text is "missing" (whatever elements the table draws with).
    cell = """() => { const boxes = [...document.querySelectorAll('#dc-drift *')]
        .filter(e => e.children.length === 0 && e.innerText && e.innerText.trim() === 'missing')
        .map(e => e.getBoundingClientRect()).filter(b => b.width > 0);
        return boxes.length ? boxes[0].toJSON() : null; }"""
    page.locator("#dc-drift").scroll_into_view_if_needed()  # its rows are drawn once in view
    page.wait_for_function(cell, timeout=10_000)
    kind = page.evaluate(cell)
    # "missing" on one line, not a letter per line in a 25 px column.
    assert kind and kind["height"] < 35 and kind["width"] > 40, kind
    assert page_overflow(page) == 0
    page.context.close()
