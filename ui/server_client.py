"""The CLI's side of handing index work to a running `devcopilot serve` (indexes/writer.py says why).

It speaks the server's Knowledge API (`/v1/knowledge/jobs`, the one a CI job calls with curl), with
the token the server left for this machine's users in the data dir.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

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
