"""Hybrid search: dense vectors and BM25, fused by their scaled scores, optional reranker.

`Index` is the one object the rest of the product holds: it opens the catalog, the vector
store and the embedding model once, keeps the lexical indexes warm, and answers `search()`.
"""
from __future__ import annotations

import copy
import importlib
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from indexes.catalog import Catalog, KBInfo
from indexes.embeddings import EmbeddingCache, make_embedder, runtime_of
from indexes.lexical import CJK, STOP, TOKENIZER_VERSION, BM25Index, tokenize
from indexes.page_kind import asks_for_news, is_news, news_page
from indexes.plain_names import WORD, defaults_by_name, named_in_plain_words, names_by_key
from indexes.query_kind import ASKS_DEFAULT, BEHAVIOUR, CODEISH, CREATES, WHICH_PART, read_intent, read_kind
from indexes.side_folders import asks_for_side_folders, in_docs_folder, in_side_folder
from indexes.stores import StoreError, collection_name, make_store
from indexes.terms_zh import english_terms
from ingest.chunk import Chunk
from ingest.code import CONSTRUCTORS

log = logging.getLogger("devcopilot.search")


@dataclass
class Hit:
    chunk: Chunk
    score: float  # the fused score of the place the hit holds (lifts move scores with places)
    kb: str
    ranks: dict[str, int] = field(default_factory=dict)  # 0-based rank in each retriever that found it
    similarity: float | None = None  # the dense retriever's cosine, when it returned the chunk

    def to_json(self) -> dict:
        c = self.chunk
        return {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "kind": c.kind,
                "language": c.language, "symbol": c.symbol, "headings": c.headings, "score": round(self.score, 6),
                "text": c.text, "link": c.link, "library": c.library, "version": c.version}


class Reranker(Protocol):
    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


class SearchError(ValueError):
    """A search the user asked for cannot run (e.g. unknown KB); one clear sentence."""


def lexical_text(c: Chunk) -> str:
    """What the lexical index sees: the path, the symbol or headings, and the text."""
    return " ".join([c.path, c.symbol, " ".join(c.headings), c.text])


def lexical_tokens(c: Chunk) -> str:
    return " ".join(tokenize(lexical_text(c)))


def make_data_dir(data_dir: Path) -> None:
    """The data dir, made if new; a file in its place, or a folder that cannot be made, is one sentence."""
    where = "(--data-dir, DEVCOPILOT_DATA_DIR or data_dir)"
    if data_dir.exists() and not data_dir.is_dir():
        raise SearchError(f"The data dir '{data_dir}' is a file, not a folder; give a folder {where}.")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SearchError(f"The data dir '{data_dir}' cannot be made ({e.strerror or e}); give a folder this user "
                          f"can write {where}.") from None


