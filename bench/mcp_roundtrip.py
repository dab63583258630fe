"""MCP `search` round trips: over stdio (`devcopilot mcp`, as an editor runs it) and over Streamable
HTTP (`devcopilot serve`, bearer token), through the `mcp` SDK's own client, side by side with the
same searches called in-process (`retrieve()`), so the protocol's share is visible.

Each server is a fresh process; all three get the same 50 distinct questions (shared/eval's first 50,
so every call embeds its query with the real model), after 3 warm-up calls each, called in turn
question by question (the order rotating) so a busy machine slows them alike. Figures: p50 / p95
milliseconds per call, measured by the client around `call_tool` (around `retrieve()` in-process).

The KB is this repository (README, docs/ and the Python packages) indexed into
bench/.work/mcp-self, unless --data-dir names an indexed data dir.

    .venv/bin/python bench/mcp_roundtrip.py
    .venv/bin/python bench/mcp_roundtrip.py --data-dir bench/.work/dev --calls 50
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import ROOT, SHARED_EVAL, WORK, make_index, percentile

QUESTIONS = SHARED_EVAL / "openai_agents_qa.jsonl"
FALLBACK = ["how do I add a knowledge base", "what does retrieve return", "where is the bearer token checked",
            "how are git URLs cloned", "what is the weak retrieval verdict"]
TOKEN = "bench-token"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}


def questions(n: int) -> list[str]:
    qs = []
    if QUESTIONS.is_file():
        qs = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    while len(qs) < n:  # reworded, so no query embedding comes from a cache
        qs.append(f"({len(qs)}) " + FALLBACK[len(qs) % len(FALLBACK)])
    return qs[:n]


def self_index(data_dir: Path) -> None:
    from indexes.build import ingest

    index = make_index(data_dir)
    s = ingest(index, [str(ROOT)], "default", ["README.md", "docs/**", "copilot/**", "indexes/**", "ingest/**",
                                               "ui/**", "devcopilot.py"], ["tests/**", "bench/**"])
    print(s.line(), flush=True)


async def timed_call(c, q: str) -> float:
    t = time.perf_counter()
    r = await c.call_tool("search", {"query": q, "k": 8})
    ms = (time.perf_counter() - t) * 1000
    assert not r.is_error, r.content[0].text
    return ms


async def measure(data_dir: Path, url: str, qs: list[str], warm: int = 3) -> dict[str, list[float]]:
    """The three ways, call by call in turn (the first of each round rotates), so a busy machine
    slows them alike."""
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    from indexes.retrieve import retrieve

    index = make_index(data_dir)
    kbs = [i.name for i in index.catalog.kbs()]
    params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "devcopilot.py"), "--data-dir",
                                                                 str(data_dir), "mcp"], env=ENV, cwd=str(ROOT))
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    times: dict[str, list[float]] = {"in-process retrieve()": [], "MCP over stdio": [], "MCP over HTTP (serve)": []}
    async with Client(params) as stdio, Client(streamable_http_client(url, http_client=http)) as web:
        async def inprocess(q: str) -> float:
            t = time.perf_counter()
            retrieve(index, q, kbs, k=8)
            return (time.perf_counter() - t) * 1000

        ways = [("in-process retrieve()", inprocess), ("MCP over stdio", lambda q: timed_call(stdio, q)),
                ("MCP over HTTP (serve)", lambda q: timed_call(web, q))]
        for q in qs[:warm]:
            for _, call in ways:
                await call("warm-up " + q)
        for i, q in enumerate(qs):
            for name, call in ways[i % 3:] + ways[:i % 3]:
                times[name].append(await call(q))
    return times


def serving(data_dir: Path):
    """`devcopilot serve` with a bearer token in its own process: (process, MCP URL)."""
    from support.servers import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "devcopilot.py"), "--data-dir", str(data_dir), "serve",
                             "--port", str(port), "--api-token", TOKEN], env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
            return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("serve did not come up") from None
            time.sleep(0.5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, help="an indexed data dir (default: this repository, indexed once)")
    p.add_argument("--calls", type=int, default=50)
    args = p.parse_args()
    data_dir = args.data_dir or WORK / "mcp-self"
    if args.data_dir is None:
        self_index(data_dir)
    qs = questions(args.calls)
    proc, url = serving(data_dir)
    try:
        rows = list(asyncio.run(measure(data_dir, url, qs)).items())
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    chunks = sum(make_index(data_dir).catalog.count_chunks(i.name) for i in make_index(data_dir).catalog.kbs())
    print(f"\nMCP search round trips: {len(qs)} distinct questions, k=8, {chunks} chunks ({data_dir})")
    print(f"{'':24s} {'p50 ms':>8s} {'p95 ms':>8s} {'mean ms':>8s}")
    for name, t in rows:
        print(f"{name:24s} {percentile(t, 50):8.1f} {percentile(t, 95):8.1f} {sum(t) / len(t):8.1f}")
    print(json.dumps({name: {"p50_ms": round(percentile(t, 50), 1), "p95_ms": round(percentile(t, 95), 1)}
                      for name, t in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
