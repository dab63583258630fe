"""Versions side by side in one KB, and choosing the version at every door.

Two releases of one library (gadgets 1.0 and 2.0, from a package index on this machine) and a folder
of another library (otherlib) in KB 'k': unchanged files are stored and embedded once; each hit
carries its library and version; the CLI, the API (the real openai client's extra_body), MCP (the real
mcp client, with a version argument or the client's root as the project) and the chat answer from
the version chosen, else the project's, else the newest; a pinned version not indexed is said with
the command that indexes it; forgetting one version keeps what the other shares.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from support.corpus import write_tree
from support.releases import PackageIndex, pip_env

from copilot.chat import Copilot
from copilot.citations import CiteStyle, cite_line
from copilot.config import load_config
from copilot.events import END, NOTICE, Source
from copilot.reply import collect
from indexes.build import forget, ingest
from indexes.retrieve import retrieve
from indexes.search import Index
from indexes.versions import VersionChoice, library_versions, versions_of

SPROCKETS = "# Sprockets\n\nSprockets turn slowly; every version of gadgets ships the same sprocket table.\n"
UTIL = 'def clamp_size(size):\n    """Keep a widget size between 1 and 10."""\n    return max(1, min(10, size))\n'
V1 = {
    "docs/guide.md": "# Guide\n\nBuild a widget with build_widget(size). The default widget size is 3.\n",
    "docs/sprockets.md": SPROCKETS,
    "gadgets/util.py": UTIL,
    "gadgets/core.py": 'def build_widget(size=3):\n    """Build a widget of the given size."""\n'
                       '    return "w" * size\n',
}
V2 = {
    "docs/guide.md": "# Guide\n\nMake a widget with make_widget(size, color). The default widget size is 5.\n",
    "docs/sprockets.md": SPROCKETS,
    "docs/colors.md": "# Colors\n\nWidgets come in red, green and blue since 2.0.\n",
    "gadgets/util.py": UTIL,
    "gadgets/core.py": 'def make_widget(size=5, color="red"):\n    """Make a widget of the given size and color."""\n'
                       '    return color + "w" * size\n',
}
OTHER = {"README.md": "# Flywheels\n\nA flywheel stores rotational energy in a spinning mass.\n"}
QUESTION = "How do I build a widget and what is the default widget size?"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """KB 'k': pypi:gadgets==1.0, then pypi:gadgets==2.0 and the folder otherlib; the index stays up (0.9
    is on it too, not indexed) and pip reads it."""
    root = tmp_path_factory.mktemp("versions")
    with pytest.MonkeyPatch.context() as mp, PackageIndex(root / "index") as pypi:
        for key, value in pip_env(pypi.url).items():
            mp.setenv(key, value)
        pypi.add("gadgets", "0.9", V1)
        pypi.add("gadgets", "1.0", V1)
        pypi.add("gadgets", "2.0", V2)
        cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
        index = Index(cfg)
        first = ingest(index, ["pypi:gadgets==1.0"], "k")
        alone = {"rows": index.catalog.count_chunks("k"), "chunks": first.chunks}
        second = ingest(index, ["pypi:gadgets==2.0", str(write_tree(root / "otherlib", OTHER))], "k")
        yield {"root": root, "cfg": cfg, "index": index, "alone": alone, "second": second, "pypi": pypi}


def sid_of(index: Index, spec: str, kb: str = "k") -> str:
    return next(s["id"] for s in index.catalog.sources(kb) if s["spec"] == spec)


def test_unchanged_files_are_stored_and_embedded_once(world):
    index = world["index"]
    v1, v2 = sid_of(index, "pypi:gadgets==1.0"), sid_of(index, "pypi:gadgets==2.0")
    held = {sid: set(index.catalog.chunk_ids_of_source("k", sid)) for sid in (v1, v2)}
    shared = held[v1] & held[v2]
    shared_paths = {c.path for c in index.catalog.get_chunks("k", list(shared)).values()}
    assert {"docs/sprockets.md", "gadgets/util.py"} <= shared_paths
    assert not shared_paths & {"docs/guide.md", "gadgets/core.py", "docs/colors.md"}
    rows = index.catalog.count_chunks("k")
    other = len(index.catalog.chunk_ids_of_source("k", sid_of(index, str(world["root"] / "otherlib"))))
    assert rows == world["alone"]["rows"] + len(held[v2]) - len(shared) + other  # one row per chunk content
    assert index.store.count(index.collection("k")) == rows  # one vector each
    assert len(index.lexical("k").ids) == rows  # one lexical entry each
    assert world["second"].embedded < world["second"].chunks  # the shared ones came from the cache


def test_the_kb_lists_the_versions_of_each_library(world):
    versions = library_versions(world["index"].catalog, "k")
    assert [v.version for v in versions["gadgets"]] == ["1.0", "2.0"] and [v.version for v in versions["otherlib"]]
    v2 = versions_of(world["index"], "k", "Gadgets")[-1]  # the changes engine's way in: (version, root, source)
    assert (v2.version, v2.source_id) == ("2.0", sid_of(world["index"], "pypi:gadgets==2.0"))
    assert (world["index"].catalog.sources("k")[0]["root"] == v2.root or v2.root.endswith("gadgets-2.0"))
    described = world["index"].catalog.describe()[0]["versions"]
    assert described["gadgets"] == ["1.0", "2.0"]


def test_hits_carry_library_and_version_and_the_newest_answers_by_default(world):
    found = retrieve(world["index"], QUESTION, ["k"], k=4)
    assert found.hits and not found.missing
    assert {(h.chunk.library, h.chunk.version) for h in found.hits} <= {("gadgets", "2.0"), ("otherlib", "")}
    top = found.hits[0]
    assert top.chunk.path in ("docs/guide.md", "gadgets/core.py") and "make_widget" in top.chunk.text
    assert top.to_json()["library"] == "gadgets" and top.to_json()["version"] == "2.0"


def test_the_version_chosen_is_the_one_searched_and_other_libraries_are_unaffected(world):
    index = world["index"]
    old = retrieve(index, QUESTION, ["k"], k=6, versions=VersionChoice.parse("1.0"))
    gadgets = [h for h in old.hits if h.chunk.library == "gadgets"]
    assert gadgets and all(h.chunk.version == "1.0" for h in gadgets)
    assert "build_widget" in old.hits[0].chunk.text
    folder = str(index.catalog.sources("k")[[s["spec"] for s in index.catalog.sources("k")].index(
        "pypi:gadgets==1.0")]["root"])
    assert all(h.chunk.link.startswith(folder) for h in gadgets)  # shared chunks too, as 1.0 holds them
    shared = retrieve(index, "sprocket table", ["k"], k=1, versions=VersionChoice.parse("1.0", "gadgets")).hits[0]
    assert shared.chunk.path == "docs/sprockets.md" and shared.chunk.version == "1.0"
    assert shared.chunk.link.startswith(folder)
    for choice in (VersionChoice.parse("1.0"), None):
        fly = retrieve(index, "what does a flywheel store?", ["k"], k=1, versions=choice).hits[0]
        assert fly.chunk.library == "otherlib"
    every = retrieve(index, QUESTION, ["k"], k=8, versions=VersionChoice.parse("all"))
    assert {h.chunk.version for h in every.hits if h.chunk.library == "gadgets"} == {"1.0", "2.0"}


def test_a_pinned_version_not_indexed_is_said_with_the_command_that_indexes_it(world):
    found = retrieve(world["index"], QUESTION, ["k"], k=3, versions=VersionChoice.parse("0.9", "gadgets"))
    assert [m.sentence() for m in found.missing] == [
        "gadgets 0.9 is not indexed in knowledge base 'k' (it has 1.0, 2.0); answering from 2.0; index it with "
        "`devcopilot ingest pypi:gadgets==0.9 --kb k`."]
    assert {h.chunk.version for h in found.hits if h.chunk.library == "gadgets"} == {"2.0"}


def test_citations_say_the_version_only_when_a_kb_holds_several(world, tmp_path):
    index = world["index"]
    hit = retrieve(index, QUESTION, ["k"], k=1).hits[0]
    src = Source.of(1, hit.chunk, "k", "", hit.chunk.library in index.side_by_side("k"))
    line = cite_line(src, CiteStyle())
    assert line == f"[1] {hit.chunk.path}:{hit.chunk.start_line}-{hit.chunk.end_line} — {hit.chunk.title} · " \
                   f"gadgets 2.0 (KB k) <{hit.chunk.link}>"
    # A KB with one version of its library: the citation is as it always was.
    ingest(index, [str(world["root"] / "otherlib")], "solo")
    solo = retrieve(index, "flywheel", ["solo"], k=1).hits[0]
    assert "otherlib" not in index.side_by_side("solo")
    plain = Source.of(1, solo.chunk, "solo", "", False)
    assert cite_line(plain, CiteStyle()) == f"[1] README.md:{solo.chunk.start_line}-{solo.chunk.end_line} — " \
                                            f"{solo.chunk.title} (KB solo) <{solo.chunk.link}>"


def test_the_chat_answers_for_the_version_chosen_and_says_so(world):
    copilot = Copilot(world["cfg"], index=world["index"])
    try:
        reply = collect(copilot.chat(QUESTION, copilot.new_session(), "Tutoring", kb="k",
                                     versions=VersionChoice.parse("1.0")))
        answer = reply.answers[-1]
        assert answer.text.startswith("For gadgets 1.0:\n\n")
        assert answer.sources and all(s.version == "1.0" and s.versioned for s in answer.sources
                                      if s.library == "gadgets")
        events = list(copilot.chat(QUESTION, copilot.new_session(), "Tutoring", kb="k",
                                   versions=VersionChoice.parse("0.9")))
        notes = [e.text for e in events if e.type == NOTICE]
        assert any("`devcopilot ingest pypi:gadgets==0.9 --kb k`" in n for n in notes)
        end = next(e for e in events if e.type == END and e.assistant == "Tutoring")
        assert end.text.startswith("For gadgets 2.0:")
    finally:
        copilot.close()


def test_the_chat_answers_for_the_project_pins(world, tmp_path):
    app = write_tree(tmp_path / "app", {"requirements.txt": "gadgets==1.0\n"})
    cfg = load_config(env={}, overrides={"data_dir": str(world["cfg"].data_dir), "project": {"path": str(app)}})
    copilot = Copilot(cfg, index=world["index"])
    try:
        answer = collect(copilot.chat(QUESTION, copilot.new_session(), "Tutoring", kb="k")).answers[-1]
        assert answer.text.startswith("For gadgets 1.0:")
        # Asked by name, the newest answers whatever the project pins.
        newest = collect(copilot.chat(QUESTION, copilot.new_session(), "Tutoring", kb="k",
                                      versions=VersionChoice.parse("newest"))).answers[-1]
        assert newest.text.startswith("For gadgets 2.0:")
    finally:
        copilot.close()


@pytest.mark.slow
def test_the_cli_takes_a_version_a_library_and_a_project(world, tmp_path, capsys):
    from ui.cli import main

    data = str(world["cfg"].data_dir)

    def search(*args: str) -> tuple[list[dict], str]:
        assert main(["--data-dir", data, "search", QUESTION, "--kb", "k", "--json", "--k", "4", *args]) == 0
        out = capsys.readouterr()
        return json.loads(out.out)["hits"], out.err

    hits, _ = search("--version", "1.0")
    assert {h["version"] for h in hits if h["library"] == "gadgets"} == {"1.0"}
    hits, _ = search("--version", "2.0", "--library", "gadgets")
    assert {h["version"] for h in hits if h["library"] == "gadgets"} == {"2.0"}
    app = write_tree(tmp_path / "app", {"uv.lock": '[[package]]\nname = "gadgets"\nversion = "1.0"\n'})
    hits, _ = search("--project", str(app))
    assert {h["version"] for h in hits if h["library"] == "gadgets"} == {"1.0"}
    hits, err = search("--version", "0.9")
    assert "devcopilot: gadgets 0.9 is not indexed in knowledge base 'k' (it has 1.0, 2.0); answering from 2.0; " \
           "index it with `devcopilot ingest pypi:gadgets==0.9 --kb k`." in err
    bad = write_tree(tmp_path / "bad", {"uv.lock": "[[package]\n"})
    hits, err = search("--project", str(bad))
    assert "uv.lock in" in err and "could not be read" in err and hits
    assert {h["version"] for h in hits if h["library"] == "gadgets"} == {"2.0"}  # the newest, then
    assert main(["--data-dir", data, "search", QUESTION, "--kb", "k"]) == 0
    assert "gadgets 2.0  (" in capsys.readouterr().out  # the text says which version each hit is
    assert main(["--data-dir", data, "status"]) == 0
    assert "versions of gadgets: 1.0, 2.0" in capsys.readouterr().out
    assert main(["--data-dir", data, "search", QUESTION, "--project", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_version_no_library_takes_is_said_not_dropped(world, tmp_path, capsys):
    """--library L --version V for a library the KB does not hold, or a --version for a KB whose libraries have no
    known version (a folder outside git), used to be dropped without a word; a project's pins are not said."""
    from ui.cli import main

    def search(data: str, *argv: str) -> str:
        assert main(["--data-dir", data, "search", QUESTION, "--json", *argv]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out)["hits"]
        return out.err

    data = str(world["cfg"].data_dir)
    assert search(data, "--kb", "k", "--version", "1.0", "--library", "flywheels") == (
        "devcopilot: flywheels 1.0 matches nothing indexed ('k' holds gadgets 1.0, 2.0); "
        "answering from what is there.\n")
    assert search(data, "--kb", "k", "--version", "1.0") == ""  # taken
    folder = str(tmp_path / "data")
    notes = write_tree(tmp_path / "notes", {"notes.md": "# Notes\n\nWidgets are small.\n"})
    assert main(["--data-dir", folder, "ingest", str(notes), "--kb", "notes", "--quiet"]) == 0
    capsys.readouterr()
    assert search(folder, "--version", "1.0") == (
        "devcopilot: Version 1.0 matches nothing indexed ('notes' holds no library with a known version); "
        "answering from what is there.\n")
    app = write_tree(tmp_path / "app", {"uv.lock": '[[package]]\nname = "numpy"\nversion = "2.0.0"\n'})
    assert search(folder, "--project", str(app)) == ""
    # the chat (and so the API's answers) says it too, before answering from what is there
    copilot = Copilot(world["cfg"], index=world["index"])
    try:
        events = list(copilot.chat(QUESTION, copilot.new_session(), "Tutoring", kb="k",
                                   versions=VersionChoice.parse("1.0", "flywheels")))
        notes = [e.text for e in events if e.type == NOTICE]
        assert "flywheels 1.0 matches nothing indexed ('k' holds gadgets 1.0, 2.0); answering from what is there." \
            in notes
        end = next(e for e in events if e.type == END and e.assistant == "Tutoring")
        assert end.text.startswith("For gadgets 2.0:")
    finally:
        copilot.close()


