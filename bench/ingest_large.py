"""Ingest of a large corpus: wall time, peak RSS, and how memory grows with the corpus.

The corpus is the dev corpus (openai-agents 0.24.0 sdist, .md and .py without tests/, via
bench/common.py fetch_sdist) replicated under `mirrorNNN/` folders (hard links, so the files
are real and cost no disk) until it yields `--chunks` chunks at `--chunk-chars` characters a
chunk; the last replica is partial. Every chunk's embedded text starts with its path, so
every chunk is embedded by the real model (nothing comes from the cache unless
`--reuse-embeddings` keeps the previous run's cache).

Real embedding runs at ~10-100 chunks/s on 2 shared cores, so large sizes take hours.
`--synthetic-embeddings` first fills the embedding cache (in a child process) with vectors
derived from the dev KB's real embeddings (see prefill()); the ingest then runs its whole real
path (walk, read, chunk, cache lookups, Chroma upserts, catalog, reconcile, lexical rebuild)
without the model's forward pass. That isolates how memory grows with the corpus.

One `ingest()` into a fresh data dir (embedded Chroma), in this process, the model loaded
first (as in a running server). A sampler thread reads VmRSS every 0.2 s, tagged with the
ingest's stage and how many files are done, so the figures show RSS along the write phase
(25/50/75/100 % of the chunks), the peak of the final phase (reconcile + lexical rebuild),
and the slope in MB per 1,000 chunks. Run two sizes to compare the peaks.

    .venv/bin/python bench/ingest_large.py --chunks 10000
    .venv/bin/python bench/ingest_large.py --chunks 100000          # the full figure (slow: real embedding)
    .venv/bin/python bench/ingest_large.py --chunks 100000 --synthetic-embeddings
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import DEV_CORPUS, WORK, fetch_sdist  # noqa: E402


def rss() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    cur = peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            cur = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM"):
            peak = int(line.split()[1]) / 1024
    return cur, peak


def make_corpus(src: Path, dest: Path, chunks: int, chunk_chars: int) -> tuple[int, int, int]:
    """Hard-link mirrors of the dev corpus until `chunks` chunks; returns (files, chunks, replicas)."""
    from ingest.chunking import chunk_file
    from ingest.files import walk

    files = []  # (relative path, chunks it gives)
    for f in walk(src, src, DEV_CORPUS["include"], DEV_CORPUS["exclude"], 1_000_000):
        files.append((f.path, len(chunk_file(f.text(), f.path, f.kind, f.language, chunk_chars))))
    marker = dest / ".plan"
    plan = f"{chunks} {chunk_chars} {len(files)}"
    if marker.exists() and marker.read_text() == plan:
        n = sum(1 for p in dest.rglob("*") if p.is_file() and p.name != ".plan")
        return n, chunks, -1
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    total, nfiles, replica = 0, 0, 0
    while total < chunks:
        for rel, n in files:
            if total >= chunks:
                break
            target = dest / f"mirror{replica:03d}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(src / rel, target)
            total += n
            nfiles += 1
        replica += 1
    marker.write_text(plan)
    return nfiles, total, replica


def prefill(corpus: Path, data: Path, source: Path, chunk_chars: int) -> int:
    """Put a vector for every chunk the ingest will make into the data dir's embedding cache.

    Each vector is a real embedding from the dev KB's cache (`source`), picked by a hash of the
    chunk's text (so mirrored copies of a text get nearby vectors, as real near-duplicates do),
    plus Gaussian noise (sigma 0.01 a dimension), renormalised. The chunks are made exactly as
    ingest makes them (same walk, same chunker and window), so every lookup hits.
    """
    import hashlib

    import numpy as np

    from copilot.config import load_config
    from indexes.embeddings import EmbeddingCache, content_hash
    from indexes.search import Index
    from ingest.chunking import chunk_file
    from ingest.files import walk

    dev = Index(load_config(env={}, overrides={"data_dir": str(source)}))
    pool = [np.frombuffer(b, np.float32) for (b,) in dev.cache.db.execute(
        "SELECT vector FROM vectors WHERE model=? LIMIT 20000", (dev.embedder.name,))]
    if not pool:
        raise SystemExit(f"{source} holds no embeddings; run bench/ingest.py first (it indexes the dev corpus).")
    cache = EmbeddingCache(data / "embeddings.sqlite")
    rng = np.random.default_rng(7)
    n = 0
    for f in walk(corpus, corpus, DEV_CORPUS["include"], DEV_CORPUS["exclude"], 1_000_000):
        chunks = chunk_file(f.text(), f.path, f.kind, f.language, chunk_chars)
        items = {}
        for c in chunks:
            pick = int.from_bytes(hashlib.sha256(c.text.encode()).digest()[:4], "big") % len(pool)
            v = pool[pick] + rng.normal(0.0, 0.01, pool[pick].shape).astype(np.float32)
            items[content_hash(c.embed_text())] = (v / np.linalg.norm(v)).astype(np.float32)
        cache.put_many(dev.embedder.name, items)
        n += len(items)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--chunk-chars", type=int, default=600, help="chunk window (smaller chunks embed faster)")
    ap.add_argument("--reuse-embeddings", action="store_true",
                    help="keep the previous run's embedding cache (then most chunks are not embedded again)")
    ap.add_argument("--synthetic-embeddings", action="store_true",
                    help="fill the embedding cache first with vectors derived from the dev KB's real ones "
                         "(see prefill()): measures everything in the ingest but the model's forward pass")
    ap.add_argument("--source", default=str(WORK / "ingest-bench"),
                    help="the dev KB data dir whose cached embeddings --synthetic-embeddings derives from")
    ap.add_argument("--prefill", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    src = fetch_sdist(DEV_CORPUS["package"], DEV_CORPUS["version"], DEV_CORPUS["dir"])
    base = WORK / "ingest-large"
    corpus = base / f"corpus-{args.chunks}-{args.chunk_chars}"
    nfiles, planned, replicas = make_corpus(src, corpus, args.chunks, args.chunk_chars)
    data = base / "data"
    if data.exists():
        for p in data.iterdir():
            if args.reuse_embeddings and p.name.startswith("embeddings.sqlite"):
                continue
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    if args.prefill:
        print(prefill(corpus, data, Path(args.source), args.chunk_chars))
        return 0
    if args.synthetic_embeddings:  # in a child process, so this one's RSS is the ingest's alone
        import subprocess

        t = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--prefill", "--chunks", str(args.chunks), "--chunk-chars",
                              str(args.chunk_chars), "--source", args.source], check=True, capture_output=True,
                             text=True).stdout.split()[-1]
        print(f"embedding cache prefilled with {int(out):,} synthetic vectors in {time.perf_counter() - t:.0f} s")

    from copilot.config import load_config
    from indexes.build import ingest
    from indexes.search import Index

    cfg = load_config(env={}, overrides={"data_dir": str(data), "ingest": {"chunk_chars": args.chunk_chars}})
    index = Index(cfg)
    index.embedder.embed(["warm up"])  # model load is not part of the ingest
    index.store.count(index.collection("default"))  # nor opening the store
    rss_ready, _ = rss()

    state = {"stage": "scan", "done": 0, "total": 1}
    samples: list[tuple[float, str, float, float]] = []  # (t, stage, fraction of files done, rss)
    stop = threading.Event()

    def progress(stage: str, done: int, total: int) -> None:
        state.update(stage=stage, done=done, total=max(1, total))

    def sampler() -> None:
        while not stop.is_set():
            stage = state["stage"]
            frac = state["done"] / state["total"] if stage == "index" else (1.0 if stage == "lexical" else 0.0)
            if stage == "index" and state["done"] >= state["total"]:
                stage = "final"  # last batch written, then reconcile
            if stage == "lexical":
                stage = "final"
            samples.append((time.perf_counter(), stage, frac, rss()[0]))
            stop.wait(0.2)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    t0 = time.perf_counter()
    summary = ingest(index, [str(corpus)], "default", include=DEV_CORPUS["include"], progress=progress)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    _, peak = rss()

    n = summary.total_chunks
    made = "made by an earlier run" if replicas < 0 else f"{replicas} mirrors of the dev corpus"
    print(f"corpus: {nfiles} files, {n:,} chunks of <= {args.chunk_chars} chars ({made})")
    print(summary.line())
    print(f"wall {wall:.0f} s, {n / wall:.0f} chunks/s; {summary.embedded:,} chunks embedded by the model"
          + (" (vectors from the prefilled cache: no model time)" if args.synthetic_embeddings else ""))
    print(f"RSS with the model loaded and the store open: {rss_ready:.0f} MB; peak during the ingest: {peak:.0f} MB "
          f"(+{peak - rss_ready:.0f} MB)")
    idx = [s for s in samples if s[1] == "index"]
    points = []
    for lo, q in ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)):
        near = [s for s in idx if s[2] <= q]
        window = [s[3] for s in idx if lo < s[2] <= q] or [0.0]
        if near:
            top = max(s[3] for s in near)  # the highest RSS seen up to this point of the write phase
            points.append((q, top))
            print(f"  write phase, {q:>4.0%} of the files ({q * n:>8,.0f} chunks): RSS up to {top:.0f} MB "
                  f"(in the last quarter: {min(window):.0f}-{max(window):.0f} MB)")
    final = [s[3] for s in samples if s[1] == "final"]
    if final:
        print(f"  final phase (reconcile with the vector store, lexical rebuild): RSS up to {max(final):.0f} MB")
    if len(points) >= 2 and points[-1][0] > points[0][0]:
        (q0, r0), (q1, r1) = points[0], points[-1]
        slope = (r1 - r0) / ((q1 - q0) * n / 1000)
        print(f"  slope over the write phase: {slope:.2f} MB per 1,000 chunks "
              f"(the vectors alone are {384 * 4 / 1024:.2f} MB per 1,000)")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    (base / "rss-samples.json").write_text(json.dumps([(round(t - t0, 2), st, round(f, 4), round(r))
                                                       for t, st, f, r in samples]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
