"""What changed between two indexed versions of a library (indexes/changes.py): real griffe for Python,
real tree-sitter for TypeScript, the real catalog of two versions indexed side by side in one KB."""
from __future__ import annotations

import shutil

import pytest
from support.versions import PY_V1, PY_V2, tagged_repo, two_versions

from copilot.config import load_config
from indexes.api_chunks import chunk_api
from indexes.api_symbols import Param, param_changes
from indexes.build import ingest
from indexes.changes import ChangesError, listing, versions_of, what_changed
from indexes.query_kind import read_release_question
from indexes.retrieve import change_hits
from indexes.search import Index
from ingest.code import chunk_code


@pytest.fixture(scope="module")
def tv(tmp_path_factory):
    return two_versions(tmp_path_factory.mktemp("changes"))


@pytest.fixture(scope="module")
def index(tv):
    return Index(load_config(env={}, overrides={"data_dir": str(tv.data)}))


def by(report, kind: str) -> dict:
    return {c.name: c for c in report.changes if c.kind == kind}


def test_versions_of_a_library_are_its_sources_oldest_first(index, tv):
    versions = versions_of(index, "default", "MyLib")  # names compare as package indexes compare them
    assert [(v.library, v.version) for v in versions] == [("mylib", "v1.0.0"), ("mylib", "v2.0.0")]
    assert [v.root for v in versions] == [str(tv.py[0]), str(tv.py[1])]
    assert {v.library for v in versions_of(index, "default")} == {"mylib", "things"}


def test_python_symbols_added_removed_and_signatures(index):
    report = what_changed(index, "mylib", "1.0.0", "2.0.0")  # "1.0.0" names the tag v1.0.0
    assert (report.from_version, report.to_version, report.kb) == ("v1.0.0", "v2.0.0", "default")
    assert any("griffe" in n for n in report.notes)
    added, removed, sig = by(report, "added"), by(report, "removed"), by(report, "signature")
    # The function renamed: removed and added, each pointing at the other.
    assert "probably renamed to `mylib.new_name`" in removed["mylib.old_name"].summary
    assert removed["mylib.old_name"].breaking
    assert {"mylib.new_name", "mylib.Widget"} <= set(added) and "renamed from `mylib.old_name`" in \
        added["mylib.new_name"].summary
    assert sig["mylib.Store.save"].summary == "parameter `ttl` added (default `None`)"
    assert not sig["mylib.Store.save"].breaking  # a parameter added with a default breaks no caller
    make = sig["mylib.make_widget"]
    assert "parameter `colour` default: `'red'` → `'blue'`" in make.summary
    assert "return type: `dict` → `Widget`" in make.summary
    assert make.breaking  # griffe: a default changed
    assert not any("_helper" in c.name for c in report.changes)  # private: underscore-prefixed
    assert "mylib.Store.purge" not in sig  # only its docstring changed


def test_python_deprecations_docstrings_and_doc_pages(index):
    report = what_changed(index, "mylib", "v1.0.0", "v2.0.0")
    deprecated = by(report, "deprecated")
    assert deprecated["mylib.Store.load"].summary == "decorated @deprecated('Use Store.get instead.')"
    assert deprecated["mylib.Store.purge"].summary == "docstring: .. deprecated:: 2.0"
    assert deprecated["mylib.legacy"].summary == "warns DeprecationWarning when called"
    assert set(deprecated) == {"mylib.Store.load", "mylib.Store.purge", "mylib.legacy"}
    docstrings = by(report, "docstring")
    assert "+Save a value for `ttl` seconds (forever when None)." in docstrings["mylib.Store.save"].summary
    assert set(by(report, "page_added")) == {"docs/caching.md"}
    assert set(by(report, "page_removed")) == {"docs/old.md"}
    assert by(report, "page_changed")["docs/guide.md"].summary == "section 'Guide > Saving' changed"


def test_every_change_cites_both_versions(index, tv):
    report = what_changed(index, "mylib", "1.0.0", "2.0.0")
    save = by(report, "signature")["mylib.Store.save"]
    assert (save.old.version, save.old.path, save.old.start_line, save.old.end_line) == ("v1.0.0", "mylib/core.py",
                                                                                        10, 12)
    assert save.old.link == f"{tv.py[0]}/mylib/core.py#L10-L12" and "def save(self, key, value):" in save.old.text
    assert save.new.link.startswith(f"{tv.py[1]}/mylib/core.py#L") and "ttl=None" in save.new.text
    widget = by(report, "added")["mylib.Widget"]  # added: cites where it would have been in FROM
    assert widget.old_is_context and widget.old.path == "mylib/core.py" and widget.new.path == "mylib/core.py"
    assert "class Widget" in widget.new.text
    gone = by(report, "removed")["mylib.old_name"]
    assert gone.new_is_context and "def old_name" in gone.old.text
    text = listing(report)
    assert "\nAdded (3)\n" in text and "\nRemoved (1)\n" in text and "\nDoc pages changed (1)\n" in text
    assert f"to v2.0.0: mylib/core.py:{save.new.start_line}-{save.new.end_line}  {save.new.link}" in text


