"""One job queue per server: the Knowledge tab submits to it like the Knowledge API does, so its jobs
are listed and cancelled through /v1/knowledge/jobs; the tab draws whatever the queue runs, says when
a job waits for the writer lock and for whom, queues a second request behind the first; and a job
waiting for the lock (held by a thread or by another process) is cancelled at once, writing nothing."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.live import request
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.jobs import Cancelled, Jobs
from indexes.search import Index
from indexes.writer import holder, writing
from ui.app import build_app
from ui.knowledge_tab import Following, KnowledgeTab
from ui.server import create_app

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("status", "bar", "cancel", "ticker", "following", "kbs", "sources", "kb_select")
PROMPT_S = 3.0  # a cancelled wait ends within this (it looks at the cancel every few hundredths of a second)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("queue")
    allowed = root / "allowed"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": {"allowed_roots": [str(allowed)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    app = create_app(copilot, cfg)
    jobs = app.state.jobs
    # The tab as build_app makes it, over the server's queue (test_the_web_app_submits_to_the_queue_given).
    tab = KnowledgeTab(copilot, cfg, lambda current: gr.update(), jobs)
    with ServerThread(app) as url:
        yield {"url": url, "cfg": cfg, "index": index, "jobs": jobs, "tab": tab, "allowed": allowed,
               "data": Path(cfg.data_dir), "copilot": copilot}


def shown(outputs) -> dict:
    return dict(zip(OUTPUTS, outputs, strict=True))


@contextmanager
def lock_held_by_a_thread(data_dir: Path, what: str):
    """The writer lock, taken with indexes.writer.writing in a thread of this process until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with writing(data_dir, what):
            held.set()
            release.wait(300)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


