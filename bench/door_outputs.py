"""What every door says, written down so two versions of the code can be compared (a refactor keeps it).

Runs one version of the code (`--root`, default this checkout) against a copy of an indexed data dir with
no language model, and records, with ids, times and ports masked:
  - the CLI: `search` (text and --json), `ask` (piped), `status --json`, `usage --gaps`, and user mistakes;
  - `serve`: GET /v1/models, chat completions streamed and not through each assistant, the API's refusals,
    GET /v1/knowledge, the viewer, a job's refusals;
  - MCP over stdio and over HTTP: the tool list with its schemas, and a call of every tool, good and bad.

    python bench/door_outputs.py --data-dir bench/.work/click --out after.txt
    python bench/door_outputs.py --root ../base --data-dir bench/.work/click --out before.txt
    diff before.txt after.txt
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

QUESTIONS = ["How do I add a command-line option?", "@Coding where is the command group defined?",
             "What is the capital of Mongolia?"]
SEARCHES = ["how do I define an option with a default", "Group.add_command"]
MASKS = [(re.compile(r"chatcmpl-[0-9a-f]+"), "chatcmpl-X"), (re.compile(r'"created": ?\d+'), '"created": T'),
         (re.compile(r'"(session_id|message_id|id)": ?"[0-9a-f]{16,}"'), r'"\1": "X"'),
         (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:P"),
         (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?Z?"), "DATE"),
         (re.compile(r'"(last_indexed|scanned_at|created_at|started_at|finished_at|indexed_at)": ?[\d.]+'),
          r'"\1": T'), (re.compile(r"job-[0-9a-f]{12}"), "job-X"), (re.compile(r"pid \d+|\"pid\": ?\d+"), "pid N"),
         (re.compile(r"/tmp/doors-[\w]+"), "TMP")]


def masked(text: str, data: Path, root: Path) -> str:
    text = merged_stream(text.replace(str(data), "DATA").replace(str(root), "ROOT"))
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


def merged_stream(text: str) -> str:
    """Server-sent events with consecutive text-only chunks merged into one: how a stream's text is cut into
    chunks depends on timing (the server writes at most every server.stream_pace_ms), not on the code."""
    out: list[str] = []
    for line in text.split("\n"):
        if line.startswith("data: {"):
            line = line.replace('"created": T', '"created": 0')  # an output already masked
            chunk = json.loads(line[6:])
            choice = (chunk.get("choices") or [{}])[0]
            if set(choice.get("delta", {})) == {"content"} and choice.get("finish_reason") is None:
                while out and out[-1] == "":
                    out.pop()  # the blank line between two events
                if out and out[-1].startswith("data: {"):
                    last = json.loads(out[-1][6:].replace('"created": T', '"created": 0'))
                    lc = (last.get("choices") or [{}])[0]
                    if set(lc.get("delta", {})) == {"content"} and lc.get("finish_reason") is None:
                        lc["delta"]["content"] += choice["delta"]["content"]
                        out[-1] = "data: " + json.dumps(last, ensure_ascii=False)
                        out.append("")
                        continue
                out.append("")
        out.append(line)
    return "\n".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
    return {**env, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
            "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false", "NO_COLOR": "1"}


def cli(root: Path, data: Path, *args: str, stdin: str | None = None) -> str:
    r = subprocess.run([sys.executable, str(root / "devcopilot.py"), "--data-dir", str(data), *args],
                       capture_output=True, text=True, env=env_for(root), cwd=root, input=stdin, timeout=600)
    return f"$ devcopilot {' '.join(args)}\nexit {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"


def http(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> str:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return f"{method} {url} -> {r.status} {r.headers.get('content-type', '')}\n{r.read().decode()}"
    except urllib.error.HTTPError as e:
        return f"{method} {url} -> {e.code} {e.headers.get('content-type', '')}\n{e.read().decode()}"


def post_json(url: str, payload, token: str = "", raw: bytes | None = None, ctype: str = "application/json") -> str:
    headers = {"Content-Type": ctype, **({"Authorization": f"Bearer {token}"} if token else {})}
    return http(url, "POST", raw if raw is not None else json.dumps(payload).encode(), headers)


def api_calls(base: str, token: str) -> list[str]:
    out = [http(base + "/v1/models", headers={"Authorization": f"Bearer {token}"})]
    for model in ("guide", "coding", "tutoring"):
        for stream in (False, True):
            for q in QUESTIONS:
                out.append(post_json(base + "/v1/chat/completions",
                                     {"model": model, "stream": stream, "messages": [{"role": "user", "content": q}]},
                                     token))
    out.append(post_json(base + "/v1/chat/completions", {"model": "coding", "messages": [
        {"role": "user", "content": "What is click?"}, {"role": "assistant", "content": "A CLI library."},
        {"role": "user", "content": "How do I add an option to it?"}]}, token))
    bad = [None, {"messages": []}, {"model": 3, "messages": [{"role": "user", "content": "x"}]},
           {"model": "nobody", "messages": [{"role": "user", "content": "x"}]},
           {"messages": [{"role": "assistant", "content": "x"}]}, {"stream": "yes", "messages": [{"role": "user"}]},
           {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}]
    out += [post_json(base + "/v1/chat/completions", b, token) for b in bad]
    out.append(post_json(base + "/v1/chat/completions", None, token, raw=b"{not json"))
    out.append(post_json(base + "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, ""))
    out.append(post_json(base + "/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * 2_000_000}]},
                         token))
    out.append(http(base + "/v1/knowledge", headers={"Authorization": f"Bearer {token}"}))
    out.append(http(base + "/v1/knowledge/jobs/job-000000000000", headers={"Authorization": f"Bearer {token}"}))
    for b in ({"action": "explode"}, {"action": "add", "kb": "x y", "sources": ["/nowhere"]},
              {"action": "add", "sources": "/etc"}, {"action": "reindex", "sources": ["a"]}):
        out.append(post_json(base + "/v1/knowledge/jobs", b, token))
    out.append(post_json(base + "/v1/knowledge/jobs", {"action": "reindex"}, token, ctype="text/plain"))
    out.append(http(base + "/source?path=/etc/passwd&lines=1-2"))
    out.append(http(base + "/healthz"))
    return out


async def mcp_calls(client_factory) -> list[str]:
    out = []
    async with client_factory() as client:
        tools = await client.list_tools()
        for t in sorted(tools.tools, key=lambda t: t.name):
            out.append(json.dumps({"name": t.name, "description": t.description, "input": t.input_schema,
                                   "annotations": t.annotations.model_dump() if t.annotations else None},
                                  sort_keys=True, indent=1))
        calls = [("list_knowledge_bases", {}), ("search", {"query": SEARCHES[0], "k": 3}),
                 ("search", {"query": SEARCHES[1], "kind": "code", "k": 2}), ("search", {"query": "x", "kb": "nope"}),
                 ("find_definition", {"name": "Group.add_command"}), ("find_definition", {"name": "NoSuchThing"}),
                 ("read_source", {"kb": "default", "path": "src/click/core.py", "start_line": 1, "end_line": 12}),
                 ("read_source", {"kb": "default", "path": "../../etc/passwd"}),
                 ("ask", {"question": QUESTIONS[0]}), ("ask", {"question": QUESTIONS[1], "assistant": "Coding"}),
                 ("ask", {"question": "x", "assistant": "Nobody"}), ("search", {"query": ""})]
        for name, args in calls:
            r = await client.call_tool(name, args)
            text = "\n".join(getattr(c, "text", "") for c in r.content)
            out.append(f"tool {name} {json.dumps(args)} error={r.is_error}\n{text}\n"
                       f"structured: {json.dumps(r.structured_content, sort_keys=True, ensure_ascii=False)}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="the code's checkout")
    ap.add_argument("--data-dir", required=True, help="an indexed data dir (copied; the copy is used)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="instead: compare two outputs of this script (streams merged, paths masked)")
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    root = Path(args.root).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="doors-"))
    data = tmp / "data"
    shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("conversations.sqlite*", "usage*",
                                                                       "server.json", "*.lock"))
    parts: list[str] = []
    for q in SEARCHES:
        parts += [cli(root, data, "search", q, "--k", "5"), cli(root, data, "search", q, "--json", "--k", "3"),
                  cli(root, data, "search", q, "--assistant", "Coding", "--k", "3")]
    parts.append(cli(root, data, "search", "--k", "2", stdin="\n".join(SEARCHES) + "\n"))
    for q in QUESTIONS:
        parts.append(cli(root, data, "ask", q))
    parts += [cli(root, data, "ask", "hello", "--assistant", "Nobody"), cli(root, data, "search", "x", "--kb", "nope"),
              cli(root, data, "status", "--json"), cli(root, data, "usage", "--gaps"), cli(root, data, "frobnicate"),
              cli(root, data, "forget"), cli(root, data, "ingest", str(tmp / "missing"))]

    token = "door-token"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(root / "devcopilot.py"), "--data-dir", str(data), "serve", "--port",
                             str(port), "--workers", "1", "--api-token", token], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env_for(root), cwd=root)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("serve did not come up: " + (proc.stdout.read() if proc.poll() is not None
                                                                  else "timeout")) from None
                time.sleep(0.3)
        parts += api_calls(base, token)
        sys.path.insert(0, str(root))
        import httpx2
        from mcp import Client, StdioServerParameters
        from mcp.client.streamable_http import streamable_http_client

        def over_http():
            return Client(streamable_http_client(base + "/mcp", http_client=httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {token}"}, timeout=300)))

        def over_stdio():
            return Client(StdioServerParameters(command=sys.executable, args=[str(root / "devcopilot.py"),
                                                "--data-dir", str(data), "mcp"], env=env_for(root), cwd=str(root)))

        parts += ["== MCP over HTTP"] + asyncio.run(mcp_calls(over_http))
        parts += ["== MCP over stdio"] + asyncio.run(mcp_calls(over_stdio))
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    text = masked("\n\n".join(parts), data, root)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"{len(parts)} outputs written to {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def compare(before: str, after: str) -> int:
    """Print the differences of two outputs once normalised; exit 1 when there are any."""
    import difflib

    def norm(path: str) -> list[str]:
        text = merged_stream(Path(path).read_text(encoding="utf-8"))
        for pattern, repl in MASKS:
            text = pattern.sub(repl, text)
        text = re.sub(r"\((/work|/tmp)[^,)]*, DATA/sources\)", "(ROOT, DATA/sources)", text)
        return [line for line in text.splitlines() if line]  # blank lines between events: where a stream was cut

    diff = list(difflib.unified_diff(norm(before), norm(after), before, after, lineterm="", n=0))
    print("\n".join(diff) if diff else "the same")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