def test_the_api_takes_the_version_in_the_request_body(world):
    import httpx
    import openai
    from fastapi import FastAPI
    from support.servers import serve

    from ui.api import api_router
    from ui.edge import Gate, install

    copilot = Copilot(world["cfg"], index=world["index"])
    app = FastAPI()
    app.include_router(api_router(copilot))
    install(app, Gate(), max_bytes=1_000_000)
    url, server, thread = serve(app)
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
        done = client.chat.completions.create(model="tutoring", messages=[{"role": "user", "content": QUESTION}],
                                              extra_body={"version": "1.0"})
        text = done.choices[0].message.content
        sources = done.model_extra["sources"]
        assert text.startswith("For gadgets 1.0:") and "· gadgets 1.0 (KB k)" in text
        assert {s["version"] for s in sources if s["library"] == "gadgets"} == {"1.0"}
        done = client.chat.completions.create(model="tutoring", messages=[{"role": "user", "content": QUESTION}],
                                              extra_body={"versions": {"gadgets": "0.9"}})
        assert "`devcopilot ingest pypi:gadgets==0.9 --kb k`" in done.choices[0].message.content
        r = httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                           "version": 1.0})
        assert r.status_code == 400 and "'version' must be a string" in r.json()["error"]["message"]
    finally:
        server.should_exit = True
        thread.join(5)
        copilot.close()


