"""LlamaIndex as a door out: the product's retrieval as a LlamaIndex retriever, and Documents in.

`DevcopilotRetriever(data_dir, kb="default", k=10, kind=None)` is a `BaseRetriever` whose
`retrieve(query)` returns what `devcopilot search --json` returns for the same query (it calls
the same `retrieve()`), as `NodeWithScore`s of `TextNode`s carrying the fused score and the
chunk's metadata. Use it in a `RetrieverQueryEngine`, or as an agent tool (`RetrieverTool`).

`ingest_documents(data_dir, documents, kb, name)` indexes LlamaIndex Documents with the
product's own chunking, embeddings and stores; calling it again with a new version of the list
re-embeds only the documents whose text changed.

LlamaIndex is imported here and in ingest/llamaindex.py only, never on the product's hot paths.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import Document, NodeWithScore, QueryBundle, TextNode

from indexes.config import Config, load_config
from indexes.retrieve import retrieve
from indexes.search import Hit, Index

LLM_HIDDEN = ["kind", "start_line", "end_line", "score", "weak", "headings", "language"]  # kept from the prompt


def open_index(data_dir: str | Path | None = None, config: Config | None = None) -> Index:
    """The Index of a data dir, with the configuration the CLI would load (DEVCOPILOT_CONFIG, environment)."""
    if config is None:
        config = load_config(overrides={"data_dir": str(data_dir)} if data_dir is not None else None)
    elif data_dir is not None:
        config.data_dir = Path(data_dir)
    return Index(config)


def to_node(hit: Hit, weak: bool = False) -> NodeWithScore:
    """A hit as LlamaIndex sees it: the chunk's text, its metadata, the fused score."""
    c = hit.chunk
    metadata: dict[str, Any] = {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "kind": c.kind,
                                "language": c.language, "symbol": c.symbol, "headings": " > ".join(c.headings),
                                "title": c.title, "kb": hit.kb, "link": c.link, "score": round(hit.score, 6),
                                "weak": weak}
    node = TextNode(id_=c.id, text=c.text, metadata=metadata, excluded_llm_metadata_keys=list(LLM_HIDDEN),
                    excluded_embed_metadata_keys=list(metadata))
    return NodeWithScore(node=node, score=hit.score)


class DevcopilotRetriever(BaseRetriever):
    """devcopilot's hybrid search (and its rules for what to cite) as a LlamaIndex retriever.

    `kb` is a knowledge base name (or a list of them), `k` how many nodes, `kind` "doc", "code" or
    None for both. Pass `config` to use another configuration, or `index` to share an open Index.
    Each node's metadata has `weak` True when retrieval judged the match too weak to answer from."""

    def __init__(self, data_dir: str | Path | None = None, kb: str | list[str] = "default", k: int = 10,
                 kind: str | None = None, *, config: Config | None = None, index: Index | None = None,
                 callback_manager: CallbackManager | None = None, verbose: bool = False) -> None:
        if kind not in (None, "doc", "code"):
            raise ValueError(f"Unknown kind '{kind}'; use doc, code or None.")
        if k < 1:
            raise ValueError(f"k must be 1 or more, not {k}.")
        self.index = index if index is not None else open_index(data_dir, config)
        self.kbs = [kb] if isinstance(kb, str) else list(kb)
        for name in self.kbs:
            self.index.searchable(name)  # an unknown KB, or one embedded by another model, is one sentence
        self.k, self.kind = k, kind
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = retrieve(self.index, query_bundle.query_str, self.kbs, kind=self.kind, k=self.k)
        return [to_node(h, found.weak) for h in found.hits]


def ingest_documents(data_dir: str | Path | None, documents: Sequence[Document], kb: str = "default",
                     name: str = "documents", *, config: Config | None = None, index: Index | None = None):
    """Index LlamaIndex Documents into `kb` as the source `documents:NAME`; returns the IngestSummary.

    Documents are keyed by their file path (metadata `file_path`, `file_name`, `url`...) or id; a
    new call with the same `name` replaces the previous list, re-embedding only what changed."""
    from indexes.build import ingest
    from ingest.llamaindex import documents_source

    index = index if index is not None else open_index(data_dir, config)
    return ingest(index, [documents_source(documents, name)], kb)
