"""Jupyter notebooks: markdown cells chunked as docs (by headings), code cells as code.

Line numbers point into the .ipynb file itself, so citations open at the cell they quote.
"""
from __future__ import annotations

import json

from ingest.chunk import Chunk
from ingest.code import chunk_code
from ingest.docs import chunk_docs, markdown_sections, sections_to_chunks
from ingest.files import Skip

NOT_A_NOTEBOOK = "could not be read as a notebook"


def chunk_notebook(text: str, path: str, max_chars: int) -> list[Chunk]:
    """A notebook: markdown cells by headings, code cells as code, line numbers into the .ipynb.

    Text that is not JSON is chunked as plain text. JSON of another shape (no `cells` list), or
    nested beyond what the parser can follow, is skipped (Skip); odd cells inside a notebook
    (not an object, a source that is not text) are passed over."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError:
        return chunk_docs(text, path, "text", max_chars)
    except RecursionError:
        raise Skip(f"{NOT_A_NOTEBOOK}: nested too deeply") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
        raise Skip(f"{NOT_A_NOTEBOOK}: not a notebook's shape")
    raw_lines = text.split("\n")
    chunks: list[Chunk] = []
    cursor = 0
    meta = nb.get("metadata")
    kernel = meta.get("kernelspec") if isinstance(meta, dict) else None
    lang = kernel.get("language") if isinstance(kernel, dict) else None
    lang = lang if isinstance(lang, str) and lang.strip() else "python"
    md_buf: list[str] = []
    md_rows: list[int] = []  # the .ipynb line of each md_buf line
    md_stack: list[tuple[int, str]] = []  # heading trail carried from cell to cell

    def locate(first: str) -> int:
        nonlocal cursor
        needle = json.dumps(first)[1:-1][:60]
        for i in range(cursor, len(raw_lines)):
            if needle and needle in raw_lines[i]:
                cursor = i
                return i
        return cursor

    def flush_md() -> None:
        if md_buf:
            secs, _ = markdown_sections(md_buf, md_stack)
            for c in sections_to_chunks(secs, md_buf, md_buf, path, "markdown", max_chars):
                # map back to the notebook's JSON lines (one source line per JSON line)
                c.start_line = md_rows[c.start_line - 1] + 1
                c.end_line = max(c.start_line, md_rows[min(c.end_line, len(md_rows)) - 1] + 1)
                chunks.append(c)
            md_buf.clear()
            md_rows.clear()

    for cell in nb.get("cells", []):
        if not isinstance(cell, dict):
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(part for part in src if isinstance(part, str))
        if not isinstance(src, str):
            continue
        if not src.strip():
            continue
        first_line = src.split("\n", 1)[0]
        at = locate(first_line)
        n = src.count("\n") + 1
        if cell.get("cell_type") == "markdown":
            md_buf.extend(src.split("\n"))
            md_rows.extend(range(at, at + n))
        elif cell.get("cell_type") == "code":
            flush_md()
            for c in chunk_code(src, path, lang, max_chars):
                c.start_line += at
                c.end_line += at
                chunks.append(c)
    flush_md()
    return chunks
