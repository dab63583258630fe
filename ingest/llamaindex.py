"""LlamaIndex as a door in: any LlamaIndex reader, or a list of `Document`s, as a source; and this
product's chunking as a LlamaIndex node parser.

- `DevcopilotNodeParser` chunks Documents the way ingest does: tree-sitter symbols for code
  (language from the document's file path, or its `language` metadata), heading trails for docs.
- `reader_source("llamaindex:MODULE.ClassName", args)` runs a reader (e.g.
  `llama_index.core.SimpleDirectoryReader`) and `documents_source(documents, name)` takes
  Documents from Python; both give a source whose files are the documents, keyed by their file
  path (else their id), so a re-ingest re-embeds only documents whose text changed.

LlamaIndex is imported here and in indexes/llamaindex.py only, never on the product's hot paths.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, NodeRelationship, TextNode
from pydantic import Field

from ingest.chunk import Chunk
from ingest.chunking import chunk_file
from ingest.files import SourceFile
from ingest.languages import CODE_LANGUAGES, classify
from ingest.sources import ResolvedSource, SourceError

PREFIX = "llamaindex:"
DOCUMENTS = "documents:"  # the spec of Documents given from Python: documents:NAME
PATH_KEYS = ("file_path", "path", "file_name", "filename", "url", "source")


def document_path(doc: BaseNode) -> str:
    """Where a document came from, as a path to cite: its file path (relative when it lies under the
    working folder), URL or name from the metadata, else its id."""
    meta = doc.metadata or {}
    for key in PATH_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            value = value.strip().replace("\\", "/")
            if value.startswith("/"):
                try:
                    value = Path(value).relative_to(Path.cwd()).as_posix()
                except ValueError:
                    value = value.lstrip("/")
            return re.sub(r"^[a-z]+://", "", value)
    return doc.id_


def document_kind(doc: BaseNode, path: str, text: str) -> tuple[str, str]:
    """(kind, language): from the path's extension, else a `language` in the metadata, else Markdown when
    the text has Markdown headings, else plain text."""
    language = str((doc.metadata or {}).get("language") or "").lower()
    if language:
        return ("code" if language in set(CODE_LANGUAGES.values()) else "doc"), language
    found = classify(path)
    if found is not None and found[1] != "notebook":
        return found
    return "doc", "markdown" if re.search(r"^#{1,6}\s", text, re.MULTILINE) else "text"


class DevcopilotNodeParser(NodeParser):
    """Chunks Documents as devcopilot does: one node per function, class or method for code
    (tree-sitter), per heading section for docs, with the chunk's path, lines, kind, language,
    symbol and heading trail in the node's metadata."""

    max_chars: int = Field(default=1200, description="Largest chunk, in characters (ingest.chunk_chars).")

    @classmethod
    def class_name(cls) -> str:
        return "DevcopilotNodeParser"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for doc in nodes:
            text = doc.get_content()
            path = document_path(doc)
            kind, language = document_kind(doc, path, text)
            for i, c in enumerate(chunk_file(text, path, kind, language, self.max_chars)):
                node = TextNode(id_=self.id_func(i, doc), text=c.text, metadata=chunk_metadata(c))
                node.relationships[NodeRelationship.SOURCE] = doc.as_related_node_info()
                out.append(node)
        return out


def chunk_metadata(c: Chunk) -> dict:
    return {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "kind": c.kind,
            "language": c.language, "symbol": c.symbol, "headings": " > ".join(c.headings)}


# -- sources --------------------------------------------------------------------------------------------
def documents_source(documents: Sequence[Document], name: str = "documents") -> ResolvedSource:
    """A source holding these Documents; `name` keeps it apart from other lists (its spec is
    `documents:NAME`), so ingesting a new version of the list replaces the old one incrementally."""
    if not re.fullmatch(r"[\w.-]{1,64}", name):
        raise SourceError(f"'{name}' is not a usable source name; use letters, digits, '.', '_' or '-'.")
    return _source(DOCUMENTS + name, "documents", list(documents), "")


def reader_spec(target: str, args: dict | None) -> str:
    """The spec stored for a reader and its arguments: `llamaindex:MODULE.Class {json}`."""
    target = target.strip().removeprefix(PREFIX).strip()
    return PREFIX + target + (" " + json.dumps(args, sort_keys=True, separators=(",", ":")) if args else "")


