"""Overhead beyond the model: time to first token through Copilot.chat with a zero-latency model.

A local OpenAI-compatible test server (tests/support/llm_server.py) answers at once: routing calls get a
valid JSON decision, answers stream immediately. What is measured is therefore everything the
copilot adds: the Guide's routing call, retrieval (embedding + BM25 + vector search + fusion),
prompt building, HTTP through the real openai client, and the event stream. Figures:
time to the first event (the Guide's hand-over line) and to the first token of the answering
assistant, p50/p95 over the questions.

    .venv/bin/python bench/chat_overhead.py                       # indexes this repository in a temp dir
    .venv/bin/python bench/chat_overhead.py --data-dir /work/evalrun/dd --qa ../shared/eval/openai_agents_qa.jsonl
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support.*: helpers shared with the tests

from support.llm_server import LLMServer, Reply, system_text  # noqa: E402

from copilot.chat import Copilot  # noqa: E402
from copilot.config import load_config  # noqa: E402
from copilot.routing import classify  # noqa: E402
from indexes.build import ingest  # noqa: E402
from indexes.search import Index  # noqa: E402

OWN_QUESTIONS = [
    "How do I add a new assistant in the configuration?", "What arguments does Index.search take?",
    "Where is the weak retrieval rule implemented?", "How are follow-up questions condensed?",
    "What does the monitor do when the budget is spent?", "How does ingest decide which files changed?",
    "Which chat model providers are supported?", "What does parse_mentions return?",
    "How is a chunk id computed?", "How do retries honour Retry-After?",
]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", help="an indexed data dir (default: index this repository in a temp dir)")
    ap.add_argument("--qa", help="a QA .jsonl to take questions from (default: questions about this repository)")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--latency", type=float, default=0.0,
                    help="seconds the model waits before answering (each call); subtracted in the figures")
    args = ap.parse_args()

    if args.data_dir:
        cfg = load_config(env={}, overrides={"data_dir": args.data_dir})
        index = Index(cfg)
    else:
        cfg = load_config(env={}, overrides={"data_dir": tempfile.mkdtemp(prefix="overhead-bench-")})
        index = Index(cfg)
        t = time.perf_counter()
        s = ingest(index, [str(ROOT)], "default", include=["copilot/**", "indexes/**", "ingest/**", "*.md"])
        print(f"indexed this repository: {s.total_chunks} chunks in {time.perf_counter() - t:.1f} s")
    if args.qa:
        questions = [json.loads(line)["question"] for line in Path(args.qa).read_text(encoding="utf-8").splitlines()
                     if line.strip()]
    else:
        questions = OWN_QUESTIONS
    # Repeats are reworded so that no query embedding comes from the cache.
    lead = ["", "Quick question: ", "Please explain: ", "I wonder, ", "Help me understand: ", "Tell me: "]
    questions = [lead[(i // len(questions)) % len(lead)] + questions[i % len(questions)] for i in range(args.n)]

    server = LLMServer().start()
    chat_cfg = copy.deepcopy(cfg)
    chat_cfg.data_dir = Path(tempfile.mkdtemp(prefix="overhead-chat-"))
    chat_cfg.chat.provider, chat_cfg.chat.base_url, chat_cfg.chat.api_key = "openai", server.url, "bench"
    chat_cfg.chat.model = "zero-latency"
    copilot = Copilot(chat_cfg, index)

    def route(body: dict) -> Reply:  # a valid decision, as a good model would give
        question = body["messages"][-1]["content"]
        names = [a.name for a in classify(question, copilot.assistants)] or ["Tutoring"]
        return Reply(text=json.dumps({"route": names, "reply": ""}), delay=args.latency)

    server.rule("You route questions", route)
    server.default = Reply(text="An answer that cites [1] and [2] as it goes along, word by word.",
                           delay=args.latency)

    list(copilot.chat("warm up: what is an index?", copilot.new_session()))  # load models, open stores
    first_event, first_token, total, search = [], [], [], []
    for q in questions:
        t0 = time.perf_counter()
        fe = ft = None
        for ev in copilot.chat(q, copilot.new_session()):
            now = time.perf_counter() - t0
            if fe is None and ev.type == "token":
                fe = now
            if ft is None and ev.type == "token" and ev.assistant != "Guide":
                ft = now
        total.append(time.perf_counter() - t0)
        first_event.append(fe or 0.0)
        first_token.append(ft or 0.0)
        t1 = time.perf_counter()
        index.search(q + " .", kb="default", k=6, kind="doc")  # a new string: the query embedding is not cached
        search.append(time.perf_counter() - t1)
    server.stop()
    n = len(questions)
    ms = 1000
    print(f"{n} questions, model server on loopback with {args.latency * 1000:.0f} ms latency per call, KB of "
          f"{index.catalog.count_chunks('default')} chunks")
    if args.latency:  # two model calls (routing, answer) precede the first answer token
        first_token = [t - 2 * args.latency for t in first_token]
        first_event = [t - args.latency for t in first_event]
        total = [t - 2 * args.latency for t in total]
        print("(model latency subtracted below: the figures are the copilot's own time)")
    print(f"time to first event (Guide hand-over): p50 {pct(first_event, 50) * ms:.0f} ms, "
          f"p95 {pct(first_event, 95) * ms:.0f} ms")
    print(f"time to first answer token:           p50 {pct(first_token, 50) * ms:.0f} ms, "
          f"p95 {pct(first_token, 95) * ms:.0f} ms")
    print(f"whole turn:                           p50 {pct(total, 50) * ms:.0f} ms, p95 {pct(total, 95) * ms:.0f} ms")
    print(f"one search for a new query:           p50 {pct(search, 50) * ms:.0f} ms, p95 {pct(search, 95) * ms:.0f} ms"
          " (embedding + BM25 + vector search, measured apart for reference)")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"model requests: {len(server.requests)} "
          f"({sum('You route questions' in system_text(b) for b in server.bodies())} routing)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
