"""Ingest sources into a KB: walk, chunk, embed (cached), write; only what changed.

Crash safety comes from the order of writes. For each batch of files: vectors are
upserted first (ids are content-derived, so a repeat overwrites), then the catalog
replaces those files' chunks and manifest entries in one SQLite transaction, then stale
vectors are deleted. Chunks are stored by content (indexes/catalog.py): a chunk another
source holds already (a file unchanged between two versions of a library) gets no second
vector, and a chunk is removed, vector and all, only when no source holds it any more.
The catalog is the truth; a search drops vectors it does not know.
A KB is marked dirty while an ingest runs; the next run after a kill reconciles the vector
store with the catalog (deletes orphans, restores missing vectors) and rebuilds the
lexical index, so the KB ends up exactly as a fresh ingest would leave it.

One writer at a time per data dir: `ingest` and `forget` hold its writer lock (indexes/writer.py),
and write on a catalog connection of their own, so that in a server their transactions never mix
with the reads of searches running beside them.
"""
from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Container
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexes.embeddings import runtime_of
from indexes.lexical import TOKENIZER_VERSION
from indexes.search import Index, lexical_tokens
from indexes.stores import collection_name
from indexes.writer import Holder, writing
from ingest.chunk import Chunk
from ingest.chunking import chunker_id
from ingest.code_graph import GRAPH_LANGUAGES, GRAPH_VERSION, chunk_with_graph, graph_of
from ingest.files import Skip, SourceFile, WalkReport, counted, read_regular, skipped_counts, walk
from ingest.languages import classify
from ingest.outbound import Outbound
from ingest.references import FileGraph
from ingest.refs_python import FolderPackages, package_folders, python_module, python_package
from ingest.release_names import library_of
from ingest.sources import ResolvedSource
from ingest.specs import open_source

log = logging.getLogger("devcopilot.ingest")

BATCH_CHUNKS = 256


@dataclass
class IngestSummary:
    kb: str
    sources: list[str] = field(default_factory=list)
    files: int = 0  # indexable files seen
    changed: int = 0  # new or changed files (re-chunked)
    removed: int = 0
    chunks: int = 0  # chunks written this run
    embedded: int = 0  # texts actually sent to the model (the rest came from the cache)
    total_chunks: int = 0
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    reembedded_from: str = ""  # the embedding model (and runtime) the KB's vectors were made by before
    cancelled: bool = False  # stopped on request: the files done so far are indexed, the rest are not yet
    done_files: int = 0  # new or changed files written (all of `changed` unless cancelled)
    unparsed: int = 0  # code files whose code graph was skipped: they do not parse (their chunks are indexed)
    regraphed: int = 0  # unchanged code files parsed again for a code graph the KB did not have yet

    def line(self) -> str:
        skipped = ", ".join(skipped_counts(self.skipped)) or "none"
        if self.cancelled:
            return (f"KB '{self.kb}': cancelled after {self.done_files} of {self.changed} new or changed files; "
                    f"{self.chunks} chunks written, {self.total_chunks} chunks in total, searchable as they are; "
                    f"re-index to complete it; {self.seconds:.1f} s.")
        again = f" (every vector remade: they were made by {self.reembedded_from})" if self.reembedded_from else ""
        return (f"KB '{self.kb}': {counted(self.files, 'file')} ({self.changed} new or changed, {self.removed} "
                f"removed), {counted(self.chunks, 'chunk')} written ({self.embedded} embedded, the rest "
                f"cached){again}, {counted(self.total_chunks, 'chunk')} in total; skipped: {skipped}"
                f"{self.graph_note()}; {self.seconds:.1f} s.")

    def graph_note(self) -> str:
        """What the code graph adds to the summary line: only news (files that do not parse, a graph made)."""
        notes = []
        if self.regraphed:
            notes.append(f"code graph made for {self.regraphed} unchanged code files")
        if self.unparsed:
            notes.append(f"{self.unparsed} code files that do not parse left out of the code graph")
        return "".join(f"; {n}" for n in notes)


