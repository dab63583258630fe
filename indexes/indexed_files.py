"""Reading an indexed file back, for the source viewer, the MCP `read_source` tool and the coding tools.

Only files the catalog lists can be read: a path is looked up among the indexed sources
(never opened as given), so a path outside them, or with `..`, finds nothing. The file on disk
is shown only while it is exactly what was indexed (its content hash matches, it is a regular
file inside its source's root): a file rewritten since, or replaced by a hard link to an outside
file or by a FIFO, is not read. Then, and for sources with no folder (LlamaIndex documents), the
text is rebuilt from the indexed chunks, each line at its own number.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from indexes.catalog import Catalog
from ingest.chunk import Chunk
from ingest.files import Skip, SourceFile, read_regular

MAX_LINES = 200  # at most this many lines per read (MCP read_source); the viewer shows whole files
MAX_READ_BYTES = 50_000_000  # a file this large was never indexed (ingest.max_file_bytes is far lower)


@dataclass
class IndexedFile:
    kb: str
    spec: str  # the source it belongs to, as `devcopilot status` lists it
    path: str  # relative to the source root, as citations show it
    text: str
    chunks: list[Chunk]
    from_index: bool  # True when the file on disk is not what was indexed: the text comes from the chunks

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def find_indexed_file(catalog: Catalog, path: str, kbs: list[str] | None = None,
                      within: dict[str, frozenset[str] | None] | None = None) -> IndexedFile | None:
    """The indexed file at `path`, absolute (the viewer's links) or relative to a source root (as
    cited), in one of `kbs` (all KBs when None); None when no indexed source holds it. `within`: a KB's
    sources at the chosen versions (indexes/versions.py), the only ones of that KB read."""
    path = (path or "").strip().replace("\\", "/")
    if not path or ".." in path.split("/"):
        return None
    target = Path(path)
    for s in catalog.sources():
        if kbs is not None and s["kb"] not in kbs:
            continue
        allowed = (within or {}).get(s["kb"])
        if allowed is not None and s["id"] not in allowed:
            continue
        root = Path(s["root"])
        if target.is_absolute():
            try:
                rel = target.relative_to(root).as_posix()
            except ValueError:
                continue
        else:
            rel = path.removeprefix("./")
        chunks = [c for c in catalog.file_chunks(s["kb"], rel) if c.source_id == s["id"]]
        if not chunks:
            continue
        text, from_index = _read(root, rel, catalog.file_hash(s["kb"], s["id"], rel)), False
        if text is None:
            text, from_index = text_from_chunks(chunks), True
        return IndexedFile(s["kb"], s["spec"], rel, text, chunks, from_index)
    return None


def _read(root: Path, rel: str, indexed_hash: str | None) -> str | None:
    """The file's text when what is on disk now is exactly what was indexed, else None."""
    try:
        real = (root / rel).resolve(strict=True)
        if not real.is_relative_to(root.resolve()):  # replaced by a link pointing outside since indexing
            return None
        f = SourceFile(rel, real, "", "", read_regular(real, MAX_READ_BYTES))  # never blocks on a FIFO
    except (OSError, RuntimeError, Skip):
        return None
    return f.text() if indexed_hash and hmac.compare_digest(f.hash, indexed_hash) else None


def text_from_chunks(chunks: list[Chunk]) -> str:
    """The file's text as the chunks hold it, each line at its number (lines no chunk holds are blank)."""
    lines: dict[int, str] = {}
    for c in chunks:
        for i, ln in enumerate(c.text.splitlines()):
            lines.setdefault(c.start_line + i, ln)
    last = max(lines, default=0)
    return "\n".join(lines.get(n, "") for n in range(1, last + 1))


def line_range(f: IndexedFile, start: int, end: int, max_lines: int = MAX_LINES) -> tuple[int, int, list[str]]:
    """Lines start..end (1-based, inclusive) of the file, at most `max_lines`, clamped to the file:
    (first, last, lines); no lines when start lies past the end."""
    lines = f.lines
    start = max(1, start)
    end = min(max(start, end), start + max_lines - 1, len(lines))
    return start, end, lines[start - 1:end]
