"""Retrieval figures on a QA set: file@5, sym@5, mrr@10 and top1 (the top-1 file hit), by kind and language,
of what `devcopilot search` returns and the chat cites; "ranked" gives the hybrid search's ranking alone.

    python bench/retrieval.py                      # dev corpus (openai-agents 0.24.0), indexed on first use
    python bench/retrieval.py --data-dir D --qa Q  # an already indexed KB and its questions
    python bench/retrieval.py --misses             # also list the missed questions, and where each was lost
    python bench/retrieval.py --config C.toml      # with other settings, e.g. [search] read_kind = false

Same definitions as shared/eval/score.py (indexes/evaluate.py implements them).
"""
from __future__ import annotations

import argparse
import json
import time

from common import DEV_CORPUS, SHARED_EVAL, WORK, indexed_corpus, make_index, percentile

from indexes.evaluate import load_qa, score, score_question, where_lost
from indexes.retrieve import retrieve

FIGURES = ("file@5", "sym@5", "mrr@10", "top1")  # the four figures of each list


def run(index, qa, kb="default", show_misses=False):
    """Figures of what `devcopilot search` returns and the chat cites (indexes/retrieve.py), and, under
    "ranked", of the hybrid search's ranking alone (Index.search, before definitions are put first)."""
    results, ranked, lat = [], [], []
    for q in qa:
        t = time.perf_counter()
        hits = retrieve(index, q["question"], [kb], k=10).hits
        lat.append((time.perf_counter() - t) * 1000)
        results.append([h.to_json() for h in hits])
        ranked.append([h.to_json() for h in index.search(q["question"], kb=kb, k=10)])
    figures = score(qa, results)
    figures["crowded"] = crowded(results)
    figures["ranked"] = {key: value for key, value in score(qa, ranked).items()
                         if key in FIGURES} | {"crowded": crowded(ranked)}
    for name, pred in (("doc", lambda q: q.get("kind") == "doc"), ("code", lambda q: q.get("kind") == "code"),
                       ("en", lambda q: q.get("lang") == "en"), ("zh", lambda q: q.get("lang") == "zh")):
        sub = [(q, r) for q, r in zip(qa, results) if pred(q)]
        if sub:
            s = score([q for q, _ in sub], [r for _, r in sub])
            figures[f"{name}"] = {"n": s["n"], **{key: s[key] for key in FIGURES}}
    figures["search_ms_cold_p50"] = round(percentile(lat, 50), 1)
    if show_misses:
        figures["lost"] = show_where_lost(index, qa, results, kb)
    return figures


def crowded(results: list[list[dict]], most: int = 3) -> float:
    """Share of questions whose top ten hold more than `most` chunks of one file."""
    def over(hits: list[dict]) -> bool:
        paths = [h["path"] for h in hits[:10]]
        return any(paths.count(p) > most for p in set(paths))
    return round(sum(over(r) for r in results) / (len(results) or 1), 3)


def show_where_lost(index, qa, results, kb="default") -> dict[str, int]:
    """Print each question missed at file@5 or sym@5 with where it was lost; count them by stage."""
    counts: dict[str, int] = {}
    for q, r in zip(qa, results):
        s = score_question(q, r)
        if s["file"] and s["sym"]:
            continue
        deep = index.search(q["question"], kb=kb, k=30)
        gold_chunks = [{"path": c.path, "text": c.text} for g in q["gold"]
                       for c in index.catalog.file_chunks(kb, g["path"])]
        stage, rank = where_lost(q, [h.to_json() for h in deep], gold_chunks)
        miss = "file" if not s["file"] else "sym"
        counts[f"{miss} {stage}"] = counts.get(f"{miss} {stage}", 0) + 1
        if stage == "ranking":
            ranks = ", ".join(f"{name} {n + 1}" for name, n in deep[rank].ranks.items()) or "added by name"
            where = f"fused {rank + 1} of 30 ({ranks} of each retriever's 30)"
        elif stage == "retrieval":
            where = "not among the 30 fused hits"
        else:
            where = "no chunk of the gold file names the symbol"
        gold = ", ".join(f"{g['path']}{'::' + g['symbol'] if g.get('symbol') else ''}" for g in q["gold"])
        got = " | ".join(f"{h['path']}:{h['start_line']} {h['symbol'] or ''}" for h in r[:5])
        print(f"MISS {miss:4s} {q.get('id')} [{q.get('kind')}/{q.get('lang')}] {q['question'][:90]}\n"
              f"   gold: {gold}\n   lost: {stage}: {where}\n   got:  {got}")
    return dict(sorted(counts.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(WORK / "dev"))
    ap.add_argument("--qa", default=str(SHARED_EVAL / "openai_agents_qa.jsonl"))
    ap.add_argument("--kb", default="default")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--config", help="a TOML file of settings to measure, e.g. [search] read_kind = false")
    args = ap.parse_args()
    from pathlib import Path

    data = Path(args.data_dir)
    dev = args.kb == "default" and "openai_agents" in args.qa
    index = indexed_corpus(DEV_CORPUS, data, args.config) if dev else make_index(data, args.config)
    figures = run(index, load_qa(args.qa), args.kb, args.misses)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