def reembed_notice(kb: str, chunks: int, old: str, new: str) -> str:
    was = {"PyTorch": "torch", "ONNX Runtime": "onnx", "ONNX Runtime int8": "onnx-int8"}.get(runtime_of(old))
    keep = f' (set embedding.runtime = "{was}" to keep them)' if was and runtime_of(new) != runtime_of(old) else ""
    return (f"Knowledge base '{kb}' was embedded by {old} ({runtime_of(old)}), not by {new} ({runtime_of(new)}): "
            f"re-embedding its {chunks:,} chunks rather than mixing vectors{keep}; texts embedded before by this "
            "runtime come from the cache.")


# (stage, done, total). Stages: "scan" (files found, total 0), "index" (files chunked of those to
# (re)index), "embed" (chunks written, of an estimate that becomes exact once every file is chunked),
# "lexical" (the lexical index, 0 of 1).
Progress = Callable[[str, int, int], None]
Cancel = Callable[[], bool]  # polled between files and batches; True stops the ingest cleanly


class _Cancelled(Exception):
    pass


@dataclass
class _Pending:
    source: ResolvedSource
    path: str
    abspath: Path
    kind: str
    language: str
    data: bytes | None = None  # an in-memory file's content; None: read from abspath when chunked
    size: int = 0  # bytes, for the estimate of chunks to come
    package: str = ""  # the Python package the source's folder is, its modules' names start with (code graph)
    packages: Container[str] | None = None  # the source's folders that are Python packages (code graph)


def ingest(index: Index, specs: list[str | ResolvedSource], kb: str = "default", include: list[str] | None = None,
           exclude: list[str] | None = None, progress: Progress | None = None,
           fetch: bool = True, notice: Callable[[str], None] | None = None, cancel: Cancel | None = None,
           wait: bool = True, on_wait: Callable[[Holder | None], None] | None = None,
           outbound: Outbound | None = None, added_by: str | None = None) -> IngestSummary:
    """Index sources into `kb`; only what changed is re-embedded. Sources are specs (a folder, git
    URL, pkg:NAME, docs website URL or llamaindex: reader), or sources already opened (e.g.
    LlamaIndex Documents from Python).

    `include` / `exclude` (globs) apply to every source given; None means each source keeps the
    globs it was last indexed with (a re-index or a scheduled sync does not widen a source).
    `notice` hears, up front, of work the user did not ask for by name (every vector remade because
    the embedding model or runtime changed). With `cancel`, a request to stop ends the ingest
    between two files or batches: what was written stays, consistent and searchable, the sources
    are left unfinished (the next ingest does only what is missing), and the summary says
    `cancelled`. Waits for another writer of the data dir (`on_wait` hears who), or with
    `wait=False` raises WriterBusy.

    `outbound`: what fetches may connect to when a door of the server asked (ingest/outbound.py:
    public addresses and what `server.fetch_allow` opens); None for the operator's ingests, which
    fetch what they are told. `added_by`: the door that adds these sources ("api", "ui"), recorded so
    that their re-syncs are fetched under the policy too; None: the operator ("cli") for a new source,
    what was recorded for a known one (indexes/catalog.py)."""
    names = ", ".join(str(getattr(s, "spec", s)) for s in specs)
    with writing(index.cfg.data_dir, f"ingest of {names} into '{kb}'", wait, on_wait):
        writer = index.for_writing()
        try:
            return _ingest(writer, specs, kb, include, exclude, progress, fetch, notice, cancel, outbound, added_by)
        finally:  # also when it failed or was cancelled: the KB is left interrupted, not "being indexed"
            writer.catalog.writing(kb, False)
            writer.catalog.close()


