"""Handing index work to the server's one job queue from another process: `devcopilot ingest` and
`forget` while a `devcopilot serve` runs (indexes/writer.py says why), and the web app of a worker
process that does not hold the queue (`serve --workers N`: `RemoteJobs`).

It speaks the server's Knowledge API (`/v1/knowledge/jobs`, the one a CI job calls with curl), with
the token the server left for this machine's users in the data dir.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from indexes.jobs import Job

POLL_S = 0.5


class ServerGone(RuntimeError):
    """The server could not be reached, or stopped while doing the work."""


def _call(server, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {server.token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read().decode())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"The server answered HTTP {e.code}."
        raise ValueError(message) from None
    except (OSError, ValueError) as e:
        raise ServerGone(f"The server stopped or cannot be reached ({server.url}, pid {server.pid}: "
                         f"{type(e).__name__}); what it indexed so far is kept: run the command again to "
                         "complete it.") from None


def submit_job(server, body: dict) -> dict:
    return _call(server, "POST", "/v1/knowledge/jobs", body)


def cancel_job(server, job_id: str) -> dict:
    return _call(server, "DELETE", f"/v1/knowledge/jobs/{job_id}")


def follow_job(server, job_id: str, seen: Callable[[dict], None]) -> dict:
    """Poll the job until it ends; `seen` gets each state. Returns the final job."""
    while True:
        job = _call(server, "GET", f"/v1/knowledge/jobs/{job_id}?wait={POLL_S}", timeout=POLL_S + 30)
        seen(job)
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)


@dataclass
class Queue:
    """Where the queue is: the server's address on this machine and its local token."""
    url: str
    token: str
    pid: int = 0


class RemoteJobs:
    """The server's one job queue, held by its first worker process, as another worker's Knowledge tab
    uses it (`serve --workers N`): the calls of indexes.jobs.Jobs the tab makes, over the Knowledge API.
    The parent process routes /v1/knowledge to the first worker (ui/workers.py), so the tab's jobs are
    listed, followed and cancelled there like any other."""

    def __init__(self, url: str, token: str):
        self.server = Queue(url, token)

    def submit(self, action: str, kb: str | None = None, sources: list[str] | None = None,
               include: list[str] | None = None, exclude: list[str] | None = None, by: str = "ui") -> Job:
        body = {"action": action, "kb": kb, "sources": list(sources or []), "include": include, "exclude": exclude,
                "by": by}
        return Job.from_json(submit_job(self.server, body))

    def get(self, job_id: str) -> Job | None:
        try:
            return Job.from_json(_call(self.server, "GET", f"/v1/knowledge/jobs/{job_id}"))
        except ValueError:  # the queue forgot it (it keeps the last 200)
            return None

    def all(self) -> list[Job]:
        return [Job.from_json(j) for j in reversed(_call(self.server, "GET", "/v1/knowledge/jobs")["jobs"])]

    def active(self) -> list[Job]:
        return [j for j in self.all() if j.state in ("queued", "running")]

    def cancel(self, job_id: str) -> Job | None:
        try:
            return Job.from_json(cancel_job(self.server, job_id))
        except ValueError:
            return None
