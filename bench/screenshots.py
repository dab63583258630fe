"""Screenshots of the web UI, to look at by eye (saved under bench/.work/screenshots/, not committed).

A real server over this repository's KB (as a first `make run` builds it) plus a folder indexed
from the Knowledge tab while the shots are taken; headless Chromium at 1280x800 (a laptop),
900x650 (a small window) and 390x844 (a phone). Shots: the empty chat with its examples, an
example answered, a code answer, the sidebar after a few conversations and a reload, the
Knowledge tab while indexing (the progress bar) and after, and the Usage tab.

    .venv/bin/python bench/screenshots.py [--out DIR]
"""
from __future__ import annotations

import argparse
import copy
import random
import tempfile
from pathlib import Path

from common import WORK, repo_index
from support.browser import launch
from support.servers import ServerThread

from copilot.chat import Copilot
from ui.server import create_app

SIZES = {"laptop": (1280, 800), "small": (900, 650), "phone": (390, 844)}


def handbook(root: Path, files: int = 30) -> Path:
    """Docs never embedded before (a fresh seed), so the indexing takes long enough to watch."""
    rng = random.Random()
    words = "anchor beacon cobalt delta ember falcon glacier harbor indigo juniper lantern meadow".split()
    for f in range(files):
        body = "\n\n".join(f"## Step {f}.{s}\n\n" + " ".join(rng.choice(words) for _ in range(90)) for s in range(8))
        (root / f"part{f:02d}.md").parent.mkdir(parents=True, exist_ok=True)
        (root / f"part{f:02d}.md").write_text(f"# Handbook {f}\n\n{body}\n", encoding="utf-8")
    return root


def wait_idle(page) -> None:
    page.wait_for_function("() => { const b = document.querySelector('#dc-send'); "
                           "return b && !b.disabled && !document.querySelector('#dc-chat .dc-streaming'); }",
                           timeout=180_000)
    page.wait_for_timeout(400)


def ask(page, question: str) -> None:
    n = page.locator("#dc-chat .dc-speaker").count()
    page.fill("#dc-input textarea", question)
    page.click("#dc-send")
    page.wait_for_function("n => document.querySelectorAll('#dc-chat .dc-speaker').length > n", arg=n,
                           timeout=120_000)
    wait_idle(page)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(WORK / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    index = repo_index()
    scratch = Path(tempfile.mkdtemp(prefix="screens-"))
    cfg = copy.deepcopy(index.cfg)
    cfg.data_dir = scratch / "data"  # conversations and usage of this run only; the indexes are shared
    cfg.server.allowed_roots = [str(scratch)]
    copilot = Copilot(cfg, index=index)
    shots = []
    with ServerThread(create_app(copilot, cfg)) as url, sync_playwright() as p:
        browser = launch(p)
        for size, (w, h) in SIZES.items():
            page = browser.new_context(viewport={"width": w, "height": h}).new_page()
            page.goto(url + "/")
            page.wait_for_selector("#dc-input textarea", timeout=60_000)
            page.wait_for_timeout(1500)

            def shot(name: str, page=page, size=size) -> None:
                path = out / f"{size}-{name}.png"
                page.screenshot(path=str(path))
                shots.append(path)

            shot("1-chat-empty")
            page.get_by_text("How do I get started?", exact=True).first.click()
            page.wait_for_function("() => document.querySelectorAll('#dc-chat .dc-speaker').length > 0")
            wait_idle(page)
            shot("2-example-answered")
            ask(page, "@Coding where is the hybrid search fusion implemented?")
            shot("3-code-answer")
            page.click("#dc-new")  # the chat empties a moment later: ask() counts answers from there
            page.wait_for_function("() => !document.querySelector('#dc-chat .dc-speaker')")
            ask(page, "How do I add my own assistant?")
            page.reload()
            page.wait_for_selector("#dc-input textarea")
            page.wait_for_timeout(2500)
            shot("4-sidebar-after-reload")
            if size == "laptop":
                page.get_by_role("tab", name="Knowledge").click()
                page.fill("#dc-source textarea, #dc-source input", str(handbook(scratch / "handbook")))
                page.fill("#dc-kb textarea, #dc-kb input", "handbook")
                page.click("#dc-add")
                page.wait_for_function("() => { const b = document.querySelector('#dc-progress-bar'); "
                                       "return b && +b.dataset.done > 0; }", timeout=300_000)
                shot("5-knowledge-indexing")
                page.wait_for_function("() => /Indexed|Cancelled|❌/.test("
                                       "document.querySelector('#dc-index-status').innerText)", timeout=900_000)
                shot("6-knowledge-done")
                page.get_by_role("tab", name="Chat").click()
                ask(page, "How do I bake sourdough bread?")
            page.get_by_role("tab", name="Usage").click()
            page.wait_for_selector("#dc-usage-chart img", timeout=60_000)
            page.wait_for_timeout(1000)
            shot("7-usage")
            page.context.close()
        browser.close()
    for path in shots:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
