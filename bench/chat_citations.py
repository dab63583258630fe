"""What the chat cites, offline, beside what the search ranks first: on every bench set, each question asked in
the web chat's way (Copilot.chat, no language model: the Guide's local routing picks the assistant, who quotes
the passages it retrieved), and the same question given to `retrieve()` (what `devcopilot search` prints).

    python bench/chat_citations.py                    # every set of bench/retrieval_all.py
    python bench/chat_citations.py --sets dev,click   # some of them
    python bench/chat_citations.py --misses           # and each question whose first citation differs

Figures per set: "chat first" is the share of questions whose answer's first citation is a gold file; "search
first" the same for retrieve()'s first hit (the top1 of bench/retrieval_all.py); "routed" the share routed to the
assistant the question set names (tutoring for docs, coding for source); "don't know" how many answers said "I
don't know" (every question of these sets is answerable); "off-topic" how many of ten off-topic questions did.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import tempfile
from pathlib import Path

from common import DEV_CORPUS, WORK, indexed_corpus
from offline_answers import OFF_TOPIC, first_answer
from retrieval_all import sets
from retrieval_second import ensure_index

from copilot.chat import Copilot
from indexes.evaluate import load_qa
from indexes.retrieve import retrieve

DONT_KNOW = ("I don't know", "我不知道")


def measure(name: str, qa_path: str, show: bool) -> dict:
    with contextlib.redirect_stdout(sys.stderr):  # the ingest's summary line
        index = indexed_corpus(DEV_CORPUS, WORK / name) if name == "dev" else ensure_index(name)
    cfg = copy.deepcopy(index.cfg)
    cfg.data_dir = Path(tempfile.mkdtemp(prefix="chat-citations-"))  # conversations go here; the index is read only
    cfg.chat.kb = "default"
    copilot = Copilot(cfg, index)
    if copilot.model is not None:
        raise SystemExit("A chat model is configured; this measures the chat without one (unset it).")
    qa = load_qa(qa_path)
    chat = search = routed = dont_know = 0
    for q in qa:
        gold = {g["path"] for g in q["gold"]}
        answer = first_answer(copilot, q["question"], None)
        cited = answer.sources[0].path if answer and answer.sources else None
        hits = retrieve(index, q["question"], ["default"], k=10).hits
        first = hits[0].chunk.path if hits else None
        chat += cited in gold
        search += first in gold
        routed += bool(answer and answer.assistant.lower() == q.get("assistant"))
        dont_know += bool(answer and answer.text.startswith(DONT_KNOW))
        if show and (cited in gold) != (first in gold):
            print(f"  {q['id']}: chat {'+' if cited in gold else '-'} {answer.assistant if answer else '-'} {cited} | "
                  f"search {'+' if first in gold else '-'} {first} | {q['question'][:80]}", file=sys.stderr)
    off = sum(bool(a and a.text.startswith(DONT_KNOW)) for a in (first_answer(copilot, q, None) for q in OFF_TOPIC))
    n = len(qa)
    return {"n": n, "chat": chat / n, "search": search / n, "routed": routed / n, "dont_know": dont_know,
            "off_topic": off}


def main():
    ap = argparse.ArgumentParser()
    known = sets()
    ap.add_argument("--sets", help=f"comma-separated, of: {', '.join(known)} (default: all)")
    ap.add_argument("--misses", action="store_true", help="list the questions whose first citation differs")
    args = ap.parse_args()
    chosen = args.sets.split(",") if args.sets else list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"Unknown set {', '.join(unknown)}; known: {', '.join(known)}.")
    print("| set | n | chat first | search first | routed | don't know | off-topic |\n|---|---|---|---|---|---|---|")
    rows = {}
    for name in chosen:
        r = rows[name] = measure(name, known[name], args.misses)
        print(f"| {name} | {r['n']} | {r['chat']:.3f} | {r['search']:.3f} | {r['routed']:.3f} | {r['dont_know']} | "
              f"{r['off_topic']}/{len(OFF_TOPIC)} |", flush=True)
    if len(rows) > 1:
        def mean(key: str) -> float:
            return sum(r[key] for r in rows.values()) / len(rows)

        print(f"| mean | {len(rows)} sets | {mean('chat'):.3f} | {mean('search'):.3f} | {mean('routed'):.3f} | "
              f"{sum(r['dont_know'] for r in rows.values())} | {sum(r['off_topic'] for r in rows.values())}/"
              f"{len(OFF_TOPIC) * len(rows)} |")


if __name__ == "__main__":
    main()