def _ingest(index: Index, specs: list[str | ResolvedSource], kb: str, include: list[str] | None,
            exclude: list[str] | None, progress: Progress | None, fetch: bool,
            notice: Callable[[str], None] | None, cancel: Cancel | None, outbound: Outbound | None = None,
            added_by: str | None = None) -> IngestSummary:
    t0 = time.perf_counter()
    cfg = index.cfg
    catalog = index.catalog
    summary = IngestSummary(kb)
    # Resolve (clone/fetch) everything before touching the index: a bad source changes nothing.
    sources = [s if isinstance(s, ResolvedSource) else open_source(s, cfg, fetch=fetch, outbound=outbound)
               for s in specs]
    created = catalog.kb(kb) is None
    info = catalog.ensure_kb(kb, index.embedder.name, index.store.label)
    # A KB never completed (or a catalog rebuilt from scratch) may face vectors it does not list.
    was_dirty = info.dirty or info.indexed_at is None
    if info.embed_model != index.embedder.name:  # another model or runtime: every vector must be remade
        index.embedder.embed(["ready?"])  # fails here (bad key, no service) before the old vectors are dropped
        n = catalog.count_chunks(kb)
        if n:
            summary.reembedded_from = info.embed_model
            (notice or log.warning)(reembed_notice(kb, n, info.embed_model, index.embedder.name))
        index.store.drop(collection_name(kb, info.embed_model))
        catalog.reset_manifest(kb)
        catalog.set_kb(kb, embed_model=index.embedder.name)
        was_dirty = True
    if catalog.get_meta(f"chunker:{kb}") != chunker_id(cfg.ingest.chunk_chars):
        catalog.reset_manifest(kb)  # every file is chunked again; the embedding cache keeps this cheap
        catalog.set_meta(f"chunker:{kb}", chunker_id(cfg.ingest.chunk_chars))
    catalog.set_kb(kb, dirty=1, store=index.store.label)
    catalog.writing(kb, True)
    if catalog.count_chunks(kb) == 0:  # all tokens will be written by this tokenizer: no retokenizing at the end
        catalog.set_meta(f"tokenizer:{kb}", TOKENIZER_VERSION)
    changed_any = False
    delta = _LexicalDelta()
    # A KB indexed before the code graph existed (or by another version of it) gets its graph now: the
    # unchanged code files are parsed again, without re-embedding (the changed ones get it as they are chunked).
    # So does a KB where a Python module is named anew (an `__init__.py` added or removed).
    naming = {src.id: _python_naming(src) for src in sources}  # one look at each folder, for both uses
    regraph: list[_Pending] | None = [] if _graph_outdated(index, kb) or _package_changed(index, kb, sources, naming) \
        else None

    pending: list[_Pending] = []  # what to (re)chunk: paths only, files are read again one at a time
    skipped_by_source: dict[str, dict] = {}
    try:
        changed_any |= _scan(index, kb, sources, include, exclude, summary, pending, skipped_by_source, delta,
                             progress, cancel, added_by, regraph, naming)
        summary.changed = len(pending)
        if pending:
            changed_any = True
            bad = _write_changed(index, kb, pending, summary, progress, delta, cancel)
            for p, reason in bad:  # a bad file is skipped and counted; what it held before is removed
                summary.skipped[reason] += 1
                skipped_by_source[p.source.id][reason] = skipped_by_source[p.source.id].get(reason, 0) + 1
                _remove_file(index, kb, p.source.id, p.path, delta)
            summary.changed -= len(bad)
        if regraph is not None:
            _write_graphs(index, kb, regraph, summary, progress, cancel)
    except _Cancelled:
        summary.cancelled = True
    if not summary.cancelled:
        for src in sources:  # only now is each source fully indexed
            catalog.finish_source(kb, src.id, skipped_by_source[src.id])
    # A vector store replaced or emptied behind the catalog's back is refilled from the catalog.
    if was_dirty or index.store.count(index.collection(kb)) != catalog.count_chunks(kb):
        reconcile(index, kb)
    if summary.cancelled and created and catalog.count_chunks(kb) == 0:  # nothing to keep: no empty KB
        _forget(index, None, kb)  # this process already holds the writer lock
        summary.seconds = time.perf_counter() - t0
        return summary
    changed_any |= link_docs(index, kb, delta)  # before the lexical index: code gains the words of docs naming it
    if was_dirty or index.lexical(kb) is None:
        if progress:
            progress("lexical", 0, 1)
        index.rebuild_lexical(kb)
    elif changed_any:  # only the changed files' chunks are re-counted
        if progress:
            progress("lexical", 0, 1)
        index.update_lexical(kb, delta.removed, delta.added)
    catalog.set_kb(kb, dirty=0, indexed_at=time.time())
    catalog.writing(kb, False)
    catalog.mark_written()  # after the last vector write: a process serving from the store reopens it now
    summary.total_chunks = catalog.count_chunks(kb)
    summary.seconds = time.perf_counter() - t0
    return summary


