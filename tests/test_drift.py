"""Docs checked against the code (indexes/drift.py): each kind of finding on a small project, none for docs
that match, the `drift` command's three forms, the MCP tool through the real SDK client, and the note an
answer adds when it cites a flagged passage. Real tree-sitter, real griffe, a real ingest and catalog."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from support.chat import World, make_copilot, run
from support.corpus import write_tree
from support.llm_server import LLMServer, Reply

from copilot.config import load_config
from indexes import drift
from indexes.build import ingest
from indexes.search import Index
from ui.cli import main

REPO = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}.items()
       if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}

LIBRARY = {
    "gadgets/__init__.py": '''
        """Gadgets: runners and settings."""
        from gadgets.core import Runner, Settings, build

        __all__ = ["Runner", "Settings", "build"]
        ''',
    "gadgets/core.py": '''
        """The runner and its settings."""
        from dataclasses import dataclass

        DEFAULT_TURNS = 10


        @dataclass
        class Settings:
            """How a run behaves."""
            temperature: float = 0.5
            retries: int = 3


        class Runner:
            """Runs a gadget."""

            def __init__(self, name, timeout=30):
                self.name = name
                self.timeout = timeout

            @classmethod
            def run_sync(cls, gadget, prompt, *, max_turns=DEFAULT_TURNS):
                """Run until done, at most max_turns turns."""
                return cls(gadget).stream(prompt)

            def stream(self, prompt):
                """The events of a run, as they come."""
                return [prompt]


        def build(name, size=3):
            """Build a gadget."""
            return {"name": name, "size": size}
        ''',
}

GOOD_DOCS = {
    "docs/running.md": '''
        # Running

        Call [`Runner.run_sync()`][gadgets.core.Runner.run_sync] with a gadget and a prompt, e.g.
        `Runner.run_sync(gadget, "hi", max_turns=5)`. The `max_turns` argument of `Runner.run_sync` defaults to `10`.

        ```python
        from gadgets import Runner, Settings, build

        settings = Settings(temperature=0.2, retries=1)
        runner = Runner("lamp", timeout=5)
        events = runner.stream("hello")
        gadget = build("lamp", 4)
        ```
        ''',
}

OLD_DOCS = {
    "docs/old.md": '''
        # Old guide

        ## Renamed

        Run it to the end with `Runner.run_synchronously()`; it blocks until the gadget is done.

        ## Keyword

        Limit the turns with `Runner.run_sync(gadget, "hi", turns=3)`.

        ## Default

        The `timeout` of `Runner` defaults to `60` seconds.

        ## Example

        ```python
        from gadgets import Runner, build
        from gadgets import Sprocket

        gadget = build("lamp", 4, "blue")
        runner = Runner("lamp")
        runner.stream("go", verbose=True)
        ```
        ''',
}


# Blocks without imports: a name the file's other blocks import is read through them; one they do not
# import is left alone, however alike the library's (a guide's own `Settings` class, say).
CONTINUED_DOCS = {
    "docs/more.md": '''
        # More

        ```python
        from gadgets import build
        ```

        Then:

        ```python
        build("lamp", 4, "large")
        Settings(colour="red")
        ```
        ''',
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("drift")
    project = write_tree(root / "project", {**LIBRARY, **GOOD_DOCS, **OLD_DOCS, **CONTINUED_DOCS})
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    return World(root, cfg, index)


def found(world: World, path: str | None = None) -> list[drift.Finding]:
    return [f for f in drift.findings(world.index.catalog, "default") if path is None or f.doc_path == path]


def test_a_renamed_method_is_named_with_its_likely_new_name(world):
    f = next(f for f in found(world) if f.kind == "missing")
    assert f.doc_place == "docs/old.md:5-5" and "`Runner.run_synchronously`" in f.message
    assert f.suggestion == "Runner.run_sync" and "it may now be `Runner.run_sync`" in f.message
    # Both sides cited, as every citation is: path:start-end and a link with the line anchor.
    assert f.doc_link.endswith("docs/old.md#L5-L5")
    assert f.code_path == "gadgets/core.py" and f.symbol.endswith("Runner.run_sync")
    lines = (world.root / "project" / f.code_path).read_text().split("\n")
    assert "def run_sync(" in "\n".join(lines[f.code_start - 1:f.code_end])
    assert f.code_link.endswith(f"gadgets/core.py#L{f.code_start}-L{f.code_end}")


def test_a_keyword_the_signature_lacks_is_found_with_the_one_it_became(world):
    f = next(f for f in found(world) if f.kind == "keyword")
    assert f.doc_place == "docs/old.md:9-9" and "`turns=`" in f.message and f.suggestion == "max_turns"


def test_a_stated_default_that_differs_from_the_code(world):
    f = next(f for f in found(world) if f.kind == "default")
    assert f.doc_place == "docs/old.md:13-13"
    assert "`timeout` defaults to `60`" in f.message and "`30`" in f.message and f.symbol == "gadgets.Runner"


def test_an_example_whose_calls_do_not_match_the_signatures(world):
    examples = {f.doc_start: f.message for f in found(world) if f.kind == "example"}
    assert "has no `Sprocket`" in examples[19]  # imported from the library, which has no such name
    assert "3 positional arguments; it takes at most 2" in examples[21]  # build(name, size=3)
    assert "`verbose=`" in examples[23] and "`Runner.stream`" in examples[23]  # on an instance of Runner


def test_a_block_reads_names_through_its_files_imports(world):
    (f,) = found(world, "docs/more.md")
    assert f.kind == "example" and f.doc_start == 10 and "3 positional arguments" in f.message


def test_docs_that_match_the_code_have_no_finding(world):
    assert found(world, "docs/running.md") == []
    assert len(found(world)) == 7


def test_cli_drift_text_json_and_markdown(world, capsys):
    data = str(world.cfg.data_dir)
    assert main(["--data-dir", data, "drift"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("KB 'default': 7 doc passage findings (1 missing, 1 keyword, 1 default, 4 example)")
    assert "[missing] docs/old.md:5-5  `Runner.run_synchronously()`" in text and "    code: gadgets/core.py:" in text
    assert main(["--data-dir", data, "drift", "--kb", "default", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"missing": 1, "keyword": 1, "default": 1, "example": 4} and out["unchecked"] == []
    assert {f["kind"] for f in out["findings"]} == set(drift.KINDS) and all(f["doc_link"] for f in out["findings"])
    assert main(["--data-dir", data, "drift", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert "| kind | doc | finding | code |" in md and "| missing | [docs/old.md:5-5](" in md
    assert main(["--data-dir", data, "drift", "--kb", "nope"]) == 2
    assert "There is no knowledge base named 'nope'" in capsys.readouterr().err


def test_mcp_check_docs_through_the_sdk_client(world):
    async def call():
        server = StdioServerParameters(command=sys.executable, env=ENV, cwd=str(REPO),
                                       args=[str(REPO / "devcopilot.py"), "--data-dir", str(world.cfg.data_dir), "mcp"])
        async with Client(server) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            every = await c.call_tool("check_docs", {})
            defaults = await c.call_tool("check_docs", {"kind": "default", "kb": "default"})
            elsewhere = await c.call_tool("check_docs", {"path": "docs/running"})
            return tools, every, defaults, elsewhere

    tools, every, defaults, elsewhere = asyncio.run(call())
    assert tools["check_docs"].annotations.read_only_hint is True
    assert every.structured_content["counts"] == {"missing": 1, "keyword": 1, "default": 1, "example": 4}
    assert "[missing] docs/old.md:5-5 (KB default)" in every.content[0].text
    assert [f["kind"] for f in defaults.structured_content["findings"]] == ["default"]
    assert elsewhere.structured_content["findings"] == [] and "No doc passage" in elsewhere.content[0].text


def first_finding_in(world: World, source) -> str:
    """The note's words for a cited doc passage: its first finding, as an answer writes it."""
    f = next(f for f in found(world) if f.doc_path == source.path and source.start_line <= f.doc_start
             <= source.end_line)
    return f.message[0].lower() + f.message[1:].rstrip(".")


