"""The code graph through every door: `devcopilot refs` (text and --json), the MCP tools over stdio with the
real `mcp` client, the /v1/graph routes on a real server behind the edge, and the Coding assistant's tools
called by a scripted model (tests/support/llm_server.py)."""
from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from mcp import Client, StdioServerParameters
from support.corpus import write_tree
from support.graph_project import PROJECT
from support.llm_server import LLMServer, Reply
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.cli import main
from ui.edge import Gate, install
from ui.graph_api import graph_router

REPO = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
ENV.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False")
TOKEN = "graph-token-for-tests"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("graphdoors")
    project = write_tree(root / "project", PROJECT)
    ingest(Index(load_config(env={}, overrides={"data_dir": str(root / "data")})), [str(project)])
    return root / "data"


def test_cli_refs_prints_the_sites_grouped_by_file_and_json(data, capsys):
    assert main(["--data-dir", str(data), "refs", "discount", "--callers", "--depth", "2"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == ("Callers of src.shop.core.pricing.discount (function, "
                                    "src/shop/core/pricing.py:8-9, KB default)")
    assert "src/shop/core/cart.py\n     20  in Cart.checkout: call  return discount(amount)" in text
    assert "      9  in main: call [depth 2, via src.shop.core.cart.Cart.checkout]  print(c.checkout(), " \
           "c.describe())" in text

    assert main(["--data-dir", str(data), "refs", "Cart.checkout", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["question"] == "references" and out["definitions"][0]["qualified"] == "src.shop.core.cart.Cart.checkout"
    assert out["definitions"][0]["link"].endswith("src/shop/core/cart.py#L18-L20")
    assert {(s["path"], s["line"], s["resolved"]) for s in out["sites"]} == {
        ("src/shop/app.py", 9, True), ("src/shop/app.py", 10, True), ("src/shop/app.py", 21, True),
        ("src/shop/app.py", 15, False)}
    assert (out["resolved"], out["unresolved"]) == (3, 1)

    assert main(["--data-dir", str(data), "refs", "main", "--callees", "--kb", "default"]) == 0
    assert "Calls made by" in capsys.readouterr().out


def test_cli_refs_errors_are_one_sentence_and_exit_2(data):
    for args, says in ((["refs", "checkout_all"], "No definition of 'checkout_all' in the code graph of 'default'"),
                       (["refs", "x", "--kb", "nope"], "no knowledge base named 'nope'"),
                       (["refs", "x", "--depth", "0"], "is not a whole number of 1 or more"),
                       (["refs", "x", "--callers", "--callees"], "not allowed with argument")):
        r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(data), *args],
                           capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)
        assert r.returncode == 2 and r.stdout == "", r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr


def test_mcp_tools_find_references_and_call_graph(data):
    client = Client(StdioServerParameters(command=sys.executable, args=[str(REPO / "devcopilot.py"), "--data-dir",
                                                                        str(data), "mcp"], env=ENV, cwd=str(REPO)))

    async def calls() -> dict:
        async with client as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            return {"tools": tools,
                    "refs": await c.call_tool("find_references", {"symbol": "add"}),
                    "callers": await c.call_tool("call_graph", {"symbol": "discount", "depth": 2}),
                    "callees": await c.call_tool("call_graph", {"symbol": "Calc.run", "direction": "callees"}),
                    "deep": await c.call_tool("call_graph", {"symbol": "discount", "depth": 9}),
                    "none": await c.call_tool("find_references", {"symbol": "checkout_all", "kb": "default"})}

    out = asyncio.run(calls())
    for name in ("find_references", "call_graph"):
        assert out["tools"][name].annotations.read_only_hint is True
        assert "6,000 tokens" in out["tools"][name].description
    refs = out["refs"].structured_content
    assert not out["refs"].is_error and refs["definitions"][0]["qualified"] == "web/src/util/math:add"
    assert ("web/src/legacy.js", 4, "legacy") in {(s["path"], s["line"], s["caller"]) for s in refs["sites"]}
    assert "\n     12  in compute: call  c.run(plus(1, 2));\n" in out["refs"].content[0].text
    callers = out["callers"].structured_content
    assert {(s["depth"], s["caller"]) for s in callers["sites"]} >= {(1, "Cart.checkout"), (2, "main")}
    callees = out["callees"].structured_content
    assert [s["target"] for s in callees["sites"] if s["resolved"]] == ["web/src/util/math:add"]
    assert out["deep"].is_error and "less than or equal to 5" in out["deep"].content[0].text
    assert out["none"].is_error and "No definition of 'checkout_all'" in out["none"].content[0].text


def test_api_routes_answer_json_behind_the_edge(data):
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    app = FastAPI()
    app.include_router(graph_router(index))
    install(app, Gate(api_token=TOKEN), max_bytes=10_000)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with ServerThread(app) as url:
        assert httpx.get(f"{url}/v1/graph/references", params={"symbol": "total"}).status_code == 401
        r = httpx.get(f"{url}/v1/graph/references", params={"symbol": "total", "kb": "default"}, headers=auth)
        assert r.status_code == 200
        assert {(s["path"], s["line"]) for s in r.json()["sites"]} == {("src/shop/core/cart.py", 19),
                                                                      ("src/shop/app.py", 11)}
        r = httpx.get(f"{url}/v1/graph/calls", params={"symbol": "discount", "depth": 2}, headers=auth)
        assert r.status_code == 200 and r.json()["question"] == "callers"
        assert max(s["depth"] for s in r.json()["sites"]) == 2
        r = httpx.get(f"{url}/v1/graph/calls", params={"symbol": "Cart.checkout", "direction": "callees"},
                      headers=auth)
        assert {s["target"] for s in r.json()["sites"]} == {"src.shop.core.pricing.total",
                                                           "src.shop.core.pricing.discount"}
        r = httpx.get(f"{url}/v1/graph/references", params={"symbol": "checkout_all"}, headers=auth)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
        assert "No definition of 'checkout_all'" in r.json()["error"]["message"]
        r = httpx.get(f"{url}/v1/graph/calls", params={"symbol": "x", "depth": 9}, headers=auth)
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("'depth' is not valid")
        r = httpx.get(f"{url}/v1/graph/references", params={"symbol": "x", "kb": "nope"}, headers=auth)
        assert r.status_code == 404 and "no knowledge base named 'nope'" in r.json()["error"]["message"]


def test_the_coding_assistant_calls_the_graph_tools_and_cites_their_chunks(data):
    llm = LLMServer().start()
    try:
        cfg = load_config(env={}, overrides={"data_dir": str(data)})
        cfg = copy.deepcopy(cfg)
        cfg.chat.provider, cfg.chat.base_url, cfg.chat.api_key = "openai", llm.url, "sk-test-key-0123456789"
        cfg.chat.model, cfg.chat.timeout_s = "test-model", 5
        copilot = Copilot(cfg, Index(load_config(env={}, overrides={"data_dir": str(data)})))
        llm.script(Reply(text="", tool_calls=[
            {"name": "call_graph", "arguments": '{"symbol": "discount", "direction": "callers", "depth": 2}'},
            {"name": "find_references", "arguments": '{"symbol": "nothing_like_it"}'},
            {"name": "call_graph", "arguments": '{"symbol": "discount", "direction": "up"}'}]),
            Reply(text="`discount` is called by `Cart.checkout` [1]."))
        events = list(copilot.chat("@Coding how is the discount applied at checkout?", copilot.new_session()))
        end = [e for e in events if e.type == "end"][-1]
        bodies = [b for b in llm.bodies() if any(m["role"] == "tool" for m in b["messages"])]
        tool_msgs = [m["content"] for m in bodies[0]["messages"] if m["role"] == "tool"]
        assert "Callers of src.shop.core.pricing.discount" in tool_msgs[0]
        assert "20  in Cart.checkout: call  return discount(amount)" in tool_msgs[0]
        assert tool_msgs[0].startswith("Cite these as: [")
        assert tool_msgs[1].startswith("error: No definition of 'nothing_like_it'")
        assert "'direction' must be" in tool_msgs[2]
        offered = {t["function"]["name"] for t in bodies[0].get("tools", [])} | \
            {t["function"]["name"] for b in llm.bodies() for t in b.get("tools", [])}
        assert {"find_references", "call_graph"} <= offered
        assert end.text == "`discount` is called by `Cart.checkout` [1]."
        assert any(s.title == "Cart.checkout" and s.path == "src/shop/core/cart.py" for s in end.sources)
    finally:
        llm.stop()
