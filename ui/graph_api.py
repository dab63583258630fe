"""The code graph over HTTP (indexes/graph.py), behind the edge like the rest of /v1 (ui/edge.py: the
API token when one is set):

    GET /v1/graph/references?symbol=Runner.run[&kb=K]                   every reference to the symbol
    GET /v1/graph/calls?symbol=Runner.run[&direction=callers|callees][&depth=N][&kb=K]
                                                                        who calls it (to a depth), or what it calls

Both answer JSON: the symbol's definitions (path, lines, link) and its sites, each with its file, line,
the symbol it sits in, its kind, whether it resolved (False: matched by name only), the code line and a
link to it. A symbol with no definition, or a KB without a code graph, is a 404 in one sentence.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from indexes import graph
from indexes.search import SearchError
from ui.edge import HTTPError

Symbol = Annotated[str, Query(min_length=1, max_length=200, description="A function, class or method.")]
Depth = Annotated[int, Query(ge=1, le=graph.MAX_DEPTH)]


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

    def answered(ask) -> dict:
        try:
            return ask().to_json()
        except graph.GraphError as e:
            raise HTTPError(404, str(e), "not_found_error") from None

    @router.get("/v1/graph/references")
    def references(symbol: Symbol, kb: str | None = None):
        kbs = kbs_of(kb)
        return answered(lambda: graph.references(index, kbs, symbol))

    @router.get("/v1/graph/calls")
    def calls(symbol: Symbol, direction: Literal["callers", "callees"] = "callers", depth: Depth = 1,
              kb: str | None = None):
        kbs = kbs_of(kb)
        ask = graph.callers if direction == "callers" else graph.callees
        return answered(lambda: ask(index, kbs, symbol, depth))

    return router
