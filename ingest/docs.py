"""Docs chunking: split by headings, keep heading breadcrumbs and line ranges.

Every format is first turned into Sections (a heading trail and a line range of the
original file); sections are then merged when tiny and split at paragraph breaks when
larger than the window, so each chunk fits what the embedding model reads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from ingest.chunk import Chunk
from ingest.lines import FENCE, split_lines


@dataclass
class Section:
    headings: list[str]
    start: int  # 0-based line index, inclusive
    end: int  # exclusive


ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")


def _clean_heading(text: str) -> str:
    text = re.sub(r"\{#[^}]*\}\s*$", "", text)  # {#anchor}
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return text.strip().strip("*_").strip()


def markdown_sections(lines: list[str], stack: list[tuple[int, str]] | None = None) -> tuple[list[Section], str]:
    """Sections of a Markdown file and its front-matter title (if any).

    `stack` is the (level, heading) trail in effect before the first line; it is updated in
    place, so notebook cells read one after another keep their breadcrumbs."""
    title = ""
    i = 0
    if lines and lines[0].strip() == "---":  # YAML front matter: keep its title, not as a section
        for j in range(1, min(len(lines), 200)):
            if lines[j].strip() in ("---", "..."):
                for ln in lines[1:j]:
                    m = re.match(r"^title:\s*['\"]?(.*?)['\"]?\s*$", ln)
                    if m:
                        title = m.group(1)
                i = j + 1
                break
    stack = stack if stack is not None else []
    sections: list[Section] = []
    start = i
    fence = ""

    def close(at: int) -> None:
        if at > start:
            sections.append(Section([h for _, h in stack], start, at))

    k = i
    while k < len(lines):
        line = lines[k]
        m = FENCE.match(line)
        if m:
            mark = m.group(1)[0] * 3
            if not fence:
                fence = mark
            elif line.strip().startswith(fence):
                fence = ""
            k += 1
            continue
        if not fence:
            level = 0
            text = ""
            a = ATX.match(line)
            if a:
                level, text = len(a.group(1)), a.group(2)
            elif (k + 1 < len(lines) and line.strip() and not line.startswith(("    ", "\t", "|", "-", "*", ">"))
                  and SETEXT.match(lines[k + 1]) and (k == 0 or not lines[k - 1].strip())):
                level, text = (1 if lines[k + 1].strip()[0] == "=" else 2), line
            if level:
                close(k)
                start = k
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, _clean_heading(text)))
        k += 1
    close(len(lines))
    if title:
        for s in sections:
            if not s.headings or s.headings[0] != title:
                s.headings.insert(0, title)
    return sections, title


RST_ADORN = re.compile(r"^([=\-~^\"'`#*+<>:.!$%&,/;?@\\_|])\1{2,}\s*$")


def rst_sections(lines: list[str]) -> list[Section]:
    styles: list[str] = []  # adornment styles in order of first appearance = levels
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    start = 0
    k = 0
    while k < len(lines):
        line = lines[k]
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        heading_at = -1
        style = ""
        underlined = RST_ADORN.match(nxt) and len(nxt.rstrip()) >= len(line.rstrip())
        if line.strip() and not RST_ADORN.match(line) and underlined:
            over = k > 0 and RST_ADORN.match(lines[k - 1]) and lines[k - 1].strip()[0] == nxt.strip()[0]
            heading_at = k - 1 if over else k
            style = ("o" if over else "u") + nxt.strip()[0]
        if heading_at >= 0:
            if heading_at > start:
                sections.append(Section([h for _, h in stack], start, heading_at))
            start = heading_at
            if style not in styles:
                styles.append(style)
            level = styles.index(style) + 1
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, line.strip()))
            k += 2
            continue
        k += 1
    if len(lines) > start:
        sections.append(Section([h for _, h in stack], start, len(lines)))
    return sections


class _HTMLSections(HTMLParser):
    """Collects heading positions (line numbers) and the text of each line of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.heads: list[tuple[int, int, str]] = []  # (line0, level, text)
        self.text_by_line: dict[int, list[str]] = {}
        self._skip = 0
        self._in_head: tuple[int, int] | None = None
        self._head_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "nav", "footer"):
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._in_head = (self.getpos()[0] - 1, int(tag[1]))
            self._head_text = []

    def handle_endtag(self, tag):
        if tag in ("script", "style", "nav", "footer") and self._skip:
            self._skip -= 1
        elif re.fullmatch(r"h[1-6]", tag) and self._in_head:
            self.heads.append((self._in_head[0], self._in_head[1], " ".join("".join(self._head_text).split())))
            self._in_head = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_head:
            self._head_text.append(data)
        line0 = self.getpos()[0] - 1
        for i, part in enumerate(data.split("\n")):
            if part.strip():
                self.text_by_line.setdefault(line0 + i, []).append(part.strip())


