"""Time from `make run` on a fresh clone to the web chat answering its first question.

Clones this repository (its committed HEAD) into a temporary folder, runs `make run` there as a
newcomer would (set-up of .venv, indexing of the repository into KB 'default', serving), and
times each stage from the lines it prints, then opens the page in headless Chromium, clicks the
example "How do I get started?" and waits for the answer. Packages come from pip's cache when it
has them, as on any machine that installed them before; `--no-cache` makes pip download all.

    .venv/bin/python bench/first_run.py [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import ROOT
from support.browser import launch

STAGES = {"Nothing is indexed yet": "set-up done, indexing starts", "devcopilot is running": "serving"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone (its .venv) afterwards")
    ap.add_argument("--no-cache", action="store_true", help="pip downloads every package")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="first-run-"))
    clone = work / "devcopilot"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "VIRTUAL_ENV"))}
    if args.no_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    t0 = time.monotonic()
    proc = subprocess.Popen(["make", "run", f"ARGS=--port {port}"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    marks: dict[str, float] = {}
    log: list[str] = []

    def read():
        for line in proc.stdout:
            log.append(line.rstrip())
            for needle, stage in STAGES.items():
                if needle in line and stage not in marks:
                    marks[stage] = time.monotonic() - t0

    threading.Thread(target=read, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            if proc.poll() is not None:
                raise SystemExit("make run exited:\n" + "\n".join(log[-30:]))
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        marks["page served"] = time.monotonic() - t0
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + "/")
            page.wait_for_selector("#dc-input textarea", timeout=120_000)
            marks["chat on screen"] = time.monotonic() - t0
            page.get_by_text("How do I get started?", exact=True).first.click()
            page.wait_for_function("() => [...document.querySelectorAll('#dc-chat .dc-speaker')].some(s => "
                                   "s.dataset.assistant !== 'Guide' && !s.classList.contains('dc-streaming'))",
                                   timeout=300_000)
            marks["first answer"] = time.monotonic() - t0
            # What it cites: the links of the last answer (its other passages are collapsed, so not in its text).
            links = page.eval_on_selector_all("#dc-chat a[href*='/source']", "els => els.map(e => e.textContent)")
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    marks = {k: round(v, 1) for k, v in sorted(marks.items(), key=lambda kv: kv[1])}
    banners = [ln for ln in log if "Warning" in ln or "deprecated" in ln.lower()]
    if args.json:
        print(json.dumps({"seconds": marks, "banners": banners}))
    else:
        for stage, s in marks.items():
            print(f"{s:8.1f} s  {stage}")
        print("answer cites README.md" if any("README.md" in t for t in links) else
              f"answer does NOT cite README.md (it cites {links[:3]})", "| build banners printed:", len(banners))
        for line in banners[:5]:
            print("  banner:", line[:160])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