def test_an_offline_answer_citing_a_flagged_passage_says_so(world, tmp_path):
    cp = make_copilot(world, tmp_path)
    _, answers = run(cp, "How long is the timeout of the Runner by default?", assistant="Tutoring")
    text, sources = answers[0][1], answers[0][2]
    old = next(s for s in sources if s.path == "docs/old.md")
    assert f"Note: [{old.n}] may be out of date: {first_finding_in(world, old)}" in text
    assert "running.md" not in text.split("Note:")[-1]  # a passage that matches the code gets no note


def test_a_model_answer_is_told_and_ends_with_the_note(world, tmp_path):
    llm = LLMServer().start()
    llm.default = Reply(text="The timeout is set on the Runner [1][2][3].")
    try:
        cp = make_copilot(world, tmp_path, llm)
        _, answers = run(cp, "How long is the timeout of the Runner by default?", assistant="Tutoring")
        text, sources = answers[0][1], answers[0][2]
        prompt = json.dumps(llm.bodies()[-1])
    finally:
        llm.stop()
    old = next(s for s in sources if s.path == "docs/old.md")
    assert old.n <= 3 and "May be out of date, checked against the code" in prompt  # marked in the prompt
    answer, tail = text.split("[1][2][3].", 1)
    assert answer == "The timeout is set on the Runner "  # the model's words, then the note under them
    assert tail.startswith(f"\n\n_Note: [{old.n}] may be out of date: {first_finding_in(world, old)}")
    assert tail.endswith("._")


