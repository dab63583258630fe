"""What the Knowledge tab draws of an index job: the bar (what is happening, chunks embedded of the
estimate, the time left, the jobs queued after it) and the summary at the end.

The jobs run in the server's one queue (indexes/jobs.py), whoever asked: the tab, the Knowledge API,
`devcopilot ingest` handing its work to the server, the sync schedule. The tab polls the queue and
draws its job from the figures the job keeps; Cancel goes through the queue too.
"""
from __future__ import annotations

import html
import threading
import time

from indexes.jobs import Job
from ingest.files import counted, skipped_counts

STAGES = {"": "Queued", "resolving": "Fetching the sources", "scan": "Scanning files", "index": "Chunking files",
          "embed": "Embedding chunks", "lexical": "Building the lexical index"}
ASKED_BY = {"cli": "from the command line", "api": "from the Knowledge API", "sync": "by the sync schedule"}


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


class JobClock:
    """The time left of the job being embedded, from the chunk counts seen each time a page draws it
    (one job runs at a time; a new one starts a new clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # pages poll at once
        self._job_id = ""
        self._clock = ProgressClock()

    def left(self, job: Job) -> str:
        if stage_of(job) != "embed":
            return ""
        with self._lock:
            if job.id != self._job_id:
                self._job_id, self._clock = job.id, ProgressClock()
            return self._clock.left(job.chunks_done, job.chunks_total)


def stage_of(job: Job) -> str:
    """The stage the bar shows: once chunks are embedded their count is the bar (files chunked only move
    it before the first batch)."""
    if job.stage == "index" and job.chunks_total:
        return "embed"
    return job.stage


def percent(job: Job) -> int:
    stage = stage_of(job)
    if stage == "lexical":
        return 99
    if stage == "embed" and job.chunks_total:
        return int(100 * min(1.0, job.chunks_done / job.chunks_total))
    if stage == "index" and job.total:
        # chunking the first files runs ahead of embedding; keep the bar honest about chunks
        return int(5 * min(1.0, job.done / job.total))
    return 0


def heading(job: Job) -> str:
    """What the job does, in HTML: "Indexing /src/docs into <code>docs</code>", and who asked unless the tab."""
    where = f"<code>{html.escape(job.kb)}</code>" if job.kb else "every knowledge base"
    sources = html.escape(", ".join(job.sources))
    if job.action == "add":
        text = f"Indexing {sources} into {where}"
    elif job.action == "reindex":
        text = f"Re-indexing {where}"
    else:
        text = f"Forgetting {sources} in {where}" if job.sources else f"Removing {where}"
    asked = ASKED_BY.get(job.by)
    return f"{text} ({asked})" if asked else text


def progress_html(job: Job, left: str = "", queued: list[Job] | None = None) -> str:
    """The bar: what is happening (or whom it waits for), chunks embedded of the estimate, the time left;
    under it, the jobs queued after it."""
    pct = percent(job)
    stage = stage_of(job)
    what = job.message.rstrip(".") if stage == "waiting" and job.message else STAGES.get(stage, stage)
    if job.cancel_requested:
        what = "Cancelling" if stage in ("", "waiting") else "Cancelling: finishing the batch in progress"
    if stage == "embed" and job.chunks_total:
        detail = f"{job.chunks_done:,} of ~{job.chunks_total:,} chunks ({pct} %)" + (f", about {left} left"
                                                                                    if left else "")
    elif stage == "scan":
        detail = f"{job.files:,} files found"
    elif stage == "index" and job.total:
        detail = f"{job.done:,} of {job.total:,} files chunked"
    else:
        detail = ""
    label = f"{heading(job)}: {html.escape(what)}"
    chunks = (job.chunks_done, job.chunks_total) if stage == "embed" else (0, 0)  # data-*: chunks embedded
    after = ""
    if queued:
        after = (f'<div class="dc-progress-label dc-progress-queued">Queued after it: '
                 f"{html.escape('; '.join(j.describe() for j in queued))}</div>")
    return (f'<div class="dc-progress" id="dc-progress-bar" role="progressbar" aria-valuemin="0" '
            f'aria-valuemax="100" aria-valuenow="{pct}" data-done="{chunks[0]}" data-total="{chunks[1]}" '
            f'data-job="{html.escape(job.id)}" data-stage="{html.escape(stage)}">'
            f'<div class="dc-progress-label">{label}'
            f'{" · " + html.escape(detail) if detail else ""}</div>'
            f'<div class="dc-progress-track"><div class="dc-progress-fill" style="width:{max(pct, 1)}%"></div></div>'
            f"{after}</div>")


def summary_markdown(result: dict, error: str = "") -> str:
    """The end of one ingest in a few lines (a job's `results` entry: indexes.jobs.result_of): files,
    chunks, what was skipped and why."""
    if error:
        return f"❌ {error}"
    r = result
    if r["cancelled"]:
        return (f"⏹️ **Cancelled.** {r['done_files']:,} of {r['changed']:,} new or changed files were indexed "
                f"({r['chunks_written']:,} chunks); knowledge base `{r['kb']}` holds {r['total_chunks']:,} chunks "
                "and answers from them. Re-index it to complete the rest.")
    skipped = "".join(f"\n  - {line}" for line in skipped_counts(r["skipped"]))
    return (f"✅ **Indexed** into `{r['kb']}` in {r['seconds']:.1f} s: {counted(r['files'], 'file')} "
            f"({r['changed']:,} new or changed, {r['removed']:,} removed), "
            f"{counted(r['chunks_written'], 'chunk')} written ({r['embedded']:,} embedded, the rest cached), "
            f"{counted(r['total_chunks'], 'chunk')} in the knowledge base.\n\n"
            + (f"Skipped:{skipped}" if skipped else "Nothing was skipped."))


def job_summary(job: Job) -> str:
    """How an ended job went: each ingest's summary, or the job's one sentence (a failure, a cancel before
    it wrote anything, a forget)."""
    if job.state == "failed":
        return summary_markdown({}, job.message)
    if job.results:
        return "\n\n".join(summary_markdown(r) for r in job.results)
    return f"{'⏹️' if job.state == 'cancelled' else '✅'} {job.message}"