@pytest.mark.slow
def test_mcp_tools_take_a_version_and_the_clients_root_is_its_project(world, tmp_path):
    from mcp import Client
    from mcp.types import ListRootsResult, Root

    from ui.mcp_server import build_server

    app = write_tree(tmp_path / "app", {"requirements.txt": "gadgets==1.0\n"})
    copilot = Copilot(world["cfg"], index=world["index"])

    async def roots(_context) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=app.as_uri(), name="app")])

    async def run() -> dict:
        out = {}
        async with Client(build_server(copilot, roots=True)) as c:
            out["kbs"] = await c.call_tool("list_knowledge_bases", {})
            out["old"] = await c.call_tool("search", {"query": QUESTION, "kb": "k", "version": "1.0", "k": 4})
            out["default"] = await c.call_tool("search", {"query": QUESTION, "kb": "k", "k": 4})
            out["define"] = await c.call_tool("find_definition", {"name": "clamp_size", "kb": "k", "version": "1.0"})
            out["read"] = await c.call_tool("read_source", {"kb": "k", "path": "docs/guide.md", "version": "1.0"})
            out["missing"] = await c.call_tool("search", {"query": QUESTION, "kb": "k", "version": "0.9"})
            out["unmatched"] = await c.call_tool("search", {"query": QUESTION, "kb": "k", "version": "1.0",
                                                            "library": "flywheels"})
            out["ask"] = await c.call_tool("ask", {"question": QUESTION, "assistant": "Tutoring", "version": "1.0"})
        async with Client(build_server(copilot, roots=True), list_roots_callback=roots) as c:
            out["project"] = await c.call_tool("search", {"query": QUESTION, "kb": "k", "k": 4})
        return out

    try:
        out = asyncio.run(run())
    finally:
        copilot.close()
    assert "versions of gadgets: 1.0, 2.0" in out["kbs"].content[0].text
    for name, want in (("old", "1.0"), ("default", "2.0"), ("project", "1.0")):
        hits = out[name].structured_content["hits"]
        assert {h["version"] for h in hits if h["library"] == "gadgets"} == {want}, name
    assert "· gadgets 1.0 (" in out["old"].content[0].text
    assert out["define"].structured_content["definitions"][0]["version"] == "1.0"
    assert "build_widget(size)" in out["read"].structured_content["text"]
    assert out["missing"].content[0].text.startswith("Note: gadgets 0.9 is not indexed in knowledge base 'k'")
    assert out["unmatched"].content[0].text.startswith("Note: flywheels 1.0 matches nothing indexed ('k' holds "
                                                       "gadgets 1.0, 2.0); answering from what is there.")
    assert out["ask"].content[0].text.startswith("**Tutoring:** For gadgets 1.0:")