class Index:
    def __init__(self, cfg):
        self.cfg = cfg
        make_data_dir(cfg.data_dir)
        self.catalog = Catalog(cfg.catalog_path)
        self.cache = EmbeddingCache(cfg.data_dir / "embeddings.sqlite")
        self.embedder = make_embedder(cfg)
        self._store = None
        self._seen_writes: str | None = None  # the catalog's write count when the store was opened
        self._lexical: dict[str, tuple[float, BM25Index]] = {}
        self._names: dict[str, tuple[int, tuple[dict, dict]]] = {}  # kb -> (generation, defined names, defaults)
        self._news: dict[str, tuple[int, frozenset[str]]] = {}  # kb -> (generation, ids of its news chunks)
        self._origins: dict[str, tuple[str, dict[str, str]]] = {}  # kb -> (write mark, source id -> origin)
        # (kb, sources) -> (generation, the chunks those sources hold): a version's chunks, searched among
        self._scopes: dict[tuple[str, frozenset[str]], tuple[int, frozenset[str]]] = {}
        # (kb, version choice) -> (generation, Scope); kb -> (generation, libraries with several versions)
        self._chosen: dict[tuple, tuple[int, object]] = {}
        self._several: dict[str, tuple[int, set[str]]] = {}
        self._lock = threading.Lock()
        self._load_lock = threading.RLock()  # one load or rebuild of a lexical index at a time
        self.reranker: Reranker | None = load_reranker(cfg.search.reranker)
        self.counters: dict[str, int] = {"searches": 0}
        self.embed_query = lru_cache(maxsize=2048)(self._embed_query_uncached)  # also warms a query ahead

    @property
    def store(self):
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._seen_writes = self.catalog.write_mark()[0]
                    self._store = make_store(self.cfg)
        return self._store

    def for_writing(self) -> Index:
        """This index with a catalog connection of its own, for an ingest running beside searches (in a
        server): its transactions never mix with their reads on one SQLite connection. The store, the
        model, the caches and the lexical indexes are shared."""
        _ = self.store  # opened once, shared
        writer = copy.copy(self)
        writer.catalog = Catalog(self.cfg.catalog_path)
        return writer

    def fresh_store(self):
        """The store, reopened first if another process wrote to it since it was opened.

        The normal path has one writer: the server itself (indexes/writer.py). A process that wrote
        anyway (started before the server, another tool) is noticed through the catalog's write mark,
        and an embedded Chroma is then reopened, since its reader never sees another process's writes."""
        store = self.store
        writes, writer = self.catalog.write_mark()
        if writes != self._seen_writes:
            if writer != str(os.getpid()) and hasattr(store, "reopen"):
                with self._lock:
                    if writes != self._seen_writes:
                        log.info("another process (pid %s) wrote to the store: reopening it", writer)
                        try:
                            store.reopen()
                            self._seen_writes = writes
                        except StoreError:  # mid-write elsewhere: search what is open, try again next time
                            log.warning("could not reopen the store yet", exc_info=True)
            else:
                self._seen_writes = writes
        return store

    def _dense(self, kb: str, vector: np.ndarray, depth: int, kind: str | None,
               among: list[str] | None = None, scoped: bool = False) -> list[tuple[str, float]]:
        """The dense retriever's list (`among`: the ids of `kind`, when known; `scoped`: the ids of the chosen
        versions' chunks); a store error is retried once on a reopened store."""
        more = {"scoped": True} if scoped else {}
        try:
            return self.fresh_store().query(self.collection(kb), vector, depth, kind, among, **more)
        except StoreError:
            if not hasattr(self.store, "reopen"):
                raise
            log.warning("vector search failed; reopening the store and trying once more", exc_info=True)
            self.store.reopen()
            return self.store.query(self.collection(kb), vector, depth, kind, among, **more)

    def collection(self, kb: str) -> str:
        return collection_name(kb, self.embedder.name)

    def lexical_dir(self, kb: str) -> Path:
        return self.cfg.data_dir / "lexical" / collection_name(kb, "lexical")

    # -- lexical index lifecycle ---------------------------------------------------------
    def rebuild_lexical(self, kb: str) -> BM25Index:
        key = f"tokenizer:{kb}"
        if self.catalog.get_meta(key) != TOKENIZER_VERSION:
            if self.catalog.get_meta(key) is not None or self.catalog.count_chunks(kb):
                self.catalog.retokenize(kb, lexical_tokens)
            self.catalog.set_meta(key, TOKENIZER_VERSION)
        info = self.catalog.kb(kb)
        idx = BM25Index.build(self.catalog.tokens(kb), info.generation if info else 0)
        idx.save(self.lexical_dir(kb))
        with self._lock:
            self._lexical.pop(kb, None)
        return idx

    def update_lexical(self, kb: str, removed: set[str], added: list[str]) -> BM25Index:
        """Apply an ingest's changes to the saved index: only the added chunks are read and
        counted. Falls back to a full rebuild when there is no usable index to start from."""
        cur = self.lexical(kb)
        if cur is None or self.catalog.get_meta(f"tokenizer:{kb}") != TOKENIZER_VERSION:
            return self.rebuild_lexical(kb)
        info = self.catalog.kb(kb)
        idx = cur.updated(removed, self.catalog.tokens_of(kb, added), info.generation if info else 0)
        if len(set(idx.ids)) != len(idx.ids) or len(idx.ids) != self.catalog.count_chunks(kb):
            return self.rebuild_lexical(kb)  # out of step with the catalog: start over
        idx.save(self.lexical_dir(kb))
        with self._lock:
            self._lexical.pop(kb, None)
        return idx

    def lexical(self, kb: str) -> BM25Index | None:
        """The KB's BM25 index, reloaded when a newer one was saved (e.g. by an ingest)."""
        path = self.lexical_dir(kb) / "bm25.npz"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        with self._lock:
            cached = self._lexical.get(kb)
            if cached and cached[0] == mtime:
                return cached[1]
        # Concurrent searches after an ingest wait for one load instead of each loading a copy
        # (8 threads at 100k chunks: 3.3 GB peak).
        with self._load_lock:
            with self._lock:
                cached = self._lexical.get(kb)
                if cached and cached[0] == mtime:
                    return cached[1]
            idx = BM25Index.load(path.parent)
            if idx is not None:
                with self._lock:
                    self._lexical[kb] = (mtime, idx)
        return idx

    # -- search ----------------------------------------------------------------------------
    def _embed_query_uncached(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def search(self, query: str, kb: str = "default", k: int = 10, kind: str | None = None,
               sources: frozenset[str] | None = None) -> list[Hit]:
        """The best `k` chunks of `kb` for `query` (`kind` "doc", "code" or None for both); with `sources`,
        among the chunks those sources hold (one version of each library: indexes/versions.py), each hit as
        one of them holds it."""
        query = (query or "").strip()
        if not query:
            return []
        if kind not in (None, "doc", "code"):
            raise SearchError(f"Unknown kind '{kind}'; use doc or code.")
        info = self.searchable(kb)
        self.counters["searches"] += 1
        s = self.cfg.search
        depth = max(s.candidates, k)
        lex = self.lexical(kb)
        if lex is None and not info.dirty and self.catalog.count_chunks(kb):
            # Lost, damaged or saved by an older version: rebuild it from the catalog (no ingest is
            # running, which would write it itself) rather than answer with vectors alone.
            with self._load_lock:  # one rebuild, not one per waiting search
                lex = self.lexical(kb) or self.rebuild_lexical(kb)
        lexical_query, dense_query = query_forms(query)
        # Each retriever is read deeper than the fused depth so its scores can be scaled against
        # a floor that does not move with the question.
        pool = max(s.score_depth, depth) if s.fusion == "score" else depth
        allowed = self.scope_ids(kb, sources, info.generation) if sources is not None else None
        lexical = lex.search(tokenize(lexical_query), pool, kind, allowed) if lex is not None else []
        among = lex.ids_of(kind) if lex is not None and kind else None
        if allowed is not None:  # the store searches among the chosen versions' chunks
            if among is not None:
                among = [cid for cid in among if cid in allowed]
            elif not kind:
                among = sorted(allowed)
        dense = self._dense(kb, self.embed_query(dense_query), pool, kind, among, scoped=allowed is not None)
        if allowed is not None:  # a store that could not search among them (or a kind with no lexical index)
            dense = [(cid, sc) for cid, sc in dense if cid in allowed]
        if s.fusion == "rrf":
            fused = fuse([(lexical, s.lexical_weight), (dense, s.dense_weight)], s.rrf_k)
        else:  # BM25's floor is 0 (no shared term); a cosine has no natural floor: the pool's last
            fused = fuse_scores([(lexical, s.lexical_weight, 0.0), (dense, s.dense_weight, None)], depth)
        if lex is not None and not is_mostly_cjk(query):
            # A question in a Latin-script language is best answered by text in one: translated
            # docs (ja/ko/zh) stay reachable but step behind their originals.
            foreign = lex.mostly_cjk([cid for cid, _ in fused[: depth * 2]])
            if foreign:
                fused = demote(fused, lambda cid: cid in foreign, 0.5)
        # get_chunks drops ids an interrupted ingest left behind.
        chunks = self.catalog.get_chunks(kb, [cid for cid, _ in fused[:depth]], sources)
        if s.side_folder_weight != 1.0 and not asks_for_side_folders(query):
            # Code in examples/, tests/, scripts/, docs/... uses the library rather than defines it.
            def side(cid: str) -> bool:
                return cid in chunks and side_code(chunks[cid])

            if any(side(cid) for cid, _ in fused[:depth]):  # the next ones may step into their places
                chunks |= self.catalog.get_chunks(kb, [cid for cid, _ in fused[depth: depth * 2]], sources)
                fused = demote(fused[: depth * 2], side, s.side_folder_weight)
        # Blog posts, release notes, changelogs (indexes/page_kind.py): what a release said, rarely what answers,
        # unless the question asks about a release; then they step forward a little.
        def news(cid: str) -> bool:
            return cid in chunks and is_news(chunks[cid])

        about_release = asks_for_news(query)
        if about_release:
            fused = demote(fused, news, NEWS_ASKED_WEIGHT)
        elif any(news(cid) for cid, _ in fused[:depth]):
            chunks |= self.catalog.get_chunks(kb, [cid for cid, _ in fused[depth: depth * 2] if cid not in chunks],
                                              sources)
            fused = demote(fused[: depth * 2], news, NEWS_WEIGHT)
        fused = fused[:depth]
        ranks = {name: {cid: r for r, (cid, _) in enumerate(found[:depth])}
                 for name, found in (("lexical", lexical), ("dense", dense))}
        similarity = dict(dense)
        hits = [Hit(chunks[cid], score, kb, {name: rk[cid] for name, rk in ranks.items() if cid in rk},
                    similarity.get(cid)) for cid, score in fused if cid in chunks]
        named = self.named_definitions(kb, query, info.generation) if kind != "doc" and s.plain_names else set()
        if named:
            hits = self._with_definitions(kb, hits, named, sources=sources)
            hits = lift(hits, lambda h: h.chunk.symbol.split(".", 1)[0] in named)
            if CREATES.search(query):
                # "when creating the realtime runner": what happens then is the named class's constructor's doing
                # (Java's constructor is named as its class).
                made = {f"{name}.{ctor}" for name in named for ctor in CONSTRUCTORS | {name}}
                hits = self._with_definitions(kb, hits, made, sources=sources)
                hits = lift(hits, lambda h: h.chunk.symbol in made)
        if s.read_kind and kind != "code" and about_release:
            # A question about a release (what changed in 0.13, when did X become optional) is answered by
            # the release notes, whatever code or kind of page its words name: they are lifted as surely as
            # the code a "what happens if" question asks about.
            if lex is not None:
                hits = self._with_news(kb, hits, lex, tokenize(lexical_query), info.generation, allowed, sources)
            hits = lift_where(hits, lambda h: is_news(h.chunk), by=6.0)
        elif kind is None and s.read_kind:
            wanted = asked_kind(query)
            # A question asking what the code does in a case (what happens if, a default) or which part of it does
            # something (which callback, which option) wants the code more surely than a question that names code:
            # its lift is twice as strong.
            sure = wanted == "code" and (BEHAVIOUR.search(query) is not None or WHICH_PART.search(query) is not None)
            examples = asks_for_side_folders(query)
            hits = lift_kind(hits, wanted, by=6.0 if sure else 3.0, examples=examples)
            if wanted == "code" and not CODEISH.search(query) and ASKS_DEFAULT.search(query):
                # ... and for a default ("if I don't pass a timeout"), the code that defaults the name the question
                # spells, or hands it on to the code that does, as surely; unless the question writes a name in code
                # form, whose definition retrieve() puts first and which holds its defaults itself.
                spelled = spelled_names(query)
                setter = default_setter(spelled)
                if setter is not None:
                    hits = lift_where(hits, lambda h: h.chunk.kind == "code" and bool(setter.search(h.chunk.text)),
                                      by=6.0)
                # A definition named for the default of a name the question spells ("which model is used when
                # neither names one": `get_default_model`) answers it by its name alone, which neither retriever
                # reads ("default" is not the question's word): it joins the hits, as a named definition does.
                # An example's own default (`_default_manifest` in examples/) is not the library's.
                keyed = self.default_names(kb, info.generation)
                made = {sym for name in spelled for sym in keyed.get(name, ())}
                if made:
                    def library(c: Chunk) -> bool:
                        return examples or not side_code(c)

                    hits = self._with_definitions(kb, hits, made, sources=sources, keep=library)
                    hits = lift(hits, lambda h: h.chunk.symbol in made and library(h.chunk))
        hits = spread_files(hits)
        if self.reranker is not None:  # a reranker the user configured has the last word on the order
            hits = self.reranker.rerank(query, hits)
        return hits[:k]

    def searchable(self, kb: str) -> KBInfo:
        """The KB's record, or SearchError saying why it cannot be searched (unknown, another model)."""
        info = self.catalog.kb(kb)
        if info is None:
            known = ", ".join(i.name for i in self.catalog.kbs()) or "none yet"
            raise SearchError(f"There is no knowledge base named '{kb}' (known: {known}); ingest a source with "
                              f"`devcopilot ingest SOURCE --kb {kb}`.")
        if info.embed_model and info.embed_model != self.embedder.name:  # its vectors cannot answer this model
            raise SearchError(stale_vectors(kb, info.embed_model, self.embedder.name,
                                            [s["spec"] for s in self.catalog.sources(kb)]))
        return info

    def origin(self, kb: str, source_id: str) -> str:
        """Where a chunk's source was indexed from, and when (what a citation's tooltip says); '' if unknown."""
        from indexes.status import citation_origin

        mark = self.catalog.write_mark()[0]
        with self._lock:
            cached = self._origins.get(kb)
        if cached is None or cached[0] != mark:
            cached = (mark, {s["id"]: citation_origin(s) for s in self.catalog.sources(kb)})
            with self._lock:
                self._origins[kb] = cached
        return cached[1].get(source_id, "")

    def scope_ids(self, kb: str, sources: frozenset[str], generation: int) -> frozenset[str]:
        """The chunks `sources` hold (one object per KB generation, so the lexical index keeps its mask)."""
        key = (kb, sources)
        with self._lock:
            cached = self._scopes.get(key)
        if cached is None or cached[0] != generation:
            cached = (generation, frozenset(self.catalog.member_ids(kb, sources)))
            with self._lock:
                if len(self._scopes) > 32:
                    self._scopes.clear()
                self._scopes[key] = cached
        return cached[1]

    def scope(self, kb: str, choice=None):
        """Which sources of `kb` to search for a version choice (indexes/versions.py: Scope), kept per generation."""
        from indexes.versions import scope_for

        info = self.catalog.kb(kb)
        generation = info.generation if info else -1
        key = (kb, choice)
        with self._lock:
            cached = self._chosen.get(key)
        if cached is None or cached[0] != generation:
            cached = (generation, scope_for(self.catalog, kb, choice))
            with self._lock:
                if len(self._chosen) > 64:
                    self._chosen.clear()
                self._chosen[key] = cached
        return cached[1]

    def version_notes(self, kbs, choice=None) -> list[str]:
        """What the versions chosen could not give, once each, as every door says it before its answer: a lock
        file that could not be read, a pinned version not indexed (with the command that indexes it; the newest
        answers meanwhile), a version asked for that no library of the KBs takes. KBs not indexed are skipped."""
        from indexes.versions import unmatched_notes

        scopes = {kb: self.scope(kb, choice) for kb in dict.fromkeys(kbs) if self.catalog.kb(kb) is not None}
        notes = list(getattr(choice, "notes", ())) + [m.sentence() for s in scopes.values() for m in s.missing]
        if choice is not None:
            notes += unmatched_notes(self.catalog, scopes)
        return list(dict.fromkeys(notes))

    def side_by_side(self, kb: str) -> set[str]:
        """The libraries of which `kb` holds several versions: their citations say which version."""
        from indexes.versions import side_by_side

        info = self.catalog.kb(kb)
        generation = info.generation if info else -1
        with self._lock:
            cached = self._several.get(kb)
        if cached is None or cached[0] != generation:
            cached = (generation, side_by_side(self.catalog, kb))
            with self._lock:
                self._several[kb] = cached
        return cached[1]

    def _symbol_names(self, kb: str, generation: int) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """The KB's top-level names by their run-together key, and its definitions named for a default by the name
        they default (indexes/plain_names.py): one read of its symbols per generation."""
        with self._lock:
            cached = self._names.get(kb)
        if cached is None or cached[0] != generation:
            symbols = list(self.catalog.code_symbols(kb))
            cached = (generation, (names_by_key(symbols), defaults_by_name(symbols)))
            with self._lock:
                self._names[kb] = cached
        return cached[1]

    def named_definitions(self, kb: str, query: str, generation: int) -> set[str]:
        """Top-level names the KB defines that the question spells in plain words."""
        return named_in_plain_words(query, self._symbol_names(kb, generation)[0])

    def default_names(self, kb: str, generation: int) -> dict[str, set[str]]:
        """The KB's definitions named for a default, by the name they default (plain_names.defaults_by_name)."""
        return self._symbol_names(kb, generation)[1]

    def news_ids(self, kb: str, generation: int) -> frozenset[str]:
        """The ids of the KB's news chunks (blog posts, release notes, changelogs), kept per generation."""
        with self._lock:
            cached = self._news.get(kb)
        if cached is None or cached[0] != generation:
            ids = frozenset(cid for cid, path, headings in self.catalog.doc_titles(kb) if news_page(path, headings))
            cached = (generation, ids)
            with self._lock:
                self._news[kb] = cached
        return cached[1]

    def _with_news(self, kb: str, hits: list[Hit], lex: BM25Index, tokens: list[str], generation: int,
                   allowed: frozenset[str] | None, sources: frozenset[str] | None, at: int = 5) -> list[Hit]:
        """For a question about a release: the news chunk whose words best match it (BM25 among the news pages
        alone) joins the hits at the sixth place, where the news lift can seat it, when the hybrid search missed
        it. A changelog's one line ("making the regex in ByteLevel optional") is outranked by every chunk of
        the code it names, in both retrievers."""
        news = self.news_ids(kb, generation)
        if allowed is not None:
            news = news & allowed
        best = lex.search(tokens, 1, "doc", news) if news else []
        if not best or any(h.chunk.id == best[0][0] for h in hits):
            return hits
        chunk = self.catalog.get_chunks(kb, [best[0][0]], sources).get(best[0][0])
        if chunk is None:
            return hits
        pos = min(at, len(hits))
        return hits[:pos] + [Hit(chunk, hits[pos - 1].score if pos else 0.0, kb)] + hits[pos:]

    def _with_definitions(self, kb: str, hits: list[Hit], named: set[str], at: int = 10,
                          sources: frozenset[str] | None = None,
                          keep: Callable[[Chunk], bool] | None = None) -> list[Hit]:
        """Adds the definition (first chunk) of each named symbol retrieval missed (and `keep` keeps), after
        the first `at` hits, from where the lift can carry it into the top five."""
        have = {h.chunk.id for h in hits}
        out = list(hits)
        for name in sorted(named):
            chunk = self.catalog.definition(kb, name, sources)
            if chunk is not None and chunk.id not in have and (keep is None or keep(chunk)):
                pos = min(at, len(out))
                out.insert(pos, Hit(chunk, out[pos - 1].score if pos else 0.0, kb))
        return out


def side_code(chunk: Chunk) -> bool:
    """Code in examples/, tests/, scripts/, docs/...: it uses the library rather than defines it."""
    return chunk.kind == "code" and (in_side_folder(chunk.path) or in_docs_folder(chunk.path))


def stale_vectors(kb: str, old: str, new: str, specs: list[str]) -> str:
    """Why a KB embedded by another model or runtime cannot be searched, and the command that fixes it."""
    again = f"devcopilot ingest {' '.join(specs) or 'SOURCE'} --kb {kb}"
    if runtime_of(old) != runtime_of(new) and old.split("@")[0] == new.split("@")[0]:
        was = {"PyTorch": "torch", "ONNX Runtime": "onnx", "ONNX Runtime int8": "onnx-int8"}[runtime_of(old)]
        return (f"Knowledge base '{kb}' was embedded by {runtime_of(old)}, and the embedding runtime is now "
                f"{runtime_of(new)}; run `{again}` (with the --include/--exclude you used) to re-embed it, or set "
                f"embedding.runtime = \"{was}\".")
    return (f"Knowledge base '{kb}' was indexed with the embedding model {old}, not {new}; run `{again}` (with "
            "the --include/--exclude you used) to re-embed it, or configure that model.")


def query_forms(query: str) -> tuple[str, str]:
    """What each retriever is asked: (lexical query, dense query)."""
    if not CJK.search(query):
        return query, query
    # The default model reads English: add the English for the field words the question uses; the
    # dense query keeps only what the model can read.
    terms = english_terms(query)
    latin = " ".join(re.findall(r"[A-Za-z_][\w.]*", query))
    return f"{query} {terms}", f"{latin} {terms}".strip() or query


def demote(fused: list[tuple[str, float]], chosen: Callable[[str], bool], factor: float) -> list[tuple[str, float]]:
    """The fused list with the chosen chunks' scores multiplied by `factor`, sorted again."""
    return sorted(((cid, sc * factor if chosen(cid) else sc) for cid, sc in fused), key=lambda kv: -kv[1])


def is_mostly_cjk(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return sum(1 for ch in letters if CJK.match(ch)) > 0.3 * max(1, len(letters))


def lift(hits: list[Hit], chosen: Callable[[Hit], bool], by: float = 3.0) -> list[Hit]:
    """Chosen hits are placed as if their rank were `by` times better: second overtakes first,
    sixth overtakes the third; a tie keeps the earlier hit ahead (third stays behind first), which
    measured better than letting the chosen one win it. A lift rather than a filter: a hit far
    ahead keeps its place. Scores go with the places, so a list still reads best-first by score."""
    order = sorted(enumerate(hits), key=lambda ih: (ih[0] + 1) / (by if chosen(ih[1]) else 1.0))
    return with_scores_of(hits, [h for _, h in order])


def lift_kind(hits: list[Hit], wanted: str | None, top: int = 5, reach: int = 15, by: float = 3.0,
              examples: bool = False) -> list[Hit]:
    """Within the top five, hits of the kind the question asks for ("doc" or "code") are lifted;
    when the top five hold none of that kind, the best one of the top 15 first takes the fifth place.

    Docs and source on one topic often score alike; which the asker wants is what the question's
    wording tells best (indexes/query_kind.py); `by` says how strongly (`lift`). Only one hit comes
    from below the top five: on held-out question sets the reading was wrong often enough that lifting
    every hit of the kind from further down pushed right answers out of the top five.

    The docs asked for are the project's pages, not an example's README (text in examples/, tests/...: it
    describes the example), unless the question asks for `examples`: such text keeps its place, unlifted.
    """
    if wanted is None:
        return hits
    if wanted == "doc" and not examples:
        return lift_where(hits, lambda h: h.chunk.kind == "doc" and not in_side_folder(h.chunk.path), top, reach, by)
    return lift_where(hits, lambda h: h.chunk.kind == wanted, top, reach, by)


def lift_where(hits: list[Hit], chosen: Callable[[Hit], bool], top: int = 5, reach: int = 15,
               by: float = 3.0) -> list[Hit]:
    """`lift_kind` for any choice of hits (the kind asked for, news pages): the chosen hits of the top
    five are lifted, and when it holds none, the best chosen one of the top 15 first takes the fifth place."""
    if not any(chosen(h) for h in hits[:top]):
        best = next((i for i in range(top, min(reach, len(hits))) if chosen(hits[i])), None)
        if best is not None:
            hits = with_scores_of(hits, hits[:top - 1] + [hits[best]] + hits[top - 1:best] + hits[best + 1:])
    return lift(hits[:top], chosen, by) + hits[top:]


def spelled_names(question: str) -> set[str]:
    """snake_case names one or two adjacent words of the question spell ("workflow name" -> workflow_name)."""
    words = [w.lower() for w in WORD.findall(question)]
    out = {w for w in words if w not in STOP and len(w) > 2}
    out |= {f"{a}_{b}" for a, b in zip(words, words[1:]) if a not in STOP and b not in STOP}
    return out


def default_setter(names: set[str]) -> re.Pattern | None:
    """Code that handles one of `names` as a parameter: gives it a default (`workflow_name: str = ...`,
    `timeout=None`), passes it on by keyword (`connect(host, timeout=timeout)`), or checks it was left unset
    (`if timeout is None`): where a default is set, or handed to the code that sets it. None for no names."""
    if not names:
        return None
    alt = "|".join(sorted(map(re.escape, names)))
    return re.compile(rf"\b({alt})(?:\s*:[^=\n]{{1,80}}?=|=)(?!=)|\bif\s+({alt})\s+is\s+None\b")


NEWS_WEIGHT = 0.7  # a news page's fused score is multiplied by it, as code in a side folder is (0.5, 0.85: the same)
NEWS_ASKED_WEIGHT = 1.1  # ... and by this when the question asks about a release (1.2 and 1.43 cost hatch mrr@10)


def asked_kind(query: str) -> str | None:
    """The kind of hit the question asks for (indexes/query_kind.py: read_kind), except that a question asking
    how to do something wants the docs' recipe even when it names code, unless it asks what the code does
    in a case (a default, what happens if...)."""
    if read_intent(query) == "how_to" and not BEHAVIOUR.search(query):
        return "doc"
    return read_kind(query)


def spread_files(hits: list[Hit], most: int = 3, within: int = 10) -> list[Hit]:
    """At most `most` chunks of one file in the first `within` places: a file's further chunks step behind
    the other files' hits (still there when nothing else is). One page cut in many chunks would otherwise
    fill the list a reader sees, and the other files' answers fall out of it."""
    kept: list[Hit] = []
    later: list[Hit] = []
    count: dict[tuple[str, str], int] = {}
    for h in hits:
        key = (h.kb, h.chunk.path)
        if len(kept) < within and count.get(key, 0) >= most:
            later.append(h)
            continue
        count[key] = count.get(key, 0) + 1
        kept.append(h)
    return with_scores_of(hits, kept[:within] + later + kept[within:])


def with_scores_of(before: list[Hit], after: list[Hit]) -> list[Hit]:
    """`after` (a reordering of `before`) with the scores of the places the hits now hold, so a
    list still reads best-first by score."""
    return [replace(h, score=old.score) for h, old in zip(after, before)]


def fuse_scores(ranked: list[tuple[list[tuple[str, float]], float, float | None]], depth: int) \
        -> list[tuple[str, float]]:
    """Score fusion (`search.fusion = "score"`, the default) of the hybrid search: the weighted sum of
    each retriever's scores scaled to [0, 1] over the top `depth` of each list.

    A retriever's score is scaled between its best and a floor (None: the last score it returned,
    which is why lists are read deeper than `depth`); a chunk a retriever did not return gets 0
    from it. Unlike reciprocal rank, a retriever that is sure (a far better first hit) weighs more
    than one whose top scores are all alike.
    """
    candidates = dict.fromkeys(cid for hits, _, _ in ranked for cid, _ in hits[:depth])
    scores = dict.fromkeys(candidates, 0.0)
    for hits, weight, floor in ranked:
        if not hits:
            continue
        top, low = hits[0][1], hits[-1][1] if floor is None else floor
        span = top - low
        for cid, sc in hits:
            if cid in scores and span > 0:
                scores[cid] += weight * max(0.0, sc - low) / span
    return sorted(scores.items(), key=lambda kv: -kv[1])


def fuse(ranked: list[tuple[list[tuple[str, float]], float]], rrf_k: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion (`search.fusion = "rrf"`) of the hybrid search: the sum of
    weight / (rrf_k + rank) over the lists."""
    scores: dict[str, float] = {}
    for hits, weight in ranked:
        for rank, (cid, _) in enumerate(hits):
            scores[cid] = scores.get(cid, 0.0) + weight / (rrf_k + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def load_reranker(spec: str) -> Reranker | None:
    """`module:callable` returning a Reranker (e.g. a cross-encoder you installed); none by default."""
    if not spec:
        return None
    mod, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr or "reranker")()
    except (ImportError, AttributeError) as e:
        raise SearchError(f"Reranker '{spec}' could not be loaded ({e}); fix search.reranker or leave it empty.") \
            from None