def _scan(index: Index, kb: str, sources: list[ResolvedSource], include, exclude, summary: IngestSummary,
          pending: list[_Pending], skipped_by_source: dict[str, dict], delta: _LexicalDelta,
          progress: Progress | None, cancel: Cancel | None, added_by: str | None,
          regraph: list[_Pending] | None, naming: dict[str, tuple[str, Container[str] | None]]) -> bool:
    """Walk the sources: files new or changed go to `pending`, files gone are removed. True when some were.
    With `regraph` (a list), the unchanged code files a code graph is made of go there. `naming`: each source's
    `_python_naming`, by its id."""
    catalog = index.catalog
    cfg = index.cfg
    changed_any = False
    recorded = {s["id"]: s for s in catalog.sources(kb)}
    for src in sources:
        summary.sources.append(src.spec)
        inc = include if include is not None else recorded.get(src.id, {}).get("include", [])
        exc = exclude if exclude is not None else recorded.get(src.id, {}).get("exclude", [])
        catalog.upsert_source(kb, src.id, src.spec, src.kind, str(src.root), src.version, src.ref, inc, exc, added_by)
        catalog.set_identity(kb, src.id, src.library or library_of(src.spec, src.kind, str(src.root)), src.commit,
                             src.digest)
        manifest = catalog.manifest(kb, src.id)
        report = WalkReport()
        report.skipped.update(src.skipped)
        seen = set()
        in_memory = src.files is not None  # documents, not a folder: kept in memory until chunked
        package, packages = naming[src.id]
        files = src.files if in_memory else walk(src.root, src.walk_root, inc, exc, cfg.ingest.max_file_bytes,
                                                   report)
        for f in files:
            seen.add(f.path)
            summary.files += 1
            if manifest.get(f.path) != f.hash:
                pending.append(_Pending(src, f.path, f.abspath, f.kind, f.language,
                                        f.data if in_memory else None, len(f.data), package, packages))
            elif regraph is not None and f.kind == "code" and f.language in GRAPH_LANGUAGES:
                regraph.append(_Pending(src, f.path, f.abspath, f.kind, f.language, f.data if in_memory else None,
                                        len(f.data), package, packages))
            if progress:
                progress("scan", summary.files, 0)
            if cancel is not None and summary.files % 50 == 0 and cancel():
                raise _Cancelled
        summary.skipped.update(report.skipped)
        gone = [p for p in manifest if p not in seen]
        for path in gone:
            _remove_file(index, kb, src.id, path, delta)
        summary.removed += len(gone)
        changed_any |= bool(gone)
        skipped_by_source[src.id] = dict(report.skipped)
    return changed_any


