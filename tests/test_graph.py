"""The code graph: references and calls read from the real tree-sitter parsers at ingest, stored in the real
catalog with the chunks, resolved across files through imports and aliases (indexes/graph.py), kept
incremental, and used by retrieve() and the offline chat for "who calls X?" and "what does X call?"; with
two versions of a library in one KB, answered at the version chosen."""
from __future__ import annotations

import copy
import textwrap

import pytest
from support.corpus import write_tree
from support.graph_project import CODE_FILES, KIT_SITES, PROJECT, two_kits
from support.packages import declare_distribution

from copilot.chat import Copilot
from copilot.config import load_config
from indexes import graph
from indexes.build import ingest
from indexes.query_kind import GraphQuestion, graph_question
from indexes.retrieve import retrieve
from indexes.search import Index
from indexes.versions import VersionChoice
from ingest.refs_python import python_package


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph")
    project = write_tree(root / "project", PROJECT)
    index = Index(load_config(env={}, overrides={"data_dir": str(root / "data")}))
    summary = ingest(index, [str(project)])
    assert summary.unparsed == 0 and summary.regraphed == 0
    return index, project


def sites(answer: graph.GraphAnswer, resolved: bool | None = True) -> set[tuple[str, int, str, str]]:
    return {(s.path, s.line, s.caller, s.kind) for s in answer.sites if resolved is None or s.resolved == resolved}


# -- per language ------------------------------------------------------------------------------------------
def test_python_resolves_aliases_relative_imports_reexports_self_and_super(indexed):
    index, _ = indexed
    checkout = graph.references(index, ["default"], "Cart.checkout")
    assert [d.qualified for d in checkout.definitions] == ["shop.core.cart.Cart.checkout"]
    assert sites(checkout) == {
        ("src/shop/app.py", 9, "main", "call"),  # c = ShoppingCart(): the package re-exports Cart under that name
        ("src/shop/app.py", 10, "main", "call"),  # cart: Cart, an annotated parameter
        ("src/shop/app.py", 21, "Special.checkout", "call"),  # super().checkout()
    }
    # total: through `from . import pricing as pr` and the module-qualified `shop.pricing.total`
    assert sites(graph.references(index, ["default"], "total")) == {
        ("src/shop/core/cart.py", 19, "Cart.checkout", "call"), ("src/shop/app.py", 11, "main", "call")}
    # an inherited method: c.describe() on a Cart is Base.describe
    assert ("src/shop/app.py", 9, "main", "call") in sites(graph.references(index, ["default"], "Base.describe"))
    cart = sites(graph.references(index, ["default"], "shop.core.cart.Cart"))
    assert {("src/shop/__init__.py", 1, "", "import"), ("src/shop/app.py", 3, "", "import"),
            ("src/shop/app.py", 6, "main", "type"), ("src/shop/app.py", 7, "main", "call"),
            ("src/shop/app.py", 19, "Special", "inherit")} <= cart
    discount = graph.references(index, ["default"], "discount")
    assert sites(discount) == {("src/shop/core/cart.py", 2, "", "import"),
                               ("src/shop/core/cart.py", 20, "Cart.checkout", "call")}


def test_typescript_and_javascript_follow_named_default_namespace_imports_and_reexports(indexed):
    index, _ = indexed
    add = graph.references(index, ["default"], "add")
    assert [d.qualified for d in add.definitions] == ["web/src/util/math:add"]
    assert {("web/src/app.ts", 12, "compute", "call"),  # plus(1, 2): `export { add as plus }` in index.ts
            ("web/src/app.ts", 13, "compute", "call"),  # m.add(): a namespace import of './util/math.js'
            ("web/src/legacy.js", 4, "legacy", "call"),  # const { add } = require('./util/math')
            ("web/src/util/math.ts", 8, "Calc.run", "call"),
            ("web/src/index.ts", 2, "", "export")} <= sites(add)
    calc = sites(graph.references(index, ["default"], "Calc"))
    assert ("web/src/app.ts", 4, "Scientific", "inherit") in calc  # extends m.Calc
    assert ("web/src/app.ts", 11, "compute", "call") in calc  # new Calculator(): the default export of index.ts
    assert sites(graph.references(index, ["default"], "Calc.run")) == {
        ("web/src/app.ts", 6, "Scientific.run", "call"),  # super.run()
        ("web/src/app.ts", 12, "compute", "call")}  # c.run() on `const c = new Calculator()`


