"""Docs and code linked (indexes/doc_links.py): a doc passage and the code it names know each other,
incrementally with the rest of the index, and the code gains the words of the doc lines naming it for the
lexical index, so a plain-words question reaches the class its docs describe. A real ingest, catalog,
tree-sitter and griffe."""
from __future__ import annotations

import json

import pytest
from support.corpus import write_tree

from copilot.config import load_config
from indexes.build import ingest
from indexes.doc_links import WORDS_FROM_AT_MOST, linked_code, links_of
from indexes.search import Index

PROJECT = {
    "books/__init__.py": '''
        """Book-keeping."""
        from books.ledger import LedgerReconciler, open_journal
        ''',
    "books/ledger.py": '''
        """Ledgers and journals."""


        class LedgerReconciler:
            """Matches entries against a ledger."""

            def __init__(self, ledger):
                self.ledger = ledger

            def reconcile(self, entries):
                """Pair each entry with its ledger line."""
                return [(e, self.ledger.get(e)) for e in entries]


        def open_journal(path):
            """Open a journal file."""
            return open(path)


        def settle_invoice(invoice):
            """Mark one invoice paid."""
            invoice["paid"] = True
            return invoice
        ''',
    "docs/closing.md": '''
        # Closing the books

        To settle month-end balances, run `LedgerReconciler` over the journal.
        ''',
    "docs/journals.md": '''
        # Journals

        Read the day's entries with `open_journal(path)`.

        ```python
        from books import open_journal

        journal = open_journal("2024-05.txt")
        ```
        ''',
}
QUESTION = "How do I settle month-end balances?"


@pytest.fixture
def kb(tmp_path):
    project = write_tree(tmp_path / "project", PROJECT)
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)], "default")
    return index, project


def chunk(index: Index, path: str, symbol: str | None = None):
    return next(c for c in index.catalog.file_chunks("default", path) if symbol is None or c.symbol == symbol)


def named_in(index: Index, doc_path: str) -> set[str]:
    return {ln.symbol for c in index.catalog.file_chunks("default", doc_path) for ln in links_of(index.catalog,
                                                                                                 "default", c.id)}


def test_a_doc_passage_and_the_code_it_names_know_each_other(kb):
    index, _ = kb
    doc, cls = chunk(index, "docs/closing.md"), chunk(index, "books/ledger.py", "LedgerReconciler")
    (link,) = links_of(index.catalog, "default", doc.id)
    assert (link.code_id, link.symbol, link.how, link.line) == (cls.id, "books.ledger.LedgerReconciler", "code", 3)
    assert [ln.doc_id for ln in links_of(index.catalog, "default", cls.id)] == [doc.id]  # and back
    # A code block's import and call name the function through the block's imports.
    journals = named_in(index, "docs/journals.md")
    assert journals == {"books.ledger.open_journal"}
    assert linked_code(index.catalog, "default", [doc.id]) == {doc.id: [cls.id]}


def test_links_follow_doc_and_code_edits(kb):
    index, project = kb
    before = {c.id for c in index.catalog.file_chunks("default", "docs/journals.md")}
    (project / "docs/closing.md").write_text("# Closing the books\n\nSettle invoices one by one with "
                                             "`settle_invoice(invoice)`.\n", encoding="utf-8")
    ingest(index, [str(project)], "default")
    assert named_in(index, "docs/closing.md") == {"books.ledger.settle_invoice"}
    cls = chunk(index, "books/ledger.py", "LedgerReconciler")
    assert links_of(index.catalog, "default", cls.id) == []  # the old passage's link went with it
    assert {c.id for c in index.catalog.file_chunks("default", "docs/journals.md")} == before
    assert named_in(index, "docs/journals.md") == {"books.ledger.open_journal"}
    # The code changes: a renamed function loses its link (and the docs check says what happened).
    ledger = project / "books/ledger.py"
    ledger.write_text(ledger.read_text().replace("def open_journal(", "def open_daybook("), encoding="utf-8")
    (project / "books/__init__.py").write_text("from books.ledger import LedgerReconciler, open_daybook\n")
    ingest(index, [str(project)], "default")
    assert named_in(index, "docs/journals.md") == set()
    rows = index.catalog.db.execute("SELECT findings FROM drift_findings WHERE kb='default'").fetchall()
    messages = [f["message"] for (text,) in rows for f in json.loads(text)]
    assert any("has no `open_journal`" in m for m in messages)


def code_hits(index: Index, question: str):
    return [h for h in index.search(question, "default", k=10, kind="code")]


def test_a_plain_words_question_whose_doc_mentions_the_class_finds_the_class(kb):
    index, project = kb
    cls = chunk(index, "books/ledger.py", "LedgerReconciler")
    hits = code_hits(index, QUESTION)
    assert hits[0].chunk.id == cls.id and "lexical" in hits[0].ranks  # the doc line's words are the class's too
    # Without the doc naming it, the class shares no word with the question.
    (project / "docs/closing.md").write_text("# Closing the books\n\nTo settle month-end balances, run the "
                                             "reconciler over the journal.\n", encoding="utf-8")
    ingest(index, [str(project)], "default")
    hit = next((h for h in code_hits(index, QUESTION) if h.chunk.id == cls.id), None)
    assert hit is None or "lexical" not in hit.ranks


def test_a_symbol_every_page_names_gains_no_words(tmp_path):
    pages = {f"docs/page{i}.md": f"# Page {i}\n\nTopic{i} words: call `open_journal` here.\n"
             for i in range(WORDS_FROM_AT_MOST + 1)}
    project = write_tree(tmp_path / "project", {**PROJECT, **pages})
    index = Index(load_config(env={}, overrides={"data_dir": str(tmp_path / "data")}))
    ingest(index, [str(project)], "default")
    words = dict(index.catalog.db.execute("SELECT code_id, tokens FROM doc_words WHERE kb='default'").fetchall())
    assert chunk(index, "books/ledger.py", "LedgerReconciler").id in words  # named once: gains the line's words
    assert chunk(index, "books/ledger.py", "open_journal").id not in words  # named on 7 pages: too common
