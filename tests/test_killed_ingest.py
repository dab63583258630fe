"""An ingest killed with SIGKILL part-way leaves a usable KB, and the next run completes it so that it
equals a fresh ingest of the same sources: same chunk ids, no duplicates, no orphan vectors."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.corpus import N_FILES, make_corpus
from support.kb_state import snapshot

from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.cli import main

BIN = Path(sys.executable).parent


def peek(db_path: Path, sql: str) -> int:
    """A number from the catalog another process is writing, or -1 when it is not there yet."""
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute(sql).fetchone()
            return row[0] if row else -1
        finally:
            con.close()
    except sqlite3.Error:
        return -1


def start_ingest(data: Path, corpus: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCOPILOT_")}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen([str(BIN / "devcopilot"), "--data-dir", str(data), "ingest", str(corpus), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 600, sig: int = signal.SIGKILL) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"ingest finished before it could be killed (exit {proc.returncode}); make the corpus larger")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the kill point was never reached")
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # Ctrl-C: the CLI says what happened in one sentence and exits 130
        assert proc.returncode == 130, err
        assert err.decode().strip() == "Interrupted; what was indexed so far is kept, and the next run completes it."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("kill") / "corpus")


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    """What a fresh, uninterrupted ingest of the corpus gives (in a data dir of its own)."""
    data = tmp_path_factory.mktemp("fresh") / "data"
    warm = tmp_path_factory.getbasetemp() / "kill-cache" / "embeddings.sqlite"
    if warm.exists():  # vectors from the killed runs: same texts, same model; saves re-embedding
        data.mkdir(parents=True)
        shutil.copy(warm, data / "embeddings.sqlite")
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    summary = ingest(index, [str(corpus)])
    assert summary.files == N_FILES
    return snapshot(index)


def keep_cache(data: Path, tmp_path_factory) -> None:
    dest = tmp_path_factory.getbasetemp() / "kill-cache"
    dest.mkdir(exist_ok=True)
    src = sqlite3.connect(data / "embeddings.sqlite")
    with sqlite3.connect(dest / "embeddings.sqlite") as out:
        src.backup(out)
    src.close()


# Ctrl-C at a precise point is tested in test_kill_points.py (a signal sent from outside can race the end).
@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-any-write", "after-first-batch"])
def test_killed_ingest_completes_to_a_fresh_ingest(point, corpus, tmp_path, tmp_path_factory, request, capsys):
    data = tmp_path / "data"
    proc = start_ingest(data, corpus)
    catalog = data / "catalog.sqlite"
    if point == "before-any-write":  # the KB is open and marked dirty; scanning, loading the model
        kill_when(proc, lambda: peek(catalog, "SELECT dirty FROM kbs WHERE name='default'") == 1)
    else:
        sig = signal.SIGINT if point.startswith("ctrl-c") else signal.SIGKILL
        kill_when(proc, lambda: peek(catalog, "SELECT COUNT(*) FROM chunks") > 0, sig=sig)

    # in between: the KB is usable and marked as interrupted; search shows only catalogued chunks
    cfg = load_config(env={}, overrides={"data_dir": str(data)})
    index = Index(cfg)
    assert index.catalog.kb("default").dirty
    partial = index.catalog.chunk_ids("default")
    assert len(partial) < 350
    hits = index.search("scale the value", k=10)
    assert all(h.chunk.id in partial for h in hits)
    assert bool(hits) == bool(partial)
    assert main(["--data-dir", str(data), "status", "--json"]) == 0  # and status says so
    (kb,) = json.loads(capsys.readouterr()[0])["knowledge_bases"]
    assert kb["interrupted"] is True and kb["chunks"] == len(partial)
    assert all(h.chunk.kind == "doc" for h in index.search("Call the helper", k=5, kind="doc"))

    # the next run completes it, embedding only what was not embedded before
    done_files = index.catalog.db.execute("SELECT COUNT(*) FROM files WHERE kb='default'").fetchone()[0]
    summary = ingest(index, [str(corpus)])
    assert summary.files == N_FILES and summary.changed == N_FILES - done_files  # finished files are not redone
    if partial:
        assert summary.embedded < summary.total_chunks  # what the killed run embedded came from the cache
    got = snapshot(index)
    keep_cache(data, tmp_path_factory)
    ref = request.getfixturevalue("reference")
    assert got["manifest"] == ref["manifest"]
    assert got["ids"] == ref["ids"]
    again = ingest(index, [str(corpus)])
    assert again.changed == 0 and again.embedded == 0 and snapshot(index) == got


@pytest.mark.slow
def test_killed_reingest_after_changes(corpus, tmp_path, tmp_path_factory):
    """Kill a re-ingest of a changed corpus; the re-run equals a fresh ingest of the changed corpus."""
    work = shutil.copytree(corpus, tmp_path / "corpus")
    data = tmp_path / "data"
    warm = tmp_path_factory.getbasetemp() / "kill-cache" / "embeddings.sqlite"
    if warm.exists():
        data.mkdir()
        shutil.copy(warm, data / "embeddings.sqlite")
    cfg = load_config(env={}, overrides={"data_dir": str(data)})
    index = Index(cfg)
    ingest(index, [str(work)])
    for i, f in enumerate(sorted(work.rglob("*.py"))):
        if i % 2 == 0:
            f.write_text(f.read_text().replace("return value *", "return value // 2 +"))
    for f in sorted(work.rglob("*.md"))[:20]:
        f.unlink()
    gen = index.catalog.kb("default").generation
    proc = start_ingest(data, work)

    def bumped() -> bool:
        return peek(data / "catalog.sqlite", "SELECT generation FROM kbs WHERE name='default'") > gen

    kill_when(proc, bumped)  # among the removals of deleted files, before the changes are written
    index = Index(cfg)
    assert index.search("value // 2", k=3)
    ingest(index, [str(work)])
    got = snapshot(index)
    fresh = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "fresh")}))
    fresh.cache = index.cache  # same model and texts: reuse the vectors
    ingest(fresh, [str(work)])
    ref = snapshot(fresh)
    assert got == ref


def test_what_a_kill_between_writes_leaves_is_reconciled(cfg, project):
    """A kill after the vector write but before the catalog commit leaves vectors no chunk owns; one
    after a catalog commit but before stale vectors are deleted leaves old ones. The next run fixes both."""
    import numpy as np

    index = Index(cfg)
    ingest(index, [str(project)])
    col = index.collection("default")
    want = index.catalog.chunk_ids("default")
    orphans = [f"{i:032x}" for i in range(3)]
    index.store.upsert(col, orphans, np.ones((3, 384), np.float32) / np.sqrt(384),
                       [{"kind": "code", "source": "x"}] * 3)
    lost = sorted(want)[0]
    index.store.delete(col, [lost])  # and a chunk whose vector never got written
    index.catalog.set_kb("default", dirty=1)
    assert all(h.chunk.id in want for h in index.search("anything at all", k=10))  # orphans never shown
    s = ingest(index, [str(project)])
    assert s.changed == 0 and s.embedded == 0  # the lost vector came back from the cache
    assert index.store.ids(col) == want
    assert not index.catalog.kb("default").dirty