def test_go_java_and_rust_resolve_package_qualified_and_imported_calls(indexed):
    index, _ = indexed
    assert sites(graph.references(index, ["default"], "New")) == {("cmd/app/main.go", 6, "main", "call")}
    put = graph.references(index, ["default"], "Store.Put")
    assert sites(put) == {("cmd/app/fill.go", 6, "fill", "call")}  # s *st.Store
    assert sites(put, resolved=False) == {("cmd/app/main.go", 7, "main", "call")}  # s := st.New(): type unknown
    assert sites(graph.references(index, ["default"], "Store.log")) == {("pkg/store/store.go", 11, "Store.Put", "call")}

    assert sites(graph.references(index, ["default"], "Store.save")) == {
        ("java/com/acme/app/App.java", 9, "App.run", "call")}  # a typed field, imported class
    helper = sites(graph.references(index, ["default"], "Helper"))
    assert ("java/com/acme/app/App.java", 5, "App", "inherit") in helper  # same package, no import
    assert ("java/com/acme/app/App.java", 10, "App.run", "call") in \
        sites(graph.references(index, ["default"], "Helper.help"))

    assert sites(graph.references(index, ["default"], "Store.new")) == {("rs/src/main.rs", 5, "main", "call")}
    assert sites(graph.references(index, ["default"], "Store.put")) == {("rs/src/main.rs", 6, "main", "call")}


def test_what_cannot_be_resolved_is_matched_by_name_and_flagged(indexed):
    index, _ = indexed
    checkout = graph.references(index, ["default"], "Cart.checkout")
    unresolved = [s for s in checkout.sites if not s.resolved]
    assert [(s.path, s.line, s.target) for s in unresolved] == [("src/shop/app.py", 15, ".checkout")]  # thing.
    # A member call is no reference to a top-level function of that name, nor a bare call to a method.
    assert all(s.resolved for s in graph.references(index, ["default"], "discount").sites)
    text = graph.describe(checkout)
    assert "1 matched by name only (unresolved)" in text and text.index("Unresolved") > text.index("in main")
    with pytest.raises(graph.GraphError, match="No definition of 'checkout_all'"):
        graph.references(index, ["default"], "checkout_all")  # called, never defined: nothing is invented


def test_callers_to_a_depth_grouped_by_file_each_with_a_citation(indexed):
    index, project = indexed
    answer = graph.callers(index, ["default"], "discount", depth=3)
    by_depth = {(s.depth, s.caller, s.via.rsplit(".", 1)[-1]) for s in answer.resolved}
    assert (1, "Cart.checkout", "") in by_depth
    assert (2, "main", "checkout") in by_depth and (2, "Special.checkout", "checkout") in by_depth
    assert (3, "run_twice", "main") in by_depth  # main(Cart()) in run_twice
    assert all(s.kind != "import" for s in answer.sites)  # callers, not importers
    files = answer.by_file()
    assert list(files) == ["src/shop/core/cart.py", "src/shop/app.py"]
    for s in answer.sites:  # each cites the chunk holding its line, linked to the line
        assert s.chunk is not None and s.chunk.start_line <= s.line <= s.chunk.end_line
        assert s.link == f"{project / s.path}#L{s.line}-L{s.line}"
        assert s.text == (project / s.path).read_text().splitlines()[s.line - 1].strip()
    assert graph.callers(index, ["default"], "discount", depth=1).to_json()["resolved"] == 1


def test_callees_list_what_a_function_calls_resolved_or_flagged(indexed):
    index, _ = indexed
    assert {d.language for d in graph.callees(index, ["default"], "main").definitions} == {"python", "go", "rust"}
    answer = graph.callees(index, ["default"], "shop.app.main")  # one of the three mains, by its module
    resolved = {(s.line, s.target) for s in answer.resolved}
    assert resolved == {(7, "shop.core.cart.Cart"), (8, "shop.core.cart.Cart.add"),
                        (9, "shop.core.cart.Cart.checkout"), (9, "shop.core.cart.Base.describe"),
                        (10, "shop.core.cart.Cart.checkout"), (11, "shop.core.pricing.total")}
    assert "print" not in {s.target for s in answer.sites}  # builtins and other packages are left out
    deeper = graph.callees(index, ["default"], "shop.app.main", depth=2)
    assert (2, "shop.core.pricing.discount") in {(s.depth, s.target) for s in deeper.resolved}


