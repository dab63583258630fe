"""Indexing from the Knowledge tab: one job at a time, in a thread, with progress you can watch.

The job runs `indexes.build.ingest` and keeps what its progress callback reports (chunks
written of an estimated total), so the page can draw a bar with the time left whoever asks
(the tab polls it; a reload finds the job still running). Cancel asks the ingest to stop between
two files or batches: what was written stays, consistent and searchable.
"""
from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("devcopilot.ui")

STAGES = {"resolve": "Fetching the sources", "scan": "Scanning files", "index": "Chunking files",
          "embed": "Embedding chunks", "lexical": "Building the lexical index", "done": "Done"}


class ProgressClock:
    """An estimate of the time left from the rate seen so far (work done since the first report)."""

    def __init__(self) -> None:
        self.start: tuple[float, int] | None = None

    def left(self, done: int, total: int, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if self.start is None or done < self.start[1]:
            self.start = (now, done)
            return ""
        t0, d0 = self.start
        if done - d0 <= 0 or now - t0 < 1.0 or total <= done:
            return ""
        seconds = (total - done) * (now - t0) / (done - d0)
        return duration(seconds)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(5, round(seconds / 5) * 5)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class IndexJob:
    kb: str
    specs: list[str]
    verb: str = "Indexing"  # or "Re-indexing"
    stage: str = "resolve"
    done: int = 0
    total: int = 0
    files: int = 0  # files found by the scan
    started: float = field(default_factory=time.monotonic)
    summary: object | None = None  # the IngestSummary, once finished
    error: str = ""
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    clock: ProgressClock = field(default_factory=ProgressClock)
    left: str = ""
    _thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def progress(self, stage: str, done: int, total: int) -> None:
        if stage == "scan":
            self.files = done
        if stage == "index" and self.stage == "embed":
            return  # the chunk count is the bar; files chunked only move it before the first batch
        self.stage, self.done, self.total = stage, done, total
        if stage == "embed":
            self.left = self.clock.left(done, total)

    def percent(self) -> int:
        if self.stage == "lexical":
            return 99
        if self.stage in ("embed", "index") and self.total:
            share = min(1.0, self.done / self.total)
            # chunking the first files runs ahead of embedding; keep the bar honest about chunks
            return int(100 * share) if self.stage == "embed" else int(5 * share)
        return 0

    def run(self, work: Callable[[IndexJob], object], on_error: Callable[[BaseException], str]) -> None:
        def target():
            try:
                self.summary = work(self)
            except BaseException as e:  # shown as one sentence; the log keeps the rest
                self.error = on_error(e)
            finally:
                self.stage = "done"

        self._thread = threading.Thread(target=target, name=f"index-{self.kb}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_requested.set()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class Jobs:
    """The one indexing job a server runs at a time (two ingests into one data dir must not overlap)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: IndexJob | None = None

    def start(self, job: IndexJob, work: Callable[[IndexJob], object],
              on_error: Callable[[BaseException], str]) -> IndexJob | None:
        """Start `job`, or return the job already running (and start nothing)."""
        with self._lock:
            if self.current is not None and self.current.running:
                return self.current
            self.current = job
            job.run(work, on_error)
            return None

    def running(self) -> IndexJob | None:
        job = self.current
        return job if job is not None and job.running else None


def progress_html(job: IndexJob) -> str:
    """The bar: what is happening, chunks written of the estimate, the time left."""
    pct = job.percent()
    what = STAGES.get(job.stage, job.stage)
    if job.cancel_requested.is_set():
        what = "Cancelling: finishing the batch in progress"
    if job.stage == "embed" and job.total:
        detail = f"{job.done:,} of ~{job.total:,} chunks ({pct} %)" + (f", about {job.left} left" if job.left else "")
    elif job.stage == "scan":
        detail = f"{job.files:,} files found"
    elif job.stage == "index" and job.total:
        detail = f"{job.done:,} of {job.total:,} files chunked"
    else:
        detail = ""
    label = f"{job.verb} {html.escape(', '.join(job.specs))} into <code>{html.escape(job.kb)}</code>: {what}"
    chunks = (job.done, job.total) if job.stage == "embed" else (0, 0)  # data-*: chunks embedded of the estimate
    return (f'<div class="dc-progress" id="dc-progress-bar" role="progressbar" aria-valuemin="0" '
            f'aria-valuemax="100" aria-valuenow="{pct}" data-done="{chunks[0]}" data-total="{chunks[1]}">'
            f'<div class="dc-progress-label">{label}'
            f'{" · " + html.escape(detail) if detail else ""}</div>'
            f'<div class="dc-progress-track"><div class="dc-progress-fill" style="width:{max(pct, 1)}%"></div></div>'
            "</div>")


def summary_markdown(summary, error: str = "") -> str:
    """The end of a job in a few lines: files, chunks, what was skipped and why."""
    if error:
        return f"❌ {error}"
    s = summary
    if s.cancelled:
        return (f"⏹️ **Cancelled.** {s.done_files:,} of {s.changed:,} new or changed files were indexed "
                f"({s.chunks:,} chunks); knowledge base `{s.kb}` holds {s.total_chunks:,} chunks and answers from "
                "them. Re-index it to complete the rest.")
    skipped = "".join(f"\n  - {n:,} {why}" for why, n in s.skipped.most_common())
    return (f"✅ **Indexed** into `{s.kb}` in {s.seconds:.1f} s: {s.files:,} files ({s.changed:,} new or changed, "
            f"{s.removed:,} removed), {s.chunks:,} chunks written ({s.embedded:,} embedded, the rest cached), "
            f"{s.total_chunks:,} chunks in the knowledge base.\n\n"
            + (f"Skipped:{skipped}" if skipped else "Nothing was skipped."))
