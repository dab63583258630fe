"""Indexing from the Knowledge tab, in headless Chromium against a real server: a progress bar in
view that counts chunks and advances, a job the Knowledge API lists, a second request queued behind
the first, a summary at the end, a cancel that leaves the knowledge base consistent and searchable,
and a bar that says whom a job waits for while another writer holds the lock, cancelled at once."""
from __future__ import annotations

import random
import re
import threading
import uuid

import pytest
from support.browser import answers, ask, first_cited_path, have_chromium, open_chat, small_project_server
from support.corpus import write_tree
from support.live import request

from indexes.retrieve import retrieve
from indexes.writer import writing

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

WORDS = ("anchor beacon cobalt delta ember falcon glacier harbor indigo juniper kelvin lantern meadow nebula "
         "orchid pylon quartz raven saffron tundra umber vortex willow xenon yarrow zephyr").split()


def handbook(root, files: int = 40, sections: int = 9):
    """Docs nobody embedded before (a fresh seed each time, so the embedding cache cannot shortcut them)."""
    rng = random.Random(uuid.uuid4().int)
    tree = {}
    for f in range(files):
        parts = [f"# Handbook {f}"]
        for s in range(sections):
            words = " ".join(rng.choice(WORDS) for _ in range(70))
            tag = f"tag{rng.getrandbits(32):08x}"  # a word of its own, to find this section by
            parts.append(f"## Procedure {f}.{s}\n\nThe {WORDS[(f + s) % len(WORDS)]} procedure {f}.{s} is filed "
                         f"under {tag}: {words}.")
        tree[f"handbook/part{f:02d}.md"] = "\n\n".join(parts) + "\n"
    return write_tree(root, tree)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with small_project_server(tmp_path_factory.mktemp("indexing")) as world:
        yield world


def start_indexing(page, folder, kb: str) -> None:
    page.get_by_role("tab", name="Knowledge").click()
    page.fill("#dc-source textarea, #dc-source input", str(folder))
    page.fill("#dc-kb textarea, #dc-kb input", kb)
    page.click("#dc-add")
    page.wait_for_selector("#dc-progress-bar", timeout=30_000)


def bar(page) -> dict:
    return page.evaluate("""() => {
        const b = document.querySelector('#dc-progress-bar');
        if (!b) return null;
        const r = b.querySelector('.dc-progress-track').getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return {value: +b.getAttribute('aria-valuenow'), done: +b.dataset.done, total: +b.dataset.total,
                label: b.innerText, covered: !(hit && b.contains(hit)), inView: r.top >= 0 && r.bottom <= innerHeight,
                add: document.querySelector('#dc-add').disabled,
                reindex: document.querySelector('#dc-reindex').disabled};
    }""")


def test_the_progress_bar_is_in_view_counts_chunks_and_advances(browser, world):
    folder = handbook(world["allowed"] / "watch")
    page = open_chat(browser, world["url"], 1280, 800)
    start_indexing(page, folder, "watch")
    page.wait_for_function("() => { const b = document.querySelector('#dc-progress-bar'); "
                           "return b && +b.dataset.done > 0; }", timeout=120_000)
    first = bar(page)
    assert first["inView"] and not first["covered"], first  # the element at its centre is the bar
    assert "chunks" in first["label"] and first["total"] > 100, first
    # The server's one queue runs it: the Knowledge API lists it, as the tab's.
    listed = request(world["url"] + "/v1/knowledge/jobs")[1]["jobs"]
    assert [(j["by"], j["state"]) for j in listed if j["kb"] == "watch"] == [("ui", "running")], listed
    # A second request meanwhile is queued behind it, and the page says so.
    assert not first["add"] and not first["reindex"], first
    small = write_tree(world["allowed"] / "watch-more", {"more.md": "# More\n\nOne more page of the handbook.\n"})
    page.fill("#dc-source textarea, #dc-source input", str(small))
    page.click("#dc-add")
    page.wait_for_function("() => /Queued/.test(document.querySelector('#dc-index-status').innerText)",
                           timeout=30_000)
    assert f"add {small} to 'watch' starts when" in page.inner_text("#dc-index-status")
    assert f"Queued after it: add {small}" in bar(page)["label"]
    page.wait_for_function("n => { const b = document.querySelector('#dc-progress-bar'); "
                           "return b && +b.getAttribute('aria-valuenow') > n; }", arg=first["value"], timeout=120_000)
    page.wait_for_function("() => /Indexed|❌/.test(document.querySelector('#dc-index-status').innerText)",
                           timeout=300_000)
    page.wait_for_function("() => !document.querySelector('#dc-progress-bar')", timeout=120_000)
    status = page.inner_text("#dc-index-status")
    assert "Indexed" in status and "40 files" in status and "chunks" in status, status
    assert status.count("Indexed") == 2 and "1 file (" in status, status  # both jobs, each summed up
    assert not page.locator("#dc-add").is_disabled() and not page.locator("#dc-reindex").is_disabled()
    assert world["index"].catalog.count_chunks("watch") >= 300
    page.context.close()