# -- a folder that is itself a package ------------------------------------------------------------------------
# `devcopilot ingest src/fw`: an `__init__.py` at the folder's top, so its code imports `fw.mod`, absolutely,
# or `.mod`, relatively. Paths stay relative to the folder given; the modules are named under the package.
FW = {
    "__init__.py": """
        from .mod import helper as helper
        """,
    "mod.py": """
        def helper(x):
            return x + 1
        """,
    "absolute.py": """
        from fw.mod import helper

        def first():
            return helper(1)
        """,
    "dotted.py": """
        import fw.mod

        def second():
            return fw.mod.helper(2)
        """,
    "relative.py": """
        from .mod import helper

        def third():
            return helper(3)
        """,
    "sub/__init__.py": "",
    "sub/deep.py": """
        from ..mod import helper
        from fw import helper as again

        def fourth():
            return helper(4) + again(4)
        """,
}
FW_CALLERS = {("absolute.py", 4, "first", "call"), ("dotted.py", 4, "second", "call"),
              ("relative.py", 4, "third", "call"), ("sub/deep.py", 5, "fourth", "call")}


def test_a_folder_that_is_a_package_names_its_modules_under_it_so_absolute_imports_resolve(tmp_path):
    project = write_tree(tmp_path / "fw", FW)
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)])
    for name in ("helper", "mod.helper", "fw.mod.helper"):  # the short forms and the full one
        answer = graph.callers(index, ["default"], name)
        assert sites(answer) == FW_CALLERS, name
        assert [(d.qualified, d.path) for d in answer.definitions] == [("fw.mod.helper", "mod.py")], name
        assert not answer.unresolved, name
    assert sites(graph.references(index, ["default"], "fw.mod.helper"), None) >= {
        ("__init__.py", 1, "", "import"), ("absolute.py", 1, "", "import"), ("relative.py", 1, "", "import")}
    assert {c.path for c in index.catalog.file_chunks("default", "absolute.py")} == {"absolute.py"}
    # a package given inside another is named under it; a folder that is no package, under nothing
    assert (python_package(project / "sub"), python_package(project), python_package(tmp_path)) == \
        ("fw.sub", "fw", "")


def test_a_folder_that_becomes_a_package_has_its_graph_made_again(tmp_path):
    project = write_tree(tmp_path / "fw", {k: v for k, v in FW.items() if k != "__init__.py"})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)])
    assert ("absolute.py", 4, "first", "call") not in sites(graph.callers(index, ["default"], "helper"))

    write_tree(project, {"__init__.py": ""})  # one new file; the others' modules are named anew
    summary = ingest(index, [str(project)])
    assert summary.changed == 1 and summary.regraphed == len(FW) - 1
    assert {("absolute.py", 4, "first", "call"), ("dotted.py", 4, "second", "call")} <= \
        sites(graph.callers(index, ["default"], "helper"))
    again = ingest(index, [str(project)])
    assert (again.changed, again.regraphed) == (0, 0)


# -- src layout: a module is named as Python imports it -------------------------------------------------------
# The package under `src/` (which holds no `__init__.py`): `src/shop/core/pricing.py` is `shop.core.pricing`.
# A file whose folder is no package (a script, a test) keeps its path's name. `acme.plugins` is a namespace
# package (no `__init__.py` above `store`): its modules are named from `store`, its imports still resolve.
SRC_LAYOUT = {
    "src/shop/__init__.py": '''
        """The shop."""
        ''',
    "src/shop/core/__init__.py": '''
        """Its core."""
        ''',
    "src/shop/core/pricing.py": """
        def discount(amount):
            return amount * 0.9
        """,
    "src/shop/core/cart.py": """
        from .pricing import discount

        def checkout(amount):
            return discount(amount)
        """,
    "examples/basic/hello.py": """
        from shop.core.pricing import discount

        def hello():
            return discount(10)
        """,
    "examples/basic/run.py": """
        from hello import hello

        def main():
            return hello()
        """,
    "tests/test_pricing.py": """
        import shop.core.pricing as pricing

        def test_discount():
            assert pricing.discount(10) == 9
        """,
    "src/acme/plugins/store/__init__.py": "",
    "src/acme/plugins/store/api.py": """
        def save(item):
            return item
        """,
    "app/main.py": """
        from acme.plugins.store.api import save

        def run():
            return save(1)
        """,
}
DISCOUNT_CALLERS = {("src/shop/core/cart.py", 4, "checkout", "call"), ("examples/basic/hello.py", 4, "hello", "call"),
                    ("tests/test_pricing.py", 4, "test_discount", "call")}


