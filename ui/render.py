"""Turning chat events into what the Chatbot shows: a speaker line, the answer, its sources.

Plain functions over strings so the app stays thin and this stays testable without a browser.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

from copilot.citations import CiteStyle, cite_block
from copilot.links import public_links, public_url, with_lines

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


def is_image(avatar: str) -> bool:
    return Path(avatar or "").suffix.lower() in IMAGE_SUFFIXES


def avatar_html(name: str, avatar: str) -> str:
    """An emoji as text; an image file through the server's /avatars route (never a raw path)."""
    if avatar and is_image(avatar):
        return f'<img class="dc-avatar" src="/avatars/{quote(name)}" alt="" width="22" height="22">'
    return html.escape(avatar or "🤖")


def speaker_line(name: str, avatar: str, streaming: bool = False) -> str:
    """The speaker's avatar and name; while the answer streams it is marked `dc-streaming`."""
    cls = "dc-speaker dc-streaming" if streaming else "dc-speaker"
    return f'<span class="{cls}" data-assistant="{html.escape(name, quote=True)}">' \
           f'{avatar_html(name, avatar)} <strong>{html.escape(name)}</strong></span>'


def source_href(link: str, start: int, end: int) -> str:
    """Web links stay as they are; a file on the server goes through its read-only /source view, for
    lines start..end."""
    return public_url(with_lines(link, start, end)) if link else ""


def md_text(text: str) -> str:
    """`text` shown as is in Markdown."""
    return _md_escape(text)


def _md_escape(text: str) -> str:
    """Text shown as is in Markdown: emphasis and link characters as HTML entities (a backslash
    escape inside a link's text loses `__init__`'s underscores in the chat's renderer)."""
    return re.sub(r"[\\`*_\[\]<>|]", lambda m: f"&#{ord(m.group(0))};", text)


def _cited_href(s, base: str) -> str:
    """A source's link to its lines, as a Markdown link's target."""
    return source_href(s.link, s.start_line, s.end_line).replace(" ", "%20").replace(")", "%29")


# How an answer's sources read: "1. [src/app.py:3-9](/source?path=... "origin") — App.run" and the KB, the
# place a link that opens those lines, the origin (where it was indexed from, and when) its tooltip.
CITES = CiteStyle(number="{}. ", kb=' <span class="dc-kb">· KB {}</span>', link="", heading="\n\n**Sources**\n\n",
                  url=_cited_href, markdown=_md_escape)


def sources_block(sources) -> str:
    """The numbered sources under an answer: file and lines (the link opens those lines), title, KB."""
    return cite_block(sources, CITES)


def local_links(text: str, sources=()) -> str:
    """Links in the answer to a file on the server go through /source (a browser cannot open a server path)."""
    return public_links(text)


def assistant_message(name: str, avatar: str, text: str, sources=(), streaming: bool = False) -> str:
    body = local_links(text, sources) if text else ("…" if streaming else "")
    return f"{speaker_line(name, avatar, streaming)}\n\n{body}{sources_block(sources)}"


def history(messages: list[dict], avatar_of) -> tuple[list[dict], list[str]]:
    """A stored conversation (Conversations.messages) as the Chatbot's messages and their ids."""
    shown: list[dict] = []
    ids: list[str] = []
    for m in messages:
        if m["role"] == "user":
            shown.append({"role": "user", "content": m["content"]})
        elif m["role"] == "assistant":
            name = m.get("assistant") or "Guide"
            shown.append({"role": "assistant",
                          "content": assistant_message(name, avatar_of(name), m["content"], m.get("sources", []))})
        else:
            continue
        ids.append(m.get("message_id", ""))
    return shown, ids


def notice_message(text: str, error: bool = False) -> str:
    icon = "⚠️" if error else "ℹ️"
    return f'<span class="dc-notice">{icon} {html.escape(text)}</span>'
