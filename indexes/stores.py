"""Vector stores behind one small interface: Chroma (embedded or server) and Qdrant (local or server).

A collection per KB and embedding model. Each vector carries only what filtering needs
(the chunk kind and its source); the text and metadata live in the catalog.
"""
from __future__ import annotations

import hashlib
import logging
import re
import uuid
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The vector store is unreachable or refused; the message is one clear sentence."""


class VectorStore(Protocol):
    label: str

    def upsert(self, collection: str, ids: list[str], vectors: np.ndarray, metas: list[dict]) -> None: ...
    def delete(self, collection: str, ids: list[str]) -> None: ...
    def query(self, collection: str, vector: np.ndarray, k: int, kind: str | None,
              among: list[str] | None = None, scoped: bool = False) -> list[tuple[str, float]]: ...
    def ids(self, collection: str) -> set[str]: ...
    def count(self, collection: str) -> int: ...
    def drop(self, collection: str) -> None: ...


def collection_name(kb: str, model: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", kb).strip("-_")[:40] or "kb"
    digest = hashlib.sha256(f"{kb}|{model}".encode()).hexdigest()[:10]
    return f"kb-{slug}-{digest}"


CHROMA_MAX_BATCH = 5000  # Chroma refuses adds above ~5,400 items
# Neighbours an HNSW search explores (Chroma, a Qdrant server; Qdrant's local mode is exact).
# Search reads the dense list 100 deep; at Chroma's 100 that list missed 3 % of the true top
# 100 on the dev KB and 6 % (up to half) on a 100k-chunk KB, 400 misses 0.1 % and 0.6 %.
EF_SEARCH = 400


class ChromaStore:
    def __init__(self, path: Path | None = None, url: str = "", ef_search: int = EF_SEARCH):
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if url:
            m = re.match(r"^(https?)://([^:/]+)(?::(\d+))?/?$", url)
            if not m:
                raise StoreError(f"Chroma server URL '{url}' is not of the form http://host:port.")
            self.label = f"chroma server {url}"
            try:
                self.client = chromadb.HttpClient(host=m.group(2), port=int(m.group(3) or 8000),
                                                  ssl=m.group(1) == "https", settings=settings)
            except Exception as e:
                raise StoreError(f"Cannot reach the Chroma server at {url} ({type(e).__name__}); start it "
                                 "(`chroma run`) or check store.url.") from None
        else:
            path.mkdir(parents=True, exist_ok=True)
            self.label = f"chroma {path}"
            self.client = self._open(path, settings)
        self.path, self.settings = path, settings
        self._cols: dict[str, object] = {}
        self.ef_search = ef_search

    @staticmethod
    def _open(path: Path, settings):
        import chromadb

        try:
            return chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as e:  # a damaged folder: the catalog still holds everything to rebuild it
            _forget_chroma_system(path)
            raise StoreError(f"The Chroma folder '{path}' cannot be opened ({type(e).__name__}: {str(e)[:120]}); "
                             "move it aside and run `devcopilot ingest` again to rebuild the vectors.") from None

    def reopen(self) -> None:
        """Open the folder afresh (after another process wrote to it): new collection handles and, for an
        embedded store, a new Chroma system that reads what is on disk now."""
        if self.path is not None:
            _forget_chroma_system(self.path)
            self.client = self._open(self.path, self.settings)  # on failure the open client stays
        self._cols = {}

    def _col(self, name: str, create: bool = True):
        """The collection's handle. Reads pass create=False: a reader never creates a collection (in
        another process than the writer, a collection made by the reader is one it cannot read later)."""
        col = self._cols.get(name)
        if col is None:
            try:
                if not create:
                    col = self.client.get_collection(name, embedding_function=None)
                else:
                    col = self.client.get_or_create_collection(
                        name, embedding_function=None,
                        configuration={"hnsw": {"space": "cosine", "ef_search": self.ef_search}})
            except Exception as e:
                if not create and _is_missing(e):
                    return None
                raise _store_error(self.label, e) from None
            hnsw = (col.configuration_json or {}).get("hnsw")
            if hnsw and hnsw.get("ef_search") != self.ef_search:
                # Made before the setting or with another value. The search setting can change; it
                # applies from the next time a process loads the index, so here, before any query.
                try:
                    col.modify(configuration={"hnsw": {"ef_search": self.ef_search}})
                except Exception as e:  # an older server: search as the collection is
                    log.warning("could not set ef_search on %s: %s", name, e)
            self._cols[name] = col
        return col

    def _call(self, fn):
        try:
            return fn()
        except StoreError:
            raise
        except Exception as e:
            self._cols.clear()  # a restarted server needs fresh handles
            raise _store_error(self.label, e) from None

    def upsert(self, collection, ids, vectors, metas):
        for i in range(0, len(ids), CHROMA_MAX_BATCH):
            sl = slice(i, i + CHROMA_MAX_BATCH)
            self._call(lambda sl=sl: self._col(collection).upsert(ids=ids[sl], embeddings=vectors[sl],
                                                                 metadatas=metas[sl]))

    def delete(self, collection, ids):
        for i in range(0, len(ids), CHROMA_MAX_BATCH):
            part = ids[i:i + CHROMA_MAX_BATCH]
            self._call(lambda part=part: self._col(collection).delete(ids=part))

    def query(self, collection, vector, k, kind=None, among=None, scoped=False):
        """The k nearest vectors of `kind` (None: any). `among`: that kind's ids, when the caller knows
        them, or (`scoped`) the ids of one version's chunks (of that kind): Chroma searches among given ids 2-5x
        faster than it filters on their metadata (which reads every matching row per query: 21 ms on
        20,000 vectors, 4 ms given the ids). If one of them is not in the store (a write of another
        process not seen yet), the metadata filter (the caller keeps the ids it wants)."""
        if among is not None and not among:  # no chunk of that kind (or version)
            return []
        col = self._call(lambda: self._col(collection, create=False))
        if col is None:  # not written yet (a KB being created): nothing to find
            return []
        r = None
        if among:
            try:
                r = col.query(query_embeddings=[vector], n_results=k, ids=among, include=["distances"])
            except Exception:  # noqa: BLE001 - an id it lacks; any other fault shows again just below
                log.info("search among the ids of kind %s failed; filtering on metadata", kind, exc_info=True)
        if r is None:
            where = {"kind": kind} if kind else None
            r = self._call(lambda: col.query(query_embeddings=[vector], n_results=k, where=where,
                                             include=["distances"]))
        return [(i, 1.0 - d) for i, d in zip(r["ids"][0], r["distances"][0])]

    def ids(self, collection):
        col = self._call(lambda: self._col(collection, create=False))
        out: set[str] = set()
        offset = 0
        while col is not None:
            r = self._call(lambda offset=offset: col.get(include=[], limit=5000, offset=offset))
            out.update(r["ids"])
            if len(r["ids"]) < 5000:
                break
            offset += 5000
        return out

    def count(self, collection):
        col = self._call(lambda: self._col(collection, create=False))
        return 0 if col is None else self._call(lambda: col.count())

    def drop(self, collection):
        self._cols.pop(collection, None)
        try:
            self.client.delete_collection(collection)
        except Exception:
            pass  # already gone


def _is_missing(e: Exception) -> bool:
    """Chroma's "no such collection" (its error classes differ between versions: judge by name and text)."""
    return type(e).__name__ in ("NotFoundError", "InvalidCollectionException") or "does not exist" in str(e)


