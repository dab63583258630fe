"""Load: concurrent chat sessions through the OpenAI-compatible API of the real HTTP server.

Three processes on loopback, all stopped by the script:
- a test model server (tests/support/llm_server.py) answering every request after `--latency` seconds
  (200 ms) and streaming its answer with `--token-delay` between pieces; routing requests get
  a valid JSON decision, follow-up condensing a standalone query;
- the devcopilot server: `ui.server.create_app` (web UI + /v1) when it can be built, else a
  FastAPI app with `ui.api.api_router`, under uvicorn, over an indexed KB, with its chat
  model pointed at the test server;
- this process: `--sessions` sessions (50) run at once, `--turns` (5) streamed turns each, the
  whole conversation sent every turn, with the real `openai.AsyncOpenAI` client or (`--client
  lean`) a lean reader of the same stream; the figures include the CPU each process spent, since
  all three share the machine's cores.

Each turn carries a tag in its message (session and turn numbers written with chess symbols,
which the lexical index drops and the embedding model reads as unknown, so it does not change
what is retrieved or whether it counts as weak), so the model server can add up the scripted
latency (delay + pieces x token delay) of every model request the turn caused (routing,
condensing, answer), counting the time when two were out at once once. Figures: errors (HTTP or
client failures; must be 0), degraded answers (a fault note or no model text), throughput, time
to first content (the Guide's hand-over) and to the first answer token from the model, whole
turn, and the overhead beyond the model = client-measured turn time minus that turn's scripted
model latency.

    .venv/bin/python bench/load_chat.py                                  # KB: this repository
    .venv/bin/python bench/load_chat.py --workers 1,2 --rounds 2         # `devcopilot serve --workers N`, N=1
                                                                         # and N=2 alternately, in one run
    .venv/bin/python bench/load_chat.py --workers 1,2 --client openai,lean   # both kinds of client too
    .venv/bin/python bench/load_chat.py --data-dir bench/.work/dev --qa ../shared/eval/openai_agents_qa.jsonl
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support.*: helpers shared with the tests
WORK = ROOT / "bench" / ".work"

DIGITS = "♔♕♖♗♘♙♚♛♜♝"  # 0-9
TAG = re.compile(f"⟦([{DIGITS}]+)·([{DIGITS}]+)⟧")


def tag(session: int, turn: int) -> str:
    return "⟦{}·{}⟧".format(*("".join(DIGITS[int(d)] for d in str(n)) for n in (session, turn)))


def untag(found: tuple[str, str]) -> tuple[int, int]:
    return tuple(int("".join(str(DIGITS.index(ch)) for ch in part)) for part in found)
MARK = "Scripted"  # first word of every model answer: its arrival is the first answer token
ANSWER = ("Scripted answer: the catalog keeps every chunk [1] and the vector store keeps its vector [2]; "
          "a search fuses the lexical and dense rankings [1]. Ingest writes vectors first, then the catalog, "
          "so an interrupted run never shows half-written data [2].")
FAULT_NOTES = ("Something went wrong", "could not answer", "was cut off", "stopped before finishing",
               "can't search", "has not been indexed")

QUESTIONS = [
    "How do I add a new assistant in the configuration?", "What arguments does Index.search take?",
    "Where is the weak retrieval rule implemented?", "How are follow-up questions condensed?",
    "What does the monitor do when the budget is spent?", "How does ingest decide which files changed?",
    "Which chat model providers are supported?", "What does parse_mentions return?",
    "How is a chunk id computed?", "How do retries honour Retry-After?",
    "How does the lexical index tokenize identifiers?", "What happens when the vector store is down?",
    "How are API request sizes limited?", "Which files does the walker skip?",
    "How are conversations stored?", "What is reciprocal rank fusion used for?",
]
FOLLOW_UPS = ["And what does it return?", "What about its errors?", "Where is that configured?",
              "Can you show the code for it?"]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


# -- process 1: the test model server ----------------------------------------------------------------
def run_model_server(latency: float, token_delay: float) -> None:
    from support.llm_server import LLMServer, Reply, last_user, pieces, system_text

    # tag -> (arrival, arrival + scripted seconds) of each request: a turn's model time counts
    # requests out at the same time (routing and condensing a follow-up) once
    asked: dict[str, list[tuple[float, float]]] = defaultdict(list)
    lock = threading.Lock()

    def respond(body: dict) -> Reply:
        system, user = system_text(body), last_user(body)
        if "You route questions" in system:
            words = user.lower()
            name = "Coding" if any(w in words for w in ("argument", "return", "implement", "code", "tokeniz")) \
                else "Tutoring"
            text = json.dumps({"route": [name], "reply": ""})
        elif "standalone" in system and "search query" in system:
            m = re.search(r"Last message: (.*)", user)
            text = (m.group(1) if m else user).strip() + " retrieval index"
        else:
            text = ANSWER
        tags = TAG.findall(user)
        key = "lc{}t{}".format(*untag(tags[-1])) if tags else "untagged"
        scripted = latency + (token_delay * len(pieces(text)) if body.get("stream") else 0.0)
        now = time.monotonic()
        with lock:
            asked[key].append((now, now + scripted))
        return Reply(text=text, delay=latency, token_delay=token_delay)

    server = LLMServer()
    server.default = respond
    server.start()
    print(json.dumps({"url": server.url}), flush=True)
    for line in sys.stdin:  # the parent asks for the figures, then closes stdin
        if line.strip() == "stats":
            with lock:
                stats = {key: [len(spans), model_time(spans)] for key, spans in asked.items()}
                print(json.dumps({"stats": stats, "requests": len(server.requests)}), flush=True)
    server.stop()


def model_time(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the (start, end) spans was running."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return total


# -- process 2: the devcopilot server -----------------------------------------------------------------
def run_copilot_server(data_dir: str, model_url: str, port: int, plain: bool) -> None:
    import tempfile

    import uvicorn

    from copilot.chat import Copilot
    from copilot.config import load_config
    from indexes.search import Index

    cfg = load_config(env={}, overrides={"data_dir": data_dir})
    index = Index(cfg)
    chat_cfg = copy.deepcopy(cfg)  # conversations and usage go to a scratch dir, the KB is only read
    chat_cfg.data_dir = Path(tempfile.mkdtemp(prefix="load-chat-"))
    chat_cfg.chat.provider, chat_cfg.chat.base_url, chat_cfg.chat.api_key = "openai", model_url, "bench"
    chat_cfg.chat.model = "load-test"
    copilot = Copilot(chat_cfg, index)
    how = ""
    if not plain:
        try:
            from ui.server import create_app

            app, how = create_app(copilot, chat_cfg), "ui.server.create_app (web UI + /v1)"
        except Exception as e:  # the UI is optional for this bench
            how = f"FastAPI + ui.api.api_router (ui.server.create_app failed: {type(e).__name__})"
    if not how or plain:
        from fastapi import FastAPI

        from ui.api import api_router

        app = FastAPI()
        app.include_router(api_router(copilot))
        how = how or "FastAPI + ui.api.api_router"
    index.embedder.embed(["warm up"])  # the model loads before the first request, as after `serve` starts
    chunks = sum(index.catalog.count_chunks(kb.name) for kb in index.catalog.kbs())  # the chat reads every KB
    print(json.dumps({"app": how, "chunks": chunks}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- process 3: the clients -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_kb(data_dir: Path) -> None:
    """Index this repository (copilot/, indexes/, ingest/, *.md) once; later runs find nothing changed."""
    from copilot.config import load_config
    from indexes.build import ingest
    from indexes.search import Index

    index = Index(load_config(env={}, overrides={"data_dir": str(data_dir)}))
    s = ingest(index, [str(ROOT)], "default", include=["copilot/**", "indexes/**", "ingest/**", "*.md"])
    print(s.line(), flush=True)


def cpu_of(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_of(pid: int) -> dict[str, float]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


async def run_clients(url: str, sessions: int, turns: int, questions: list[str], timeout: float,
                      base: int = 0, client_kind: str = "openai") -> dict:
    """`sessions` conversations at once, `turns` streamed turns each. The clients are either the real
    `openai.AsyncOpenAI` or a lean reader of the same stream (aiohttp, a JSON parse per line): 50
    users' clients run on 50 machines, not on the server's cores, and the openai client's own CPU
    would otherwise be part of what this 2-core machine spends."""
    rows: list[dict] = []
    errors: list[str] = []

    async def pieces_openai(model: str, messages: list[dict]):
        stream = await client.chat.completions.create(model=model, messages=messages, stream=True)
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    yield choice.delta.content

    async def pieces_lean(model: str, messages: list[dict]):
        body = {"model": model, "messages": messages, "stream": True}
        async with lean.post(url + "/chat/completions", json=body) as r:
            r.raise_for_status()
            async for line in r.content:
                if line.startswith(b"data: {"):
                    for choice in json.loads(line[6:]).get("choices") or []:
                        if (choice.get("delta") or {}).get("content"):
                            yield choice["delta"]["content"]

    if client_kind == "lean":
        import aiohttp  # C-accelerated HTTP; installed with the LlamaIndex integrations

        lean = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=sessions + 10),
                                     timeout=aiohttp.ClientTimeout(total=timeout))
        pieces, close = pieces_lean, lean.close
    else:
        import httpx
        import openai

        client = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0, timeout=timeout,
                                    http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=sessions + 10),
                                                                  timeout=timeout))
        pieces, close = pieces_openai, client.close

    async def one_session(s: int) -> None:
        messages: list[dict] = []
        for t in range(turns):
            if t and t % 2 == 0:  # every other later turn is a follow-up the copilot must condense
                q = FOLLOW_UPS[(s + t) % len(FOLLOW_UPS)]
            else:
                q = questions[(s * turns + t) % len(questions)]
            messages.append({"role": "user", "content": f"{q} {tag(s, t)}"})
            model = ("guide", "guide", "tutoring", "coding")[s % 4]  # mostly through the Guide, some direct
            t0 = time.perf_counter()
            first = first_answer = None
            parts: list[str] = []
            try:
                async for c in pieces(model, messages):
                    now = time.perf_counter() - t0
                    first = first if first is not None else now
                    if first_answer is None and MARK in c:
                        first_answer = now
                    parts.append(c)
            except Exception as e:  # counted, and the session goes on
                errors.append(f"session {s} turn {t}: {type(e).__name__}: {str(e)[:160]}")
                messages.pop()
                continue
            text = "".join(parts)
            rows.append({"tag": f"lc{s}t{t}", "started": t0 - began, "total": time.perf_counter() - t0, "first": first,
                         "first_answer": first_answer,
                         "degraded": MARK not in text or any(n in text for n in FAULT_NOTES), "text": text})
            messages.append({"role": "assistant", "content": text})

    began = time.perf_counter()
    await asyncio.gather(*(one_session(base + s) for s in range(sessions)))
    wall = time.perf_counter() - began
    await close()
    return {"rows": rows, "errors": errors, "wall": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", help="an indexed data dir (default: this repository, indexed once into "
                                       "bench/.work/load-chat-kb)")
    ap.add_argument("--qa", help="a QA .jsonl to take questions from (default: questions about this repository)")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.2, help="model server: seconds before each response")
    ap.add_argument("--token-delay", type=float, default=0.005, help="model server: seconds between pieces")
    ap.add_argument("--timeout", type=float, default=120.0, help="client timeout per request")
    ap.add_argument("--plain", action="store_true", help="serve only the API router, without the web UI")
    ap.add_argument("--workers", help="compare `devcopilot serve --workers N` for these N (e.g. 1,2), run "
                                      "alternately; the server is the real command, its chat model the test server")
    ap.add_argument("--client", default="openai",
                    help="the clients: openai (openai.AsyncOpenAI, the default), lean (aiohttp reading the stream), "
                         "or both, compared in one run with --workers (openai,lean)")
    ap.add_argument("--rounds", type=int, default=1, help="with --workers: rounds of every N")
    ap.add_argument("--role", choices=["model", "copilot"], help=argparse.SUPPRESS)
    ap.add_argument("--model-url", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.role == "model":
        run_model_server(args.latency, args.token_delay)
        return 0
    if args.role == "copilot":
        run_copilot_server(args.data_dir, args.model_url, args.port, args.plain)
        return 0

    data_dir = Path(args.data_dir) if args.data_dir else WORK / "load-chat-kb"
    if not args.data_dir:
        ensure_kb(data_dir)
    questions = QUESTIONS
    if args.qa:
        questions = [json.loads(line)["question"] for line in Path(args.qa).read_text(encoding="utf-8").splitlines()
                     if line.strip()]

    me = [sys.executable, str(Path(__file__).resolve())]
    if args.workers:
        return compare_workers(args, data_dir, questions, me)
    procs: list[subprocess.Popen] = []
    try:
        model = subprocess.Popen(me + ["--role", "model", "--latency", str(args.latency),
                                       "--token-delay", str(args.token_delay)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(model)
        model_url = json.loads(model.stdout.readline())["url"]
        port = free_port()
        server = subprocess.Popen(me + ["--role", "copilot", "--data-dir", str(data_dir), "--model-url", model_url,
                                        "--port", str(port)] + (["--plain"] if args.plain else []),
                                  stdout=subprocess.PIPE, text=True)
        procs.append(server)
        ready = json.loads(server.stdout.readline() or "{}")
        if not ready:
            print("the devcopilot server did not start", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{port}/v1"
        if not api_answers(url, server, 120):
            print("the devcopilot server did not answer /v1/models", file=sys.stderr)
            return 1
        # One warm-up turn (first search, first model call) outside the figures.
        warm = asyncio.run(run_clients(url, 1, 1, ["What is an index?"], args.timeout,
                                      base=10_000))
        if warm["errors"]:
            print("warm-up failed:", warm["errors"][0], file=sys.stderr)
        rss_before = rss_of(server.pid)
        cpu0 = [cpu_of(p) for p in (server.pid, model.pid, os.getpid())]
        res = asyncio.run(run_clients(url, args.sessions, args.turns, questions, args.timeout,
                                      client_kind=args.client.split(",")[0]))
        cpu = [cpu_of(p) - c for p, c in zip((server.pid, model.pid, os.getpid()), cpu0)]
        rss_after = rss_of(server.pid)
        model.stdin.write("stats\n")
        model.stdin.flush()
        model_stats = json.loads(model.stdout.readline())
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT if p is not procs[0] else signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()

    rows, errors = res["rows"], res["errors"]
    stats = model_stats["stats"]
    ms = 1000
    over = [r["total"] - stats.get(r["tag"], [0, 0.0])[1] for r in rows]
    model_time = [stats.get(r["tag"], [0, 0.0])[1] for r in rows]
    calls = [stats.get(r["tag"], [0, 0.0])[0] for r in rows]
    fa = [r["first_answer"] for r in rows if r["first_answer"] is not None]
    fc = [r["first"] for r in rows if r["first"] is not None]
    total = [r["total"] for r in rows]
    degraded = [r for r in rows if r["degraded"]]
    print(f"server: {ready['app']}, KB of {ready['chunks']} chunks; model server: {args.latency * ms:.0f} ms "
          f"before each response, {args.token_delay * ms:.0f} ms between streamed pieces")
    print(f"{args.sessions} sessions x {args.turns} turns at once, streaming through openai.AsyncOpenAI: "
          f"{len(rows)} turns done in {res['wall']:.1f} s")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))
    print(f"degraded answers (a fault note, or no model text): {len(degraded)}"
          + "".join(f"\n  {r['tag']}: {r['text'][:160]!r}" for r in degraded[:5]))
    print(f"throughput: {len(rows) / res['wall']:.1f} turns/s")
    print(f"time to first content (Guide's hand-over): p50 {pct(fc, 50) * ms:.0f} ms, p95 {pct(fc, 95) * ms:.0f} ms")
    print(f"time to first answer token:               p50 {pct(fa, 50) * ms:.0f} ms, p95 {pct(fa, 95) * ms:.0f} ms "
          f"({len(fa)} turns)")
    print(f"whole turn:                               p50 {pct(total, 50) * ms:.0f} ms, "
          f"p95 {pct(total, 95) * ms:.0f} ms")
    print(f"scripted model latency per turn:          p50 {pct(model_time, 50) * ms:.0f} ms, "
          f"p95 {pct(model_time, 95) * ms:.0f} ms ({sum(calls)} model requests, "
          f"{sum(calls) / max(1, len(rows)):.2f} a turn)")
    print(f"overhead beyond the model (turn - scripted): p50 {pct(over, 50) * ms:.0f} ms, "
          f"p95 {pct(over, 95) * ms:.0f} ms, mean {sum(over) / max(1, len(over)) * ms:.0f} ms")
    print(f"server RSS: {rss_before.get('VmRSS', 0):.0f} MB before the load, {rss_after.get('VmRSS', 0):.0f} MB "
          f"after, peak {rss_after.get('VmHWM', 0):.0f} MB")
    n = max(1, len(rows))
    print(f"CPU during the load: devcopilot server {cpu[0]:.1f} s ({cpu[0] / n * ms:.0f} ms a turn), model server "
          f"{cpu[1]:.1f} s, clients {cpu[2]:.1f} s; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    return 1 if errors else 0


def start_serve(data_dir: Path, model_url: str, workers: int, port: int) -> subprocess.Popen:
    """`devcopilot serve --workers N` over a copy-free data dir, its chat model the test server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
    env.update(DEVCOPILOT_CHAT_PROVIDER="openai", DEVCOPILOT_CHAT_BASE_URL=model_url, DEVCOPILOT_CHAT_API_KEY="bench",
               DEVCOPILOT_CHAT_MODEL="load-test", GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    # Its output goes to a file: a pipe nobody reads would fill up and stop the server mid-run.
    with open(Path(tempfile.gettempdir()) / f"load-chat-serve-{port}.log", "w") as log:  # the child keeps its copy
        return subprocess.Popen([str(Path(sys.executable).parent / "devcopilot"), "--data-dir", str(data_dir),
                                 "serve", "--port", str(port), "--workers", str(workers)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def api_answers(url: str, server: subprocess.Popen, timeout: float, workers: int = 1) -> bool:
    """Wait until the server answers GET /v1/models from each of its `workers` processes (a fresh
    connection goes to the next worker that is ready; the header names the worker); False if it
    stops or the time runs out first. `serve` accepts once its first worker is ready: measuring
    before the others are would time their start-up."""
    deadline = time.time() + timeout
    seen: set[str] = set()
    while True:
        try:
            with urllib.request.urlopen(url + "/models", timeout=5) as r:
                r.read()
                seen.add(r.headers.get("x-devcopilot-worker") or "0")
            if len(seen) >= workers:
                return True
        except OSError:
            pass
        if time.time() > deadline or server.poll() is not None:
            return False
        time.sleep(0.1 if seen else 0.3)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (the workers)."""
    total = cpu_of(pid)
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += tree_cpu(int(child))
    except OSError:
        pass
    return total


def compare_workers(args, data_dir: Path, questions: list[str], me: list[str]) -> int:
    """The same load against `serve --workers N` for each N, alternately, in one run."""
    configs = [(int(n), kind) for n in args.workers.split(",") for kind in args.client.split(",")]
    model = subprocess.Popen(me + ["--role", "model", "--latency", str(args.latency),
                                   "--token-delay", str(args.token_delay)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    model_url = json.loads(model.stdout.readline())["url"]
    results: dict[tuple[int, str], list[dict]] = {c: [] for c in configs}
    base = 0
    try:
        for r in range(args.rounds):
            for n, kind in (configs if r % 2 == 0 else configs[::-1]):
                port = free_port()
                server = start_serve(data_dir, model_url, n, port)
                url = f"http://127.0.0.1:{port}/v1"
                if not api_answers(url, server, 300, workers=n):
                    log = Path(tempfile.gettempdir()) / f"load-chat-serve-{port}.log"
                    print(f"serve --workers {n} did not start: {log.read_text()[-400:]}", file=sys.stderr)
                    return 1
                # warm every worker (first search, first model call) outside the figures
                asyncio.run(run_clients(url, 2 * n, 1, ["What is an index?"], args.timeout, base=10_000 + base))
                model.stdin.write("stats\n")
                model.stdin.flush()
                json.loads(model.stdout.readline())
                measures = ((tree_cpu, server.pid), (cpu_of, model.pid), (cpu_of, os.getpid()))  # not our children
                cpu0, load0 = [f(p) for f, p in measures], os.getloadavg()[0]
                res = asyncio.run(run_clients(url, args.sessions, args.turns, questions, args.timeout, base=base,
                                              client_kind=kind))
                cpu, model_cpu, clients_cpu = (f(p) - then for (f, p), then in zip(measures, cpu0))
                model.stdin.write("stats\n")
                model.stdin.flush()
                stats = json.loads(model.stdout.readline())["stats"]
                os.killpg(server.pid, signal.SIGINT)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                rows = res["rows"]
                over = [row["total"] - stats.get(row["tag"], [0, 0.0])[1] for row in rows]
                fig = {"workers": n, "client": kind, "turns": len(rows), "errors": len(res["errors"]),
                       "degraded": sum(row["degraded"] for row in rows),
                       "turns_per_s": round(len(rows) / res["wall"], 1),
                       "overhead_p50_ms": round(pct(over, 50) * 1000), "overhead_p95_ms": round(pct(over, 95) * 1000),
                       "turn_p50_ms": round(pct([row["total"] for row in rows], 50) * 1000),
                       "server_cpu_ms_per_turn": round(cpu / max(1, len(rows)) * 1000),
                       # the bench's own processes share the 2 cores: their CPU is part of the picture
                       "model_server_cpu_ms_per_turn": round(model_cpu / max(1, len(rows)) * 1000),
                       "clients_cpu_ms_per_turn": round(clients_cpu / max(1, len(rows)) * 1000),
                       "model_ms_per_turn_p50": round(pct([stats.get(row["tag"], [0, 0.0])[1] for row in rows], 50)
                                                      * 1000),
                       "load_average": [round(load0, 1), round(os.getloadavg()[0], 1)]}
                results[(n, kind)].append(fig)
                print(json.dumps(fig), flush=True)
                for e in res["errors"][:3]:
                    print("  error:", e, flush=True)
                base += 1000  # fresh tags for the next round
    finally:
        model.stdin.close()
        model.terminate()
        model.wait(timeout=15)
    print(f"{args.sessions} sessions x {args.turns} turns, model {args.latency * 1000:.0f} ms + "
          f"{args.token_delay * 1000:.0f} ms a piece; {os.cpu_count()} cores; medians over {args.rounds} round(s):")
    for (n, kind), rs in results.items():
        # the median of the rounds (of an even number, the mean of the middle two), and the range
        med = {k: round(statistics.median(x[k] for x in rs), 1) for k in (
            "turns_per_s", "overhead_p50_ms", "overhead_p95_ms", "server_cpu_ms_per_turn",
            "model_server_cpu_ms_per_turn", "clients_cpu_ms_per_turn")}
        spread = {k: f" ({min(x[k] for x in rs)}-{max(x[k] for x in rs)})" if len(rs) > 1 else ""
                  for k in ("overhead_p50_ms", "overhead_p95_ms")}
        print(f"  --workers {n}, {kind} clients: {med['turns_per_s']} turns/s, overhead beyond the model p50 "
              f"{med['overhead_p50_ms']} ms{spread['overhead_p50_ms']}, p95 {med['overhead_p95_ms']} ms"
              f"{spread['overhead_p95_ms']}, server CPU "
              f"{med['server_cpu_ms_per_turn']} ms a turn (the bench's model server "
              f"{med['model_server_cpu_ms_per_turn']} ms, its clients {med['clients_cpu_ms_per_turn']} ms), "
              f"errors {sum(x['errors'] for x in rs)}, degraded "
              f"{sum(x['degraded'] for x in rs)}")
    return 1 if any(x["errors"] for rs in results.values() for x in rs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