def test_a_src_layout_names_its_modules_as_imported_and_scripts_by_their_path(tmp_path):
    project = write_tree(tmp_path / "project", SRC_LAYOUT)
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)])
    for name in ("discount", "pricing.discount", "shop.core.pricing.discount"):
        answer = graph.callers(index, ["default"], name)
        assert [(d.qualified, d.path) for d in answer.definitions] == \
            [("shop.core.pricing.discount", "src/shop/core/pricing.py")], name
        assert sites(answer) == DISCOUNT_CALLERS and not answer.unresolved, name
    # its path's name still finds it, as it finds a namespace package's module below
    assert [d.qualified for d in graph.definitions(index, ["default"], "src.shop.core.pricing.discount")] == \
        ["shop.core.pricing.discount"]
    # scripts and tests: their folders are no packages, so their paths name them (no two scripts collide)
    hello = graph.callees(index, ["default"], "hello")
    assert [d.qualified for d in hello.definitions] == ["examples.basic.hello.hello"]
    assert {s.target for s in hello.resolved} == {"shop.core.pricing.discount"}
    assert [d.qualified for d in graph.definitions(index, ["default"], "test_discount")] == \
        ["tests.test_pricing.test_discount"]
    # what breaks if discount changes: a script importing its sibling by its bare name is found too
    deep = graph.callers(index, ["default"], "shop.core.pricing.discount", depth=2)
    assert (2, "main", "examples.basic.hello.hello") in {(s.depth, s.caller, s.via) for s in deep.resolved}
    # a namespace package's module is named from its topmost package, and imported by its full name
    save = graph.callers(index, ["default"], "acme.plugins.store.api.save")
    assert [d.qualified for d in save.definitions] == ["store.api.save"]
    assert sites(save) == {("app/main.py", 4, "run", "call")}


def test_an_in_memory_source_knows_its_packages_from_its_own_files(tmp_path):
    from llama_index.core import Document

    from ingest.llamaindex import documents_source

    docs = [Document(text=textwrap.dedent(text).lstrip("\n"), metadata={"file_path": path})
            for path, text in SRC_LAYOUT.items() if path.startswith(("src/shop/", "examples/"))]
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [documents_source(docs, "shop")])
    answer = graph.callers(index, ["default"], "shop.core.pricing.discount")
    assert [d.qualified for d in answer.definitions] == ["shop.core.pricing.discount"]
    assert sites(answer) == {("src/shop/core/cart.py", 4, "checkout", "call"),
                             ("examples/basic/hello.py", 4, "hello", "call")}
    assert [d.qualified for d in graph.definitions(index, ["default"], "hello")] == ["examples.basic.hello.hello"]


def test_an_init_py_added_to_a_subfolder_names_its_modules_anew(tmp_path):
    shop = {k: v for k, v in SRC_LAYOUT.items() if k.startswith(("src/shop/", "examples/"))}
    project = write_tree(tmp_path / "project", {k: v for k, v in shop.items() if k != "src/shop/__init__.py"})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)])
    qualified = lambda: [d.qualified for d in graph.definitions(index, ["default"], "discount")]  # noqa: E731
    assert qualified() == ["core.pricing.discount"]  # `src/shop/` is no package yet: `core` is the top one

    write_tree(project, {"src/shop/__init__.py": ""})  # one new file; the others' modules are named anew
    summary = ingest(index, [str(project)])
    assert summary.changed == 1 and summary.regraphed == len(shop) - 1
    assert qualified() == ["shop.core.pricing.discount"]
    assert ("examples/basic/hello.py", 4, "hello", "call") in sites(graph.callers(index, ["default"], "discount"))
    again = ingest(index, [str(project)])
    assert (again.changed, again.regraphed) == (0, 0)

    (project / "src/shop/__init__.py").unlink()  # and back
    summary = ingest(index, [str(project)])
    assert (summary.removed, summary.regraphed) == (1, len(shop) - 1)
    assert qualified() == ["core.pricing.discount"]