def test_forget_drops_one_version_and_keeps_what_the_other_shares(tmp_path, monkeypatch):
    with PackageIndex(tmp_path / "index") as pypi:
        for key, value in pip_env(pypi.url).items():
            monkeypatch.setenv(key, value)
        pypi.add("gadgets", "1.0", V1)
        pypi.add("gadgets", "2.0", V2)
        index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
        ingest(index, ["pypi:gadgets==1.0", "pypi:gadgets==2.0"], "k")
        v2_held = set(index.catalog.chunk_ids_of_source("k", sid_of(index, "pypi:gadgets==2.0")))
        said = forget(index, "pypi:gadgets==1.0", "k")
        assert said == "Removed source 'pypi:gadgets==1.0' (4 chunks) from 'k'."
        assert index.catalog.chunk_ids("k") == v2_held  # the shared chunks stayed, the others went
        assert index.store.ids(index.collection("k")) == v2_held and set(index.lexical("k").ids) == v2_held
        hit = retrieve(index, "sprocket table", ["k"], k=1).hits[0]
        assert hit.chunk.version == "2.0" and hit.chunk.link.startswith(
            index.catalog.sources("k")[0]["root"])  # now as 2.0 holds it
        assert "gadgets" not in index.side_by_side("k")

        from ui.cli import main

        assert main(["--data-dir", str(tmp_path / "data"), "forget", "--kb", "k", "--library", "gadgets",
                     "--version", "2.0"]) == 0
        assert index.catalog.sources("k") == [] and index.catalog.count_chunks("k") == 0
        assert main(["--data-dir", str(tmp_path / "data"), "forget", "--kb", "k", "--library", "gadgets",
                     "--version", "3.0"]) == 2


