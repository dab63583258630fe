"""The Knowledge API: add a source to a KB, re-index a KB or every KB, forget, and follow the job.

    POST   /v1/knowledge/jobs        {"action": "add", "kb": "myfw", "sources": ["https://github.com/o/r.git"]}
                                     {"action": "add", "kb": "myfw", "sources": ["https://github.com/o/r.git"],
                                      "ref": "v1.2.0"}   (git URLs at a tag, branch or commit)
                                     {"action": "add", "kb": "myfw", "sources": ["pypi:openai-agents==0.24.0"]}
                                     {"action": "reindex", "kb": "myfw"}   (no "kb": every KB)
                                     {"action": "forget", "kb": "myfw", "sources": ["..."]}   (no sources: the KB)
                                     -> 202 {"id": "job-…", "state": "queued", …}
    GET    /v1/knowledge/jobs/ID     the job: state (queued, running, done, failed, cancelled), stage, done/total,
                                     message; `?wait=S` waits up to S seconds (at most 60) for it to end
    GET    /v1/knowledge/jobs        recent jobs
    DELETE /v1/knowledge/jobs/ID     cancel
    GET    /v1/knowledge             KBs and sources: what each was indexed from, when, and its state

Who may call it (the edge's POLICY, ui/edge.py): with `server.api_token` or the web UI's users, its
bearer token or a user's password (HTTP Basic); else anyone who can reach the server (loopback by
default), like the Knowledge tab. Sources added this way follow the Knowledge tab's rules
(ui/knowledge.py: folders, local repositories in any spelling, only under `server.allowed_roots`;
URLs only where the server may fetch for its doors, ingest/outbound.py).
`devcopilot ingest` on this machine hands its work here with the token the server left in the data
dir for its users (indexes/writer.py); it may index any folder its user can, as it could without a
server.
Posts must be `Content-Type: application/json`, which a web page on another site cannot send here,
and a page's post must come from this server's own pages (the edge checks `Origin`). A field holding
a lone surrogate or a NUL is refused before anything is queued (ui/strings.py).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from indexes.jobs import Jobs
from indexes.status import knowledge_status
from indexes.writer import busy_sentence, holder
from ingest.outbound import Outbound
from ui import knowledge
from ui.edge import LOCAL, Caller, HTTPError, caller, read_json


def knowledge_router(index, jobs: Jobs, cfg) -> APIRouter:
    """The Knowledge API's routes. Who may call them is the edge's business (ui/edge.py: POLICY): it
    tells `submit` whether the caller is this machine's CLI, which may index any folder."""
    router = APIRouter()
    roots = knowledge.allowed_roots(cfg)
    outbound = knowledge.outbound_policy(cfg)

    @router.get("/v1/knowledge")
    def status():
        known = knowledge_status(index)
        return {**known, "jobs": [j.to_json() for j in jobs.active()]}

    @router.get("/v1/knowledge/jobs")
    def list_jobs():
        return {"jobs": [j.to_json() for j in reversed(jobs.all())]}

    @router.get("/v1/knowledge/jobs/{job_id}")
    async def get_job(job_id: str, wait: float = 0.0):
        if jobs.get(job_id) is None:
            raise HTTPError(404, f"There is no job '{job_id}'; GET /v1/knowledge/jobs lists recent ones.",
                            "not_found_error")
        wait = max(0.0, min(float(wait), 60.0))
        job = await asyncio.to_thread(jobs.wait, job_id, wait) if wait else jobs.get(job_id)
        return job.to_json()

    @router.delete("/v1/knowledge/jobs/{job_id}")
    def cancel_job(job_id: str):
        job = jobs.cancel(job_id)
        if job is None:
            raise HTTPError(404, f"There is no job '{job_id}'.", "not_found_error")
        return job.to_json()

    @router.post("/v1/knowledge/jobs")
    async def submit(request: Request, who: Annotated[Caller, Depends(caller)]):
        # JSON only (the edge refuses other content types, ui/edge.py JSON_POSTS), every string text.
        # On a thread: checking a URL resolves its host, which may wait on DNS.
        req = await asyncio.to_thread(JobRequest.parse, await request.body(), who.kind == LOCAL, roots, outbound)
        if not req.wait and (jobs.active() or holder(cfg.data_dir) is not None):
            busy = holder(cfg.data_dir)
            raise HTTPError(409, busy_sentence(busy) if busy else "The server is running other index jobs; try "
                            "again when they finish, or leave out --no-wait to wait for them.", "busy")
        # This machine's callers say which door asked (the CLI, or the web app of another worker process).
        by = (req.by or "cli") if who.kind == LOCAL else "api"
        job = jobs.submit(req.action, req.kb, req.sources, req.include, req.exclude, by=by)
        return JSONResponse(job.to_json(), status_code=202, headers={"Location": f"/v1/knowledge/jobs/{job.id}"})

    return router