def test_an_installed_package_keeps_its_import_paths_namespace_packages_included(tmp_path, monkeypatch):
    # site-packages is where imports start: `nsco/cloud/` (no `__init__.py`) is part of the name
    site = write_tree(tmp_path / "site", {"nsco/cloud/store/__init__.py": "",
                                          "nsco/cloud/store/api.py": "def save(item):\n    return item\n"})
    declare_distribution(site, "nsco-cloud-store")
    monkeypatch.syspath_prepend(str(site))
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, ["pkg:nsco.cloud.store"])
    assert [d.qualified for d in graph.definitions(index, ["default"], "save")] == ["nsco.cloud.store.api.save"]


# -- incremental, like the chunks -----------------------------------------------------------------------------
def test_a_changed_file_has_its_references_replaced_and_a_removed_file_its_references_gone(tmp_path):
    project = write_tree(tmp_path / "project", {k: v for k, v in PROJECT.items() if k.startswith("src/")})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)])
    before = sites(graph.references(index, ["default"], "total"))
    assert ("src/shop/app.py", 11, "main", "call") in before

    app = project / "src/shop/app.py"
    app.write_text(app.read_text().replace("return shop.pricing.total([])", "return 0\n\n\ndef later():\n"
                                                                              "    return shop.pricing.total([1])"))
    summary = ingest(index, [str(project)])
    assert summary.changed == 1 and summary.regraphed == 0
    after = sites(graph.references(index, ["default"], "total"))
    assert ("src/shop/app.py", 11, "main", "call") not in after
    assert ("src/shop/app.py", 15, "later", "call") in after
    assert ("src/shop/core/cart.py", 19, "Cart.checkout", "call") in after  # the unchanged file's stay

    (project / "src/shop/core/cart.py").unlink()
    ingest(index, [str(project)])
    for table in ("graph_refs", "graph_defs", "graph_files"):
        assert not index.catalog.db.execute(f"SELECT COUNT(*) FROM {table} WHERE path='src/shop/core/cart.py'") \
            .fetchone()[0]
    with pytest.raises(graph.GraphError):
        graph.references(index, ["default"], "Cart.checkout")
    assert sites(graph.references(index, ["default"], "total")) == {("src/shop/app.py", 15, "later", "call")}


def test_a_kb_indexed_without_the_graph_gets_it_on_the_next_ingest_without_reembedding(tmp_path):
    project = write_tree(tmp_path / "project", PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path / "data")})
    off = copy.deepcopy(cfg)
    off.ingest.graph = False
    first = ingest(Index(off), [str(project)])
    index = Index(off)
    assert index.catalog.graph_counts("default")["references"] == 0
    with pytest.raises(graph.GraphError, match=r"has no code graph yet: .*devcopilot ingest SOURCE --kb default` "
                                               r"with `\[ingest\] graph = true`"):
        graph.references(index, ["default"], "total")

    index = Index(cfg)
    summary = ingest(index, [str(project)])
    assert (summary.changed, summary.embedded, summary.regraphed) == (0, 0, CODE_FILES)
    assert f"code graph made for {CODE_FILES} unchanged code files" in summary.line()
    assert index.catalog.count_chunks("default") == first.total_chunks
    assert ("src/shop/core/cart.py", 19, "Cart.checkout", "call") in sites(graph.references(index, ["default"],
                                                                                            "total"))
    again = ingest(index, [str(project)])
    assert (again.changed, again.regraphed) == (0, 0)

    # turned off again: the graph is dropped, and the chunks stay
    ingest(Index(off), [str(project)])
    assert Index(off).catalog.graph_counts("default") == {"files": 0, "unparsed": 0, "definitions": 0,
                                                          "references": 0}
    assert Index(off).catalog.count_chunks("default") == first.total_chunks


