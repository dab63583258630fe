"""Offline mode on the dev question set: how often is an answer's first citation a gold path?

Each question goes through Copilot.chat with no language model, exactly as a user would ask it:
the Guide's local classifier picks the specialist, who quotes the best passages. We score the
first citation of the first specialist answer against the question's gold paths. For reference
it also scores the same with the question sent straight to the gold assistant (@Tutoring/@Coding).

    .venv/bin/python bench/offline_answers.py --data-dir /work/evalrun/dd --qa ../shared/eval/openai_agents_qa.jsonl
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import SHARED_EVAL  # noqa: E402

from copilot.chat import Copilot  # noqa: E402
from copilot.config import load_config  # noqa: E402
from indexes.search import Index  # noqa: E402

# Questions no framework's docs answer: the weak-retrieval rule should say "I don't know" to them.
OFF_TOPIC = ["How do I bake sourdough bread?", "Explain quantum chromodynamics", "Who won the 2018 world cup?",
             "What is the airspeed of an unladen swallow?", "How do I change the oil in my car?",
             "What's the best pizza topping?", "Write a poem about the sea", "How do I center a div in CSS?",
             "Does the SDK support Fortran and COBOL bindings?", "What is the capital of Mongolia?"]


def first_answer(copilot: Copilot, question: str, assistant: str | None):
    for ev in copilot.chat(question, copilot.new_session(), assistant):
        if ev.type == "end" and ev.assistant != "Guide":
            return ev
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, help="data dir holding the indexed eval corpus")
    ap.add_argument("--qa", default=str(SHARED_EVAL / "openai_agents_qa.jsonl"))
    ap.add_argument("--kb", default="default")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    args = ap.parse_args()

    qa = [json.loads(line) for line in Path(args.qa).read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        qa = qa[: args.limit]
    cfg = load_config(env={}, overrides={"data_dir": args.data_dir})
    index = Index(cfg)
    # Conversations and usage go to a scratch dir: the indexed data dir is only read.
    chat_cfg = copy.deepcopy(cfg)
    chat_cfg.data_dir = Path(tempfile.mkdtemp(prefix="offline-bench-"))
    chat_cfg.chat.kb = args.kb
    copilot = Copilot(chat_cfg, index)
    assert copilot.model is None, "offline mode expected"

    rows = []
    t0 = time.perf_counter()
    for q in qa:
        gold = {g["path"] for g in q["gold"]}
        routed = first_answer(copilot, q["question"], None)
        direct = first_answer(copilot, q["question"], q["assistant"].capitalize())
        rows.append({
            "id": q["id"], "lang": q["lang"], "kind": q["kind"], "gold_assistant": q["assistant"],
            "routed_to": routed.assistant if routed else None,
            "routed_hit": bool(routed and routed.sources and routed.sources[0].path in gold),
            "routed_dont_know": bool(routed and routed.text.startswith(("I don't know", "我不知道"))),
            "direct_hit": bool(direct and direct.sources and direct.sources[0].path in gold),
            "any_cited_gold": bool(routed and any(s.path in gold for s in routed.sources)),
        })
    seconds = time.perf_counter() - t0
    off = [first_answer(copilot, q, None) for q in OFF_TOPIC]
    off_dk = sum(bool(a and a.text.startswith("I don't know")) for a in off)

    def share(key, subset=None):
        sel = [r for r in rows if subset is None or subset(r)]
        return f"{sum(r[key] for r in sel) / len(sel):.3f} ({sum(r[key] for r in sel)}/{len(sel)})" if sel else "-"

    n = len(rows)
    print(f"offline answers over {n} questions ({args.qa}), {seconds:.1f} s ({seconds / n / 2 * 1000:.0f} ms a turn)")
    print(f"first citation is a gold path, Guide routing:      {share('routed_hit')}")
    print(f"  English / Chinese:                              {share('routed_hit', lambda r: r['lang'] == 'en')}"
          f" / {share('routed_hit', lambda r: r['lang'] == 'zh')}")
    print(f"  doc / code questions:                           {share('routed_hit', lambda r: r['kind'] == 'doc')}"
          f" / {share('routed_hit', lambda r: r['kind'] == 'code')}")
    print(f"first citation is a gold path, gold assistant:    {share('direct_hit')}")
    print(f"any quoted citation is a gold path (routed):      {share('any_cited_gold')}")
    print(f"routed to the gold assistant:                     "
          f"{sum(r['routed_to'] and r['routed_to'].lower() == r['gold_assistant'] for r in rows) / n:.3f}")
    print(f"\"I don't know\" answers:                           {share('routed_dont_know')}")
    print(f"\"I don't know\" on off-topic questions:            {off_dk / len(OFF_TOPIC):.3f} "
          f"({off_dk}/{len(OFF_TOPIC)})")
    print("routing:", dict(Counter(r["routed_to"] for r in rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
