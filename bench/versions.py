"""Versions side by side: what a second version costs, and whether the version asked for is the one cited.

    python bench/versions.py cost   # ingest time and stored bytes of version N+1 after N, against N alone
    python bench/versions.py qa     # bench/qa/versions_qa.jsonl: the first cited chunk's version, pinned or not
    python bench/versions.py all

**cost**: for each release pair (a Python sdist from PyPI and a TypeScript tarball from npm, fetched by the
product itself: `devcopilot ingest pypi:NAME==V` / `npm:NAME@V`), a fresh data dir: version N is ingested,
then version N+1 into the same KB, each by the `devcopilot ingest` command in a process of its own (so what
it stored is on disk when it exits). Reported: the wall-clock time of each ingest, and the bytes the data dir
stores for the KB (the catalog, the Chroma vector store, the lexical index; the embedding cache and the
unpacked releases apart) after N and after N+1; the share of N+1's files that are new or changed since N;
and how many of N+1's chunks are shared with N (stored and embedded once). With `--alone`, N+1 is also
ingested alone in a third data dir: what a second version would cost if nothing were shared.

**qa**: both versions of click (8.1.8 and 8.2.0, from PyPI) in KB 'click'; for each question of
bench/qa/versions_qa.jsonl (written from the two releases' changelog and sources before any run: each answer
differs by version, each question names its version and the file that answers it there), `retrieve()` (what
`devcopilot search` cites) with the version pinned, with every version (`"all"`: as an index without
versions would answer), and with no choice (the newest). Reported per mode: the share whose first cited
chunk is from the question's version (a chunk both versions hold counts as from either), and the share
whose first cited chunk (and any of the top five) is the gold file at that version.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK, make_index

PAIRS = [
    {"name": "openai-agents", "from": "pypi:openai-agents==0.23.1", "to": "pypi:openai-agents==0.24.0"},
    {"name": "@anthropic-ai/sdk", "from": "npm:@anthropic-ai/sdk@0.59.0", "to": "npm:@anthropic-ai/sdk@0.60.0"},
]
QA = ROOT / "bench" / "qa" / "versions_qa.jsonl"
QA_SOURCES = ["pypi:click==8.1.8", "pypi:click==8.2.0"]
MB = 1024 * 1024


def devcopilot(data: Path, *args: str) -> float:
    """Run `devcopilot` in a process of its own; its wall-clock seconds."""
    cmd = [sys.executable, str(ROOT / "devcopilot.py"), "--data-dir", str(data), *args]
    print("$", " ".join(cmd[1:]), flush=True)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"failed: {r.stderr.strip()}")
    print("  " + r.stdout.strip().splitlines()[-1], flush=True)
    return time.perf_counter() - t


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def stored(data: Path) -> dict[str, int]:
    """Bytes of what the data dir stores for its KBs: catalog (WAL folded in), vectors, lexical index."""
    catalog = data / "catalog.sqlite"
    with sqlite3.connect(catalog) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sizes = {"catalog": sum(folder_bytes(p) if p.is_dir() else p.stat().st_size
                            for p in data.glob("catalog.sqlite*")),
             "vectors": folder_bytes(data / "chroma"), "lexical": folder_bytes(data / "lexical")}
    sizes["total"] = sum(sizes.values())
    sizes["embedding cache"] = sum(p.stat().st_size for p in data.glob("embeddings.sqlite*"))
    sizes["releases"] = folder_bytes(data / "releases")
    return sizes


def sharing(data: Path, kb: str, old: str, new: str) -> dict:
    """Files of `new` new or changed since `old`, and chunks of `new` that `old` holds too."""
    index = make_index(data)
    rows = {s["spec"]: s["id"] for s in index.catalog.sources(kb)}
    a, b = index.catalog.manifest(kb, rows[old]), index.catalog.manifest(kb, rows[new])
    changed = sum(1 for path, h in b.items() if a.get(path) != h)
    ca = set(index.catalog.chunk_ids_of_source(kb, rows[old]))
    cb = set(index.catalog.chunk_ids_of_source(kb, rows[new]))
    return {"files": len(b), "changed": changed, "chunks": len(cb), "shared": len(cb & ca),
            "stored": index.catalog.count_chunks(kb)}


def cost(pair: dict, alone: bool) -> dict:
    slug = pair["name"].replace("@", "").replace("/", "-")
    data = WORK / "versions" / slug
    shutil.rmtree(data, ignore_errors=True)
    t_old = devcopilot(data, "ingest", pair["from"], "--kb", "lib", "--quiet")
    after_old = stored(data)
    t_new = devcopilot(data, "ingest", pair["to"], "--kb", "lib", "--quiet")
    after_new = stored(data)
    out = {"pair": f"{pair['from']} -> {pair['to']}", "seconds": [round(t_old, 1), round(t_new, 1)],
           "stored_after_N": after_old, "stored_after_N+1": after_new, **sharing(data, "lib", pair["from"], pair["to"])}
    if alone:
        solo = WORK / "versions" / (slug + "-alone")
        shutil.rmtree(solo, ignore_errors=True)
        out["seconds_N+1_alone"] = round(devcopilot(solo, "ingest", pair["to"], "--kb", "lib", "--quiet"), 1)
        out["stored_N+1_alone"] = stored(solo)
    return out


def print_cost(r: dict) -> None:
    a, b = r["stored_after_N"], r["stored_after_N+1"]
    extra = b["total"] - a["total"]
    print(f"\n{r['pair']}")
    print(f"  files of N+1: {r['files']}, new or changed since N: {r['changed']} ({r['changed'] / r['files']:.0%})")
    print(f"  chunks of N+1: {r['chunks']}, shared with N: {r['shared']} ({r['shared'] / r['chunks']:.0%}); "
          f"chunks stored for both: {r['stored']}")
    print(f"  ingest: N alone {r['seconds'][0]:.1f} s; N+1 after N {r['seconds'][1]:.1f} s "
          f"({r['seconds'][1] / r['seconds'][0]:.0%} of N)")
    for key in ("catalog", "vectors", "lexical", "total"):
        print(f"  {key:8s} after N {a[key] / MB:7.2f} MB; after N+1 {b[key] / MB:7.2f} MB "
              f"(+{(b[key] - a[key]) / MB:.2f} MB, {(b[key] - a[key]) / max(a[key], 1):.0%} of N)")
    print(f"  second version adds {extra / MB:.2f} MB to {a['total'] / MB:.2f} MB ({extra / a['total']:.0%})")
    if "stored_N+1_alone" in r:
        s = r["stored_N+1_alone"]
        print(f"  N+1 alone: {s['total'] / MB:.2f} MB stored, {r['seconds_N+1_alone']:.1f} s: shared, the second "
              f"version costs {extra / s['total']:.0%} of what it costs alone")


def qa() -> dict:
    from indexes.build import ingest
    from indexes.retrieve import retrieve
    from indexes.versions import VersionChoice

    data = WORK / "versions-qa"
    shutil.rmtree(data, ignore_errors=True)  # a fresh KB: what the code of this commit stores and finds
    index = make_index(data)
    print(f"$ python devcopilot.py --data-dir {data} ingest {' '.join(QA_SOURCES)} --kb click", flush=True)
    print("  " + ingest(index, QA_SOURCES, "click").line(), flush=True)
    items = [json.loads(line) for line in QA.read_text().splitlines() if line.strip()]
    # A chunk both versions hold is from either: what each version holds, by chunk id.
    held = {s["version"]: set(index.catalog.chunk_ids_of_source("click", s["id"]))
            for s in index.catalog.sources("click")}
    modes = {"pinned": lambda q: VersionChoice.parse(q["version"], q["library"]),
             "all versions (no version support)": lambda q: VersionChoice.parse("all"),
             "no choice (the newest)": lambda q: None}
    out = {}
    for mode, choose in modes.items():
        first_version = first_gold = top5_gold = 0
        for q in items:
            hits = retrieve(index, q["question"], ["click"], k=5, versions=choose(q)).hits
            right = [h for h in hits if h.chunk.id in held[q["version"]]]
            first = bool(right) and right[0] is hits[0]
            first_version += first
            first_gold += first and hits[0].chunk.path == q["path"]
            top5_gold += any(h.chunk.path == q["path"] for h in right)
        n = len(items)
        out[mode] = {"questions": n, "first_cited_from_version": round(first_version / n, 3),
                     "first_cited_is_gold_at_version": round(first_gold / n, 3),
                     "gold_at_version_in_top5": round(top5_gold / n, 3)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["cost", "qa", "all"])
    p.add_argument("--alone", action="store_true", help="also ingest N+1 alone (what it costs without sharing)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = {}
    if args.what in ("cost", "all"):
        results["cost"] = [cost(pair, args.alone) for pair in PAIRS]
        for r in results["cost"]:
            print_cost(r)
    if args.what in ("qa", "all"):
        results["qa"] = qa()
        print(f"\n{QA.relative_to(ROOT)}: {next(iter(results['qa'].values()))['questions']} questions")
        for mode, r in results["qa"].items():
            print(f"  {mode:36s} first cited from the version {r['first_cited_from_version']:.0%}; first cited is "
                  f"the gold file there {r['first_cited_is_gold_at_version']:.0%}; gold at the version in the top 5 "
                  f"{r['gold_at_version_in_top5']:.0%}")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
