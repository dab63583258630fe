"""An indexed KB's state, checked consistent, for comparing an interrupted-then-completed ingest with a
fresh one (tests/test_killed_ingest.py, tests/test_kill_points.py)."""
from __future__ import annotations

from indexes.search import Index


def snapshot(index: Index, kb: str = "default") -> dict:
    """{ids, manifest} of the KB, once its catalog, vectors and lexical index are checked to agree."""
    cat = index.catalog
    rows = cat.db.execute("SELECT id, path, start_line, end_line FROM chunks WHERE kb=?", (kb,)).fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    spans = [(r[1], r[2], r[3]) for r in rows]
    assert len(spans) == len(set(spans)), "two chunks cover the same lines"
    manifest = dict(cat.db.execute("SELECT path, hash FROM files WHERE kb=?", (kb,)).fetchall())
    per_file = dict(cat.db.execute("SELECT path, chunks FROM files WHERE kb=?", (kb,)).fetchall())
    counted = dict(cat.db.execute("SELECT path, COUNT(*) FROM chunks WHERE kb=? GROUP BY path", (kb,)).fetchall())
    assert per_file == counted, "manifest and chunks disagree"
    vectors = index.store.ids(index.collection(kb))
    assert vectors == set(ids), f"{len(vectors - set(ids))} orphan vectors, {len(set(ids) - vectors)} missing"
    assert set(index.lexical(kb).ids) == set(ids)
    assert not cat.kb(kb).dirty
    graph = {table: sorted(cat.db.execute(f"SELECT * FROM {table} WHERE kb=?", (kb,)).fetchall())
             for table in ("graph_files", "graph_defs", "graph_refs")}  # the code graph, file by file
    return {"ids": set(ids), "manifest": manifest, "graph": graph}
