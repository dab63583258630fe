"""What the code graph costs on ingest: time and index size with and without it, on the dev corpus.

    python bench/ingest_graph.py [--cache EMBEDDINGS.sqlite]

Side by side in one run, each a fresh ingest of the dev corpus (openai-agents 0.24.0, .md and .py,
tests/ left out) into its own data dir:
1. `[ingest] graph = false`, embeddings computed (skipped with --cache: an embedding cache of the same
   corpus, e.g. another run's, copied in instead);
2. graph on and 3. graph off again, both with that run's embedding cache copied in, so neither embeds
   and the difference is the graph's own cost (in turn, three times each, the fastest kept);
4. the KB of 3 ingested again with the graph on: what an existing KB pays to get its graph (its
   unchanged code files parsed again, nothing embedded);
5. one file changed, re-ingested with and without the graph.
Then the catalog's size with and without the graph (after a WAL checkpoint) and its rows, and the
parsing itself over every code file: chunking alone (one parse), chunking and the graph from that one
parse (what ingest does), and a second parse for the graph (what reusing the parse saves).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import time
from pathlib import Path

from common import DEV_CORPUS, WORK, fetch_sdist, make_index

from indexes.build import ingest
from ingest.chunking import chunk_file
from ingest.code import parse_code
from ingest.code_graph import GRAPH_LANGUAGES, chunk_with_graph, file_graph
from ingest.files import WalkReport, walk

OFF = WORK / "graph-off.toml"


def fresh(name: str, cache: Path | None) -> Path:
    data = WORK / f"ingest-graph-{name}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    if cache is not None:
        shutil.copy(cache, data / "embeddings.sqlite")
    return data


def timed_ingest(data: Path, corpus: Path, graph: bool) -> tuple[float, object]:
    index = make_index(data, None if graph else str(OFF))
    index.embedder.embed(["warm up"])  # the model's load is no part of either
    t = time.perf_counter()
    s = ingest(index, [str(corpus)], "default", DEV_CORPUS["include"], DEV_CORPUS["exclude"])
    return time.perf_counter() - t, s


def catalog_size(data: Path) -> int:
    db = sqlite3.connect(data / "catalog.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return (data / "catalog.sqlite").stat().st_size


def parse_costs(corpus: Path) -> dict:
    files = [f for f in walk(corpus, corpus, DEV_CORPUS["include"], DEV_CORPUS["exclude"], 1_000_000, WalkReport())
             if f.kind == "code" and f.language in GRAPH_LANGUAGES]
    texts = [(f.path, f.language, f.text()) for f in files]
    t = time.perf_counter()
    for path, lang, text in texts:
        chunk_file(text, path, "code", lang)
    chunk_only = time.perf_counter() - t
    t = time.perf_counter()
    for path, lang, text in texts:
        chunk_with_graph(text, path, "code", lang)
    with_graph = time.perf_counter() - t
    t = time.perf_counter()
    for _path, lang, text in texts:
        parse_code(text, lang)
    parse = time.perf_counter() - t
    t = time.perf_counter()
    for path, lang, text in texts:
        file_graph(parse_code(text, lang), path, lang)
    graph_alone = time.perf_counter() - t
    return {"code_files": len(texts), "chunking_s": round(chunk_only, 2), "chunking_and_graph_s": round(with_graph, 2),
            "graph_extraction_s": round(with_graph - chunk_only, 2), "one_parse_s": round(parse, 2),
            "graph_with_its_own_parse_s": round(graph_alone, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", help="an embedding cache of the corpus to start from (skips step 1's embedding)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh ingests with and without the graph, in turn")
    args = ap.parse_args()
    corpus_src = fetch_sdist(DEV_CORPUS["package"], DEV_CORPUS["version"], DEV_CORPUS["dir"])
    corpus = WORK / "ingest-graph-corpus"  # a copy: step 5 changes a file
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(corpus_src, corpus)
    OFF.write_text("[ingest]\ngraph = false\n", encoding="utf-8")
    out: dict = {}

    cold = fresh("cold", Path(args.cache) if args.cache else None)
    seconds, s = timed_ingest(cold, corpus, graph=False)
    out["1_graph_off" + ("_cache_given" if args.cache else "_embedding")] = {
        "s": round(seconds, 1), "chunks": s.total_chunks, "embedded": s.embedded}
    cache = cold / "embeddings.sqlite"

    # On and off in turn, `--rounds` times, the fastest of each kept: a shared machine's load moves both.
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.rounds):  # a data dir of its own each time (the embedded Chroma keeps a folder open)
        for graph in (True, False):
            data = fresh(f"{'on' if graph else 'off'}-{i}", cache)
            seconds, s = timed_ingest(data, corpus, graph=graph)
            assert s.embedded == 0, "the copied cache should hold every text"
            times[graph].append(seconds)
    on, off = WORK / "ingest-graph-on-0", WORK / "ingest-graph-off-0"
    seconds_on, seconds_off = min(times[True]), min(times[False])
    out["2_graph_on_s"] = round(seconds_on, 1)
    out["3_graph_off_s"] = round(seconds_off, 1)
    out["graph_cost_s"] = round(seconds_on - seconds_off, 1)
    out["runs_s"] = {"on": [round(t, 1) for t in times[True]], "off": [round(t, 1) for t in times[False]]}

    size_on, size_off = catalog_size(on), catalog_size(off)
    db = sqlite3.connect(on / "catalog.sqlite")
    rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("graph_files", "graph_defs", "graph_refs")}
    db.close()
    out["catalog_mb"] = {"graph_on": round(size_on / 1e6, 1), "graph_off": round(size_off / 1e6, 1),
                         "graph_share": round((size_on - size_off) / size_on, 3)}
    out["graph_rows"] = rows
    data_size = {name: round(sum(p.stat().st_size for p in d.rglob("*") if p.is_file()
                                 and p.name != "embeddings.sqlite") / 1e6, 1) for name, d in (("on", on), ("off", off))}
    out["data_dir_mb_without_embedding_cache"] = data_size

    seconds, s = timed_ingest(off, corpus, graph=True)
    out["4_existing_kb_gets_its_graph"] = {"s": round(seconds, 1), "files_parsed_again": s.regraphed,
                                           "embedded": s.embedded}

    target = corpus / "src" / "agents" / "run.py"
    target.write_text(target.read_text() + "\n\ndef added_for_bench():\n    return 42\n")
    out["5_one_file_changed_s"] = {"graph_on": round(timed_ingest(on, corpus, graph=True)[0], 2)}
    target.write_text(target.read_text() + "\n\ndef added_again():\n    return 43\n")
    cold_index_off = fresh("off2", cache)
    timed_ingest(cold_index_off, corpus, graph=False)
    target.write_text(target.read_text() + "\n\ndef added_once_more():\n    return 44\n")
    out["5_one_file_changed_s"]["graph_off"] = round(timed_ingest(cold_index_off, corpus, graph=False)[0], 2)

    out["parsing"] = parse_costs(corpus)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
