"""The same ingest and search through every local vector store: Chroma embedded, a real `chroma run`
server on loopback, and Qdrant local mode. The results must agree."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.chroma import CHROMA, start_chroma, stop
from support.servers import free_port

from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from indexes.stores import StoreError, make_store

QUERIES = ["long-term memory for an agent", "MemoryStore save", "retry with exponential backoff",
           "build a gadget with a size", "install widgets"]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """A real Chroma server on loopback, stopped after the tests of this module."""
    if not CHROMA.exists():
        pytest.skip(f"the chroma command is not installed at {CHROMA}")
    port = free_port()
    proc = start_chroma(tmp_path_factory.mktemp("chroma-server") / "db", port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def config_for(kind: str, tmp_path: Path, url: str = ""):
    return load_config(env={}, overrides={"data_dir": str(tmp_path / f"data-{kind}"),
                                          "store": {"kind": kind, "url": url}})


def ranked(index: Index, kb: str = "default") -> dict[str, list[tuple[str, int, str]]]:
    out = {}
    for q in QUERIES:
        for kind in (None, "doc", "code"):
            out[f"{q}|{kind}"] = [(h.chunk.path, h.chunk.start_line, h.chunk.id)
                                  for h in index.search(q, kb=kb, k=5, kind=kind)]
    return out


def test_same_results_in_every_store(project, tmp_path, chroma_server):
    results = {}
    dense = {}
    for kind, url in [("chroma", ""), ("chroma-http", chroma_server), ("qdrant", "")]:
        index = Index(config_for(kind, tmp_path, url))
        summary = ingest(index, [str(project)])
        assert summary.total_chunks >= 5
        store = index.store
        col = index.collection("default")
        assert kind.split("-")[0] in store.label
        assert store.ids(col) == index.catalog.chunk_ids("default")  # every chunk has its vector, no more
        assert store.count(col) == summary.total_chunks
        results[kind] = ranked(index)
        qv = index.embedder.embed(["where are conversations kept on disk"])[0]
        dense[kind] = [cid for cid, _ in store.query(col, qv, 4, "code")]
        hits = index.search("MemoryStore save conversation", k=3, kind="code")
        assert hits[0].chunk.path == "widgets/core.py" and hits[0].chunk.symbol.startswith("MemoryStore")
        if kind == "qdrant":
            store.client.close()  # local mode holds a lock on its folder
    assert results["chroma"] == results["chroma-http"] == results["qdrant"]
    assert dense["chroma"] == dense["chroma-http"] == dense["qdrant"]
    assert len(dense["chroma"]) >= 2


@pytest.mark.parametrize("kind", ["chroma", "chroma-http", "qdrant"])
def test_store_contract(kind, tmp_path, request):
    url = request.getfixturevalue("chroma_server") if kind == "chroma-http" else ""
    store = make_store(config_for(kind, tmp_path, url))
    col = f"contract-{kind}-{tmp_path.name}"[:60]
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [f"{i:032x}" for i in range(1, 7)]
    metas = [{"kind": "code" if i % 2 else "doc", "source": "s"} for i in range(6)]
    assert store.ids(col) == set() and store.count(col) == 0
    store.upsert(col, ids, vecs, metas)
    store.upsert(col, ids[:2], vecs[:2], metas[:2])  # a repeat overwrites, never duplicates
    assert store.ids(col) == set(ids) and store.count(col) == 6
    top = store.query(col, vecs[3], 3, None)
    assert top[0][0] == ids[3] and top[0][1] == pytest.approx(1.0, abs=1e-4)
    assert all(cid in ids[1::2] for cid, _ in store.query(col, vecs[3], 6, "code"))
    assert all(cid in ids[0::2] for cid, _ in store.query(col, vecs[3], 6, "doc"))
    for k in ("code", "doc"):  # given the kind's ids (search does, from its lexical index): the same answer
        of_kind = [cid for cid, m in zip(ids, metas) if m["kind"] == k]
        filtered = store.query(col, vecs[3], 6, k)
        for among in (of_kind, of_kind + ["e" * 32]):  # one the store lacks (a write not seen yet): filtered
            found = store.query(col, vecs[3], 6, k, among)
            assert [cid for cid, _ in found] == [cid for cid, _ in filtered]
            assert [score for _, score in found] == pytest.approx([score for _, score in filtered], abs=1e-6)
    assert store.query(col, vecs[3], 6, "code", []) == []
    store.delete(col, ids[:3])
    assert store.ids(col) == set(ids[3:])
    store.delete(col, ["f" * 32])  # deleting an unknown id is not an error
    store.drop(col)
    assert store.ids(col) == set()
    if kind == "qdrant":
        store.client.close()


def test_unreachable_chroma_server_is_one_sentence(tmp_path, project):
    url = f"http://127.0.0.1:{free_port()}"
    index = Index(config_for("chroma-http", tmp_path, url))
    with pytest.raises(StoreError) as e:
        ingest(index, [str(project)])
    msg = str(e.value)
    assert url in msg and "\n" not in msg


def test_qdrant_folder_in_use_is_one_sentence(tmp_path):
    cfg = config_for("qdrant", tmp_path)
    first = make_store(cfg)
    try:
        with pytest.raises(StoreError, match="is in use by another process") as e:
            make_store(cfg)
        assert "\n" not in str(e.value) and "qdrant-url" in str(e.value)
    finally:
        first.client.close()


def _unit(rng, n: int, dim: int = 48) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _recall_at_100(store, col: str, vecs: np.ndarray, ids: list[str], queries: np.ndarray) -> float:
    """Share of the exact top 100 (by cosine) that the store's top 100 holds."""
    found = []
    for q in queries:
        exact = {ids[i] for i in np.argsort(-(vecs @ q))[:100]}
        found.append(len(exact & {cid for cid, _ in store.query(col, q, 100)}) / 100)
    return float(np.mean(found))


