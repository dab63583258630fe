"""Turning chat events into what the Chatbot shows: a speaker line, the answer, its sources.

Plain functions over strings so the app stays thin and this stays testable without a browser.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


def is_image(avatar: str) -> bool:
    return Path(avatar or "").suffix.lower() in IMAGE_SUFFIXES


def avatar_html(name: str, avatar: str) -> str:
    """An emoji as text; an image file through the server's /avatars route (never a raw path)."""
    if avatar and is_image(avatar):
        return f'<img class="dc-avatar" src="/avatars/{quote(name)}" alt="" width="22" height="22">'
    return html.escape(avatar or "🤖")


def speaker_line(name: str, avatar: str) -> str:
    return f'<span class="dc-speaker" data-assistant="{html.escape(name, quote=True)}">' \
           f'{avatar_html(name, avatar)} <strong>{html.escape(name)}</strong></span>'


def source_href(link: str, start: int, end: int) -> str:
    """Web links stay as they are; a local file goes through the server's read-only /source view."""
    if re.match(r"^https?://", link or ""):
        return link
    path = (link or "").split("#", 1)[0]
    return f"/source?path={quote(path, safe='/')}&lines={start}-{end}#L{start}"


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def sources_block(sources) -> str:
    if not sources:
        return ""
    lines = ["", "", "**Sources**", ""]
    for s in sources:
        label = f"{s.path}:{s.start_line}-{s.end_line}"
        title = f" — {_md_escape(s.title)}" if s.title and s.title != s.path else ""
        href = source_href(s.link, s.start_line, s.end_line).replace(" ", "%20").replace(")", "%29")
        origin = getattr(s, "origin", "")  # where it was indexed from and when: the link's tooltip
        tip = ' "' + _md_escape(origin).replace('"', "'") + '"' if origin else ""
        lines.append(f"{s.n}. [{_md_escape(label)}]({href}{tip}){title}")
    return "\n".join(lines)


def local_links(text: str, sources) -> str:
    """Links in the answer to a cited local file go through /source too (a browser cannot open a server path)."""
    for s in sources:
        if s.link and not re.match(r"^https?://", s.link):
            text = text.replace(f"]({s.link})", f"]({source_href(s.link, s.start_line, s.end_line)})")
    return text


def assistant_message(name: str, avatar: str, text: str, sources=(), streaming: bool = False) -> str:
    body = local_links(text, sources) if text else ("…" if streaming else "")
    return f"{speaker_line(name, avatar)}\n\n{body}{sources_block(sources)}"


def notice_message(text: str, error: bool = False) -> str:
    icon = "⚠️" if error else "ℹ️"
    return f'<span class="dc-notice">{icon} {html.escape(text)}</span>'