def test_code_that_does_not_parse_is_skipped_and_counted_and_nothing_is_lost(tmp_path):
    project = write_tree(tmp_path / "project", {k: v for k, v in PROJECT.items() if k.startswith("src/")})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)])
    assert sites(graph.references(index, ["default"], "discount"))

    broken = project / "src/shop/core/cart.py"
    broken.write_text(broken.read_text().replace("def checkout(self):", "def checkout(self:"))
    summary = ingest(index, [str(project)])
    assert summary.unparsed == 1 and "1 code files that do not parse left out of the code graph" in summary.line()
    assert summary.skipped == {}  # its chunks are indexed as before
    chunks = index.catalog.file_chunks("default", "src/shop/core/cart.py")
    assert chunks and any("def checkout(self:" in c.text for c in chunks)
    assert index.catalog.graph_counts("default")["unparsed"] == 1
    assert sites(graph.references(index, ["default"], "total")) == {("src/shop/app.py", 11, "main", "call")}
    answer = graph.references(index, ["default"], "total")
    assert answer.unparsed == 1 and "1 code files of this knowledge base do not parse" in graph.describe(answer)


# -- the question read once, and the chat -------------------------------------------------------------------------
@pytest.mark.parametrize("question,asked", [
    ("Who calls `Cart.checkout`?", GraphQuestion("callers", "Cart.checkout")),
    ("where is discount used?", GraphQuestion("callers", "discount")),
    ("callers of Store::new", GraphQuestion("callers", "Store.new")),
    ("What breaks if I change total?", GraphQuestion("callers", "total", 3)),
    ("what does main call?", GraphQuestion("callees", "main")),
    ("谁调用了 discount？", GraphQuestion("callers", "discount")),
    ("who calls it?", None),
    ("How do I call the API?", None),
    ("what does the agent use for memory?", None),
])
def test_the_question_says_when_it_asks_the_graph(question, asked):
    assert graph_question(question) == asked


def test_retrieve_cites_the_call_sites_for_who_calls_and_searches_otherwise(indexed):
    index, _ = indexed
    found = retrieve(index, "who calls discount?", ["default"], kind="code", k=6)
    assert found.graph is not None and not found.weak
    assert [(h.chunk.path, h.chunk.symbol) for h in found.hits] == [("src/shop/core/cart.py", "Cart.checkout")]
    callees = retrieve(index, "what does Cart.checkout call?", ["default"], kind="code", k=6)
    assert [h.chunk.symbol for h in callees.hits][:1] == ["Cart.checkout"]
    assert {"total", "discount"} <= {h.chunk.symbol for h in callees.hits}
    assert retrieve(index, "who calls nothing_like_this?", ["default"], k=6).graph is None  # no such definition
    assert retrieve(index, "who calls discount?", ["default"], kind="doc", k=6).graph is None  # docs only


def test_the_offline_chat_answers_who_calls_with_the_call_sites(indexed, tmp_path):
    index, project = indexed
    cfg = copy.deepcopy(index.cfg)
    cfg.data_dir = tmp_path
    copilot = Copilot(cfg, index)
    events = list(copilot.chat("Who calls Cart.checkout?", copilot.new_session()))
    end = [e for e in events if e.type == "end"]
    assert [e.assistant for e in end] == ["Guide", "Coding"]
    text, sources = end[-1].text, end[-1].sources
    assert "No language model is configured" in text
    assert "**Callers of `Cart.checkout`**" in text
    main = next(s for s in sources if s.title == "main")
    assert f"- **[{main.n}]** [`src/shop/app.py` line 10]({project}/src/shop/app.py#L10-L10) in `main`: " \
           "`cart.checkout()`" in text
    assert "Matched by name only" in text and "`src/shop/app.py` line 15" in text  # thing.checkout(), flagged
    assert {s.title for s in sources} >= {"main", "Special.checkout"}



# -- versions: two versions of a library side by side in one KB --------------------------------------------
@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    data, v1, v2 = two_kits(tmp_path_factory.mktemp("kits"))
    return Index(load_config(env={}, overrides={"data_dir": str(data)})), v1, v2


def at(index: Index, version: str | None) -> dict:
    """`within` for a version choice, as the doors make it (None: the newest)."""
    return {"default": index.scope("default", VersionChoice.parse(version) if version else None).sources}