def _remove_file(index: Index, kb: str, source_id: str, path: str, delta: _LexicalDelta) -> None:
    """Drop one file's chunks: the catalog first (a search drops vectors it does not list), then the vectors
    of the chunks no other source holds."""
    with index.catalog.transaction():
        gone = index.catalog.remove_file(kb, source_id, path)
        index.catalog.bump(kb)
    index.store.delete(index.collection(kb), gone)
    delta.removed.update(gone)


def _chunks_of(p: _Pending, max_bytes: int, chunk_chars: int,
               graph: bool = False) -> tuple[str, list[Chunk], FileGraph | None]:
    """(content hash, finalized chunks, code graph or None) of one changed file; Skip with the reason
    when it cannot be indexed.

    The file is read again here (the scan kept only its path): it may have changed or been replaced
    by something that is not a regular file since. Whatever a chunker fails on, only this file is
    skipped. An in-memory document (LlamaIndex) is chunked from its content. With `graph`, a code
    file's graph is read from the same parse; a failure there costs the graph, not the chunks."""
    data = p.data if p.data is not None else read_regular(p.abspath, max_bytes)
    f = SourceFile(p.path, p.abspath, p.kind, p.language, data)
    try:
        raw, file_graph = chunk_with_graph(f.text(), f.path, f.kind, f.language, chunk_chars, graph, p.package,
                                           p.packages)
    except Skip:
        raise
    except Exception as e:  # a chunker bug must not stop the whole ingest
        log.warning("could not chunk %s: %s: %s", p.path, type(e).__name__, e)
        raise Skip(f"could not be chunked ({type(e).__name__})") from None
    return f.hash, [c.finalize(p.source.id, p.source.link(c.path, c.start_line, c.end_line)) for c in raw], \
        file_graph


def _write_changed(index: Index, kb: str, pending: list[_Pending], summary: IngestSummary,
                   progress: Progress | None, delta: _LexicalDelta,
                   cancel: Cancel | None = None) -> list[tuple[_Pending, str]]:
    """Chunk and embed in batches; a writer thread stores batch N while batch N+1 embeds.
    Returns the files skipped, with the reason.

    Progress counts chunks written against an estimate: the chunks made so far, plus the bytes
    still to chunk at the rate (chunks per byte) seen so far; exact once every file is chunked."""
    cfg = index.cfg
    col = index.collection(kb)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
    inflight: Future | None = None
    batch: list[tuple[_Pending, str, list[Chunk], FileGraph | None]] = []
    nchunks = 0
    done_files = 0
    left_bytes = sum(p.size for p in pending)
    seen = {"bytes": 0, "chunks": 0, "embedded": 0}
    bad: list[tuple[_Pending, str]] = []

    def estimate() -> int:
        rate = seen["chunks"] / seen["bytes"] if seen["bytes"] else 1 / max(cfg.ingest.chunk_chars, 1)
        return seen["chunks"] + round(left_bytes * rate)

    def flush():
        nonlocal inflight, batch, nchunks
        if not batch:
            return
        chunks = [c for _, _, cs, _ in batch for c in cs]
        texts = [c.embed_text() for c in chunks]
        # Embedded in slices of the model's batch size, so progress moves every few seconds, not
        # once a batch (the store still gets the whole batch at once).
        step = max(16, cfg.embedding.batch_size)
        parts = []
        for i in range(0, len(texts), step):
            if i and cancel is not None and cancel():
                raise _Cancelled  # this batch is not stored; what it embedded stays in the cache
            vectors, computed = index.cache.embed(index.embedder, texts[i:i + step])
            parts.append(vectors)
            summary.embedded += computed
            seen["embedded"] += len(texts[i:i + step])
            if progress:
                progress("embed", seen["embedded"], estimate())
        # a batch of files with no chunks (an empty `__init__.py` added alone) has no vectors, but its files
        # are still recorded
        vectors = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        if inflight is not None:
            inflight.result()  # keep at most one batch in flight; surfaces writer errors
        inflight = writer.submit(_store_batch, index, kb, col, batch, chunks, vectors, delta)
        summary.chunks += len(chunks)
        summary.done_files += len(batch)
        batch, nchunks = [], 0

    try:
        for p in pending:
            if cancel is not None and cancel():
                raise _Cancelled  # the batch being gathered is dropped: its files are done next time
            done_files += 1
            left_bytes -= p.size
            try:
                file_hash, chunks, file_graph = _chunks_of(p, cfg.ingest.max_file_bytes, cfg.ingest.chunk_chars,
                                                           cfg.ingest.graph)
            except Skip as why:
                bad.append((p, str(why)))
                continue
            seen["bytes"] += p.size
            seen["chunks"] += len(chunks)
            summary.unparsed += file_graph is not None and not file_graph.parsed
            batch.append((p, file_hash, chunks, file_graph))
            nchunks += len(chunks)
            if nchunks >= BATCH_CHUNKS:
                if cancel is not None and cancel():
                    raise _Cancelled
                flush()
            if progress:
                progress("index", done_files, len(pending))
        if cancel is not None and cancel():
            raise _Cancelled
        flush()
    finally:
        try:
            if inflight is not None:
                inflight.result()  # a batch already embedded is stored, cancelled or not
        finally:
            writer.shutdown(wait=True)
    return bad


