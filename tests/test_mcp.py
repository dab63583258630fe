"""The MCP server, driven by the real `mcp` SDK client: over stdio (`devcopilot mcp`, as an editor
starts it) and over Streamable HTTP against a running `devcopilot serve` with a bearer token."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from support.corpus import ingested_data_dir
from support.servers import free_port

from copilot.config import load_config
from indexes.retrieve import retrieve
from indexes.search import Index

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"list_knowledge_bases", "search", "read_source", "find_definition", "ask", "find_references", "call_graph",
         "what_changed", "check_docs"}
TOKEN = "mcp-test-token-42"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False"}
ENV = {k: v for k, v in ENV.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ingested_data_dir(tmp_path_factory.mktemp("mcp"))[0]


def stdio(data: Path) -> Client:
    return Client(StdioServerParameters(command=sys.executable, args=[str(REPO / "devcopilot.py"), "--data-dir",
                                                                      str(data), "mcp"], env=ENV, cwd=str(REPO)))


@pytest.fixture(scope="module")
def served(data):
    """`devcopilot serve` in its own process, with a bearer token."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(data), "serve", "--port",
                             str(port), "--api-token", TOKEN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail("serve exited: " + proc.stdout.read())
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("serve did not come up")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def over_http(url: str, token: str | None = TOKEN) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url + "/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=120)))


def cli_search_json(data: Path, query: str, *extra: str) -> dict:
    r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(data), "search", query,
                        "--json", *extra], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


async def exercise(client: Client) -> dict:
    """Every tool once, with good and bad arguments; returns what came back."""
    out = {}
    async with client as c:
        tools = (await c.list_tools()).tools
        out["tools"] = {t.name: t for t in tools}
        out["kbs"] = await c.call_tool("list_knowledge_bases", {})
        out["search"] = await c.call_tool("search", {"query": "long-term memory for an agent", "kb": "default", "k": 4})
        out["search_code"] = await c.call_tool("search", {"query": "build a gadget", "kind": "code", "k": 2})
        out["search_big_k"] = await c.call_tool("search", {"query": "memory", "k": 50})
        out["search_bad_kind"] = await c.call_tool("search", {"query": "memory", "kind": "video"})
        out["search_no_kb"] = await c.call_tool("search", {"query": "memory", "kb": "nope"})
        out["search_misnamed"] = await c.call_tool("search", {"q": "memory"})
        out["read"] = await c.call_tool("read_source", {"kb": "default", "path": "widgets/core.py", "start_line": 7,
                                                        "end_line": 9})
        out["read_dotdot"] = await c.call_tool("read_source", {"kb": "default", "path": "../../etc/passwd"})
        out["read_unindexed"] = await c.call_tool("read_source", {"kb": "default", "path": "widgets/secret.py"})
        out["read_past_end"] = await c.call_tool("read_source", {"kb": "default", "path": "widgets/core.py",
                                                                 "start_line": 5000})
        out["define"] = await c.call_tool("find_definition", {"name": "MemoryStore.save"})
        out["define_none"] = await c.call_tool("find_definition", {"name": "NoSuchThing"})
        out["ask"] = await c.call_tool("ask", {"question": "what arguments does build_gadget take?",
                                               "assistant": "Coding"})
        out["ask_nobody"] = await c.call_tool("ask", {"question": "hello", "assistant": "Nobody"})
    return out


