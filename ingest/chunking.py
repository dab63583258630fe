"""One entry point: a source file in, its chunks out."""
from __future__ import annotations

from ingest.chunk import Chunk
from ingest.code import chunk_code
from ingest.docs import chunk_docs


def chunk_file(text: str, path: str, kind: str, language: str, max_chars: int = 1200) -> list[Chunk]:
    if kind == "doc":
        return chunk_docs(text, path, language, max_chars)
    return chunk_code(text, path, language, max_chars)