@dataclass
class _LexicalDelta:
    """Chunk ids an ingest removed and added, so the lexical index is updated, not rebuilt."""
    removed: set[str] = field(default_factory=set)
    added: list[str] = field(default_factory=list)


def _store_batch(index: Index, kb: str, col: str, batch, chunks: list[Chunk], vectors,
                 delta: _LexicalDelta) -> None:
    catalog = index.catalog
    # 1. vectors of the chunks not stored yet (idempotent: ids derive from content); one another source
    # holds already has its vector
    stored = catalog.existing_ids(kb, [c.id for c in chunks])
    fresh: dict[str, int] = {}
    for i, c in enumerate(chunks):
        if c.id not in stored:
            fresh.setdefault(c.id, i)
    if fresh:
        rows = list(fresh.values())
        index.store.upsert(col, list(fresh), vectors[rows],
                           [{"kind": chunks[i].kind, "source": chunks[i].source_id} for i in rows])
    # 2. catalog: chunks and manifest of these files, atomically
    stale: list[str] = []
    with catalog.transaction():
        for p, file_hash, cs, file_graph in batch:
            added, removed = catalog.replace_file(kb, p.source.id, p.path, file_hash, cs,
                                                  [lexical_tokens(c) for c in cs])
            stale.extend(removed)
            delta.removed.update(removed)
            delta.added.extend(added)
            catalog.replace_graph(kb, p.source.id, p.path, file_graph)
        catalog.bump(kb)
    # 3. vectors no longer referenced (a chunk one file let go and another took up in the batch keeps its own)
    if stale:
        index.store.delete(col, sorted(set(stale) - catalog.existing_ids(kb, stale)))


def _graph_outdated(index: Index, kb: str) -> bool:
    """Whether the KB's code graph must be made from its unchanged files too: it has none yet, or one made
    by another version of the walkers. With the graph off, the KB's graph is dropped (queries then say so)."""
    key = f"graph:{kb}"
    if not index.cfg.ingest.graph:
        if index.catalog.get_meta(key) is not None:
            index.catalog.drop_graph(kb)
            index.catalog.db.execute("DELETE FROM meta WHERE key=?", (key,))
        return False
    return index.catalog.get_meta(key) != GRAPH_VERSION


def _python_naming(src: ResolvedSource) -> tuple[str, Container[str] | None]:
    """(package, packages) a source's Python modules are named with (ingest/refs_python.py `python_module`):
    the folders that are packages read from the source's own file list when it has no folder, else from its
    filesystem. An installed package's root (site-packages) is where imports start: its paths are already
    import paths, namespace packages (`google/cloud/x/`, no `__init__.py` above `x`) included."""
    if src.files is not None:
        return "", package_folders(f.path for f in src.files)
    if src.kind == "package":
        return python_package(src.root), None
    return python_package(src.root), FolderPackages(src.root)