@contextmanager
def lock_held_by_a_process(data_dir: Path, what: str):
    """The writer lock, held by another process (its flock) until the block ends; yields the process."""
    code = ("import sys\nfrom indexes.writer import writing\nwith writing(sys.argv[1], sys.argv[2]):\n"
            "    print('held', flush=True)\n    sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data_dir), what], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(30)


def waiting(job) -> bool:
    return job.stage == "waiting"


def kb_figures(index: Index) -> dict:
    return {kb.name: (index.catalog.count_chunks(kb.name), kb.indexed_at) for kb in index.catalog.kbs()}


def test_the_tabs_job_is_listed_waits_for_the_lock_and_is_cancelled_through_the_api(site):
    tab, jobs, index = site["tab"], site["jobs"], site["index"]
    folder = write_tree(site["allowed"] / "otters", {"otters.md": "# Otters\n\nSea otters hold hands.\n"})
    before = kb_figures(index)
    with lock_held_by_a_thread(site["data"], "a test holder"):
        started = shown(tab.add_source(str(folder), "otters", Following(), None))
        (job_id,) = started["following"].jobs
        assert jobs.wait(job_id, 30, until=waiting).stage == "waiting"
        # Listed by the Knowledge API, as the tab's.
        status, listed = request(site["url"] + "/v1/knowledge/jobs")
        assert status == 200
        (job,) = [j for j in listed["jobs"] if j["id"] == job_id]
        assert job["by"] == "ui" and job["state"] == "running" and job["stage"] == "waiting", job
        assert job["message"].startswith("Waiting for a test holder (pid ")
        # The tab's bar says whom it waits for, not "Fetching the sources".
        bar = shown(tab.poll(started["following"], None))
        assert "Waiting for a test holder (pid" in bar["bar"] and "Fetching" not in bar["bar"], bar["bar"]
        assert bar["cancel"]["visible"] and bar["cancel"]["interactive"]
        # Cancelled by DELETE while it waits: it ends at once, the lock still held by the other.
        asked = time.monotonic()
        status, cancelled = request(f"{site['url']}/v1/knowledge/jobs/{job_id}", method="DELETE")
        assert status == 200
        job = jobs.wait(job_id, 30)
        assert job.state == "cancelled" and time.monotonic() - asked < PROMPT_S, job
        assert job.message == "Cancelled while it waited for another writer; nothing was written."
        assert holder(site["data"]).what == "a test holder"
    assert kb_figures(index) == before and index.catalog.kb("otters") is None  # nothing was written
    end = shown(tab.poll(bar["following"], None))
    assert end["status"] == "⏹️ Cancelled while it waited for another writer; nothing was written."
    assert end["bar"] == "" and not end["cancel"]["visible"] and end["following"] == Following()


def test_the_tab_shows_and_cancels_an_api_job_waiting_for_another_process(site):
    tab, jobs, index = site["tab"], site["jobs"], site["index"]
    before = kb_figures(index)
    with lock_held_by_a_process(site["data"], "a test holder in another process") as other:
        status, job = request(site["url"] + "/v1/knowledge/jobs", {"action": "reindex", "kb": "default"})
        assert status == 202
        assert jobs.wait(job["id"], 30, until=waiting).stage == "waiting"
        bar = shown(tab.poll(Following(), None))
        assert bar["following"].shown == job["id"]
        assert "Re-indexing <code>default</code> (from the Knowledge API)" in bar["bar"], bar["bar"]
        assert f"Waiting for a test holder in another process (pid {other.pid}," in bar["bar"], bar["bar"]
        asked = time.monotonic()
        tab.cancel_job(bar["following"])
        ended = jobs.wait(job["id"], 30)
        assert ended.state == "cancelled" and time.monotonic() - asked < PROMPT_S, ended
        assert ended.results == []
        assert other.poll() is None  # the other still holds the lock: the job gave up, it did not take it
    assert kb_figures(index) == before
    status, listed = request(f"{site['url']}/v1/knowledge/jobs/{job['id']}")
    assert listed["state"] == "cancelled" and listed["by"] == "api"


def test_a_second_request_from_the_tab_is_queued_behind_the_first(site):
    tab, jobs = site["tab"], site["jobs"]
    first = write_tree(site["allowed"] / "first", {"a.md": "# Aardvarks\n\nAardvarks dig at night.\n"})
    second = write_tree(site["allowed"] / "second", {"b.md": "# Badgers\n\nBadgers sleep in setts.\n"})
    with lock_held_by_a_thread(site["data"], "a test holder"):
        one = shown(tab.add_source(str(first), "pair", Following(), None))
        a = one["following"].jobs[0]
        jobs.wait(a, 30, until=waiting)
        two = shown(tab.add_source(str(second), "pair", one["following"], None))
        b = two["following"].jobs[-1]
        assert two["status"] == f"⏳ Queued: add {second} to 'pair' starts when add {first} to 'pair' ends."
        assert f"Queued after it: add {second} to &#x27;pair&#x27;" in two["bar"], two["bar"]
        assert jobs.get(b).state == "queued" and jobs.get(a).state == "running"
        # The status stays while the first job is in the bar.
        assert shown(tab.poll(two["following"], None))["status"] == gr.update()
    done = jobs.wait(b, 120)
    assert done.state == "done" and jobs.get(a).state == "done" and done.started_at >= jobs.get(a).finished_at
    end = shown(tab.poll(two["following"], None))
    # Each job's summary, in today's words, and the tables redrawn.
    pattern = (r"✅ \*\*Indexed\*\* into `pair` in \d+\.\d s: 1 file \(1 new or changed, 0 removed\), (\d+) "
               r"chunks? written \((\d+) embedded, the rest cached\), \d+ chunks? in the knowledge base\.\n\n"
               r"Nothing was skipped\.")
    assert re.fullmatch(pattern + r"\n\n" + pattern, end["status"]), end["status"]
    assert any(row[0] == "pair" for row in end["kbs"])


def test_the_web_app_submits_to_the_queue_given(site):
    demo = build_app(site["copilot"], site["cfg"], site["jobs"])
    tabs = {fn.fn.__self__ for fn in demo.fns.values() if isinstance(getattr(fn.fn, "__self__", None), KnowledgeTab)}
    assert [t.jobs for t in tabs] == [site["jobs"]]


def test_the_lock_wait_gives_up_when_cancelled_and_only_then(tmp_path):
    data = tmp_path / "data"
    heard = []
    with lock_held_by_a_thread(data, "a test holder"):
        asked = threading.Event()
        threading.Timer(0.3, asked.set).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled), writing(data, "a cancelled writer", on_wait=heard.append,
                                               cancelled=asked.is_set):
            raise AssertionError("the lock was taken while another held it")
        assert 0.3 <= time.monotonic() - t0 < PROMPT_S
        assert [h.what for h in heard] == ["a test holder"] and holder(data).what == "a test holder"
    with writing(data, "the next writer", cancelled=lambda: False):  # free: taken, the cancel not asked
        assert holder(data).what == "the next writer"
    assert holder(data) is None