def html_sections(lines: list[str]) -> tuple[list[Section], list[str]]:
    """Sections by h1-h6, and the visible text of each line (tags stripped)."""
    p = _HTMLSections()
    try:
        p.feed("\n".join(lines))
        p.close()
    except Exception:  # malformed HTML: keep whatever was parsed
        pass
    text_lines = [" ".join(p.text_by_line.get(i, [])) for i in range(len(lines))]
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    start = 0
    for line0, level, text in p.heads:
        if line0 > start:
            sections.append(Section([h for _, h in stack], start, line0))
        start = line0
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
    sections.append(Section([h for _, h in stack], start, len(lines)))
    return sections, text_lines


def sections_to_chunks(sections: list[Section], lines: list[str], shown: list[str], path: str,
                       language: str, max_chars: int, min_chars: int = 200) -> list[Chunk]:
    """Merge tiny sections into the next one, split large ones; `shown` is the text of each
    line as it should appear in the chunk (the raw line for Markdown, visible text for HTML)."""
    chunks: list[Chunk] = []
    pending: Section | None = None
    for sec in sections:
        if pending is not None:
            sec = Section(pending.headings if len(pending.headings) < len(sec.headings) and
                          sec.headings[:len(pending.headings)] != pending.headings else sec.headings,
                          pending.start, sec.end)
            pending = None
        body = "\n".join(shown[sec.start:sec.end]).strip()
        if not body:
            continue
        if len(body) < min_chars and sec is not sections[-1]:
            pending = sec
            continue
        for a, b in split_lines(shown, sec.start, sec.end, max_chars):
            text = "\n".join(shown[a:b]).strip("\n")
            if not text.strip():
                continue
            # Line range of the non-blank content, so citations point at real text.
            while a < b and not shown[a].strip():
                a += 1
            while b > a and not shown[b - 1].strip():
                b -= 1
            chunks.append(Chunk(text=text, path=path, start_line=a + 1, end_line=b, kind="doc",
                                language=language, headings=list(sec.headings)))
    if pending is not None:
        a, b = pending.start, pending.end
        while a < b and not shown[a].strip():
            a += 1
        while b > a and not shown[b - 1].strip():
            b -= 1
        text = "\n".join(shown[a:b])
        if text.strip():
            chunks.append(Chunk(text=text, path=path, start_line=a + 1, end_line=b,
                                kind="doc", language=language, headings=list(pending.headings)))
    return chunks


def chunk_docs(text: str, path: str, language: str, max_chars: int = 1200) -> list[Chunk]:
    lines = text.split("\n")
    if language == "markdown":
        sections, _ = markdown_sections(lines)
        return sections_to_chunks(sections, lines, lines, path, language, max_chars)
    if language == "rst":
        return sections_to_chunks(rst_sections(lines), lines, lines, path, language, max_chars)
    if language == "html":
        sections, shown = html_sections(lines)
        return sections_to_chunks(sections, lines, shown, path, language, max_chars)
    return sections_to_chunks([Section([], 0, len(lines))], lines, lines, path, language, max_chars)
