"""The code graph over HTTP (indexes/graph.py), behind the edge like the rest of /v1 (ui/edge.py: the
API token when one is set):

    GET /v1/graph/references?symbol=Runner.run[&kb=K][&version=V[&library=L]]     every reference to the symbol
    GET /v1/graph/calls?symbol=Runner.run[&direction=callers|callees][&depth=N][&kb=K][&version=V[&library=L]]
                                                                        who calls it (to a depth), or what it calls

Both answer JSON: the symbol's definitions (path, lines, link) and its sites, each with its file, line,
the symbol it sits in, its kind, whether it resolved (False: matched by name only), the code line and a
link to it; `notes`: what the versions asked for could not give (a version not indexed). The graph is
read at one version of each library, as search reads it: `version` (with `library` when a KB holds
several libraries; "all" for every version), else what `project.path` pins, else the newest. A symbol
with no definition there, or a KB without a code graph, is a 404 in one sentence; a version that is not
one, a 400.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from indexes import graph
from indexes.project import versions_for
from indexes.search import SearchError
from indexes.versions import VersionChoice
from ui.edge import HTTPError

Symbol = Annotated[str, Query(min_length=1, max_length=200, description="A function, class or method.")]
Depth = Annotated[int, Query(ge=1, le=graph.MAX_DEPTH)]
Version = Annotated[str | None, Query(max_length=100, description="The version to answer from; 'all' for every one.")]
Library = Annotated[str | None, Query(max_length=200, description="The library `version` is of.")]


def graph_router(index) -> APIRouter:
    router = APIRouter()

    def kbs_of(kb: str | None) -> list[str]:
        if kb is None:
            return [info.name for info in index.catalog.kbs()]
        try:
            index.searchable(kb)
        except SearchError as e:
            raise HTTPError(404, str(e), "not_found_error") from None
        return [kb]

    def answered(ask, kbs: list[str], version: str | None, library: str | None) -> dict:
        """The graph's answer at the versions asked for (as search reads them), with what they could not give."""
        try:
            chosen = VersionChoice.parse(version, library) if version is not None or library is not None else None
        except ValueError as e:
            raise HTTPError(400, str(e)) from None
        choice = versions_for(chosen, index.cfg.project.path)
        scopes = {kb: index.scope(kb, choice) for kb in kbs}
        try:
            found = ask({kb: scope.sources for kb, scope in scopes.items()}).to_json()
        except graph.GraphError as e:
            raise HTTPError(404, str(e), "not_found_error") from None
        return found | {"notes": index.version_notes(kbs, choice)}

    @router.get("/v1/graph/references")
    def references(symbol: Symbol, kb: str | None = None, version: Version = None, library: Library = None):
        kbs = kbs_of(kb)
        return answered(lambda within: graph.references(index, kbs, symbol, within=within), kbs, version, library)

    @router.get("/v1/graph/calls")
    def calls(symbol: Symbol, direction: Literal["callers", "callees"] = "callers", depth: Depth = 1,
              kb: str | None = None, version: Version = None, library: Library = None):
        kbs = kbs_of(kb)
        ask = graph.callers if direction == "callers" else graph.callees
        return answered(lambda within: ask(index, kbs, symbol, depth, within=within), kbs, version, library)

    return router
