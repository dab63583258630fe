"""Load: search latency under concurrent clients at 10k and 100k chunks, and the process RSS.

The KBs are synthesised from an indexed dev corpus (default: bench/.work/ingest-bench, the
openai-agents 0.24.0 sdist indexed by bench/ingest.py, ~3.4k chunks) and written through the
public classes, as an ingest would (vector store `upsert`, `Catalog.replace_file` in a
transaction, `Index.rebuild_lexical`). What is synthetic, exactly:
- replica r of every file lives under `mirrorNNN/<original path>`: same text, symbols and
  headings, a new path, hence new chunk ids and new path tokens in the lexical index; files are
  replicated in order until the size is reached, so the KB is whole copies plus a partial one;
- a replica's vector is the original's embedding (real, from the dev KB's embedding cache)
  plus Gaussian noise (sigma 0.01 a dimension, cosine to the original ~0.98), renormalised:
  the HNSW graph sees distinct points clustered like real near-duplicates;
- lexical tokens are the original's (current tokenizer) with the path's replaced by the new path's.
Queries are the 80 questions of shared/eval/openai_agents_qa.jsonl, reworded on repeats so no
query embedding comes from the cache: each search embeds its query with the real model.

Each size is measured in a fresh process holding one `Index` (as the server does): a warm-up
search, then `--clients` threads (8) each running its share of `--queries` searches at once.
Figures: p50/p95 latency, searches/s, and the process RSS (current and peak, /proc/self/status);
then the same queries again, their embeddings cached, for the index's own share of the latency.

    .venv/bin/python bench/load_search.py                        # 10k and 100k (built once, reused)
    .venv/bin/python bench/load_search.py --sizes 10000 --queries 160
    .venv/bin/python bench/load_search.py --measure bench/.work/ingest-large/data   # prints one JSON line
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "bench" / ".work"
QA = ROOT.parent / "shared" / "eval" / "openai_agents_qa.jsonl"
LEADS = ["", "Quick question: ", "Please explain: ", "I wonder, ", "Help me understand: ", "Tell me: ",
         "Explain briefly: ", "In short, "]


def status() -> dict[str, float]:
    """VmRSS and VmHWM (peak) of this process, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def open_index(data_dir: Path):
    from copilot.config import load_config
    from indexes.search import Index

    return Index(load_config(env={}, overrides={"data_dir": str(data_dir)}))


# -- building a synthetic KB ---------------------------------------------------------------------
def build(source_dir: Path, dest: Path, size: int, kb: str = "default", seed: int = 7) -> int:
    import numpy as np

    from indexes.catalog import CHUNK_COLS, row_to_chunk
    from indexes.lexical import TOKENIZER_VERSION, tokenize
    from indexes.search import lexical_tokens

    src = open_index(source_dir)
    rows = src.catalog.db.execute(f"SELECT {CHUNK_COLS} FROM chunks WHERE kb=? ORDER BY path, start_line",
                                  (kb,)).fetchall()
    if not rows:
        raise SystemExit(f"{source_dir} has no chunks in KB '{kb}'; index the dev corpus first (bench/ingest.py).")
    files: dict[str, list] = {}
    for r in rows:
        c = row_to_chunk(r)
        files.setdefault(c.path, []).append((c, lexical_tokens(c)))  # with the current tokenizer
    chunks = [c for c, _ in (x for fs in files.values() for x in fs)]
    # Real embeddings of the originals (all cached by the dev ingest; any miss is embedded now).
    vecs, computed = src.cache.embed(src.embedder, [c.embed_text() for c in chunks])
    base = {c.id: v for c, v in zip(chunks, vecs)}
    print(f"source: {len(rows)} chunks in {len(files)} files ({computed} embeddings computed, the rest cached)",
          flush=True)

    shutil.rmtree(dest, ignore_errors=True)
    dst = open_index(dest)
    cat, store = dst.catalog, dst.store
    col = dst.collection(kb)
    cat.ensure_kb(kb, dst.embedder.name, store.label)
    cat.set_kb(kb, dirty=1)
    sid = "synthetic"
    cat.upsert_source(kb, sid, f"synthetic: {source_dir.name} replicated to {size} chunks", "folder", str(dest), "")
    cat.set_meta(f"tokenizer:{kb}", TOKENIZER_VERSION)  # tokens below are made with the current tokenizer
    rng = np.random.default_rng(seed)
    written, replica = 0, 0
    batch: list[tuple[str, list, list[str]]] = []
    t0 = time.perf_counter()

    def flush():
        if not batch:
            return
        cs = [c for _, group, _ in batch for c, _ in group]
        v = np.stack([base[orig] for _, group, _ in batch for _, orig in group])
        v = v + rng.normal(0.0, 0.01, v.shape).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        store.upsert(col, [c.id for c in cs], v.astype(np.float32), [{"kind": c.kind, "source": sid} for c in cs])
        with cat.transaction():
            for path, group, toks in batch:
                cat.replace_file(kb, sid, path, f"synthetic-{path}", [c for c, _ in group], toks)
            cat.bump(kb)
        batch.clear()

    while written < size:
        for path, group in files.items():
            if written >= size:
                break
            new_path = f"mirror{replica:03d}/{path}"
            old_n = len(tokenize(path))
            new_group, toks = [], []
            for c, tokens in group:
                orig = c.id
                copy = row_to_chunk((orig, sid, new_path, c.start_line, c.end_line, c.kind, c.language, c.symbol,
                                     json.dumps(c.headings), c.context, "", c.text)).finalize(sid, "")
                new_group.append((copy, orig))
                toks.append(" ".join(tokenize(new_path) + tokens.split()[old_n:]))
            batch.append((new_path, new_group, toks))
            written += len(group)
            if sum(len(g) for _, g, _ in batch) >= 512:
                flush()
        replica += 1
        print(f"  {written} chunks written ({time.perf_counter() - t0:.0f} s)", flush=True)
    flush()
    t1 = time.perf_counter()
    dst.rebuild_lexical(kb)
    cat.finish_source(kb, sid, {})
    cat.set_kb(kb, dirty=0, indexed_at=time.time())
    n = cat.count_chunks(kb)
    print(f"built {n} chunks in {dest} ({replica} replicas) in {time.perf_counter() - t0:.0f} s "
          f"(lexical rebuild {time.perf_counter() - t1:.0f} s); vector store holds {store.count(col)}", flush=True)
    return n


