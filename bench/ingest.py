"""Ingest figures on the dev corpus with the default local model.

    python bench/ingest.py [--data-dir D]

Prints: wall time and chunks/s of a fresh ingest (empty embedding cache); the pure embedding
time of the same chunk texts (model only, same batch size) and the ratio between the two;
re-ingest with nothing changed and after one file changed (model already loaded, as in a
running server); warm search latency p50/p95 over the dev questions.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from common import DEV_CORPUS, SHARED_EVAL, WORK, fetch_sdist, make_index, percentile

from indexes.build import ingest
from indexes.evaluate import load_qa


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(WORK / "ingest-bench"))
    ap.add_argument("--searches", type=int, default=3, help="passes over the questions for latency")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the data dir of an earlier run: measure only re-ingest and search")
    args = ap.parse_args()
    src = fetch_sdist(DEV_CORPUS["package"], DEV_CORPUS["version"], DEV_CORPUS["dir"])
    # Work on a copy so the one-file change does not touch the pristine corpus.
    corpus = WORK / "ingest-bench-corpus"
    data = Path(args.data_dir)
    reuse = args.reuse and data.is_dir() and corpus.is_dir()
    if not reuse:
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.copytree(src, corpus)
        shutil.rmtree(data, ignore_errors=True)
    out: dict = {}

    index = make_index(data)
    t = time.perf_counter()
    index.embedder.embed(["warm up"])  # model load is reported apart
    out["model_load_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    s = ingest(index, [str(corpus)], "default", DEV_CORPUS["include"], DEV_CORPUS["exclude"])
    wall = time.perf_counter() - t
    if not reuse:
        out["ingest"] = {"files": s.files, "chunks": s.total_chunks, "wall_s": round(wall, 1),
                         "chunks_per_s": round(s.total_chunks / wall, 1), "skipped": dict(s.skipped)}
        # Pure embedding of the same texts, straight through the model.
        from indexes.catalog import CHUNK_COLS, row_to_chunk

        rows = index.catalog.db.execute(f"SELECT {CHUNK_COLS} FROM chunks WHERE kb='default'").fetchall()
        texts = [row_to_chunk(r).embed_text() for r in rows]
        t = time.perf_counter()
        index.embedder.embed(texts)
        pure = time.perf_counter() - t
        out["pure_embedding_s"] = round(pure, 1)
        out["ingest_to_embedding_ratio"] = round(wall / pure, 2)

    t = time.perf_counter()
    s = ingest(index, [str(corpus)], "default", DEV_CORPUS["include"], DEV_CORPUS["exclude"])
    out["reingest_unchanged_s"] = round(time.perf_counter() - t, 2)
    assert s.changed == 0, s.line()

    target = corpus / "src" / "agents" / "run.py"
    target.write_text(target.read_text() + f"\n\ndef added_for_bench_{time.time_ns()}():\n    return 42\n")
    t = time.perf_counter()
    s = ingest(index, [str(corpus)], "default", DEV_CORPUS["include"], DEV_CORPUS["exclude"])
    out["reingest_one_file_changed_s"] = round(time.perf_counter() - t, 2)
    out["reingest_one_file_embedded"] = s.embedded

    qa = [q["question"] for q in load_qa(SHARED_EVAL / "openai_agents_qa.jsonl")]
    for q in qa[:5]:
        index.search(q)  # warm
    lat = []
    for _ in range(args.searches):
        for q in qa:
            index.embed_query.cache_clear()  # count the query embedding every time
            t = time.perf_counter()
            index.search(q, k=10)
            lat.append((time.perf_counter() - t) * 1000)
    out["search_ms"] = {"n": len(lat), "p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1)}
    out["load_average"] = round(os.getloadavg()[0], 1)  # other work on the machine skews every figure
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