def _forget_chroma_system(path: Path) -> None:
    """Chroma keeps a folder's system cached even when starting it failed; drop it so a retry starts afresh."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(path), None)
    except (ImportError, AttributeError):
        pass


def _point_id(chunk_id: str) -> str:
    return str(uuid.UUID(hex=chunk_id[:32].ljust(32, "0")))


class QdrantStore:
    def __init__(self, path: Path | None = None, url: str = "", api_key: str = "",
                 ef_search: int = EF_SEARCH):
        from qdrant_client import QdrantClient

        self.ef_search = ef_search if url else None  # a server's HNSW; local mode searches exactly
        if url:
            self.label = f"qdrant server {url}"
            self.client = QdrantClient(url=url, api_key=api_key or None, timeout=30)
        else:
            path.mkdir(parents=True, exist_ok=True)
            self.label = f"qdrant {path}"
            try:
                self.client = QdrantClient(path=str(path))
            except RuntimeError as e:
                raise StoreError(f"The Qdrant folder '{path}' is in use by another process ({e}); use a Qdrant "
                                 "server (store.kind = \"qdrant-url\") to share it.") from None
            except Exception as e:  # a damaged folder: the catalog still holds everything to rebuild it
                raise StoreError(f"The Qdrant folder '{path}' cannot be opened ({type(e).__name__}: {str(e)[:120]}); "
                                 "move it aside and run `devcopilot ingest` again to rebuild the vectors.") from None
        self._known: set[str] = set()

    def _ensure(self, name: str, dim: int) -> None:
        from qdrant_client import models

        if name in self._known:
            return
        if not self.client.collection_exists(name):
            self.client.create_collection(name, vectors_config=models.VectorParams(size=dim,
                                                                                   distance=models.Distance.COSINE))
            if self.label.startswith("qdrant server"):  # a server filters faster with a payload index
                try:
                    self.client.create_payload_index(name, "kind", models.PayloadSchemaType.KEYWORD)
                except Exception:
                    pass
        self._known.add(name)

    def _call(self, fn):
        try:
            return fn()
        except Exception as e:
            raise _store_error(self.label, e) from None

    def upsert(self, collection, ids, vectors, metas):
        from qdrant_client import models

        if not ids:
            return
        self._call(lambda: self._ensure(collection, vectors.shape[1]))
        for i in range(0, len(ids), 1000):
            points = [models.PointStruct(id=_point_id(cid), vector=vec.tolist(), payload={**meta, "chunk_id": cid})
                      for cid, vec, meta in zip(ids[i:i + 1000], vectors[i:i + 1000], metas[i:i + 1000])]
            self._call(lambda points=points: self.client.upsert(collection, points=points, wait=True))

    def _exists(self, collection) -> bool:
        return collection in self._known or self._call(lambda: self.client.collection_exists(collection))

    def delete(self, collection, ids):
        from qdrant_client import models

        if ids and self._exists(collection):
            self._call(lambda: self.client.delete(collection, points_selector=models.PointIdsList(
                points=[_point_id(i) for i in ids])))

    def query(self, collection, vector, k, kind=None, among=None, scoped=False):
        """Qdrant filters on its own index of kinds (the ids of a kind, `among`, are not needed); `scoped`,
        the search is narrowed to the points `among` names (one version's chunks)."""
        from qdrant_client import models

        if (kind or scoped) and among is not None and not among:  # no chunk of that kind (or version)
            return []
        if not self._exists(collection):
            return []
        must = [models.FieldCondition(key="kind", match=models.MatchValue(value=kind))] if kind else []
        if scoped and among is not None:
            must.append(models.HasIdCondition(has_id=[_point_id(cid) for cid in among]))
        flt = models.Filter(must=must) if must else None
        r = self._call(lambda: self.client.query_points(collection, query=vector.tolist(), limit=k, query_filter=flt,
                                                        search_params=models.SearchParams(hnsw_ef=self.ef_search)
                                                        if self.ef_search else None,
                                                        with_payload=["chunk_id"]))
        return [(p.payload["chunk_id"], p.score) for p in r.points]

    def ids(self, collection):
        if not self._exists(collection):
            return set()
        out: set[str] = set()
        offset = None
        while True:
            points, offset = self._call(lambda offset=offset: self.client.scroll(collection, limit=2000, offset=offset,
                                                                   with_payload=["chunk_id"], with_vectors=False))
            out.update(p.payload["chunk_id"] for p in points)
            if offset is None:
                return out

    def count(self, collection):
        if not self._exists(collection):
            return 0
        return self._call(lambda: self.client.count(collection).count)

    def drop(self, collection):
        self._known.discard(collection)
        try:
            self.client.delete_collection(collection)
        except Exception:
            pass


def _store_error(label: str, e: Exception) -> StoreError:
    return StoreError(f"The vector store ({label}) failed: {type(e).__name__}: {str(e)[:160]}. Check that it is "
                      "running and reachable; what is indexed is kept.")


STORE_KINDS = ("chroma", "chroma-http", "qdrant", "qdrant-url")


def unknown_store(kind: str) -> str:
    return f"Unknown store '{kind}'; use chroma, chroma-http, qdrant or qdrant-url."


def make_store(cfg) -> VectorStore:
    kind = cfg.store.kind
    ef = cfg.store.ef_search
    if kind == "chroma":
        return ChromaStore(path=cfg.data_dir / "chroma", ef_search=ef)
    if kind == "chroma-http":
        return ChromaStore(url=cfg.store.url or "http://127.0.0.1:8000", ef_search=ef)
    if kind == "qdrant":
        return QdrantStore(path=cfg.data_dir / "qdrant", ef_search=ef)
    if kind == "qdrant-url":
        return QdrantStore(url=cfg.store.url or "http://127.0.0.1:6333", api_key=cfg.store.api_key, ef_search=ef)
    raise StoreError(unknown_store(kind))  # load_config refuses it first; a Config built by hand may not