def test_typescript_from_symbol_chunks(index):
    report = what_changed(index, "things", "1.0.0", "2.0.0")
    assert any("TypeScript" in n and "less precise" in n for n in report.notes)
    assert set(by(report, "removed")) == {"oldHelper"}
    assert set(by(report, "added")) == {"newHelper", "Runner.runSync"}
    assert "deprecated already: marked @deprecated use run" in by(report, "added")["Runner.runSync"].summary
    sig = by(report, "signature")
    assert sig["makeThing"].summary == "parameter `size` added (default `3`, number)"
    assert "size: number;" in sig["Thing"].summary  # an interface's declaration
    assert not any(c.name == "internal" for c in report.changes)  # not exported
    assert sig["makeThing"].old.link.endswith("/v1/things/src/index.ts#L5-L7")


def test_symbol_narrows_the_report(index):
    report = what_changed(index, "mylib", "1.0.0", "2.0.0", symbol="Store")
    assert report.changes and all(c.name.startswith("mylib.Store.") or c.kind.startswith("page_")
                                  for c in report.changes)
    save = what_changed(index, "mylib", "1.0.0", "2.0.0", symbol="Store.save")
    assert {(c.kind, c.name) for c in save.changes} == {("signature", "mylib.Store.save"),
                                                         ("docstring", "mylib.Store.save"),
                                                         ("page_changed", "docs/guide.md")}  # the page names it
    none = what_changed(index, "mylib", "1.0.0", "2.0.0", symbol="Store.missing")
    assert none.changes == [] and "No changes found between v1.0.0 and v2.0.0 for `Store.missing`." in listing(none)


@pytest.mark.parametrize("args, sentence", [
    (("nolib", "1.0.0", "2.0.0"), "No library 'nolib' is indexed in KB 'default'; the libraries there are mylib, "
                                  "things."),
    (("mylib", "0.9.0", "2.0.0"), "mylib 0.9.0 is not indexed in KB 'default'; its versions are v1.0.0, v2.0.0 — "
                                  "index it with `devcopilot ingest pypi:mylib==0.9.0`"),
    (("mylib", "2.0.0", "v2.0.0"), "FROM and TO are the same version of mylib (v2.0.0); give two different versions, "
                                   "e.g. v1.0.0, v2.0.0."),
])
def test_bad_input_is_one_sentence(index, args, sentence):
    with pytest.raises(ChangesError) as e:
        what_changed(index, *args)
    assert str(e.value) == sentence


def test_an_unknown_kb_is_one_sentence(index):
    with pytest.raises(ChangesError, match=r"^There is no knowledge base 'nope'; the knowledge bases are default\.$"):
        what_changed(index, "mylib", "1.0.0", "2.0.0", kb="nope")


def test_python_read_from_the_chunks_when_a_folder_is_gone(tmp_path):
    a = tagged_repo(tmp_path / "a" / "mylib", PY_V1, "v1.0.0")
    b = tagged_repo(tmp_path / "b" / "mylib", PY_V2, "v2.0.0")
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(a), str(b)], "default")
    shutil.rmtree(a)
    report = what_changed(index, "mylib", "1.0.0", "2.0.0")
    assert any("Python (its folder could not be read)" in n for n in report.notes)
    assert "old_name" in by(report, "removed") and "new_name" in by(report, "added")
    assert "parameter `ttl` added (default `None`)" in by(report, "signature")["Store.save"].summary
    assert "Store.load" in by(report, "deprecated")


def test_typescript_declaration_files_have_symbols():
    text = ("export declare function f(a: string, b?: number): void;\n"
            "export declare class Runner {\n    constructor(name: string);\n    run(a: string): Promise<void>;\n}\n"
            "declare function hidden(): void;\n")
    api = chunk_api(chunk_code(text, "dist/index.d.ts", "typescript"))
    assert set(api) == {"dist/index.d.ts::f", "dist/index.d.ts::Runner", "dist/index.d.ts::Runner.run"}
    assert [(p.name, p.annotation, p.required) for p in api["dist/index.d.ts::f"].params] == \
        [("a", "string", True), ("b", "number", False)]
    assert [p.name for p in api["dist/index.d.ts::Runner"].params] == ["name"]  # the constructor's


