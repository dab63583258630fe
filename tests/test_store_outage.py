"""The Chroma server stops and comes back while `serve` runs: a clear message while it is down,
answers again once it is back, without restarting the copilot's server.

Real parts: a `chroma run` server on loopback, the real web/API server (ui.server.create_app under
uvicorn), the real `openai` client, the real embedding model; offline chat mode (no model needed).
"""
from __future__ import annotations

import openai
import pytest
from support.chroma import CHROMA, start_chroma, stop
from support.servers import free_port, serve

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.server import create_app


def ask(client: openai.OpenAI, question: str) -> str:
    r = client.chat.completions.create(model="tutoring", messages=[{"role": "user", "content": question}])
    return r.choices[0].message.content


@pytest.mark.slow
def test_chroma_server_down_then_back_while_serving(project, tmp_path):
    if not CHROMA.exists():
        pytest.skip(f"the chroma command is not installed at {CHROMA}")
    port = free_port()
    db = tmp_path / "chroma-db"
    chroma = start_chroma(db, port)
    try:
        cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"),
                                              "store": {"kind": "chroma-http", "url": f"http://127.0.0.1:{port}"}})
        index = Index(cfg)
        ingest(index, [str(project)])
        base, server, _ = serve(create_app(Copilot(cfg, index=index), cfg))
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)
        try:
            assert "README.md" in ask(client, "How do I give an agent long-term memory?")

            stop(chroma)  # the store goes away under a running server
            down = ask(client, "How are failed calls retried with backoff?")
            assert "vector store" in down.lower() and "Traceback" not in down
            assert "guide.md" not in down  # nothing is invented while the store is down

            chroma = start_chroma(db, port)  # back, same data: answers again with no restart
            back = ask(client, "How are failed calls retried with backoff?")
            assert "docs/guide.md" in back and "vector store" not in back.lower()
        finally:
            server.should_exit = True
    finally:
        stop(chroma)
