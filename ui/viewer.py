"""The source viewer (`GET /source?path=...&lines=a-b`): where every citation link points.

A read-only page of one indexed file with the cited lines highlighted. Nothing else is readable:
the file must be part of an indexed source (indexes/indexed_files.py), and it is shown from disk
only while its content is what was indexed.
"""
from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from indexes.indexed_files import find_indexed_file
from ui.edge import HTTPError


def viewer_router(index) -> APIRouter:
    router = APIRouter()

    @router.get("/source", include_in_schema=False)
    def source(path: str, lines: str = ""):
        return source_page(index, path, lines)

    return router


def source_page(index, path: str, lines: str) -> HTMLResponse:
    """A read-only view of one indexed file, the cited lines highlighted.

    The file on disk is shown only while its content is what was indexed (same hash): a file
    replaced since, by other text or by a hard link to a file outside the source (same path, other
    content), is shown from the catalog's own copy of the indexed lines instead."""
    try:
        start, _, end = lines.partition("-")
        start_n, end_n = int(start or 0), int(end or start or 0)
    except ValueError:
        start_n = end_n = 0
    found = find_indexed_file(index.catalog, path) if Path(path).is_absolute() else None
    if found is None:  # plain text: a person reads it in the browser tab the link opened
        raise HTTPError(404, "That file is not part of any indexed source.", "not_found_error", plain=True)
    note = "This file changed since it was indexed; the indexed text is shown." if found.from_index else ""
    return HTMLResponse(file_page(found.path, found.spec, found.text, start_n, end_n, note))


def file_page(rel: str, spec: str, text: str, start: int, end: int, note: str = "") -> str:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        mark = ' class="hit"' if start <= n <= end else ""
        rows.append(f'<tr id="L{n}"{mark}><td class="n"><a href="#L{n}">{n}</a></td>'
                    f"<td><pre>{html.escape(line)}</pre></td></tr>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(rel)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:13px}}
td{{padding:0 .6em;vertical-align:top}} td.n{{text-align:right;color:#888;user-select:none}} td.n a{{color:inherit;
text-decoration:none}} pre{{margin:0;font-family:ui-monospace,monospace;white-space:pre-wrap}}
tr.hit{{background:#fff5c2}} .meta{{color:#666}}</style></head><body>
<h3>{html.escape(rel)}</h3><p class="meta">from {html.escape(spec)}; lines {start}–{end} highlighted</p>
{f'<p class="meta"><strong>{html.escape(note)}</strong></p>' if note else ''}
<table>{''.join(rows)}</table></body></html>"""
