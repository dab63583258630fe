"""Driving the web UI in headless Chromium (Debian's, through Playwright): launch, ask, read answers."""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from support.corpus import SMALL_PROJECT, write_tree
from support.servers import ServerThread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def open_chat(browser, url: str, width: int = 1280, height: int = 900, **context):
    """A new page (in its own browser context, so its own localStorage) on the chat, ready to type."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, **context)
    page = ctx.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#dc-input textarea", timeout=60_000)
    wait_idle(page)
    return page


def wait_idle(page, timeout: int = 120_000) -> None:
    """Until no turn is running: Send is enabled again and nothing streams."""
    page.wait_for_function("() => { const b = document.querySelector('#dc-send'); "
                           "return b && !b.disabled && !document.querySelector('#dc-chat .dc-streaming'); }",
                           timeout=timeout)


def ask(page, question: str) -> None:
    """Send a question; wait until every answer of the turn has finished streaming."""
    before = page.locator("#dc-chat .dc-speaker").count()
    page.fill("#dc-input textarea", question)
    page.click("#dc-send")
    page.wait_for_function(
        "n => document.querySelectorAll('#dc-chat .dc-speaker').length > n", arg=before, timeout=60_000)
    wait_idle(page)
    settle(page)


def settle(page) -> None:
    """Until the page has drawn two more frames: what it does on the next frame after a change (the chat's
    height follows the window, ui/app.py) has been done."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def bot_messages(page) -> list[dict]:
    """Each assistant message: speaker name, text, and its links."""
    return page.evaluate("""() => [...document.querySelectorAll('#dc-chat .dc-speaker')].map(s => {
        const msg = s.closest('.message') || s.parentElement.parentElement;
        return {speaker: s.innerText.trim(), text: msg.innerText,
                links: [...msg.querySelectorAll('a')].map(a => ({text: a.innerText, href: a.getAttribute('href')}))};
    })""")


def answers(page) -> list[dict]:
    """Assistant messages that cite sources."""
    return [m for m in bot_messages(page) if m["links"]]


def cited(answer: dict) -> list[dict]:
    """The numbered sources of an answer (links whose text is file:start-end), in order."""
    return [a for a in answer["links"] if re.match(r"^\S+:\d+-\d+$", a["text"])]


def first_cited_path(answer: dict) -> str:
    found = cited(answer)
    return found[0]["text"].rsplit(":", 1)[0] if found else ""


@contextlib.contextmanager
def small_project_server(root: Path) -> Iterator[dict]:
    """SMALL_PROJECT under an allowed root, indexed as KB 'default' and served by the real app (offline
    model): {url, allowed, copilot, index, project}."""
    from copilot.chat import Copilot
    from copilot.config import load_config
    from indexes.build import ingest
    from indexes.search import Index
    from ui.server import create_app

    allowed = root / "allowed"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": {"allowed_roots": [str(allowed)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    with ServerThread(create_app(copilot, cfg)) as url:
        yield {"url": url, "allowed": allowed, "copilot": copilot, "index": index, "project": project}