def test_a_source_folder_that_is_itself_a_package(tmp_path):
    """`devcopilot ingest src` (an `__init__.py` at the folder's top) used to loop for ever while
    finding the top packages: "." is its own parent. Its sub-packages are read, and their docs checked."""
    import signal

    def too_long(*_):
        raise TimeoutError("the ingest of a folder that is a package did not finish")

    project = write_tree(tmp_path / "src", {"__init__.py": "", **LIBRARY, "guide.md": OLD_DOCS["docs/old.md"]})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(300)
    try:
        ingest(index, [str(project)], "default")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert drift.checked(index.catalog, "default")
    assert "missing" in {f.kind for f in drift.findings(index.catalog, "default")}


def test_a_package_folders_own_modules_are_checked_under_its_name(tmp_path):
    """`devcopilot ingest fw` where `fw` is the package: its top modules (`fw.mod`) were missing from the table,
    so docs naming them got no findings; they are read under the package's name, cited at their own paths."""
    project = write_tree(tmp_path / "fw", {
        "__init__.py": "",
        "mod.py": "def hello(name, greeting='hi'):\n    return greeting + name\n",
        "sub/__init__.py": "",
        "sub/deep.py": "def dive(depth):\n    return depth\n",
        "guide.md": """
            # Guide

            ```python
            from fw.mod import hello

            hello("ada", "hey", "!")
            ```

            Call `fw.mod.wave()` to wave, and `fw.sub.deep.dive(3)` to dive.
            """,
    })
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)], "default")
    got = {f.kind: f for f in drift.findings(index.catalog, "default")}
    assert set(got) == {"example", "missing"}
    assert "3 positional arguments; it takes at most 2" in got["example"].message
    assert got["example"].code_path == "mod.py"  # the source's own path, not the package's
    assert "`fw.mod.wave`" in got["missing"].message


def test_a_typescript_example_calling_with_too_many_arguments(tmp_path):
    project = write_tree(tmp_path / "project", {
        "src/widgets.ts": '''
            export interface Widget { kind: string; colour: string }

            export function makeWidget(kind: string, colour?: string): Widget {
              return { kind, colour: colour ?? "red" };
            }

            export function logAll(...items: string[]): void {
              console.log(items);
            }
            ''',
        "docs/widgets.md": '''
            # Widgets

            ```ts
            import { makeWidget, logAll } from "widgets";

            const w = makeWidget("gear", "blue", true);
            logAll("a", "b", "c", "d");
            makeWidget("spring");
            ```
            ''',
    })
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)], "default")
    (f,) = drift.findings(index.catalog, "default")
    assert (f.kind, f.doc_place, f.code_path) == ("example", "docs/widgets.md:6-6", "src/widgets.ts")
    assert "`makeWidget` with 3 arguments; it takes at most 2" in f.message


def test_the_knowledge_tab_table_of_findings(world, tmp_path):
    from ui.knowledge_tab import KnowledgeTab

    tab = KnowledgeTab(make_copilot(world, tmp_path), world.cfg, lambda kb: None, jobs=None)
    rows = tab.drift_table("default")
    assert len(rows) == 7 and tab.drift_table("") == rows  # no KB named: every KB's
    kind, doc, message, code = next(r for r in rows if r[0] == "missing")
    assert doc.startswith("[docs/old.md:5-5](/source?path=") and doc.endswith("&lines=5-5#L5)")  # the viewer
    assert "Runner.run_synchronously" in message and code.startswith("[gadgets/core.py:")
