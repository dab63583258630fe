"""Dense search of one kind (what each assistant reads): Chroma's metadata filter against the kind's
ids given to it (what `Index.search` does, taking them from the lexical index), side by side.

Both ways run alternately, `--rounds` times over the QA set's questions and both kinds, on the
same query vectors; printed: ms a search each way, the ratio, and whether every result list (ids
and scores) is the same. A KB of synthetic vectors of `--synthetic N` shows how each way grows
with the size of the KB.

    .venv/bin/python bench/kind_filter.py                        # dev corpus, indexed on first use
    .venv/bin/python bench/kind_filter.py --data-dir D --qa Q    # an indexed KB and its questions
    .venv/bin/python bench/kind_filter.py --synthetic 20000,60000
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DEV_CORPUS, SHARED_EVAL, WORK, indexed_corpus, make_index

from indexes.evaluate import load_qa
from indexes.stores import ChromaStore


def side_by_side(store, collection: str, vectors: list[np.ndarray], of_kind: dict[str, list[str]], rounds: int,
                 depth: int = 100) -> dict:
    """ms per search with the metadata filter and given the ids, alternately; and whether they agree."""
    spent = {"filter": 0.0, "ids": 0.0}
    same = searches = 0
    for r in range(rounds):
        for v in vectors:
            for kind, ids in of_kind.items():
                found = {}
                for way in (("filter", "ids") if r % 2 == 0 else ("ids", "filter")):
                    t = time.perf_counter()
                    found[way] = store.query(collection, v, depth, kind, ids if way == "ids" else None)
                    spent[way] += time.perf_counter() - t
                searches += 1
                same += [c for c, _ in found["filter"]] == [c for c, _ in found["ids"]] and np.allclose(
                    [s for _, s in found["filter"]], [s for _, s in found["ids"]], atol=1e-6)
    ms = {way: round(seconds / searches * 1000, 2) for way, seconds in spent.items()}
    return {"filter_ms": ms["filter"], "ids_ms": ms["ids"],
            "ratio": round(spent["filter"] / max(spent["ids"], 1e-9), 2), "searches": searches,
            "same_results": f"{same} of {searches}"}


def synthetic(n: int, queries: int, rounds: int) -> dict:
    """`n` random unit vectors, two thirds code and one third docs, in a fresh embedded Chroma."""
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [f"{i:032x}" for i in range(n)]
    kinds = ["code" if i % 3 else "doc" for i in range(n)]
    store = ChromaStore(Path(tempfile.mkdtemp(prefix="kind-filter-")))
    store.upsert("synthetic", ids, vecs, [{"kind": k} for k in kinds])
    of_kind = {k: [i for i, kk in zip(ids, kinds) if kk == k] for k in ("doc", "code")}
    return side_by_side(store, "synthetic", list(vecs[:queries]), of_kind, rounds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=str(WORK / "dev"))
    ap.add_argument("--qa", default=str(SHARED_EVAL / "openai_agents_qa.jsonl"))
    ap.add_argument("--kb", default="default")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--synthetic", default="", help="also KBs of this many synthetic vectors, e.g. 20000,60000")
    args = ap.parse_args()

    data = Path(args.data_dir)
    dev = data == WORK / "dev"
    index = indexed_corpus(DEV_CORPUS, data) if dev else make_index(data)
    lex = index.lexical(args.kb)
    if lex is None:
        raise SystemExit(f"KB '{args.kb}' in {data} has no lexical index; index it first.")
    questions = [q["question"] for q in load_qa(args.qa)]
    vectors = [index.embed_query(q) for q in questions]
    of_kind = {k: lex.ids_of(k) for k in ("doc", "code")}
    fig = side_by_side(index.store, index.collection(args.kb), vectors, of_kind, args.rounds)
    print(json.dumps({"kb": str(data), "chunks": len(lex.ids), "doc": len(of_kind["doc"]),
                      "code": len(of_kind["code"]), **fig}))
    for n in [int(x) for x in args.synthetic.split(",") if x]:
        print(json.dumps({"synthetic": n, **synthetic(n, 20, args.rounds)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