# -- measuring ------------------------------------------------------------------------------------
def measure(data_dir: Path, clients: int, queries: int, k: int) -> dict:
    rss_start = status()
    index = open_index(data_dir)
    qs = [json.loads(line)["question"] for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    qs = [LEADS[(i // len(qs)) % len(LEADS)] + qs[i % len(qs)] for i in range(queries)]
    t = time.perf_counter()
    index.search("warm up: how do I run an agent?", k=k)  # model load, store open, lexical index load
    warm = time.perf_counter() - t
    rss_warm = status()
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(j: int) -> None:
        for q in qs[j::clients]:
            t0 = time.perf_counter()
            try:
                index.search(q, k=k)
            except Exception as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                continue
            with lock:
                lat.append(time.perf_counter() - t0)

    def run() -> float:
        threads = [threading.Thread(target=client, args=(j,)) for j in range(clients)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - t0

    wall = run()
    end = status()
    full = list(lat)
    # The same queries again: their embeddings now come from the query cache, so this is the index alone
    # (vector search, BM25, fusion, catalog reads).
    lat.clear()
    run()
    cached = list(lat)
    lat[:] = full
    return {"chunks": index.catalog.count_chunks("default"), "searches": len(lat), "errors": errors[:5],
            "n_errors": len(errors), "wall_s": wall, "qps": len(lat) / wall, "p50_ms": pct(lat, 50) * 1000,
            "p95_ms": pct(lat, 95) * 1000, "first_search_s": warm, "rss_start_mb": rss_start.get("VmRSS", 0),
            "rss_warm_mb": rss_warm.get("VmRSS", 0), "rss_end_mb": end.get("VmRSS", 0),
            "rss_peak_mb": end.get("VmHWM", 0), "cached_p50_ms": pct(cached, 50) * 1000,
            "cached_p95_ms": pct(cached, 95) * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--source", default=str(WORK / "ingest-bench"), help="an indexed dev KB data dir to replicate")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--queries", type=int, default=240, help="searches per size, shared by the clients")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rebuild", action="store_true", help="synthesise the KBs again even if they exist")
    ap.add_argument("--measure", metavar="DATA_DIR",
                    help="measure an existing indexed data dir instead (e.g. the 100k KB bench/ingest_large.py made)")
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.clients, args.queries, args.k)))
        return 0

    results = []
    for size in args.sizes:
        dest = WORK / f"search-{size // 1000}k"
        done = dest / "built.json"
        if args.rebuild or not done.exists():
            t = time.perf_counter()
            n = build(Path(args.source), dest, size)
            done.write_text(json.dumps({"chunks": n, "build_s": round(time.perf_counter() - t, 1)}))
        r = subprocess.run([sys.executable, __file__, "--measure", str(dest), "--clients", str(args.clients),
                            "--queries", str(args.queries), "--k", str(args.k)], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        res = json.loads(r.stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"{res['chunks']:>7,} chunks, {args.clients} clients, {res['searches']} searches (k={args.k}), "
              f"{res['n_errors']} errors: p50 {res['p50_ms']:.0f} ms, p95 {res['p95_ms']:.0f} ms, "
              f"{res['qps']:.1f} searches/s; RSS {res['rss_warm_mb']:.0f} MB after the first search, "
              f"{res['rss_end_mb']:.0f} MB after the load, peak {res['rss_peak_mb']:.0f} MB "
              f"(first search {res['first_search_s']:.1f} s); with the query embedding cached (index alone): "
              f"p50 {res['cached_p50_ms']:.0f} ms, p95 {res['cached_p95_ms']:.0f} ms", flush=True)
        for e in res["errors"]:
            print("  ", e)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    return 1 if any(r["n_errors"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
