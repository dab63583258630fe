"""`serve --workers N`: one port, N processes sharing the data dir; the API spread over them, a
browser kept on one, usage figures added up across them, a dead worker replaced."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.corpus import ingested_data_dir
from support.servers import free_port

from copilot.config import load_config
from copilot.monitor import Monitor

REPO = Path(__file__).resolve().parents[1]


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, str, str]:
    """One request on a connection of its own: (status, worker, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=json.dumps(body) if body else None,
                 headers={"Content-Type": "application/json"} if body else {})
    r = conn.getresponse()
    data = r.read().decode()
    conn.close()
    return r.status, r.getheader("x-devcopilot-worker", ""), data


def worker_pids(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]


@pytest.mark.slow
def test_two_workers_share_the_port_the_data_and_the_figures(tmp_path):
    data, _ = ingested_data_dir(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
    env["DEVCOPILOT_CHAT_PROVIDER"] = "offline"
    proc = subprocess.Popen([sys.executable, "-m", "devcopilot", "--data-dir", str(data), "serve", "--port", str(port),
                             "--workers", "2"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "slow"
            time.sleep(0.5)
        # wait for both workers, then the API goes to each in turn
        seen: set[str] = set()
        ask = {"model": "tutoring", "messages": [{"role": "user", "content": "How do I give an agent memory?"}]}
        for _ in range(60):
            status, worker, body = request(port, "POST", "/v1/chat/completions", ask)
            assert status == 200 and "MemoryStore" in body
            seen.add(worker)
            if len(seen) == 2:
                break
            time.sleep(1)
        assert seen == {"0", "1"}
        # the web UI: one client, one worker, every time
        ui = {request(port, "GET", "/")[1] for _ in range(4)}
        assert len(ui) == 1
        # conversations from both workers are in the one store; usage counters add up across them
        asked = sum(1 for _ in range(6) if request(port, "POST", "/v1/chat/completions", ask)[0] == 200)
        assert asked == 6
        # a dead worker is replaced and the port keeps answering
        victim = worker_pids(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 240
        while victim in worker_pids(proc.pid) or len(worker_pids(proc.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert all(request(port, "POST", "/v1/chat/completions", ask)[0] == 200 for _ in range(3))
        workers = worker_pids(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "devcopilot is running" in out and "worker" in out
    deadline = time.monotonic() + 10  # every worker stopped with the parent (which joins them before it exits)
    while left := [pid for pid in workers if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, f"workers {left} outlived the parent"
        time.sleep(0.1)
    import sqlite3

    db = sqlite3.connect(data / "conversations.sqlite")
    assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] >= 8


def test_usage_figures_of_two_processes_add_up(tmp_path):
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "d")})
    one, two = Monitor(cfg), Monitor(cfg)  # as two worker processes hold them
    one.record("gpt-4o-mini", "Coding", 1000, 100)
    two.record("gpt-4o-mini", "Tutoring", 2000, 200)
    one.count("retrievals", 3)
    two.count("retrievals", 4)
    one.flush()
    two.flush()
    figures = Monitor(cfg).figures()
    assert figures["totals"] == {"calls": 2, "input_tokens": 3000, "output_tokens": 300}
    assert set(figures["assistants"]) == {"Coding", "Tutoring"}
    assert figures["counters"]["retrievals"] == 7
    assert figures["cost_usd"] > 0
    two.record("gpt-4o-mini", "Coding", 10, 1)  # sees what the other wrote, adds its own
    assert two.figures()["totals"]["calls"] == 3


def test_index_jobs_always_go_to_the_first_worker_and_the_api_takes_turns():
    from ui.workers import route

    post = b"POST /v1/knowledge/jobs HTTP/1.1\r\n"
    poll = b"GET /v1/knowledge/jobs/job-1?wait=5 HTTP/1.1\r\n"
    assert route(post, "10.0.0.1", 2, 7) is None and route(poll, "10.0.0.2", 1, 8) is None  # the jobs' worker
    chat = b"POST /v1/chat/completions HTTP/1.1\r\n"
    assert {route(chat, "10.0.0.1", 2, turn) for turn in range(4)} == {0, 1}
    page = b"GET / HTTP/1.1\r\n"
    assert len({route(page, "10.0.0.9", 2, turn) for turn in range(4)}) == 1  # a browser stays on its worker


def test_the_parent_process_never_loads_the_web_ui():
    """With --workers N, the parent only accepts and hands over connections; loading Gradio there
    (seconds of CPU) would delay every worker's start on a small machine."""
    code = ("import sys; import devcopilot, ui.server, ui.workers; "
            "print('LOADED', sorted(m for m in ('gradio', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
