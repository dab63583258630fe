"""Index jobs run by a server for its callers: add sources to a KB, re-index a KB or every KB
(re-syncing each source: git fetch, folder and package rescan), forget a source or a KB.

Jobs run one at a time on a thread of their own, under the data dir's writer lock
(indexes/writer.py), while searches go on beside them; a caller gets a job id at once and
polls its progress (stage, files done of total), or cancels it, also while it waits for the
lock. A server has one queue: the Knowledge tab, the HTTP API, `devcopilot ingest` handing its
work to a running server, and the sync schedule all go through here.

Who asked decides where a job's fetches may connect (ingest/outbound.py): the operator's jobs (by
"cli") fetch what they are told; a door's ("api", "ui") only public addresses and what
`server.fetch_allow` opens. A re-index or a scheduled sync re-fetches each source under the rule of
whoever added it (the catalog records it): the operator's sources as told, a door's under the policy.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from indexes.build import IngestSummary, forget, ingest
from indexes.search import Index
from indexes.writer import Cancelled, Holder, writing
from ingest.outbound import Outbound
from ingest.sources import SourceError

log = logging.getLogger("devcopilot.jobs")

ACTIONS = ("add", "reindex", "forget")
ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: str
    action: str  # add | reindex | forget
    kb: str | None  # None: every KB (reindex only)
    sources: list[str]
    include: list[str] | None = None
    exclude: list[str] | None = None
    by: str = "api"  # who asked: api | cli | sync | ui
    state: str = "queued"  # queued | running | done | failed | cancelled
    stage: str = ""  # waiting | resolving | scan | index | embed | lexical
    done: int = 0  # the last progress report, of `total` (files chunked, chunks embedded: see `stage`)
    total: int = 0
    message: str = ""  # what it is doing, or how it ended (one sentence)
    results: list[dict] = field(default_factory=list)  # one per KB indexed: the ingest's figures
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    files: int = 0  # files found by the scan of the KB being indexed
    chunks_done: int = 0  # chunks embedded of an estimate that ends exact (the "embed" stage's reports)
    chunks_total: int = 0
    cancel_requested: bool = False

    def describe(self) -> str:
        where = f"'{self.kb}'" if self.kb else "every knowledge base"
        if self.action == "add":
            return f"add {', '.join(self.sources)} to {where}"
        if self.action == "forget":
            return f"forget {', '.join(self.sources)} in {where}" if self.sources else f"remove {where}"
        return f"re-index {where}"

    def to_json(self) -> dict:
        out = asdict(self)
        out["description"] = self.describe()
        out["percent"] = round(100 * self.done / self.total) if self.total and self.stage == "index" else None
        return out

    @classmethod
    def from_json(cls, data: dict) -> Job:
        """A job as `to_json` wrote it (read back by another process: ui/server_client.py)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def result_of(s: IngestSummary) -> dict:
    return {"kb": s.kb, "sources": s.sources, "files": s.files, "changed": s.changed, "removed": s.removed,
            "chunks_written": s.chunks, "embedded": s.embedded, "total_chunks": s.total_chunks,
            "skipped": dict(s.skipped), "seconds": round(s.seconds, 2), "summary": s.line(),
            "cancelled": s.cancelled, "done_files": s.done_files}