def test_parameter_changes():
    old = [Param("a"), Param("b", default="1", required=False), Param("c", "keyword-only", default="2",
                                                                       required=False)]
    new = [Param("x"), Param("new"), Param("b", default="1", required=False),
           Param("c", "positional or keyword", "int", "2", False)]
    assert param_changes(old, new) == [
        "parameter `a` renamed to `x`", "parameter `c` kind: keyword-only → positional or keyword",
        "parameter `c` annotation: none → `int`", "parameter `b` moved 1 position later",
        "parameter `new` added (required)"]


@pytest.mark.parametrize("question, intent, subject, since, until", [
    ("What changed in openai-agents since 0.23?", "release", "openai-agents", "0.23", ""),
    ("what changed in `Runner.run` since 0.23?", "release", "Runner.run", "0.23", ""),
    ("What changed between 1.0.0 and 2.0.0 of mylib?", "release", "mylib", "1.0.0", "2.0.0"),
    ("What's new in click 8.2.0?", "release", "click", "", "8.2.0"),
    ("Is Store.load deprecated?", "deprecation", "Store.load", "", ""),
    ("Is the load method deprecated in v2.0.0?", "deprecation", "load", "", "v2.0.0"),
    ("Has legacy been deprecated?", "deprecation", "legacy", "", ""),
])
def test_questions_about_a_release_are_read(question, intent, subject, since, until):
    q = read_release_question(question)
    assert (q.intent, q.subject, q.since, q.until) == (intent, subject, since, until)


@pytest.mark.parametrize("question", ["How do I save a value?", "What arguments does make_widget take?",
                                      "Why does save fail with a KeyError?"])
def test_other_questions_are_not_about_a_release(question):
    assert read_release_question(question) is None


def test_change_hits_cite_both_versions(index, tv):
    found = change_hits(index, "What changed in make_widget since 1.0.0?", ["default"])
    assert not found.problem and not found.weak
    assert [(h.chunk.title, h.chunk.link) for h in found.hits] == [
        ("mylib.make_widget @ v1.0.0", f"{tv.py[0]}/mylib/core.py#L23-L25"),
        ("mylib.make_widget @ v2.0.0", f"{tv.py[1]}/mylib/core.py#L38-L40")]
    assert "from v1.0.0: [1] mylib/core.py:23-25" in found.listing and "to v2.0.0: [2] mylib/core.py:38-40" \
        in found.listing
    assert "def make_widget(kind, colour=\"blue\") -> Widget:" in found.hits[1].chunk.text


def test_change_hits_say_whether_a_symbol_is_deprecated(index):
    found = change_hits(index, "Is Store.load deprecated?", ["default"])
    assert found.listing.startswith("`mylib.Store.load` (method) is deprecated in mylib v2.0.0: decorated "
                                    "@deprecated('Use Store.get instead.') [1] mylib/core.py:17-20")
    kept = change_hits(index, "Is `Store.save` deprecated?", ["default"])
    assert kept.listing.startswith("`mylib.Store.save` (method) is not marked deprecated in mylib v2.0.0")


def test_change_hits_for_a_version_not_indexed_is_one_sentence(index):
    found = change_hits(index, "what changed in mylib since 0.5?", ["default"])
    assert found.hits == [] and found.problem == ("mylib 0.5 is not indexed in KB 'default'; its versions are v1.0.0, "
                                                  "v2.0.0 — index it with `devcopilot ingest pypi:mylib==0.5`")
    assert change_hits(index, "How do I save a value?", ["default"]) is None
    assert change_hits(index, "what changed in the weather since 1.0.0?", ["default"]) is None  # names nothing indexed


def test_the_code_graph_links_each_versions_definition_to_its_own_file(index, tv):
    """Two versions define Store.save at different lines; each definition links into its own version's folder."""
    from indexes import graph

    answer = graph.references(index, ["default"], "Store.save")
    links = {d.start_line: answer.links.get(d.key, "") for d in answer.definitions}
    assert len(links) == 2, answer.definitions
    folders = {str(tv.py[0]): 0, str(tv.py[1]): 0}
    for line, link in links.items():
        assert link.endswith(f"#L{line}-L{line + 1}") or f"#L{line}-" in link, (line, link)
        folders = {f: n + (f in link) for f, n in folders.items()}
    assert sorted(folders.values()) == [1, 1], links
    assert sorted(answer.versions.values()) == ["mylib v1.0.0", "mylib v2.0.0"]  # and say which version is which
    assert "KB default, mylib v1.0.0)" in graph.describe(answer)