def test_a_job_cancelled_while_it_embeds_keeps_the_kb_consistent(tmp_path):
    """Cancel reaches a running ingest too: it stops between two batches, what it wrote consistent."""
    # Short chunks, quick to embed; past the first batch stored (256 chunks) when it is cancelled.
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"), "embedding": {"batch_size": 16},
                                         "ingest": {"chunk_chars": 200}})
    index = Index(cfg)
    folder = write_tree(tmp_path / "docs", {f"part{f:02d}.md": "\n\n".join(
        [f"# Part {f}"] + [f"## Step {s}\n\nThe harbor step {f}.{s} is checked twice, logged, and signed off by "
                           "the duty officer before the next one starts." for s in range(8)]) for f in range(80)})
    jobs = Jobs(index)
    job = jobs.submit("add", "big", [str(folder)], by="ui")
    assert jobs.wait(job.id, 300, until=lambda j: j.chunks_done >= 272).state == "running"
    assert 0 < job.chunks_done < job.chunks_total and job.files == 80
    jobs.cancel(job.id)
    job = jobs.wait(job.id, 120)
    assert job.state == "cancelled" and job.results[0]["cancelled"], job
    assert job.message == "Cancelled; what was indexed so far is kept, and the next run completes it."
    kept = index.catalog.count_chunks("big")
    assert kept == job.results[0]["total_chunks"] > 0
    assert index.store.count(index.collection("big")) == kept and not index.catalog.kb("big").dirty
    assert set(index.lexical("big").ids) == index.catalog.chunk_ids("big")


def test_another_worker_process_tab_submits_to_the_one_queue(tmp_path):
    """`serve --workers N`: a worker without the queue hands its tab's jobs to the one that holds it, over the
    Knowledge API with the server's local token; they are listed, followed and cancelled there like any other."""
    from ui.server_client import RemoteJobs

    allowed = tmp_path / "allowed"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"),
                                         "server": {"allowed_roots": [str(allowed)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    app = create_app(copilot, cfg, local_token="local-secret")
    jobs = app.state.jobs  # the queue, in the "first worker"
    with ServerThread(app) as url:
        tab = KnowledgeTab(copilot, cfg, lambda current: gr.update(), RemoteJobs(url, "local-secret"))
        otters = write_tree(allowed / "otters", {"otters.md": "# Otters\n\nSea otters hold hands.\n"})
        with lock_held_by_a_thread(Path(cfg.data_dir), "a test holder"):
            started = shown(tab.add_source(str(otters), "otters", Following(), None))
            (job_id,) = started["following"].jobs
            assert jobs.wait(job_id, 30, until=waiting).by == "ui"  # in the one queue, as the tab's
            bar = shown(tab.poll(started["following"], None))
            assert "Waiting for a test holder (pid" in bar["bar"], bar["bar"]
            tab.cancel_job(bar["following"])
            assert jobs.wait(job_id, 30).state == "cancelled"
            assert not shown(tab.poll(bar["following"], None))["cancel"]["visible"]
        again = shown(tab.add_source(str(otters), "otters", Following(), None))
        (job_id,) = again["following"].jobs
        assert jobs.wait(job_id, 120).state == "done"
        end = shown(tab.poll(again["following"], None))
        assert end["status"].startswith("✅ **Indexed** into `otters`"), end["status"]
        status, listed = request(url + "/v1/knowledge/jobs")
        assert [j["by"] for j in listed["jobs"] if j["id"] == job_id] == ["ui"]
        # Only this machine's callers say which door asked; a remote caller's job is the API's.
        status, job = request(url + "/v1/knowledge/jobs", {"action": "reindex", "kb": "otters", "by": "ui"})
        assert status == 202 and job["by"] == "api"
