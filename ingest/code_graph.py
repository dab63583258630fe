"""A code file in, its chunks and its code graph out, from one parse (ingest/code.py chunks the tree,
ingest/references.py and the language walkers ingest/refs_*.py read it)."""
from __future__ import annotations

import logging
from collections.abc import Container

from ingest.chunk import Chunk
from ingest.chunking import chunk_file
from ingest.code import chunk_code, parse_code
from ingest.references import FileGraph, FileWalker
from ingest.refs_go import GoWalker
from ingest.refs_java import JavaWalker
from ingest.refs_python import PythonWalker
from ingest.refs_rust import RustWalker
from ingest.refs_typescript import ScriptWalker

# Bump when what the walkers extract changes: a KB's graph made by another version is made again on
# the next ingest, from the files (no re-embedding).
# 5: Python modules named under the package a source folder is. 6: named as imported, from the topmost package
# folder above them (src layout: `src/shop/core.py` is `shop.core`, no longer `src.shop.core`).
GRAPH_VERSION = "6"

WALKERS: dict[str, type[FileWalker]] = {"python": PythonWalker, "typescript": ScriptWalker, "tsx": ScriptWalker,
                                          "javascript": ScriptWalker, "go": GoWalker,
                                          "java": JavaWalker, "rust": RustWalker}
GRAPH_LANGUAGES = frozenset(WALKERS)
log = logging.getLogger("devcopilot.ingest")


def file_graph(tree, path: str, language: str, package: str = "", packages: Container[str] | None = None) -> FileGraph:
    """The definitions and references of a parsed file (`parsed` False when it has syntax errors).
    `package`: the dotted package the source's folder is (ingest/refs_python.py `python_package`), which
    Python modules are named under; `packages`: the source's folders that are packages, which name a module
    from the topmost one above it (`python_module`; None: from its path). The other languages ignore both."""
    return WALKERS[language](tree, path, language, package, packages).build()


def graph_of(text: str, path: str, language: str, package: str = "",
             packages: Container[str] | None = None) -> FileGraph | None:
    """The graph of a file's text, or None when the language has none (or no grammar)."""
    if language not in WALKERS:
        return None
    tree = parse_code(text, language)
    if tree is None:
        return FileGraph(language, "", parsed=False)
    return file_graph(tree, path, language, package, packages)


def chunk_with_graph(text: str, path: str, kind: str, language: str, max_chars: int = 1200,
                     graph: bool = True, package: str = "",
                     packages: Container[str] | None = None) -> tuple[list[Chunk], FileGraph | None]:
    """A file's chunks (as ingest.chunking.chunk_file makes them) and, for code in a language with a
    walker, its graph from the same parse (`package`, `packages`: see file_graph)."""
    if not graph or kind != "code" or language not in WALKERS:
        return chunk_file(text, path, kind, language, max_chars), None
    tree = parse_code(text, language)
    chunks = chunk_code(text, path, language, max_chars, tree=tree)
    if tree is None:  # the parse failed outright: the file is counted as not parsing
        return chunks, FileGraph(language, "", parsed=False)
    try:
        return chunks, file_graph(tree, path, language, package, packages)
    except Exception as e:  # a walker's bug costs this file's graph, never its chunks
        log.warning("could not read the code graph of %s: %s: %s", path, type(e).__name__, e)
        return chunks, None