OLD_STYLE_COLLECTION = """
import sys, chromadb, numpy as np
from chromadb.config import Settings
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.get_or_create_collection("older", embedding_function=None, metadata={"hnsw:space": "cosine"})
vecs = np.load(sys.argv[2])
col.upsert(ids=[f"{i:032x}" for i in range(len(vecs))], embeddings=vecs, metadatas=[{"kind": "code"}] * len(vecs))
assert col.configuration_json["hnsw"]["ef_search"] == 100  # Chroma's own default
"""


def test_chroma_search_explores_enough_neighbours_to_return_the_true_top_100(tmp_path):
    """Search reads the dense list 100 deep. With Chroma's default (explore 100 neighbours) its HNSW
    returns about 94 % of the true top 100 of these vectors; store.ef_search (400) returns them all,
    also for a collection made before the setting existed."""
    rng = np.random.default_rng(0)
    vecs, queries = _unit(rng, 4000), _unit(rng, 20)
    ids = [f"{i:032x}" for i in range(len(vecs))]
    metas = [{"kind": "code"}] * len(vecs)

    np.save(tmp_path / "vecs.npy", vecs)
    subprocess.run([sys.executable, "-c", OLD_STYLE_COLLECTION, str(tmp_path / "old"), str(tmp_path / "vecs.npy")],
                   check=True, capture_output=True)
    store = make_store(load_config(env={}, overrides={"data_dir": str(tmp_path / "unused")}))
    assert store.ef_search == 400
    older = type(store)(path=tmp_path / "old", ef_search=400)
    assert _recall_at_100(older, "older", vecs, ids, queries) >= 0.99
    assert older._col("older").configuration_json["hnsw"]["ef_search"] == 400  # kept for the next process

    default = type(store)(path=tmp_path / "default", ef_search=100)
    default.upsert("fresh", ids, vecs, metas)
    assert _recall_at_100(default, "fresh", vecs, ids, queries) < 0.97