class Jobs:
    def __init__(self, index: Index, keep: int = 200):
        self.index = index
        self.keep = keep
        self.outbound = Outbound.from_settings(index.cfg.server.fetch_allow)  # for the doors' fetches
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[str] = queue.Queue()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- callers --------------------------------------------------------------------------------
    def submit(self, action: str, kb: str | None = None, sources: list[str] | None = None,
               include: list[str] | None = None, exclude: list[str] | None = None, by: str = "api") -> Job:
        if action not in ACTIONS:
            raise ValueError(f"Unknown action '{action}'; use add, reindex or forget.")
        if action == "add" and not sources:
            raise ValueError("Say which sources to add.")
        if action == "forget" and not kb:
            raise ValueError("Say which knowledge base to forget in.")
        job = Job(f"job-{uuid.uuid4().hex[:12]}", action, kb, list(sources or []), include, exclude, by)
        with self._changed:
            self._jobs[job.id] = job
            self._trim()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="index-jobs", daemon=True)
                self._thread.start()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._changed:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._changed:
            return list(self._jobs.values())

    def active(self) -> list[Job]:
        return [j for j in self.all() if j.state in ACTIVE]

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop: a queued one never starts; one waiting for the writer lock stops waiting
        and writes nothing; a running one stops between two files or batches, what it wrote consistent
        and searchable, its KB completed by the next ingest."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is not None and job.state in ACTIVE:
                job.cancel_requested = True
                if job.state == "queued":
                    self._finish(job, "cancelled", "Cancelled before it started.")
                self._changed.notify_all()
            return job

    def wait(self, job_id: str, timeout: float, until: Callable[[Job], bool] | None = None) -> Job | None:
        """The job once it has ended (or once `until(job)` holds: its stage changed, say), or as it is
        when `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            job = self._jobs.get(job_id)
            while (job is not None and job.state in ACTIVE and not (until and until(job))
                   and (left := deadline - time.monotonic()) > 0):
                self._changed.wait(min(left, 1.0))
            return job

    # -- the worker -------------------------------------------------------------------------------
    def _trim(self) -> None:
        ended = [j.id for j in self._jobs.values() if j.state not in ACTIVE]
        for job_id in ended[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job_id]

    def _finish(self, job: Job, state: str, message: str) -> None:
        job.state, job.message, job.finished_at = state, message, time.time()
        self._changed.notify_all()

    def _work(self) -> None:
        while True:
            job = self.get(self._queue.get())
            if job is None or job.state != "queued":
                continue
            with self._changed:
                job.state, job.started_at = "running", time.time()
                self._changed.notify_all()
            try:
                state, message = self._run(job)
            except Cancelled:
                state, message = "cancelled", ("Cancelled while it waited for another writer; nothing was written."
                                               if job.stage == "waiting" else
                                               "Cancelled; what was indexed so far is kept, and the next run "
                                               "completes it.")
            except (SourceError, ValueError, OSError, RuntimeError) as e:
                log.warning("job %s (%s) failed: %s", job.id, job.describe(), e)
                state, message = "failed", _one_line(e)
            except Exception as e:
                log.exception("job %s (%s) failed", job.id, job.describe())
                state, message = "failed", f"It failed ({type(e).__name__}); the server log has the details."
            with self._changed:
                self._finish(job, state, message)

    def _report(self, job: Job, stage: str, done: int = 0, total: int = 0) -> None:
        """Progress: the figures a caller draws, and callers waiting on the job (`wait(until=...)`) look again."""
        with self._changed:
            job.stage, job.done, job.total = stage, done, total
            if stage == "scan":
                job.files = done
            elif stage == "embed":
                job.chunks_done, job.chunks_total = done, total
            self._changed.notify_all()

    def _run(self, job: Job) -> tuple[str, str]:
        def waiting(holder: Holder | None) -> None:
            job.message = f"Waiting for {holder.describe() if holder else 'another writer'}."
            self._report(job, "waiting")

        what = f"devcopilot serve, {job.id}: {job.describe()}"
        with writing(self.index.cfg.data_dir, what, on_wait=waiting, cancelled=lambda: job.cancel_requested):
            if job.cancel_requested:  # asked just as the lock came
                raise Cancelled()
            job.message = ""
            self._report(job, "resolving")
            if job.action == "forget":
                specs = job.sources or [None]
                lines = [forget(self.index, spec, job.kb) for spec in specs]
                return "done", " ".join(lines)
            if job.action == "add":
                self._ingest(job, job.sources, job.kb or "default", job.include, job.exclude,
                             outbound=None if job.by == "cli" else self.outbound, added_by=job.by)
                return "done", job.results[-1]["summary"]
            return self._reindex(job)

    def _ingest(self, job: Job, specs: list[str], kb: str, include: list[str] | None = None,
                exclude: list[str] | None = None, outbound: Outbound | None = None,
                added_by: str | None = None) -> None:
        """One ingest of the job, its figures added to `job.results`; Cancelled once it stopped on request
        (what it wrote is kept, consistent: indexes/build.py). `outbound`, `added_by`: see build.ingest."""
        if job.cancel_requested:
            raise Cancelled()

        def progress(stage: str, done: int, total: int) -> None:
            self._report(job, stage, done, total)

        job.files = job.chunks_done = job.chunks_total = 0  # this KB's figures, not the previous one's
        summary = ingest(self.index, specs, kb, include, exclude, progress, cancel=lambda: job.cancel_requested,
                         outbound=outbound, added_by=added_by)
        job.results.append(result_of(summary))
        if summary.cancelled:
            raise Cancelled()

    def _reindex(self, job: Job) -> tuple[str, str]:
        """Every source of the KB (or of every KB) again: git sources are fetched, folders and packages
        scanned; each keeps its globs. A source that fails (an unreachable remote) does not keep the
        others of its KB from being synced."""
        catalog = self.index.catalog
        kbs = [job.kb] if job.kb else [k.name for k in catalog.kbs()]
        if job.kb and catalog.kb(job.kb) is None:
            raise ValueError(f"There is no knowledge base named '{job.kb}'.")
        failures: list[str] = []
        for kb in kbs:
            # The operator's sources are fetched as told; a door's under the policy (the operator's own
            # re-index, by "cli", fetches every source as told).
            groups: dict[bool, list[str]] = {}
            for s in catalog.sources(kb):
                groups.setdefault(job.by != "cli" and s["added_by"] != "cli", []).append(s["spec"])
            for guarded, specs in groups.items():
                outbound = self.outbound if guarded else None
                try:
                    self._ingest(job, specs, kb, outbound=outbound)
                except SourceError as e:
                    if len(specs) == 1:
                        failures.append(f"'{kb}': {_one_line(e)}")
                        continue
                    for spec in specs:  # one by one, so the reachable ones are synced
                        try:
                            self._ingest(job, [spec], kb, outbound=outbound)
                        except SourceError as e:
                            failures.append(f"'{kb}': {_one_line(e)}")
        lines = [r["summary"] for r in job.results]
        if failures:
            return "failed", " ".join(failures + lines)
        return "done", " ".join(lines) or "Nothing to re-index: no knowledge base has sources yet."


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class SyncSchedule:
    """Re-syncs every KB every `every_s` seconds (serve's `[sync] every`): a re-index job, unless one
    from the schedule is still queued or running."""

    def __init__(self, jobs: Jobs, every_s: float):
        self.jobs = jobs
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sync-schedule", daemon=True)

    def start(self) -> SyncSchedule:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.run_once()

    def run_once(self) -> Job | None:
        if any(j.by == "sync" for j in self.jobs.active()):
            return None
        log.info("scheduled sync (pid %s)", os.getpid())
        return self.jobs.submit("reindex", by="sync")
