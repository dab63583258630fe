"""The Python packages among a source's files (indexes/api_surface.py): found wherever their `__init__.py`
lies, the source's own root included. A folder that is itself a package (`devcopilot ingest ingest`,
or such a folder added from the Knowledge tab) once looped forever at the end of indexing."""
from __future__ import annotations

import threading

from support.corpus import write_tree

from copilot.config import load_config
from indexes.api_surface import package_roots, python_table
from indexes.build import ingest
from indexes.search import Index


def finished_within(seconds: float, work) -> list:
    """What `work()` returned, in a list, or [] when it was still running after `seconds`."""
    done: list = []
    runner = threading.Thread(target=lambda: done.append(work()), daemon=True)
    runner.start()
    runner.join(seconds)
    return done


def test_packages_in_folders_are_found_with_their_parent_folder():
    roots = package_roots(["src/books/__init__.py", "src/books/ledger/__init__.py", "src/books/ledger/x.py",
                           "tools/__init__.pyi", "README.md"])
    assert roots == [(".", "tools"), ("src", "books")]


def test_a_package_at_the_sources_root_ends():
    found = finished_within(5, lambda: package_roots(["__init__.py", "ledger/__init__.py", "ledger/x.py"]))
    assert found, "package_roots never returned for an __init__.py at the root"
    # The root's package has no name in the paths: it is listed without one (and griffe skips it); its
    # sub-packages are the top ones.
    assert found[0] == [(".", ""), (".", "ledger")]


def test_indexing_a_folder_that_is_a_package_finishes(tmp_path):
    folder = write_tree(tmp_path / "books", {
        "__init__.py": '"""Book-keeping."""\n',
        "ledger/__init__.py": "def open_journal(path):\n    return open(path)\n",
        "README.md": "# Books\n\nOpen a journal with `open_journal(path)`.\n"})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    assert finished_within(120, lambda: ingest(index, [str(folder)], "default")), "the ingest never finished"
    assert index.catalog.count_chunks("default") > 0


def test_a_folder_that_is_a_package_is_read_under_its_name():
    files = {"__init__.py": "", "m.py": "def f(x):\n    return x\n", "sub/__init__.py": "def g():\n    pass\n"}
    alone = python_table(files)
    assert not any(name.endswith(".m.f") or name == "m.f" for name in alone.symbols)  # its own modules missing
    table = python_table(files, "outer.inner")  # the folder `inner`, inside the package `outer`
    assert table.symbols["outer.inner.m.f"].file == "m.py" and table.symbols["outer.inner.sub.g"].file == \
        "sub/__init__.py"
    assert all(not name.startswith("outer.") or name.startswith("outer.inner") for name in table.symbols)
    assert table.packages == ["outer.inner"]  # the library's namespace: not the rest of `outer`
