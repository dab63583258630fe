"""Docs checked against the code of their own version (indexes/doc_links.py, indexes/drift.py): two versions
of a small library, each a git repository tagged with its version, and a folder of another library, indexed
side by side in one KB. Each version's doc passages are checked against and linked to that version's code; a
passage both versions share is checked at each; every door names the version of a finding; an answer
citing a shared passage notes only the findings of the version it cites. Real griffe, a real ingest and
catalog, the real CLI, the real MCP client and the chat."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from support.corpus import write_tree
from support.git import commit_all, git
from support.versions import tagged_repo

from copilot.chat import Copilot
from copilot.config import load_config
from copilot.events import END
from indexes import drift
from indexes.build import ingest
from indexes.doc_links import links_of
from indexes.search import Index
from indexes.versions import VersionChoice
from ui.cli import main

REPO = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}.items()
       if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}

V1 = {
    "shapes/__init__.py": '''
        """Shapes: boxes."""
        from shapes.core import Box, make_box

        __all__ = ["Box", "make_box"]
        ''',
    "shapes/core.py": '''
        """Boxes."""


        class Box:
            """A box."""

            def __init__(self, size):
                self.size = size

            def paint(self, colour):
                """Paint the box."""
                return colour

            def fold(self):
                """Fold the box flat."""
                return self


        def make_box(size):
            """Make a box of the given size."""
            return Box(size)
        ''',
    "docs/guide.md": '''
        # Guide

        Make one with `make_box(3)`, paint it with `Box.paint()` and read it back with `Box.colour()`.
        ''',
    "docs/shared.md": '''
        # Shipping

        Boxes ship flat: call `Box.fold()` first.
        ''',
}

V2 = {
    "shapes/__init__.py": V1["shapes/__init__.py"],
    "shapes/core.py": '''
        """Boxes, coloured."""

        DEFAULT_COLOUR = "red"


        class Box:
            """A box, coloured."""

            def __init__(self, size, colour=DEFAULT_COLOUR):
                self.size = size
                self.colour_name = colour

            def colour(self):
                """The box's colour."""
                return self.colour_name

            def flatten(self):
                """Flatten the box."""
                return self


        def make_box(size, colour="red"):
            """Make a box of the given size and colour."""
            return Box(size, colour)
        ''',
    "docs/guide.md": '''
        # Guide

        Make one with `make_box(3, colour="blue")`; before colours, `Box.paint()` did it.
        ''',
    "docs/shared.md": V1["docs/shared.md"],
}

# Another library, indexed once: its docs are checked against the newest of each library, naming no version.
TOOLS = {
    "tools/__init__.py": '''
        """Tools."""


        def run_tool(name):
            """Run a tool by name."""
            return name
        ''',
    "README.md": '''
        # Tools

        Run one with `run_tool("saw", 2)`.
        ''',
}


def build(root: Path) -> dict:
    v1 = tagged_repo(root / "v1" / "shapes", V1, "v1.0.0")
    v2 = tagged_repo(root / "v2" / "shapes", V2, "v2.0.0")
    tools = write_tree(root / "tools", TOOLS)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data")})
    index = Index(cfg)
    ingest(index, [str(v1), str(v2), str(tools)], "default")
    return {"root": root, "cfg": cfg, "index": index, "v1": v1, "v2": v2}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return build(tmp_path_factory.mktemp("driftver"))


def sid(world: dict, folder: Path) -> str:
    return next(s["id"] for s in world["index"].catalog.sources("default") if s["root"] == str(folder))


def held(world: dict, folder: Path, path: str, line: int | None = None) -> str:
    """The id of the chunk of `path` the source read from `folder` holds (the one holding `line`)."""
    rows = world["index"].catalog.db.execute(
        "SELECT c.id, c.start_line, c.end_line FROM members m JOIN chunks c ON c.kb = m.kb AND c.id = m.chunk_id "
        "WHERE m.kb='default' AND m.source_id=? AND c.path=? ORDER BY c.end_line - c.start_line",
        (sid(world, folder), path)).fetchall()
    return next(cid for cid, start, end in rows if line is None or start <= line <= end)


def found(world: dict, path: str) -> list[drift.Finding]:
    return [f for f in drift.findings(world["index"].catalog, "default") if f.doc_path == path]


def test_a_name_one_version_lacks_is_flagged_at_that_version_only(world):
    by_version = {f.version: f for f in found(world, "docs/guide.md")}
    assert set(by_version) == {"v1.0.0", "v2.0.0"}
    old, new = by_version["v1.0.0"], by_version["v2.0.0"]
    # v2 removed Box.paint, which v1 still has: flagged for v2's guide, not v1's (which names it too).
    assert new.kind == "missing" and "`Box.paint`" in new.message and new.library == "shapes"
    assert "`Box.colour`" in old.message and "paint" not in old.message  # v1 has no Box.colour yet
    assert (old.doc_id, new.doc_id) == (held(world, world["v1"], "docs/guide.md"),
                                        held(world, world["v2"], "docs/guide.md"))
    # v2's guide calls make_box with v2's keyword: checked against v2's signature, not v1's.
    assert not any("colour=" in f.message for f in found(world, "docs/guide.md"))


def test_a_passage_both_versions_share_is_checked_at_each(world):
    shared = held(world, world["v1"], "docs/shared.md")
    assert shared == held(world, world["v2"], "docs/shared.md")  # one chunk, both versions hold it
    (f,) = found(world, "docs/shared.md")  # Box.fold: v1 has it, v2 does not
    assert (f.kind, f.version, f.doc_id) == ("missing", "v2.0.0", shared) and "`Box.fold`" in f.message
    # Cited as v2 holds it: v2's Box, at v2's lines.
    lines = (world["v2"] / f.code_path).read_text().split("\n")
    assert lines[f.code_start - 1].strip() == "class Box:"
    assert f.code_link == drift.anchored(world["index"].catalog.db.execute(
        "SELECT link FROM members WHERE kb='default' AND source_id=? AND chunk_id=?",
        (sid(world, world["v2"]), held(world, world["v2"], "shapes/core.py", f.code_start))).fetchone()[0],
        f.code_start, f.code_end)


def test_links_go_to_the_code_of_the_passage_version(world):
    catalog = world["index"].catalog
    for folder in (world["v1"], world["v2"]):
        line = (folder / "shapes/core.py").read_text().split("\n").index("def make_box(size" + (
            "):" if folder == world["v1"] else ', colour="red"):')) + 1
        code = held(world, folder, "shapes/core.py", line)
        doc = held(world, folder, "docs/guide.md")
        assert {ln.code_id for ln in links_of(catalog, "default", doc) if ln.symbol.endswith("make_box")} == {code}
    assert held(world, world["v1"], "docs/guide.md") != held(world, world["v2"], "docs/guide.md")


def test_another_librarys_docs_name_no_version(world):
    (f,) = found(world, "README.md")
    assert f.kind == "keyword" and "2 positional arguments" in f.message
    assert f.version == "" and "version" not in f.to_json() and "library" not in f.to_json()


def test_cli_names_the_version_and_narrows_to_one(world, capsys):
    data = str(world["cfg"].data_dir)
    assert main(["--data-dir", data, "drift"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("KB 'default': 4 doc passage findings (3 missing, 1 keyword)")
    assert "[missing] docs/shared.md:3-3 (shapes v2.0.0)  `Box.fold()`" in text
    assert "[keyword] README.md:3-3  `run_tool(" in text  # one version of its library: as before
    assert main(["--data-dir", data, "drift", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(f.get("version", "") for f in out["findings"]) == ["", "v1.0.0", "v2.0.0", "v2.0.0"]
    assert main(["--data-dir", data, "drift", "--markdown"]) == 0
    assert "| missing | [docs/shared.md:3-3](" in (md := capsys.readouterr().out) and ") (shapes v2.0.0) |" in md
    assert main(["--data-dir", data, "drift", "--version", "1.0.0", "--json"]) == 0  # v1's, and the other library's
    narrowed = json.loads(capsys.readouterr().out)["findings"]
    assert sorted((f["doc_path"], f.get("version", "")) for f in narrowed) == [("README.md", ""),
                                                                               ("docs/guide.md", "v1.0.0")]
    assert main(["--data-dir", data, "drift", "--version", "v2.0.0", "--library", "shapes"]) == 0
    assert "3 doc passage findings" in capsys.readouterr().out
    assert main(["--data-dir", data, "drift", "--version", "0.9"]) == 0  # not indexed: said, the newest used
    io = capsys.readouterr()
    assert "shapes 0.9 is not indexed" in io.err and "3 doc passage findings" in io.out


def test_mcp_check_docs_names_the_version(world):
    async def call():
        server = StdioServerParameters(command=sys.executable, env=ENV, cwd=str(REPO),
                                       args=[str(REPO / "devcopilot.py"), "--data-dir", str(world["cfg"].data_dir),
                                             "mcp"])
        async with Client(server) as c:
            return (await c.call_tool("check_docs", {"path": "docs/shared"}),
                    await c.call_tool("check_docs", {"version": "1.0.0", "library": "shapes"}))

    shared, old = asyncio.run(call())
    assert "[missing] docs/shared.md:3-3 (KB default, shapes v2.0.0): " in shared.content[0].text
    assert shared.structured_content["findings"][0]["version"] == "v2.0.0"
    assert sorted(f["doc_path"] for f in old.structured_content["findings"]) == ["README.md", "docs/guide.md"]


def test_the_knowledge_tab_names_the_version(world):
    from ui.knowledge_tab import KnowledgeTab

    copilot = Copilot(world["cfg"], index=world["index"])
    try:
        docs = sorted(r[1] for r in KnowledgeTab(copilot, world["cfg"], lambda kb: None, jobs=None).drift_table())
    finally:
        copilot.close()
    assert docs[0].startswith("[README.md:3-3](") and docs[0].endswith(")")
    assert docs[-1].startswith("[docs/shared.md:3-3](") and docs[-1].endswith(") (shapes v2.0.0)")


def test_an_answer_notes_a_shared_passage_only_at_the_version_flagged(world):
    copilot = Copilot(world["cfg"], index=world["index"])
    try:
        for version, flagged in (("1.0.0", False), ("2.0.0", True)):
            events = list(copilot.chat("How do boxes ship flat?", copilot.new_session(), "Tutoring", kb="default",
                                       versions=VersionChoice.parse(version, "shapes")))
            end = next(e for e in events if e.type == END and e.assistant == "Tutoring")
            shared = next(s for s in end.sources if s.path == "docs/shared.md")
            assert (f"Note: [{shared.n}] may be out of date" in end.text) is flagged, version
    finally:
        copilot.close()


def test_a_passage_no_longer_shared_loses_the_other_versions_finding(tmp_path):
    """v2's shipping page edited (and nothing of its code): the passage v1 keeps is checked again, at v1 only."""
    w = build(tmp_path)
    shared = held(w, w["v1"], "docs/shared.md")
    assert [f.version for f in found(w, "docs/shared.md")] == ["v2.0.0"]
    (w["v2"] / "docs/shared.md").write_text("# Shipping\n\nBoxes ship flat: call `Box.flatten()` first.\n")
    commit_all(w["v2"], "flatten")
    git("tag", "-f", "v2.0.0", cwd=w["v2"])
    ingest(w["index"], [str(w["v2"])], "default")
    assert held(w, w["v2"], "docs/shared.md") != shared  # v2 holds a passage of its own now
    assert found(w, "docs/shared.md") == []  # v1 has Box.fold, v2 Box.flatten
    assert drift.findings_of(w["index"].catalog, "default", [shared]) == {}
