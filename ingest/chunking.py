"""One entry point: a source file in, its chunks out."""
from __future__ import annotations

from ingest.chunk import Chunk
from ingest.code import chunk_code
from ingest.docs import chunk_docs
from ingest.notebooks import chunk_notebook

# Bump when chunking changes: a KB chunked by another version (or window size) is re-chunked on
# the next ingest. Unchanged chunk texts are not re-embedded: the embedding cache has them.
CHUNKER_VERSION = "3"


def chunker_id(max_chars: int) -> str:
    return f"{CHUNKER_VERSION}/{max_chars}"


def chunk_file(text: str, path: str, kind: str, language: str, max_chars: int = 1200) -> list[Chunk]:
    if language == "notebook":
        return chunk_notebook(text, path, max_chars)
    if kind == "doc":
        return chunk_docs(text, path, language, max_chars)
    return chunk_code(text, path, language, max_chars)
