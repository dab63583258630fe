"""How every door writes an answer's sources: one formatter, and a style for each door.

Each citation has the same parts in the same order: its number, its place (`path:start-end`), its
title (symbol or heading trail), its version (only when its KB holds several versions of its
library), its knowledge base and its link. The doors differ only in how they write each part
(ui/api.py, ui/mcp_server.py, ui/cli.py and ui/render.py hold their styles):

    API    [1] src/app.py:3-9 — App.run · app 2.0 (KB default) <https://host/source?path=...>
    MCP    [1] src/app.py:3-9 · App.run · app 2.0 <file link>
    CLI      [1] src/app.py:3-9  App.run  app 2.0  (KB default)
                 file link
    web    1. [src/app.py:3-9](/source?path=... "origin") — App.run <span class="dc-version">· app 2.0</span>
           <span class="dc-kb">· KB default</span>
"""
from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from copilot.events import Source


def link_as_is(source: Source, base: str) -> str:
    return source.link


@dataclass(frozen=True)
class CiteStyle:
    """How one door writes a citation's parts; each template takes its part's text as `{}`."""
    number: str = "[{}] "  # leads the line
    title: str = " — {}"  # when the source has a title
    version: str = " · {}"  # when its KB holds several versions of its library ("app 2.0")
    kb: str = " (KB {})"  # when the source's KB is known; "" leaves it out
    link: str = " <{}>"  # when `url` gives one; "" leaves it out
    heading: str = "\n\nSources:\n"  # before the lines of a block
    url: Callable[[Source, str], str] = link_as_is  # (source, the door's base URL) -> the link its reader opens
    # The web's Markdown: place and title escaped with it, the place itself a link to `url` with the
    # source's origin as its tooltip, a title that only repeats the path left out, the KB escaped for HTML.
    markdown: Callable[[str], str] | None = None


def cite_line(s: Source, style: CiteStyle, base: str = "") -> str:
    """One source as `style` writes it; `base` is the URL the door's links are under (the API's)."""
    place = f"{s.path}:{s.start_line}-{s.end_line}"
    title, kb, url, version = s.title, s.kb, style.url(s, base), s.version_label
    if style.markdown is not None:
        escape = style.markdown
        tip = ' "' + escape(s.origin).replace('"', "'") + '"' if s.origin else ""
        place = f"[{escape(place)}]({url}{tip})" if url else escape(place)
        title = escape(title) if title != s.path else ""
        kb, url, version = html.escape(kb), "", html.escape(version)
    return (style.number.format(s.n) + place + (style.title.format(title) if title else "")
            + (style.version.format(version) if version and style.version else "")
            + (style.kb.format(kb) if kb and style.kb else "") + (style.link.format(url) if url and style.link else ""))


def cite_block(sources: list[Source], style: CiteStyle, base: str = "") -> str:
    """The sources under an answer: the style's heading, then a line each; "" without sources."""
    if not sources:
        return ""
    return style.heading + "\n".join(cite_line(s, style, base) for s in sources)