def test_cancel_leaves_the_index_consistent_and_search_working(browser, world):
    folder = handbook(world["allowed"] / "stop", files=60)
    index = world["index"]
    page = open_chat(browser, world["url"], 1280, 800)
    start_indexing(page, folder, "stop")
    # Past the first batch written (256 chunks), then cancel.
    page.wait_for_function("() => { const b = document.querySelector('#dc-progress-bar'); "
                           "return b && +b.dataset.done > 300; }", timeout=300_000)
    page.click("#dc-cancel")
    page.wait_for_function("() => /Cancelled|Indexed|❌/.test(document.querySelector('#dc-index-status').innerText)",
                           timeout=120_000)
    status = page.inner_text("#dc-index-status")
    assert "Cancelled" in status, status
    # Consistent: the catalog, the vector store and the lexical index hold the same chunks; nothing is dirty.
    kept = index.catalog.count_chunks("stop")
    total_files = 60
    assert kept > 0
    assert index.store.count(index.collection("stop")) == kept
    assert set(index.lexical("stop").ids) == index.catalog.chunk_ids("stop")
    assert not index.catalog.kb("stop").dirty
    indexed = [r[0] for r in index.catalog.db.execute("SELECT path FROM files WHERE kb='stop' ORDER BY path")]
    assert 0 < len(indexed) < total_files
    # Search works on what was indexed, in the chat too.
    tag = re.search(r"tag[0-9a-f]{8}", index.catalog.file_chunks("stop", indexed[0])[1].text).group(0)
    found = retrieve(index, f"Which procedure is filed under {tag}?", ["stop"], k=3)
    assert found.hits and found.hits[0].chunk.path == indexed[0]
    page.get_by_role("tab", name="Chat").click()
    ask(page, f"@Tutoring which procedure is filed under {tag}?")
    assert first_cited_path(answers(page)[-1]) == indexed[0]
    # Re-indexing completes it, embedding only what is missing.
    page.get_by_role("tab", name="Knowledge").click()
    page.fill("#dc-kb textarea, #dc-kb input", "stop")
    page.click("#dc-reindex")
    page.wait_for_function("() => /Indexed|❌/.test(document.querySelector('#dc-index-status').innerText)",
                           timeout=300_000)
    assert "Indexed" in page.inner_text("#dc-index-status")
    assert index.catalog.db.execute("SELECT COUNT(*) FROM files WHERE kb='stop'").fetchone()[0] == total_files
    page.context.close()


def test_the_bar_says_whom_a_job_waits_for_and_cancel_stops_the_wait(browser, world):
    folder = write_tree(world["allowed"] / "later", {"later.md": "# Later\n\nWritten once the lock is free.\n"})
    index = world["index"]
    held, release = threading.Event(), threading.Event()

    def hold():
        with writing(index.cfg.data_dir, "a test holder"):
            held.set()
            release.wait(300)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(30)
    page = open_chat(browser, world["url"], 1280, 800)
    try:
        start_indexing(page, folder, "later")
        page.wait_for_function("() => /Waiting for a test holder/.test("
                               "document.querySelector('#dc-progress-bar').innerText)", timeout=30_000)
        assert "Fetching" not in bar(page)["label"]
        page.click("#dc-cancel")
        page.wait_for_function("() => /Cancelled|Indexed|❌/.test(document.querySelector('#dc-index-status')"
                               ".innerText)", timeout=30_000)
        assert page.inner_text("#dc-index-status").strip() == ("⏹️ Cancelled while it waited for another writer; "
                                                               "nothing was written.")
        assert holder.is_alive() and index.catalog.kb("later") is None  # it gave up; the lock was never its
    finally:
        release.set()
        holder.join(30)
        page.context.close()
