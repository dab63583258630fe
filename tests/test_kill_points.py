"""SIGKILL at ten precise points of an ingest: the next run completes it, and the KB then equals a
fresh ingest of the same sources (same chunk ids and manifest, no duplicates, no orphan vectors).

Each case runs the real `devcopilot ingest` in its own process. A small launcher wraps one
internal function so that the process sends itself SIGKILL right before or after its Nth call:
the kill lands exactly at that point of the pipeline (during the clone, chunking, embedding,
store writes, the manifest transaction, the lexical index...), every time.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from support.corpus import N_FILES, make_corpus
from support.kb_state import snapshot

from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index

pytestmark = pytest.mark.slow  # a real ingest killed and completed, eleven times

LAUNCHER = textwrap.dedent("""
    import importlib, os, signal, sys
    module, attr, nth, when, signame = sys.argv[1:6]
    sig = getattr(signal, signame)
    owner_name, _, name = attr.rpartition(".")
    owner = importlib.import_module(module)
    if owner_name:
        owner = getattr(owner, owner_name)
    original = getattr(owner, name)
    calls = 0

    def wrapped(*args, **kwargs):
        global calls
        calls += 1
        if calls == int(nth) and when == "before":
            os.kill(os.getpid(), sig)
        result = original(*args, **kwargs)
        if calls == int(nth) and when == "after":
            os.kill(os.getpid(), sig)
        return result

    setattr(owner, name, wrapped)
    # As from a terminal: a runner that started us in the background may have set SIGINT to "ignore".
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from ui.cli import main
    sys.exit(main(sys.argv[6:]))
""")

# (case, module, attribute, call number, before/after)
POINTS = [
    ("clone finished, not yet moved into place", "ingest.sources", "_git", 1, "after"),
    ("files scanned, nothing written", "indexes.build", "read_regular", 1, "before"),
    ("chunking, second batch", "indexes.build", "chunk_with_graph", 120, "before"),
    ("embedding computed, not cached", "indexes.embeddings", "EmbeddingCache.put_many", 1, "before"),
    ("embeddings cached, vectors not written", "indexes.embeddings", "EmbeddingCache.put_many", 2, "after"),
    ("vectors written, catalog not", "indexes.stores", "ChromaStore.upsert", 1, "after"),
    ("inside the manifest transaction", "indexes.catalog", "Catalog.replace_file", 100, "after"),
    ("manifest committed, next batch not", "indexes.catalog", "_Txn.__exit__", 1, "after"),
    ("all files written, lexical index not saved", "indexes.lexical", "BM25Index.save", 1, "before"),
    ("lexical index saved, KB not marked done", "indexes.catalog", "Catalog.finish_source", 1, "before"),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The corpus as a git repository behind a file:// URL, so the clone can be killed too."""
    work = make_corpus(tmp_path_factory.mktemp("killpoints") / "work")
    bare = work.parent / "corpus.git"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "corpus"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return f"file://{bare}"


@pytest.fixture(scope="module")
def fresh(repo, tmp_path_factory):
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("fresh") / "data")}))
    assert ingest(index, [repo]).files == N_FILES
    return snapshot(index)


def run_until(signame: str, module: str, attr: str, nth: int, when: str, data, source: str):
    """`devcopilot ingest` in its own process, signalled at the given point."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCOPILOT_")}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-c", LAUNCHER, module, attr, str(nth), when, signame,
                           "--data-dir", str(data), "ingest", source, "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("case,module,attr,nth,when", POINTS, ids=[p[0] for p in POINTS])
def test_sigkill_at_a_precise_point(case, module, attr, nth, when, repo, fresh, tmp_path):
    data = tmp_path / "data"
    proc = run_until("SIGKILL", module, attr, nth, when, data, repo)
    assert proc.returncode == -signal.SIGKILL, f"the kill point was not reached: {proc.stderr[-500:]}"

    # In between: whatever was written is usable, and search shows only catalogued chunks.
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    if index.catalog.kb("default") is not None:
        known = index.catalog.chunk_ids("default")
        hits = index.search("scale the value", k=10)
        assert all(h.chunk.id in known for h in hits)
        assert bool(hits) == bool(known)

    # The next run completes it: the KB equals the fresh ingest, and a further run changes nothing.
    summary = ingest(index, [repo])
    assert summary.files == N_FILES
    assert snapshot(index) == fresh
    again = ingest(index, [repo])
    assert (again.changed, again.embedded, again.removed) == (0, 0, 0)
    assert not list((data / "sources").glob(".clone-*")), "a half-made clone was left behind"


def test_ctrl_c_mid_ingest_is_one_sentence_and_the_next_run_completes(repo, fresh, tmp_path):
    data = tmp_path / "data"
    proc = run_until("SIGINT", "indexes.catalog", "_Txn.__exit__", 1, "after", data, repo)
    assert proc.returncode == 130, proc.stderr[-500:]
    assert proc.stderr.strip() == "Interrupted; what was indexed so far is kept, and the next run completes it."
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    assert index.catalog.kb("default").dirty and index.catalog.count_chunks("default") > 0
    ingest(index, [repo])
    assert snapshot(index) == fresh
