"""Time to first token in the web UI: from clicking Send to the answer's first words on screen.

A real server (ui/server.py) over this repository's KB (bench/common.py: repo_index), driven by
headless Chromium. Two set-ups side by side: offline (no model: the answer is the quoted
passages) and a zero-latency model (tests/support/llm_server.py, an OpenAI-compatible server that streams
at once), so what is measured is what the copilot and the page add. The clock runs in the page:
from the click to the first text of the answering assistant's message (the Guide is skipped by
addressing @Coding / @Tutoring), and to the end of the turn.

    .venv/bin/python bench/ui_latency.py [--rounds 10]
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

from common import percentile, repo_index
from support.browser import launch
from support.llm_server import LLMServer, Reply
from support.servers import ServerThread

from copilot.chat import Copilot  # noqa: E402
from ui.server import create_app  # noqa: E402

QUESTIONS = ["@Coding where is the command line defined?", "@Tutoring how do I add a source and re-index?",
             "@Coding what arguments does Index.search take?", "@Tutoring how do I get started?",
             "@Coding where is the hybrid search fusion implemented?", "@Tutoring how do I add my own assistant?"]

# Installed before each click: records when the answering assistant's first words appear and when
# the turn ends (Send enabled again).
CLOCK = """n => {
  window.__clock = {t0: performance.now(), first: null, end: null};
  const seen = n;
  const obs = new MutationObserver(() => {
    const c = window.__clock;
    const speakers = [...document.querySelectorAll('#dc-chat .dc-speaker')];
    if (c.first === null && speakers.length > seen) {
      const msg = speakers[speakers.length - 1].closest('.message');
      const words = msg ? msg.innerText.replace(speakers[speakers.length - 1].innerText, '').trim() : '';
      if (words && words !== '…') c.first = performance.now() - c.t0;
    }
    const send = document.querySelector('#dc-send');
    if (c.first !== null && c.end === null && send && !send.disabled) c.end = performance.now() - c.t0;
  });
  obs.observe(document.querySelector('#dc-chat'), {childList: true, subtree: true, characterData: true});
  obs.observe(document.querySelector('#dc-send'), {attributes: true});
}"""


def measure(browser, url: str, rounds: int) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/")
    page.wait_for_selector("#dc-input textarea", timeout=60_000)
    ask(page, QUESTIONS[0])  # warm-up: the model and the page's first render
    firsts, ends = [], []
    for i in range(rounds):
        q = QUESTIONS[i % len(QUESTIONS)]
        t = ask(page, q)
        firsts.append(t["first"])
        ends.append(t["end"])
    page.close()
    return {"first_token_ms": {"p50": round(percentile(firsts, 50)), "p95": round(percentile(firsts, 95))},
            "turn_ms": {"p50": round(percentile(ends, 50)), "p95": round(percentile(ends, 95))}, "n": rounds}


def ask(page, question: str) -> dict:
    page.fill("#dc-input textarea", question)
    page.evaluate(CLOCK, page.locator("#dc-chat .dc-speaker").count())
    page.click("#dc-send")
    page.wait_for_function("() => window.__clock.end !== null", timeout=120_000)
    return page.evaluate("() => window.__clock")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    index = repo_index()
    llm = LLMServer().start()
    llm.default = Reply(text="The command line is defined in ui/cli.py [1]. " + "More words follow. " * 20)
    out = {}
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for name in ("offline", "zero-latency model"):
                cfg = copy.deepcopy(index.cfg)
                cfg.data_dir = Path(tempfile.mkdtemp(prefix="ui-latency-"))  # conversations and usage apart
                if name != "offline":
                    cfg.chat.provider, cfg.chat.base_url, cfg.chat.model = "openai", llm.url, "test-model"
                    cfg.chat.api_key = "sk-test-key-0123456789"
                with ServerThread(create_app(Copilot(cfg, index=index), cfg)) as url:
                    out[name] = measure(browser, url, args.rounds)
                if not args.json:
                    f = out[name]
                    print(f"{name:20s} first token p50 {f['first_token_ms']['p50']} ms, p95 "
                          f"{f['first_token_ms']['p95']} ms; whole turn p50 {f['turn_ms']['p50']} ms "
                          f"(n={f['n']})", flush=True)
            browser.close()
    finally:
        llm.stop()
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
