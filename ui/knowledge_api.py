"""The Knowledge API: add a source to a KB, re-index a KB or every KB, forget, and follow the job.

    POST   /v1/knowledge/jobs        {"action": "add", "kb": "myfw", "sources": ["https://github.com/o/r.git"]}
                                     {"action": "reindex", "kb": "myfw"}   (no "kb": every KB)
                                     {"action": "forget", "kb": "myfw", "sources": ["..."]}   (no sources: the KB)
                                     -> 202 {"id": "job-…", "state": "queued", …}
    GET    /v1/knowledge/jobs/ID     the job: state (queued, running, done, failed, cancelled), stage, done/total,
                                     message; `?wait=S` waits up to S seconds (at most 60) for it to end
    GET    /v1/knowledge/jobs        recent jobs
    DELETE /v1/knowledge/jobs/ID     cancel
    GET    /v1/knowledge             KBs and sources: what each was indexed from, when, and its state

Who may call it: with `server.api_token`, its bearer token; else, with a UI password, that
password (HTTP Basic); else anyone who can reach the server (loopback by default), like the
Knowledge tab. Sources added this way follow the Knowledge tab's rules (ui/knowledge.py: folders,
local repositories in any spelling, only under `server.allowed_roots`). `devcopilot ingest` on
this machine hands its work here with the token the server left in the data dir for its users
(indexes/writer.py); it may index any folder its user can, as it could without a server.
Posts must be `Content-Type: application/json`, which a web page on another site cannot send here.
"""
from __future__ import annotations

import asyncio
import hmac
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from indexes.jobs import Jobs
from indexes.status import knowledge_status
from indexes.writer import busy_sentence, holder
from ui import knowledge
from ui.auth import basic_ok


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def knowledge_router(index, jobs: Jobs, cfg, api_token: str = "", credentials: list[tuple[str, str]] | None = None,
                     local_token: str = "") -> APIRouter:
    router = APIRouter()
    roots = knowledge.allowed_roots(cfg)
    limit = int(cfg.server.max_request_bytes or 0) or 1_000_000

    def caller(request: Request) -> str | None:
        """'local' (this machine's CLI), 'remote' (an allowed client), or None (refused)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and local_token and hmac.compare_digest(value.encode(), local_token.encode()):
            return "local"
        if api_token:
            ok = scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), api_token.encode())
            return "remote" if ok else None
        if credentials:
            return "remote" if basic_ok(request.headers.get("authorization", ""), credentials) else None
        return "remote"

    def refused() -> JSONResponse:
        how = "'Authorization: Bearer TOKEN' (server.api_token)" if api_token else "the web UI's user and password"
        return _error(401, f"This needs {how}.", "auth_error")

    @router.get("/v1/knowledge")
    def status(request: Request):
        if caller(request) is None:
            return refused()
        known = knowledge_status(index)
        return {**known, "jobs": [j.to_json() for j in jobs.active()]}

    @router.get("/v1/knowledge/jobs")
    def list_jobs(request: Request):
        if caller(request) is None:
            return refused()
        return {"jobs": [j.to_json() for j in reversed(jobs.all())]}

    @router.get("/v1/knowledge/jobs/{job_id}")
    async def get_job(job_id: str, request: Request, wait: float = 0.0):
        if caller(request) is None:
            return refused()
        if jobs.get(job_id) is None:
            return _error(404, f"There is no job '{job_id}'; GET /v1/knowledge/jobs lists recent ones.",
                          "not_found_error")
        wait = max(0.0, min(float(wait), 60.0))
        job = await asyncio.to_thread(jobs.wait, job_id, wait) if wait else jobs.get(job_id)
        return job.to_json()

    @router.delete("/v1/knowledge/jobs/{job_id}")
    def cancel_job(job_id: str, request: Request):
        if caller(request) is None:
            return refused()
        job = jobs.cancel(job_id)
        if job is None:
            return _error(404, f"There is no job '{job_id}'.", "not_found_error")
        return job.to_json()

    @router.post("/v1/knowledge/jobs")
    async def submit(request: Request):
        who = caller(request)
        if who is None:
            return refused()
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return _error(415, "Send the job as JSON with 'Content-Type: application/json'.")
        body = await request.body()
        if len(body) > limit:
            return _error(413, f"The request is larger than {limit:,} bytes; send less.")
        try:
            req = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _error(400, "The request body is not valid JSON.")
        try:
            action, kb, sources, include, exclude, wait = _checked(req, who, roots)
        except knowledge.SourceRefused as e:
            return _error(400, str(e))
        if not wait and (jobs.active() or holder(cfg.data_dir) is not None):
            busy = holder(cfg.data_dir)
            return _error(409, busy_sentence(busy) if busy else "The server is running other index jobs; try again "
                          "when they finish, or leave out --no-wait to wait for them.", "busy")
        job = jobs.submit(action, kb, sources, include, exclude, by="cli" if who == "local" else "api")
        return JSONResponse(job.to_json(), status_code=202, headers={"Location": f"/v1/knowledge/jobs/{job.id}"})

    return router


def _checked(req, who: str, roots) -> tuple:
    """(action, kb, sources, include, exclude, wait) of a job request, or SourceRefused saying what is wrong."""
    refuse = knowledge.SourceRefused
    if not isinstance(req, dict):
        raise refuse("The request must be a JSON object with an 'action'.")
    action = req.get("action")
    if action not in ("add", "reindex", "forget"):
        raise refuse("'action' must be \"add\", \"reindex\" or \"forget\".")
    kb = req.get("kb")
    if kb is not None and not isinstance(kb, str):
        raise refuse("'kb' must be a knowledge base name.")
    kb = knowledge.check_kb(kb) if (kb or action != "reindex") else None
    sources = req.get("sources", [])
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise refuse("'sources' must be a list of folder paths, git URLs or pkg:NAME.")
    if action == "add":
        if not sources:
            raise refuse("Give the 'sources' to add: folder paths, git URLs or pkg:NAME.")
        if who != "local":  # the web's rules: only under the allowed roots, whatever the spelling
            sources = [knowledge.check_source(s, roots) for s in sources]
    elif action == "reindex" and sources:
        raise refuse("'reindex' takes a 'kb' (or none for every KB), not 'sources'.")
    globs = []
    for key in ("include", "exclude"):
        value = req.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(g, str) for g in value)):
            raise refuse(f"'{key}' must be a list of glob patterns.")
        globs.append(value or None)
    wait = req.get("wait", True)
    if not isinstance(wait, bool):
        raise refuse("'wait' must be true or false.")
    return action, kb, sources, globs[0], globs[1], wait