def _at_ref(sources: list[str], ref, action: str) -> list[str]:
    """The git URLs at `ref` (`URL#REF`), when the request gives one."""
    if ref is None:
        return sources
    from ingest.sources import SAFE_GIT_REF, is_git_url, with_git_ref

    if action != "add" or not isinstance(ref, str) or not SAFE_GIT_REF.match(ref.strip()):
        raise knowledge.SourceRefused("'ref' goes with \"add\" and git URLs: a tag, branch or commit name such as "
                                      "\"v1.2.0\".")
    if not all(is_git_url(s) for s in sources):
        raise knowledge.SourceRefused("'ref' goes with git URLs only; pypi:NAME==VERSION and npm:NAME@VERSION name "
                                      "their version themselves.")
    return [with_git_ref(s.split("#", 1)[0], ref.strip()) for s in sources]


@dataclass(frozen=True)
class JobRequest:
    """A job request (`POST /v1/knowledge/jobs`), checked."""
    action: str  # "add", "reindex" or "forget"
    kb: str | None  # None: every KB (reindex only)
    sources: list[str]
    include: list[str] | None  # glob patterns
    exclude: list[str] | None
    wait: bool  # False: refuse rather than queue behind other work
    by: str | None = None  # who asked, "cli" or "ui": heeded from this machine's callers only

    @classmethod
    def parse(cls, body: bytes, local: bool, roots: list[Path],
              outbound: Outbound = knowledge.PUBLIC_ONLY) -> JobRequest:
        """The request in `body`, or HTTPError 400 naming what is wrong in one sentence. Sources to add
        follow the Knowledge tab's rules (only under `roots`, URLs only where `outbound` allows) unless
        the caller is `local`."""
        try:
            return cls._checked(read_json(body), local, roots, outbound)
        except knowledge.SourceRefused as e:
            raise HTTPError(400, str(e)) from None

    @classmethod
    def _checked(cls, req, local: bool, roots: list[Path], outbound: Outbound) -> JobRequest:
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
            if not local:  # the web's rules: only under the allowed roots, whatever the spelling
                sources = [knowledge.check_source(s, roots, outbound) for s in sources]
        elif action == "reindex" and sources:
            raise refuse("'reindex' takes a 'kb' (or none for every KB), not 'sources'.")
        sources = _at_ref(sources, req.get("ref"), action)
        globs = []
        for key in ("include", "exclude"):
            value = req.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(g, str) for g in value)):
                raise refuse(f"'{key}' must be a list of glob patterns.")
            globs.append(value or None)
        wait = req.get("wait", True)
        if not isinstance(wait, bool):
            raise refuse("'wait' must be true or false.")
        by = req.get("by")
        if by is not None and by not in ("cli", "ui"):
            raise refuse("'by' must be \"cli\" or \"ui\" when given.")
        return cls(action, kb, sources, globs[0], globs[1], wait, by)
