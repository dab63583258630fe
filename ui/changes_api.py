"""GET /v1/changes: what changed in a library between two indexed versions (indexes/changes.py).

    GET /v1/changes?library=openai-agents&from=0.23.0&to=0.24.0[&symbol=Runner.run][&kb=default]
    -> 200 {"library", "kb", "from", "to", "symbol", "counts", "notes",
            "changes": [{"kind", "name", "what", "summary", "details", "breaking",
                         "from": {"version", "path", "start_line", "end_line", "link", "context"} | null,
                         "to": {...} | null}]}

`kind` is added, removed, signature, deprecated, undeprecated, docstring, page_added, page_removed or
page_changed. Links are absolute URLs (a forge's, else the server's source viewer under
`server.public_url`, else the address the request came to). Behind the edge like the rest of /v1:
the API token when one is set (ui/edge.py). A KB, library or version that is not indexed is a 404
saying what is indexed and how to index it; missing parameters or FROM == TO a 400.
"""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from copilot.links import public_url
from indexes.changes import ChangesError, what_changed
from ui.edge import HTTPError


def changes_router(index, public: str = "") -> APIRouter:
    """The route, over `index`; `public` is `server.public_url` (links are made absolute under it)."""
    router = APIRouter()

    @router.get("/v1/changes")
    def changes(request: Request, library: str = "", from_version: str = Query("", alias="from"),
                to_version: str = Query("", alias="to"), symbol: str = "", kb: str = ""):
        missing = [n for n, v in (("library", library), ("from", from_version), ("to", to_version)) if not v.strip()]
        if missing:
            raise HTTPError(400, f"Give {' and '.join(missing)}: GET /v1/changes?library=NAME&from=OLD&to=NEW "
                                 "(and optionally symbol=NAME, kb=KB).")
        try:
            report = what_changed(index, library, from_version, to_version, symbol, kb.strip() or None)
        except ChangesError as e:
            raise HTTPError(404 if e.missing else 400, str(e),
                            "not_found_error" if e.missing else "invalid_request_error") from None
        base = (public or str(request.base_url)).rstrip("/")
        out = report.to_json()
        for change in out["changes"]:
            for side in ("from", "to"):
                if change[side]:
                    change[side]["link"] = public_url(change[side]["link"], base)
        return out

    return router