@pytest.mark.browser
@pytest.mark.slow
def test_the_web_chat_selects_a_version_and_offers_to_index_a_pinned_one(tmp_path, monkeypatch, browser):
    from support.browser import answers, ask, have_chromium, open_chat
    from support.servers import ServerThread
    from support.waiting import wait_until

    from indexes.jobs import Jobs
    from ui.server import create_app

    if not have_chromium():
        pytest.skip("Debian chromium is not installed")
    app = write_tree(tmp_path / "app", {"requirements.txt": "gadgets==0.9\n"})
    with PackageIndex(tmp_path / "index") as pypi:
        for key, value in pip_env(pypi.url).items():
            monkeypatch.setenv(key, value)
        for version, files in (("0.9", V1), ("1.0", V1), ("2.0", V2)):
            pypi.add("gadgets", version, files)
        cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data"), "project": {"path": str(app)}})
        index = Index(cfg)
        ingest(index, ["pypi:gadgets==1.0", "pypi:gadgets==2.0"], "k")
        copilot = Copilot(cfg, index=index)
        with ServerThread(create_app(copilot, cfg, jobs=Jobs(index))) as url:
            page = open_chat(browser, url)
            # The project pins 0.9, which is not indexed: the chat offers to index it.
            page.wait_for_selector("#dc-offer:visible", timeout=30_000)
            assert page.inner_text("#dc-offer") == "Index gadgets 0.9"
            page.locator("#dc-version-select input").click()
            page.get_by_role("option", name="gadgets 1.0").click()
            ask(page, "@Tutoring " + QUESTION)
            answer = answers(page)[-1]
            assert "For gadgets 1.0:" in answer["text"] and "· gadgets 1.0" in answer["text"]
            assert "gadgets 2.0" not in answer["text"]
            page.locator("#dc-version-select input").click()
            page.get_by_role("option", name="The project's versions (app)").click()
            page.wait_for_selector("#dc-offer:visible", timeout=30_000)
            page.click("#dc-offer")
            page.wait_for_function("() => document.querySelector('#dc-offer-note').innerText.includes('Indexing')",
                                   timeout=30_000)
            assert "pypi:gadgets==0.9" in page.inner_text("#dc-offer-note")
            wait_until(lambda: "pypi:gadgets==0.9" in {s["spec"] for s in index.catalog.sources("k") if
                                                       s["indexed_at"]}, "the offered version indexed", timeout=120)
            page.context.close()
        copilot.close()


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_each_store_searches_among_one_versions_chunks(tmp_path, kind):
    import numpy as np

    from indexes.stores import ChromaStore, QdrantStore

    store = ChromaStore(path=tmp_path / "chroma") if kind == "chroma" else QdrantStore(path=tmp_path / "qdrant")
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    ids = [f"{i:032x}" for i in range(40)]
    store.upsert("col", ids, vectors, [{"kind": "code" if i % 2 else "doc", "source": "s"} for i in range(40)])
    among = ids[10:20]
    found = store.query("col", vectors[0], 5, None, among, scoped=True)
    assert len(found) == 5 and {cid for cid, _ in found} <= set(among)
    code = [cid for cid in among if int(cid, 16) % 2]
    assert {cid for cid, _ in store.query("col", vectors[0], 3, "code", code, scoped=True)} <= set(code)
    assert store.query("col", vectors[0], 3, None, [], scoped=True) == []


def test_a_catalog_from_before_shared_chunks_gets_its_members(tmp_path):
    from indexes.catalog import Catalog
    from ingest.chunk import Chunk

    cat = Catalog(tmp_path / "catalog.sqlite")
    chunk = Chunk("text", "a.md", 1, 1, "doc", "markdown").finalize("src1", "/a.md#L1-L1")
    with cat.transaction():  # as a catalog made before members: the chunk row alone
        cat.db.execute("INSERT INTO chunks (kb, id, source_id, path, start_line, end_line, kind, language, symbol, "
                       "headings, context, link, text, tokens) VALUES ('k', ?, 'src1', 'a.md', 1, 1, 'doc', "
                       "'markdown', '', '[]', '', '/a.md#L1-L1', 'text', 'text')", (chunk.id,))
        cat.db.execute("DELETE FROM meta WHERE key='members'")
    cat.close()
    again = Catalog(tmp_path / "catalog.sqlite")
    assert again.chunk_ids_of_source("k", "src1") == [chunk.id]
    assert [(c.source_id, c.link) for c in again.file_chunks("k", "a.md")] == [("src1", "/a.md#L1-L1")]