def _package_changed(index: Index, kb: str, sources: list[ResolvedSource],
                     naming: dict[str, tuple[str, Container[str] | None]]) -> bool:
    """Whether a Python module of a source is named otherwise than when its graph was made: an `__init__.py`
    added or removed, at the folder's top (it became a package) or in a subfolder (`src/shop/` became one):
    those modules, and the relative imports in them, are named anew. Every Python file is checked, a folder
    looked up once."""
    if not index.cfg.ingest.graph:
        return False
    for src in sources:
        package, packages = naming[src.id]
        rows = index.catalog.db.execute("SELECT path, module FROM graph_files WHERE kb=? AND source_id=? AND "
                                        "language='python' AND parsed=1", (kb, src.id))
        if any(python_module(path, package, packages) != module for path, module in rows):
            return True
    return False


def _write_graphs(index: Index, kb: str, files: list[_Pending], summary: IngestSummary,
                  progress: Progress | None, cancel: Cancel | None) -> None:
    """Make the code graph of unchanged files (their chunks and vectors stay as they are), a batch of files
    a transaction; the KB is marked as having a graph once every file is done."""
    catalog = index.catalog
    cfg = index.cfg.ingest
    for i in range(0, len(files), 50):
        if cancel is not None and cancel():
            raise _Cancelled
        graphs = []
        for p in files[i:i + 50]:
            try:
                data = p.data if p.data is not None else read_regular(p.abspath, cfg.max_file_bytes)
                text = SourceFile(p.path, p.abspath, p.kind, p.language, data).text()
                graphs.append((p, graph_of(text, p.path, p.language, p.package, p.packages)))
            except Skip:
                continue  # gone or unreadable since the scan: the next ingest sees it
            except Exception as e:  # a walker bug costs this file's graph, nothing else
                log.warning("could not read the code graph of %s: %s: %s", p.path, type(e).__name__, e)
        with catalog.transaction():
            for p, file_graph in graphs:
                catalog.replace_graph(kb, p.source.id, p.path, file_graph)
                summary.unparsed += file_graph is not None and not file_graph.parsed
            catalog.bump(kb)
        summary.regraphed += len(graphs)
        if progress:
            progress("index", min(i + 50, len(files)), len(files))
    catalog.set_meta(f"graph:{kb}", GRAPH_VERSION)


def reconcile(index: Index, kb: str) -> tuple[int, int]:
    """Make the vector store hold exactly the catalog's chunks; returns (deleted, restored)."""
    col = index.collection(kb)
    want = index.catalog.chunk_ids(kb)
    have = index.store.ids(col)
    orphans = sorted(have - want)
    if orphans:
        index.store.delete(col, orphans)
    missing = sorted(want - have)
    for i in range(0, len(missing), BATCH_CHUNKS):
        chunks = list(index.catalog.get_chunks(kb, missing[i:i + BATCH_CHUNKS]).values())
        vectors, _ = index.cache.embed(index.embedder, [c.embed_text() for c in chunks])
        index.store.upsert(col, [c.id for c in chunks], vectors,
                           [{"kind": c.kind, "source": c.source_id} for c in chunks])
    return len(orphans), len(missing)


def forget(index: Index, spec: str | None, kb: str, wait: bool = True,
           on_wait: Callable[[Holder | None], None] | None = None) -> str:
    """Remove one source from a KB, or (spec None) the whole KB. Returns a one-line report."""
    what = f"forget of {spec} in '{kb}'" if spec else f"removal of knowledge base '{kb}'"
    with writing(index.cfg.data_dir, what, wait, on_wait):
        writer = index.for_writing()
        try:
            return _forget(writer, spec, kb)
        finally:
            writer.catalog.writing(kb, False)
            writer.catalog.close()


