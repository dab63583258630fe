"""What changed, through every door: `devcopilot changes` (text and --json), the MCP tool `what_changed`
over stdio with the real `mcp` client, GET /v1/changes on the real server behind its edge, the chat's
"what changed in X since V?" and "is X deprecated?" offline, and the Coding assistant's `what_changed`
tool with the scripted model server. Two versions of a Python and a TypeScript library, indexed side
by side (tests/support/versions.py)."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters
from support.chat import run
from support.llm_server import LLMServer, Reply
from support.servers import ServerThread
from support.versions import two_versions

from copilot.chat import Copilot
from copilot.config import load_config
from copilot.prompts import NO_MODEL_CHANGES
from indexes.search import Index
from ui.cli import main
from ui.server import create_app

REPO = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
ENV.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False")
TOKEN = "changes-token-42"


@pytest.fixture(scope="module")
def tv(tmp_path_factory):
    return two_versions(tmp_path_factory.mktemp("doors"))


@pytest.fixture(scope="module")
def index(tv):
    return Index(load_config(env={}, overrides={"data_dir": str(tv.data)}))


def copilot_over(index: Index, conversations: Path, llm: LLMServer | None = None) -> Copilot:
    cfg = load_config(env={}, overrides={"data_dir": str(conversations)})
    if llm is not None:
        cfg.chat.provider, cfg.chat.base_url, cfg.chat.api_key = "openai", llm.url, "sk-test-key-0123456789"
        cfg.chat.model, cfg.chat.timeout_s, cfg.chat.backoff_s = "test-model", 5, 0.01
    return Copilot(cfg, index)


# -- the command line ------------------------------------------------------------------------------------
def test_cli_text_is_grouped_by_kind_with_both_citations(tv, capsys):
    assert main(["--data-dir", str(tv.data), "changes", "mylib", "1.0.0", "2.0.0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mylib v1.0.0 → v2.0.0 (KB 'default'): 3 added, 1 removed, 2 signature changed, "
                          "3 deprecated, 2 docstring changed, 1 doc pages added, 1 doc pages removed, "
                          "1 doc pages changed\n")
    headings = [ln for ln in out.splitlines() if ln and not ln.startswith((" ", "(", "mylib "))]
    assert headings == ["Added (3)", "Removed (1)", "Signature changed (2)", "Deprecated (3)", "Docstring changed (2)",
                        "Doc pages added (1)", "Doc pages removed (1)", "Doc pages changed (1)"]
    entry = out[out.index("  ~ mylib.Store.save (method)"):].splitlines()[:3]
    assert entry == ["  ~ mylib.Store.save (method): parameter `ttl` added (default `None`)",
                     f"      from v1.0.0: mylib/core.py:10-12  {tv.py[0]}/mylib/core.py#L10-L12",
                     f"      to v2.0.0: mylib/core.py:13-15  {tv.py[1]}/mylib/core.py#L13-L15"]
    entries = [ln for ln in out.splitlines() if ln.startswith("  ") and ln[2] in "+-~!"]
    citations = [ln for ln in out.splitlines() if ln.startswith(("      from v1.0.0: ", "      to v2.0.0: "))]
    assert len(citations) == 2 * len(entries)  # each change: a line for each version


def test_cli_json_and_symbol(tv, capsys):
    assert main(["--data-dir", str(tv.data), "changes", "things", "v1.0.0", "v2.0.0", "--symbol", "makeThing",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["library"], report["from"], report["to"], report["symbol"]) == ("things", "v1.0.0", "v2.0.0",
                                                                                   "makeThing")
    [change] = report["changes"]
    assert (change["kind"], change["name"], change["summary"]) == (
        "signature", "makeThing", "parameter `size` added (default `3`, number)")
    assert change["from"]["path"] == change["to"]["path"] == "src/index.ts"
    assert change["from"]["version"] == "v1.0.0" and change["to"]["link"].startswith(str(tv.ts[1]))


@pytest.mark.parametrize("args, said", [
    (["mylib", "0.1.0", "2.0.0"], "devcopilot: mylib 0.1.0 is not indexed in KB 'default'; its versions are v1.0.0, "
                                  "v2.0.0 — index it with `devcopilot ingest pypi:mylib==0.1.0`\n"),
    (["mylib", "1.0.0", "v1.0.0"], "devcopilot: FROM and TO are the same version of mylib (v1.0.0); give two "
                                   "different versions, e.g. v1.0.0, v2.0.0.\n"),
    (["openai-agents", "0.23.0", "0.24.0"], "devcopilot: No library 'openai-agents' is indexed in KB 'default'; the "
                                            "libraries there are mylib, things.\n"),
])
def test_cli_bad_input_is_one_sentence(tv, capsys, args, said):
    assert main(["--data-dir", str(tv.data), "changes", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == said and captured.out == ""


# -- MCP over stdio ----------------------------------------------------------------------------------------
async def mcp_calls(data: Path) -> dict:
    client = Client(StdioServerParameters(command=sys.executable, args=[str(REPO / "devcopilot.py"), "--data-dir",
                                                                        str(data), "mcp"], env=ENV, cwd=str(REPO)))
    async with client as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        return {"tool": tools["what_changed"],
                "all": await c.call_tool("what_changed", {"library": "mylib", "from_version": "1.0.0",
                                                          "to_version": "2.0.0"}),
                "symbol": await c.call_tool("what_changed", {"library": "things", "from_version": "1.0.0",
                                                             "to_version": "2.0.0", "symbol": "Runner"}),
                "missing": await c.call_tool("what_changed", {"library": "mylib", "from_version": "3.0",
                                                              "to_version": "2.0.0"})}


def test_mcp_tool(tv):
    out = asyncio.run(mcp_calls(tv.data))
    tool = out["tool"]
    assert tool.annotations.read_only_hint and set(tool.input_schema["required"]) == {"library", "from_version",
                                                                                      "to_version"}
    assert "6,000 tokens" in tool.description
    text = out["all"].content[0].text
    assert not out["all"].is_error and text.startswith("mylib v1.0.0 → v2.0.0 (KB 'default'): 3 added")
    assert f"from v1.0.0: mylib/core.py:10-12  {tv.py[0]}/mylib/core.py#L10-L12" in text
    data = out["all"].structured_content
    assert data["left_out"] == 0 and len(data["changes"]) == 14 and data["counts"]["deprecated"] == 3
    runner = out["symbol"].structured_content["changes"]
    assert [(c["kind"], c["name"]) for c in runner] == [("added", "Runner.runSync")]
    assert out["missing"].is_error and out["missing"].content[0].text.endswith(  # after the SDK's "Error executing..."
        "mylib 3.0 is not indexed in KB 'default'; its versions are v1.0.0, v2.0.0 — index it with "
        "`devcopilot ingest pypi:mylib==3.0`")


# -- the API route, behind the edge -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(index, tmp_path_factory):
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("served"))})
    copilot = Copilot(cfg, index)
    with ServerThread(create_app(copilot, cfg, api_token=TOKEN)) as url:
        yield url


def test_api_route(served, tv):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.get(served + "/v1/changes", params={"library": "mylib", "from": "1.0.0", "to": "2.0.0",
                                                  "symbol": "make_widget"}, headers=auth, timeout=60)
    assert r.status_code == 200
    body = r.json()
    [change] = [c for c in body["changes"] if c["kind"] == "signature"]
    assert change["name"] == "mylib.make_widget" and change["breaking"]
    assert change["from"]["link"] == (f"{served}/source?path={tv.py[0]}/mylib/core.py&lines=23-25#L23")
    viewer = httpx.get(change["to"]["link"], timeout=60)  # the link opens the TO version's lines
    assert viewer.status_code == 200 and "Widget(kind)" in viewer.text

    assert httpx.get(served + "/v1/changes", params={"library": "mylib", "from": "1.0.0", "to": "2.0.0"},
                     timeout=60).status_code == 401  # the API's token
    missing = httpx.get(served + "/v1/changes", params={"library": "mylib", "from": "0.1", "to": "2.0.0"},
                        headers=auth, timeout=60)
    assert missing.status_code == 404 and missing.json()["error"]["message"].startswith(
        "mylib 0.1 is not indexed in KB 'default'")
    same = httpx.get(served + "/v1/changes", params={"library": "mylib", "from": "2.0.0", "to": "2.0.0"},
                     headers=auth, timeout=60)
    assert same.status_code == 400 and "same version" in same.json()["error"]["message"]
    bare = httpx.get(served + "/v1/changes", params={"library": "mylib"}, headers=auth, timeout=60)
    assert bare.status_code == 400 and bare.json()["error"]["message"].startswith("Give from and to:")


# -- the chat -------------------------------------------------------------------------------------------------
def test_chat_what_changed_offline(index, tmp_path, tv):
    cp = copilot_over(index, tmp_path)
    _, answers = run(cp, "What changed in make_widget since 1.0.0?")
    assert [a[0] for a in answers] == ["Guide", "Coding"] and answers[0][1] == "@Coding will take this."
    text, sources = answers[1][1], answers[1][2]
    assert text.startswith(NO_MODEL_CHANGES)
    assert "parameter `colour` default: `'red'` → `'blue'`" in text
    assert "from v1.0.0: [1] mylib/core.py:23-25" in text and "to v2.0.0: [2] mylib/core.py:38-40" in text
    assert [(s.n, s.title, s.link) for s in sources] == [
        (1, "mylib.make_widget @ v1.0.0", f"{tv.py[0]}/mylib/core.py#L23-L25"),
        (2, "mylib.make_widget @ v2.0.0", f"{tv.py[1]}/mylib/core.py#L38-L40")]
    assert cp.usage()["counters"]["routing_release"] == 1


def test_chat_is_it_deprecated_offline(index, tmp_path, tv):
    cp = copilot_over(index, tmp_path)
    _, answers = run(cp, "Is Store.load deprecated?")
    text, sources = answers[-1][1], answers[-1][2]
    assert answers[-1][0] == "Coding"
    assert ("`mylib.Store.load` (method) is deprecated in mylib v2.0.0: decorated @deprecated('Use Store.get "
            "instead.') [1] mylib/core.py:17-20") in text
    assert sources[0].title == "mylib.Store.load @ v2.0.0" and "@deprecated" in sources[0].excerpt
    assert sources[1].title == "mylib.Store.load @ v1.0.0" and sources[1].link.startswith(str(tv.py[0]))


def test_chat_names_a_version_not_indexed_in_one_sentence(index, tmp_path):
    cp = copilot_over(index, tmp_path)
    _, answers = run(cp, "what changed in mylib since 0.5?")
    assert answers[-1][0] == "Coding" and answers[-1][2] == []
    assert answers[-1][1] == ("mylib 0.5 is not indexed in KB 'default'; its versions are v1.0.0, v2.0.0 — index it "
                              "with `devcopilot ingest pypi:mylib==0.5`")


@pytest.fixture(scope="module")
def llm():
    s = LLMServer().start()
    yield s
    s.stop()


def test_chat_with_a_model_reads_the_changes(index, tmp_path, llm):
    llm.reset()
    llm.default = Reply(text="`make_widget` now defaults to blue [2].")
    cp = copilot_over(index, tmp_path, llm)
    _, answers = run(cp, "What changed in make_widget since 1.0.0?")
    assert answers[-1][0] == "Coding" and answers[-1][1] == "`make_widget` now defaults to blue [2]."
    asked = [b for b in llm.bodies() if "<changes>" in b["messages"][-1]["content"]]
    assert len(asked) == 1 and "to v2.0.0: [2] mylib/core.py:38-40" in asked[0]["messages"][-1]["content"]
    assert [s.title for s in answers[-1][2]] == ["mylib.make_widget @ v1.0.0", "mylib.make_widget @ v2.0.0"]


def test_coding_tool_what_changed(index, tmp_path, llm, tv):
    llm.reset()
    call = {"name": "what_changed", "arguments": json.dumps({"library": "mylib", "from_version": "1.0.0",
                                                             "to_version": "2.0.0", "symbol": "Store.save"})}
    llm.script(Reply(text="", tool_calls=[call]), Reply(text="`save` takes a `ttl` now [1][2]."))
    cp = copilot_over(index, tmp_path, llm)
    _, answers = run(cp, "@Coding how do I keep a value with Store.save?")
    tool_msgs = [m for b in llm.bodies() for m in b["messages"] if m["role"] == "tool"]
    assert len(tool_msgs) == 1
    content = tool_msgs[0]["content"]
    # Its citations are numbered as sources (the same lines found by the search before keep their number).
    numbers = {s.link: s.n for s in answers[-1][2]}
    old, new = numbers[f"{tv.py[0]}/mylib/core.py#L10-L12"], numbers[f"{tv.py[1]}/mylib/core.py#L13-L15"]
    assert content.startswith(f"Cite these as: [{old}] mylib/core.py:10-12 in v1.0.0; [{new}] mylib/core.py:13-15 "
                              "in v2.0.0; ")
    assert "parameter `ttl` added (default `None`)" in content and "from v1.0.0: mylib/core.py:10-12\n" in content
    assert {s.link for s in answers[-1][2] if s.path == "docs/guide.md"} == {
        f"{tv.py[0]}/docs/guide.md#L1-L9", f"{tv.py[1]}/docs/guide.md#L1-L9"}  # one source for each version's page
    bad = {"name": "what_changed", "arguments": json.dumps({"library": "mylib", "from_version": "9",
                                                            "to_version": "2.0.0"})}
    llm.reset()
    llm.script(Reply(text="", tool_calls=[bad]), Reply(text="Not indexed."))
    run(cp, "@Coding how do I keep a value with Store.save?")
    said = [m["content"] for b in llm.bodies() for m in b["messages"] if m["role"] == "tool"][0]
    assert said == ("error: mylib 9 is not indexed in KB 'default'; its versions are v1.0.0, v2.0.0 — index it with "
                    "`devcopilot ingest pypi:mylib==9`")
