"""Retrieval across knowledge bases: is a merge of several KBs' hits as good as one KB?

The chat reads every indexed KB by default, so `retrieve()` merges the KBs' hits. Each bench
set's questions are asked across the KBs of four layouts, in one data dir holding the six bench
corpora (bench/.work/kbs, built on first use from the corpora's own data dirs, every embedding
taken from their caches):

- single:     the question's corpus alone (the figures of bench/retrieval.py, for reference);
- neighbour:  that corpus and a KB of one unrelated chunk beside it;
- split:      the corpus as two KBs, its docs (*.md) in one and its code (*.py) in the other;
- all:        the six corpora as six KBs; a hit counts only from the question's own corpus.

Each layout is scored with the merge in indexes/retrieve.py (comparable scores) and, side by
side, with the merge it replaced (the KBs' fused scores as they are).

    python bench/retrieval_kbs.py                 # all six sets
    python bench/retrieval_kbs.py --sets click mcp
"""
from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from common import DEV_CORPUS, SHARED_EVAL, WORK, fetch_sdist, make_index
from retrieval_second import CORPORA

import indexes.retrieve as retrieve_module
from indexes.build import ingest
from indexes.evaluate import load_qa, score

SETS = {"dev": (DEV_CORPUS, SHARED_EVAL / "openai_agents_qa.jsonl"),
        **{name: (c, Path(__file__).parent / "qa" / f"{name}_qa.jsonl") for name, c in CORPORA.items()}}
NEIGHBOUR = "# FluxRing\n\nA FluxRing is the rotating core of a Zorb engine. A FluxRing can have at most seven " \
            "spokes; each spoke carries one phase coil. Fit the spokes clockwise, starting at the index mark.\n"


def fused_merge(index, question, per_kb):
    """The merge before: the KBs' hits by their fused scores, each scaled to its own KB's best."""
    return sorted((h for hits in per_kb.values() for h in hits), key=lambda h: -h.score)


def build(data_dir: Path):
    """The combined data dir: each corpus as KB <name>, <name>-docs and <name>-code, and KB 'neighbour'."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cache = data_dir / "embeddings.sqlite"
    db = sqlite3.connect(cache)
    db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))")
    for name in SETS:  # every embedding the corpora's own data dirs computed: nothing is embedded again
        src = WORK / name / "embeddings.sqlite"
        if src.exists():
            db.execute("ATTACH DATABASE ? AS src", (str(src),))
            db.execute("INSERT OR IGNORE INTO vectors SELECT * FROM src.vectors")
            db.commit()
            db.execute("DETACH DATABASE src")
    db.close()
    index = make_index(data_dir)
    for name, (corpus, _) in SETS.items():
        root = fetch_sdist(corpus["package"], corpus["version"], corpus["dir"])
        for kb, include in ((name, corpus["include"]), (f"{name}-docs", ["*.md"]), (f"{name}-code", ["*.py"])):
            s = ingest(index, [str(root)], kb, include, corpus["exclude"])
            print(s.line(), flush=True)
    neighbour = data_dir / "neighbour-src"
    neighbour.mkdir(exist_ok=True)
    (neighbour / "fluxring.md").write_text(NEIGHBOUR, encoding="utf-8")
    ingest(index, [str(neighbour)], "neighbour")
    return index


def figures(index, qa, kbs: list[str], own: set[str]) -> dict:
    """file@5, sym@5, mrr@10 of retrieve() over `kbs`; a hit from a KB not in `own` never counts."""
    results = []
    for q in qa:
        hits = retrieve_module.retrieve(index, q["question"], kbs, k=10).hits
        results.append([{**h.to_json(), "path": h.chunk.path if h.kb in own else f"{h.kb}:{h.chunk.path}"}
                        for h in hits])
    s = score(qa, results)
    return {key: s[key] for key in ("file@5", "sym@5", "mrr@10")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    ap.add_argument("--data-dir", default=str(WORK / "kbs"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    index = build(Path(args.data_dir))
    comparable = retrieve_module.merge
    out = {}
    for name in args.sets:
        qa = load_qa(SETS[name][1])
        own = {name, f"{name}-docs", f"{name}-code"}
        layouts = {"single": [name], "neighbour": [name, "neighbour"], "split": [f"{name}-docs", f"{name}-code"],
                   "all": list(SETS)}
        row = {}
        for layout, kbs in layouts.items():
            for merge_name, merge in (("comparable", comparable), ("fused", fused_merge)):
                if layout == "single" and merge_name == "fused":
                    continue  # one KB: nothing to merge
                retrieve_module.merge = merge
                row[f"{layout}/{merge_name}" if layout != "single" else "single"] = figures(index, qa, kbs, own)
        retrieve_module.merge = comparable
        out[name] = row
        if not args.json:
            print(f"\n{name} ({len(qa)} questions): file@5 / sym@5 / mrr@10")
            for key, f in row.items():
                print(f"  {key:22s} {f['file@5']:.3f} / {f['sym@5']:.3f} / {f['mrr@10']:.3f}", flush=True)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
