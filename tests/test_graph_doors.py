"""The code graph through every door: `devcopilot refs` (text and --json), the MCP tools over stdio with the
real `mcp` client, the /v1/graph routes on a real server behind the edge, and the Coding assistant's tools
called by a scripted model (tests/support/llm_server.py); each at the version chosen when a KB holds two
versions of a library, as search is."""
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
from support.graph_project import KIT_SITES, PROJECT, two_kits
from support.llm_server import LLMServer, Reply
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from indexes.versions import VersionChoice
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
    (root / "data").chmod(0o700)  # as the CLI leaves it, so no test's output depends on which ran first
    return root / "data"


def test_cli_refs_prints_the_sites_grouped_by_file_and_json(data, capsys):
    assert main(["--data-dir", str(data), "refs", "discount", "--callers", "--depth", "2"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == ("Callers of shop.core.pricing.discount (function, "
                                    "src/shop/core/pricing.py:8-9, KB default)")
    assert "src/shop/core/cart.py\n     20  in Cart.checkout: call  return discount(amount)" in text
    assert "      9  in main: call [depth 2, via shop.core.cart.Cart.checkout]  print(c.checkout(), " \
           "c.describe())" in text

    assert main(["--data-dir", str(data), "refs", "Cart.checkout", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["question"] == "references" and out["definitions"][0]["qualified"] == "shop.core.cart.Cart.checkout"
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
                       (["refs", "x", "--depth", "9"], "more than the 5 the call graph follows"),  # as /v1, MCP
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
        assert {s["target"] for s in r.json()["sites"]} == {"shop.core.pricing.total",
                                                           "shop.core.pricing.discount"}
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
        assert "Callers of shop.core.pricing.discount" in tool_msgs[0]
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


# -- at the version chosen: kit v1.0.0 and v2.0.0 side by side in one KB --------------------------------------
@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    return two_kits(tmp_path_factory.mktemp("kitdoors"))


def site_set(sites: list[dict]) -> set[tuple[str, int, str]]:
    return {(s["path"], s["line"], s["caller"]) for s in sites}


def test_cli_refs_answers_at_the_version_chosen_and_says_what_search_says(kits, capsys, tmp_path):
    data, v1, v2 = kits
    assert main(["--data-dir", str(data), "status"]) == 0
    capsys.readouterr()  # the data dir made private, said once

    def refs(*args: str) -> tuple[dict, str]:
        assert main(["--data-dir", str(data), "refs", "store", "--callers", "--json", *args]) == 0
        out = capsys.readouterr()
        return json.loads(out.out), out.err

    for args, want in ((["--version", "1.0.0"], "v1.0.0"), ([], "v2.0.0"),
                       (["--version", "v2.0.0", "--library", "kit"], "v2.0.0")):
        out, err = refs(*args)
        assert [d["version"] for d in out["definitions"]] == [f"kit {want}"] and err == "", args
        assert site_set(out["sites"]) == KIT_SITES[want], args
    out, _ = refs("--version", "all")
    assert sorted(d["version"] for d in out["definitions"]) == ["kit v1.0.0", "kit v2.0.0"]
    assert site_set(out["sites"]) == KIT_SITES["v1.0.0"] | KIT_SITES["v2.0.0"]
    app = write_tree(tmp_path / "app", {"requirements.txt": "kit==1.0.0\n"})
    out, _ = refs("--project", str(app))
    assert site_set(out["sites"]) == KIT_SITES["v1.0.0"]

    out, err = refs("--version", "3.0")
    assert site_set(out["sites"]) == KIT_SITES["v2.0.0"]
    assert main(["--data-dir", str(data), "search", "store", "--version", "3.0"]) == 0
    assert err == capsys.readouterr().err == ("devcopilot: kit 3.0 is not indexed in knowledge base 'default' (it has "
                                              "v1.0.0, v2.0.0); answering from v2.0.0.\n")
    assert main(["--data-dir", str(data), "refs", "store", "--callees", "--version", "1.0.0"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Calls made by kit.store.store (function, kit/store.py:5-7, KB default, kit v1.0.0)")
    assert "-> kit.store._check" in text
    r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(data), "refs", "keep"],
                       capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == (
        "devcopilot: 'keep' is not defined at the version chosen (kit v2.0.0) in the code graph of 'default'; "
        "kit v1.0.0 defines it: choose that version, or all."), r.stderr


def test_mcp_graph_tools_take_a_version_and_the_clients_root_is_its_project(kits, tmp_path):
    from mcp.types import ListRootsResult, Root

    data, v1, v2 = kits
    app = write_tree(tmp_path / "app", {"requirements.txt": "kit==1.0.0\n"})
    server = StdioServerParameters(command=sys.executable, args=[str(REPO / "devcopilot.py"), "--data-dir", str(data),
                                                                 "mcp"], env=ENV, cwd=str(REPO))

    async def roots(_context) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=app.as_uri(), name="app")])

    async def calls() -> dict:
        async with Client(server) as c:
            out = {"old": await c.call_tool("find_references", {"symbol": "store", "version": "1.0.0"}),
                   "default": await c.call_tool("call_graph", {"symbol": "store"}),
                   "all": await c.call_tool("call_graph", {"symbol": "store", "version": "all"}),
                   "missing": await c.call_tool("call_graph", {"symbol": "store", "version": "3.0"}),
                   "callees": await c.call_tool("call_graph", {"symbol": "run", "direction": "callees", "depth": 2,
                                                               "version": "1.0.0", "library": "kit"}),
                   "gone": await c.call_tool("find_references", {"symbol": "keep"}),
                   "bad": await c.call_tool("call_graph", {"symbol": "store", "version": "1.0; rm"})}
        async with Client(server, list_roots_callback=roots) as c:
            out["project"] = await c.call_tool("call_graph", {"symbol": "store"})
        return out

    out = asyncio.run(calls())
    calls_in = {name: site_set([s for s in out[name].structured_content["sites"] if s["kind"] == "call"])
                for name in ("old", "default", "all", "missing", "project")}
    assert calls_in == {"old": KIT_SITES["v1.0.0"], "default": KIT_SITES["v2.0.0"], "missing": KIT_SITES["v2.0.0"],
                        "all": KIT_SITES["v1.0.0"] | KIT_SITES["v2.0.0"], "project": KIT_SITES["v1.0.0"]}
    assert "KB default, kit v1.0.0)" in out["old"].content[0].text
    assert sorted(d["version"] for d in out["all"].structured_content["definitions"]) == ["kit v1.0.0", "kit v2.0.0"]
    assert out["missing"].content[0].text.startswith(
        "Note: kit 3.0 is not indexed in knowledge base 'default' (it has v1.0.0, v2.0.0); answering from v2.0.0.\n\n"
        "Callers of kit.store.store")
    assert [s["target"] for s in out["callees"].structured_content["sites"]] == ["kit.store.store", "kit.store._check"]
    assert out["gone"].is_error and "kit v1.0.0 defines it" in out["gone"].content[0].text
    assert out["bad"].is_error and "'1.0; rm' is not a version" in out["bad"].content[0].text


def test_api_graph_routes_take_a_version_and_a_library(kits):
    data, v1, v2 = kits
    index = Index(load_config(env={}, overrides={"data_dir": str(data)}))
    app = FastAPI()
    app.include_router(graph_router(index))
    install(app, Gate(), max_bytes=10_000)
    with ServerThread(app) as url:
        def get(route: str, **params) -> httpx.Response:
            return httpx.get(f"{url}/v1/graph/{route}", params={"symbol": "store", **params})

        for params, want in (({"version": "1.0.0"}, "v1.0.0"), ({}, "v2.0.0"),
                             ({"version": "2.0.0", "library": "kit"}, "v2.0.0")):
            for route in ("references", "calls"):
                r = get(route, **params)
                assert r.status_code == 200 and r.json()["notes"] == [], (route, params)
                assert [d["version"] for d in r.json()["definitions"]] == [f"kit {want}"]
                assert site_set([s for s in r.json()["sites"] if s["kind"] == "call"]) == KIT_SITES[want]
        r = get("calls", version="all")
        assert site_set(r.json()["sites"]) == KIT_SITES["v1.0.0"] | KIT_SITES["v2.0.0"]
        r = get("calls", version="3.0")
        assert r.json()["notes"] == ["kit 3.0 is not indexed in knowledge base 'default' (it has v1.0.0, v2.0.0); "
                                     "answering from v2.0.0."]
        assert site_set(r.json()["sites"]) == KIT_SITES["v2.0.0"]
        r = get("references", version="1.0.0", library="gears")  # a library the KB does not hold
        assert r.json()["notes"] == ["gears 1.0.0 matches nothing indexed ('default' holds kit v1.0.0, v2.0.0); "
                                     "answering from what is there."]
        r = get("calls", symbol="run", direction="callees", depth=2, version="1.0.0")
        assert [s["target"] for s in r.json()["sites"]] == ["kit.store.store", "kit.store._check"]
        r = get("references", symbol="keep")
        assert r.status_code == 404 and "kit v1.0.0 defines it" in r.json()["error"]["message"]
        for params, says in (({"version": "1.0; rm"}, "'1.0; rm' is not a version"),
                             ({"library": "kit"}, "give the version too")):
            r = get("calls", **params)
            assert r.status_code == 400 and says in r.json()["error"]["message"], params
            assert len(r.json()["error"]["message"].splitlines()) == 1


def test_the_coding_assistants_graph_tools_answer_at_the_turns_version(kits, tmp_path):
    data, v1, _ = kits
    llm = LLMServer().start()
    try:
        cfg = copy.deepcopy(load_config(env={}, overrides={"data_dir": str(data)}))
        cfg.chat.provider, cfg.chat.base_url, cfg.chat.api_key = "openai", llm.url, "sk-test-key-0123456789"
        cfg.chat.model, cfg.chat.timeout_s = "test-model", 5
        copilot = Copilot(cfg, Index(load_config(env={}, overrides={"data_dir": str(data)})))
        llm.script(Reply(text="", tool_calls=[
            {"name": "call_graph", "arguments": '{"symbol": "store", "direction": "callers"}'},
            {"name": "find_references", "arguments": '{"symbol": "remember"}'}]),
            Reply(text="`store` is called by `keep` [1]."))
        events = list(copilot.chat("@Coding where is the store function used?", copilot.new_session(),
                                   versions=VersionChoice.parse("1.0.0")))
        end = [e for e in events if e.type == "end"][-1]
        bodies = [b for b in llm.bodies() if any(m["role"] == "tool" for m in b["messages"])]
        tool_msgs = [m["content"] for m in bodies[0]["messages"] if m["role"] == "tool"]
        assert "Callers of kit.store.store (function, kit/store.py:5-7, KB default, kit v1.0.0)" in tool_msgs[0]
        assert "5  in keep: call  return store(key, 1)" in tool_msgs[0] and "remember" not in tool_msgs[0]
        assert tool_msgs[1].startswith("error: 'remember' is not defined at the version chosen (kit v1.0.0)")
        assert any(s.title == "keep" for s in end.sources)
        assert all(s.link.startswith(str(v1)) for s in end.sources if s.path.startswith("kit/"))
    finally:
        llm.stop()
