"""Ingest you can watch and stop: progress in chunks written against an estimate that ends exact,
and a cancel that leaves the knowledge base consistent, searchable, and completed by the next run."""
from __future__ import annotations

import pytest
from support.corpus import write_tree

from indexes.build import ingest
from indexes.retrieve import retrieve
from indexes.search import Index

LONG = ("It goes on at length about the matter, so that each topic is a passage of its own rather than a line "
        "merged with its neighbours: what to prepare, what to check, what to do when it fails, and why. ") * 5


def docs(root, files: int = 12, sections: int = 8):
    return write_tree(root, {f"docs/part{f:02d}.md": "\n\n".join(
        [f"# Part {f}"] + [f"## Topic {f}.{s}\n\nThe marker{f}x{s} topic explains step {s} of part {f}. " + LONG
                           for s in range(sections)]) + "\n"
        for f in range(files)})


def consistent(index: Index, kb: str) -> bool:
    n = index.catalog.count_chunks(kb)
    return index.store.count(index.collection(kb)) == n and set(index.lexical(kb).ids) == \
        index.catalog.chunk_ids(kb) and not index.catalog.kb(kb).dirty


@pytest.mark.slow
def test_progress_counts_chunks_up_to_an_exact_total(cfg, tmp_path):
    cfg.embedding.batch_size = 16  # a report every 16 chunks
    index = Index(cfg)
    seen = []
    s = ingest(index, [str(docs(tmp_path / "src"))], "p", progress=lambda *a: seen.append(a))
    embed = [(done, total) for stage, done, total in seen if stage == "embed"]
    assert len(embed) >= 4
    assert [d for d, _ in embed] == sorted(d for d, _ in embed)  # it only moves forward
    assert embed[-1] == (s.chunks, s.chunks) == (s.total_chunks, s.total_chunks)  # the estimate became the count
    assert all(total > 0 for _, total in embed)


@pytest.mark.slow
def test_cancel_keeps_what_was_written_consistent_and_the_next_run_completes_it(cfg, tmp_path):
    cfg.embedding.batch_size = 16
    index = Index(cfg)
    src = docs(tmp_path / "src", files=40)
    done = {"n": 0}

    def progress(stage, n, total):
        if stage == "embed":
            done["n"] = n

    s = ingest(index, [str(src)], "c", progress=progress, cancel=lambda: done["n"] >= 272)
    assert s.cancelled and 0 < s.done_files < s.changed == 40
    assert "cancelled after" in s.line() and "re-index to complete" in s.line()
    assert s.total_chunks == index.catalog.count_chunks("c") > 0 and consistent(index, "c")
    path = index.catalog.db.execute("SELECT path FROM files WHERE kb='c' ORDER BY path").fetchone()[0]
    marker = f"marker{int(path[len('docs/part'):-len('.md')])}x3"
    assert retrieve(index, f"What does the {marker} topic explain?", ["c"], k=1).hits[0].chunk.path == path
    again = ingest(index, [str(src)], "c")
    assert not again.cancelled and again.changed == 40 - s.done_files and again.embedded < again.chunks
    assert index.catalog.db.execute("SELECT COUNT(*) FROM files WHERE kb='c'").fetchone()[0] == 40
    assert consistent(index, "c")


def test_a_new_kb_cancelled_before_anything_was_written_is_not_left_empty(cfg, tmp_path):
    index = Index(cfg)
    s = ingest(index, [str(docs(tmp_path / "src", files=2))], "gone", cancel=lambda: True)
    assert s.cancelled and index.catalog.kb("gone") is None