def test_the_graph_answers_at_the_version_chosen_and_the_newest_by_default(kits):
    index, v1, v2 = kits
    for version, folder, want in (("1.0.0", v1, "v1.0.0"), (None, v2, "v2.0.0"), ("v2.0.0", v2, "v2.0.0")):
        answer = graph.callers(index, ["default"], "store", within=at(index, version))
        assert [answer.versions[d.key] for d in answer.definitions] == [f"kit {want}"], version
        assert answer.links[answer.definitions[0].key].startswith(str(folder)), version
        assert {(s.path, s.line, s.caller) for s in answer.sites} == KIT_SITES[want], version
        assert all(s.link.startswith(str(folder)) for s in answer.sites), version
        refs = graph.references(index, ["default"], "store", within=at(index, version))
        assert {(s.path, s.line, s.caller) for s in refs.sites if s.kind == "call"} == KIT_SITES[want]
    every = graph.callers(index, ["default"], "store", within=at(index, "all"))
    assert sorted(every.versions.values()) == ["kit v1.0.0", "kit v2.0.0"]  # both, each labelled
    assert {(s.path, s.line, s.caller) for s in every.sites} == KIT_SITES["v1.0.0"] | KIT_SITES["v2.0.0"]
    described = graph.describe(every)
    assert "KB default, kit v1.0.0)" in described and "KB default, kit v2.0.0)" in described


def test_calls_are_followed_within_the_version_chosen(kits):
    """run() is in both versions and calls store(), which calls _check() in 1.0.0 and _verify() in 2.0.0:
    the resolver answers store() with one version's definition; the chosen version's is followed."""
    index, v1, v2 = kits
    for version, folder, helper in (("1.0.0", v1, "kit.store._check"), ("2.0.0", v2, "kit.store._verify")):
        answer = graph.callees(index, ["default"], "run", depth=2, within=at(index, version))
        assert [(s.depth, s.target) for s in answer.sites] == [(1, "kit.store.store"), (2, helper)], version
        assert all(s.link.startswith(str(folder)) and s.to.source_id == answer.definitions[0].source_id
                   for s in answer.sites), version
    every = graph.callees(index, ["default"], "run", depth=2, within=at(index, "all"))
    assert {s.target for s in every.sites if s.depth == 2} == {"kit.store._check", "kit.store._verify"}
    deep = graph.callers(index, ["default"], "_check", depth=2, within=at(index, "1.0.0"))
    assert {(s.depth, s.caller) for s in deep.sites} == {(1, "store"), (2, "keep"), (2, "run")}
    assert all(s.link.startswith(str(v1)) for s in deep.sites)


def test_a_symbol_not_defined_at_the_version_chosen_is_one_sentence_naming_where_it_is(kits):
    index, _, _ = kits
    with pytest.raises(graph.GraphError) as e:
        graph.references(index, ["default"], "keep", within=at(index, None))
    assert str(e.value) == ("'keep' is not defined at the version chosen (kit v2.0.0) in the code graph of 'default'; "
                            "kit v1.0.0 defines it: choose that version, or all.")
    assert graph.references(index, ["default"], "keep", within=at(index, "1.0.0")).definitions
    with pytest.raises(graph.GraphError, match="No definition of 'nothing_like_it'"):
        graph.callers(index, ["default"], "nothing_like_it", within=at(index, "1.0.0"))


def test_retrieve_and_the_offline_chat_cite_the_call_sites_of_the_version_chosen(kits, tmp_path):
    index, v1, v2 = kits
    for version, folder in (("1.0.0", v1), (None, v2)):
        found = retrieve(index, "who calls store?", ["default"], k=6,
                         versions=VersionChoice.parse(version) if version else None)
        assert found.graph is not None and found.hits, version
        assert all(h.chunk.link.startswith(str(folder)) for h in found.hits), version
    missing = retrieve(index, "who calls store?", ["default"], k=6, versions=VersionChoice.parse("3.0"))
    assert [m.sentence() for m in missing.missing] == [
        "kit 3.0 is not indexed in knowledge base 'default' (it has v1.0.0, v2.0.0); answering from v2.0.0."]
    assert all(h.chunk.link.startswith(str(v2)) for h in missing.hits)
    # a symbol the chosen version does not define is searched as any other question
    assert retrieve(index, "who calls keep?", ["default"], k=6).graph is None

    cfg = copy.deepcopy(index.cfg)
    cfg.data_dir = tmp_path
    copilot = Copilot(cfg, index)
    end = [e for e in copilot.chat("Who calls store?", copilot.new_session(), versions=VersionChoice.parse("1.0.0"))
           if e.type == "end"][-1]
    assert "**Callers of `store`**" in end.text
    assert "`return store(key, 1)`" in end.text and "ttl=60" not in end.text
    assert end.sources and all(s.link.startswith(str(v1)) for s in end.sources)