def reader_source(spec: str) -> ResolvedSource:
    """Run the LlamaIndex reader a `llamaindex:MODULE.Class [{json args}]` spec names and take its Documents.

    The arguments go to the reader's constructor, or to its load_data() when only that takes them
    (e.g. `urls` for a web reader)."""
    target, _, raw = spec.removeprefix(PREFIX).strip().partition(" ")
    try:
        args = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise SourceError(f"The reader arguments are not valid JSON ({e}); pass a JSON object to --reader-args.") \
            from None
    if not isinstance(args, dict):
        raise SourceError("The reader arguments must be a JSON object, e.g. '{\"input_dir\": \"docs\"}'.")
    reader_cls = _load_class(target)
    init, load = _split_args(reader_cls, args)
    try:
        reader = reader_cls(**init)
        documents = reader.load_data(**load)
    except (TypeError, ValueError, OSError, ImportError) as e:
        raise SourceError(f"The reader {target} failed: {_one_line(e)}; check --reader-args.") from None
    if not isinstance(documents, list) or not all(isinstance(d, BaseNode) for d in documents):
        raise SourceError(f"The reader {target} did not return a list of LlamaIndex Documents.")
    version = ""
    try:
        from importlib.metadata import version as dist_version

        version = "llama-index-core " + dist_version("llama-index-core")
    except Exception:  # noqa: BLE001 (only a label)
        pass
    return _source(reader_spec(target, args), "llamaindex", documents, version)


def _load_class(target: str) -> type:
    module, _, name = target.rpartition(".")
    if not module or not re.fullmatch(r"[A-Za-z_][\w.]*", target):
        raise SourceError(f"'{target}' is not a reader class path; write llamaindex:MODULE.ClassName, e.g. "
                          "llamaindex:llama_index.core.SimpleDirectoryReader.")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise SourceError(f"Could not import '{module}' ({_one_line(e)}); install the reader's package "
                          "(pip install llama-index-readers-...).") from None
    except AttributeError:
        raise SourceError(f"Module '{module}' has no reader named '{name}'.") from None
    if not (inspect.isclass(cls) and hasattr(cls, "load_data")):
        raise SourceError(f"'{target}' is not a LlamaIndex reader (it has no load_data method).")
    return cls


def _split_args(cls: type, args: dict) -> tuple[dict, dict]:
    """Which arguments go to the constructor, which to load_data()."""
    def named(fn) -> tuple[set[str], bool]:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return set(), True
        return ({p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)},
                any(p.kind == p.VAR_KEYWORD for p in params))

    init_names, init_any = named(cls.__init__)
    load_names, _ = named(cls.load_data)
    init, load, unknown = {}, {}, []
    for key, value in args.items():
        if key in init_names:
            init[key] = value
        elif key in load_names:
            load[key] = value
        elif init_any:
            init[key] = value
        else:
            unknown.append(key)
    if unknown:
        known = ", ".join(sorted((init_names | load_names) - {"self"})) or "none"
        raise SourceError(f"{cls.__name__} takes no argument {', '.join(map(repr, unknown))}; it takes: {known}.")
    return init, load


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


@dataclass
class DocumentsSource(ResolvedSource):
    """Documents as a source: a document with a web URL is cited by it, the others by the viewer."""
    urls: dict[str, str] = field(default_factory=dict)  # path -> the document's URL

    def link(self, path: str, start: int, end: int) -> str:
        return self.urls.get(path) or super().link(path, start, end)


def _source(spec: str, kind: str, documents: list[BaseNode], version: str) -> ResolvedSource:
    """The documents as in-memory files: one per path, documents sharing a path (a PDF's pages) joined in order."""
    texts: dict[str, list[str]] = {}
    first: dict[str, BaseNode] = {}
    for doc in documents:
        path = _safe_path(document_path(doc))
        texts.setdefault(path, []).append(doc.get_content())
        first.setdefault(path, doc)
    files = []
    urls = {}
    for path, parts in texts.items():
        url = next((v for k in ("url", "source") if isinstance(v := (first[path].metadata or {}).get(k), str)
                    and v.startswith(("http://", "https://"))), "")
        if url:
            urls[path] = url
        text = "\n\n".join(parts)
        kind_, language = document_kind(first[path], path, text)
        files.append(SourceFile(path, Path(os.devnull), kind_, language, text.encode("utf-8")))
    root = Path(f"/{kind}/{hashlib.sha256(spec.encode()).hexdigest()[:12]}")  # no folder: read from the index
    return DocumentsSource(spec, kind, root, root, version=version, files=sorted(files, key=lambda f: f.path),
                           urls=urls)


def _safe_path(path: str) -> str:
    parts = [p for p in PurePosixPath(path).parts if p not in ("", ".", "..", "/")]
    return "/".join(parts) or "document"