def check(out: dict, data: Path) -> None:
    tools = out["tools"]
    assert set(tools) == TOOLS
    k = tools["search"].input_schema["properties"]["k"]
    assert (k["minimum"], k["maximum"]) == (1, 20)
    assert "6,000 tokens" in tools["search"].description and "6,000 tokens" in tools["read_source"].description
    assert tools["read_source"].input_schema["required"] == ["kb", "path"]

    kbs = out["kbs"].structured_content["knowledge_bases"]
    assert [kb["name"] for kb in kbs] == ["default"] and kbs[0]["files"] == 3 and kbs[0]["chunks"] > 3
    assert kbs[0]["sources"][0]["kind"] == "folder" and kbs[0]["last_indexed"].endswith("Z")

    # search returns what retrieve() returns, hit for hit, with the passage metadata.
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    want = retrieve(index, "long-term memory for an agent", ["default"], k=4)
    got = out["search"].structured_content
    assert not out["search"].is_error and got["weak"] == want.weak
    assert [(h["path"], h["start_line"], h["end_line"]) for h in got["hits"]] == \
        [(h.chunk.path, h.chunk.start_line, h.chunk.end_line) for h in want.hits]
    first = got["hits"][0]
    assert first["path"] == "README.md" and first["kb"] == "default" and "MemoryStore" in first["text"]
    assert first["title"] == "Widgets > Memory" and first["link"].endswith("README.md#L" + first["link"].split("#L")[1])
    assert "[1] README.md:" in out["search"].content[0].text
    assert all(h["kind"] == "code" for h in out["search_code"].structured_content["hits"])

    for name in ("search_big_k", "search_bad_kind"):
        assert out[name].is_error
    # arguments the schema refuses: one sentence naming each field and what to do, not pydantic's report
    assert out["search_big_k"].content[0].text == ("The search tool's arguments are not right: 'k': input should be "
                                                   "less than or equal to 20 (got 50). Fix them and call it again.")
    assert out["search_bad_kind"].content[0].text == ("The search tool's arguments are not right: 'kind': input "
                                                      "should be 'doc' or 'code' (got 'video'). Fix them and call it "
                                                      "again.")
    assert out["search_misnamed"].is_error and out["search_misnamed"].content[0].text == (
        "The search tool's arguments are not right: 'query' is required; it takes no 'q'. Fix them and call it again.")
    assert "no knowledge base named 'nope'" in out["search_no_kb"].content[0].text and out["search_no_kb"].is_error

    read = out["read"]
    lines = (data.parent / "project" / "widgets" / "core.py").read_text().splitlines()
    assert not read.is_error and read.structured_content["text"].split("\n") == lines[6:9]
    assert read.structured_content["total_lines"] == len(lines)
    assert "    7  class MemoryStore:" in read.content[0].text
    for name in ("read_dotdot", "read_unindexed"):
        assert out[name].is_error and "is not an indexed file" in out[name].content[0].text
    assert out["read_past_end"].is_error and f"has {len(lines)} lines" in out["read_past_end"].content[0].text

    d = out["define"].structured_content["definitions"][0]
    assert (d["path"], d["symbol"]) == ("widgets/core.py", "MemoryStore.save")
    assert lines[d["start_line"] - 1].strip().startswith("def save(")
    assert out["define_none"].structured_content["definitions"] == [] and not out["define_none"].is_error

    ask = out["ask"]
    assert not ask.is_error and ask.structured_content["speakers"] == ["Coding"]
    assert "No language model is configured" in ask.content[0].text
    assert "def build_gadget" in ask.content[0].text and "Sources:\n[1] widgets/core.py:" in ask.content[0].text
    assert out["ask_nobody"].is_error and "no assistant 'Nobody'" in out["ask_nobody"].content[0].text


def test_stdio_tools_answer_like_the_cli(data):
    out = asyncio.run(exercise(stdio(data)))
    check(out, data)
    # the same query through `devcopilot search --json` gives the same passages
    cli = cli_search_json(data, "long-term memory for an agent", "--k", "4")
    assert [h["path"] + str(h["start_line"]) for h in cli["hits"]] == \
        [h["path"] + str(h["start_line"]) for h in out["search"].structured_content["hits"]]


def test_http_tools_behind_the_bearer_token(data, served):
    check(asyncio.run(exercise(over_http(served))), data)


def test_http_refuses_a_missing_or_wrong_token(served):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        req = urllib.request.Request(served + "/mcp", data=b"{}", method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 401 and "bearer token" in e.value.read().decode()

    async def attempt():
        async with over_http(served, token=None) as c:
            await c.list_tools()

    with pytest.raises(BaseException):  # noqa: B017 (the SDK wraps the 401 in task-group errors)
        asyncio.run(attempt())