def _forget(index: Index, spec: str | None, kb: str) -> str:
    from ingest.sources import ResolvedSource as _RS
    from ingest.sources import normalize_spec

    catalog = index.catalog
    info = catalog.kb(kb)
    if info is None:
        raise ValueError(f"There is no knowledge base named '{kb}'; `devcopilot status` lists them.")
    if spec is None:
        gone = [s["spec"] for s in catalog.sources(kb) if s["kind"] in MIRRORED]
        index.store.drop(index.collection(kb))
        catalog.drop_kb(kb)
        shutil.rmtree(index.lexical_dir(kb), ignore_errors=True)
        _drop_unused_clones(index, gone)
        return f"Removed knowledge base '{kb}'."
    norm = normalize_spec(spec)
    sid = _RS(norm, "", Path("."), Path(".")).id
    match = [s for s in catalog.sources(kb) if s["id"] == sid or s["spec"] == spec]
    if not match:
        specs = ", ".join(s["spec"] for s in catalog.sources(kb)) or "none"
        raise ValueError(f"Knowledge base '{kb}' has no source '{spec}' (it has: {specs}).")
    sid = match[0]["id"]
    held = len(catalog.chunk_ids_of_source(kb, sid))
    catalog.set_kb(kb, dirty=1)
    catalog.writing(kb, True)
    gone = catalog.drop_source(kb, sid)  # what another source (another version) holds too stays
    catalog.bump(kb)
    index.store.delete(index.collection(kb), gone)
    link_docs(index, kb)
    index.rebuild_lexical(kb)
    catalog.set_kb(kb, dirty=0)
    catalog.writing(kb, False)
    catalog.mark_written()
    if match[0]["kind"] in MIRRORED:
        _drop_unused_clones(index, [match[0]["spec"]])
    return f"Removed source '{match[0]['spec']}' ({held} chunks) from '{kb}'."


def link_docs(index: Index, kb: str, delta: _LexicalDelta | None = None) -> bool:
    """Doc passages linked to the code they name and checked against it (indexes/doc_links.py), for
    what changed; derived from the catalog, so a failure here costs the links, never the ingest. The
    code chunks whose words from the docs changed go to `delta` (their lexical rows are redone);
    True when there are some."""
    from indexes.doc_links import refresh

    try:
        done = refresh(index.catalog, kb)
    except Exception:
        log.warning("could not link the docs of '%s' to its code; the next ingest tries again", kb, exc_info=True)
        return False
    if done.checked or done.tables:
        log.info("KB '%s': %d doc passages read, %d symbol tables built, %d passages linked (%d links, %d "
                 "findings) in %.1f s", kb, done.read, done.tables, done.checked, done.links, done.findings,
                 done.seconds)
    if delta is not None and done.worded:
        delta.removed.update(done.worded)
        delta.added.extend(cid for cid in done.worded if cid not in set(delta.added))
    return bool(done.worded)


# Sources copied into the data dir (clones, site mirrors, unpacked releases): their copy goes when no KB
# indexes them.
MIRRORED = ("git", "website", "release")


def _drop_unused_clones(index: Index, urls: list[str]) -> None:
    """Delete the local clones of git sources, and the mirrors of websites, that no KB indexes any more."""
    from ingest.releases import is_release_spec, release_dir
    from ingest.sources import clone_dir, is_git_url
    from ingest.website import site_dir

    still = {s["spec"] for s in index.catalog.sources() if s["kind"] in MIRRORED}
    for url in set(urls) - still:
        if is_release_spec(url):
            folder = release_dir(index.cfg.data_dir, url)
        else:
            folder = clone_dir(index.cfg.data_dir, url) if is_git_url(url) else site_dir(index.cfg.data_dir, url)
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["ingest", "forget", "reconcile", "IngestSummary", "classify"]
