"""Citation links a reader can open: a forge's web link, or the server's read-only viewer.

Chunks carry a link made at ingest: a web URL with a line anchor for a known git remote
(GitHub `#L3-L9`, GitLab `#L3-9`), else the file's path on the server with `#L3-L9`. A path on
the server's disk means nothing to a browser or a remote client, so every door turns it into
a viewer URL (`/source?path=...&lines=3-9#L3`): relative in the web UI, absolute (from
`server.public_url`, else the address served) through the API. The lines always come from the
link's own anchor, so an answer's text and its link name the same range.
"""
from __future__ import annotations

import re
from urllib.parse import quote, unquote

ANCHOR = re.compile(r"#L(\d+)(?:-L?(\d+))?$")
WEB = re.compile(r"^https?://", re.IGNORECASE)


def lines_of(link: str) -> tuple[int, int] | None:
    """The (start, end) lines a link's anchor names, or None."""
    m = ANCHOR.search(link or "")
    if not m:
        return None
    start = int(m.group(1))
    return start, int(m.group(2) or start)


def with_lines(link: str, start: int, end: int) -> str:
    """The same link, anchored to lines start..end (in the forge's own anchor style)."""
    if not link:
        return link
    base = ANCHOR.sub("", link)
    if WEB.match(link) and "gitlab" in link.split("/")[2].lower():
        return f"{base}#L{start}-{end}"
    return f"{base}#L{start}-L{end}"


def public_url(link: str, base: str = "") -> str:
    """A URL for `link`: web links as they are; a server path through the viewer, under `base`
    (empty: a relative URL, for pages the server itself serves)."""
    if not link or WEB.match(link):
        return link
    path = unquote(ANCHOR.sub("", link))
    span = lines_of(link)
    url = f"{base.rstrip('/')}/source?path={quote(path, safe='/')}"
    if span:
        url += f"&lines={span[0]}-{span[1]}#L{span[0]}"
    return url


LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def public_links(text: str, base: str = "") -> str:
    """Markdown links in `text` whose target is a server path, turned into viewer URLs."""
    def repl(m: re.Match) -> str:
        target = m.group(1)
        if target.startswith("/") and not target.startswith("/source?") and ANCHOR.search(target):
            return f"]({public_url(target, base).replace(' ', '%20').replace(')', '%29')})"
        return m.group(0)

    return LINK_TARGET.sub(repl, text)
