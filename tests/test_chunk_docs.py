"""Docs chunking: headings give breadcrumbs, and each chunk cites the lines it really holds."""
from __future__ import annotations

import json

from ingest.chunking import chunk_file
from ingest.docs import chunk_docs


def cited(text: str, c) -> str:
    return "\n".join(text.split("\n")[c.start_line - 1:c.end_line])


def assert_cites_itself(text: str, chunks) -> None:
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(text.split("\n"))
        assert cited(text, c) == c.text, (c.start_line, c.end_line, c.headings)


def heading_trail_at(chunks, needle: str) -> list[str]:
    (c,) = [c for c in chunks if needle in c.text]
    return c.headings


FILLER = "This sentence is here so that the section is big enough to stand alone. " * 4

MARKDOWN = f"""---
title: "The Widget Guide"
tags: [guide]
---

# Getting started

{FILLER}

## Installing

{FILLER}

```bash
# this comment is not a heading
pip install widgets
```

{FILLER}

Configuring things
==================

{FILLER}

Environment variables
---------------------

Set WIDGETS_HOME. {FILLER}

# Reference

{FILLER}
"""


def test_markdown_front_matter_fences_and_setext():
    chunks = chunk_docs(MARKDOWN, "docs/guide.md", "markdown", 1200)
    assert_cites_itself(MARKDOWN, chunks)
    assert all(c.kind == "doc" and c.language == "markdown" and c.path == "docs/guide.md" for c in chunks)
    # front matter is not content, but its title leads every breadcrumb
    assert not any("tags:" in c.text for c in chunks)
    assert all(c.headings[0] == "The Widget Guide" for c in chunks)
    # '#' inside a fenced block is code, not a heading
    assert heading_trail_at(chunks, "pip install widgets") == ["The Widget Guide", "Getting started", "Installing"]
    assert not any(c.headings and c.headings[-1].startswith("this comment") for c in chunks)
    # setext headings: '=' is level 1, '-' level 2
    assert heading_trail_at(chunks, "Set WIDGETS_HOME") == ["The Widget Guide", "Configuring things",
                                                            "Environment variables"]
    assert heading_trail_at(chunks, "# Reference") == ["The Widget Guide", "Reference"]


def test_markdown_large_section_split_without_losing_lines():
    paras = [f"Paragraph {i}: " + "words about widgets and gadgets " * 8 for i in range(30)]
    text = "# Big\n\n" + "\n\n".join(paras) + "\n"
    chunks = chunk_docs(text, "big.md", "markdown", 600)
    assert len(chunks) > 3
    assert_cites_itself(text, chunks)
    assert all(c.headings == ["Big"] for c in chunks)
    assert all(len(c.text) <= 600 + 300 for c in chunks)  # about the window; one paragraph may run over
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    lines = text.split("\n")
    assert all(i + 1 in covered for i, ln in enumerate(lines) if ln.strip())


def test_tiny_sections_merge_with_a_breadcrumb_they_contain():
    text = "# A\n\nshort a\n\n## B\n\nshort b\n\n## C\n\n" + FILLER + "\n"
    chunks = chunk_docs(text, "t.md", "markdown", 1200)
    assert_cites_itself(text, chunks)
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert {1, 3, 5, 7, 9, 11} <= covered
    for c in chunks:  # the trail names a heading the chunk shows
        assert f"# {c.headings[-1]}" in c.text


RST = f"""=========
User Guide
==========

{FILLER}

Installation
============

{FILLER}

From source
-----------

{FILLER}

Usage
=====

{FILLER}
"""


def test_restructuredtext_sections():
    chunks = chunk_docs(RST, "docs/guide.rst", "rst", 1200)
    assert_cites_itself(RST, chunks)
    assert [c.headings for c in chunks] == [
        ["User Guide"], ["User Guide", "Installation"], ["User Guide", "Installation", "From source"],
        ["User Guide", "Usage"]]
    assert chunks[0].start_line == 1  # the overline belongs to the title's section
    assert cited(RST, chunks[2]).startswith("From source")


HTML = """<!DOCTYPE html>
<html><head><title>Widgets</title>
<style>body { color: red; }</style>
<script>var secret = "not content";</script></head>
<body>
<nav>Home | About</nav>
<h1>Widgets manual</h1>
<p>Widgets are small. """ + FILLER + """</p>
<h2>Building <code>Gadget</code> objects</h2>
<p>Call build_gadget with a name. """ + FILLER + """</p>
</body></html>
"""


def test_html_headings_visible_text_only():
    chunks = chunk_docs(HTML, "site/index.html", "html", 1200)
    lines = HTML.split("\n")
    assert [c.headings for c in chunks][-2:] == [["Widgets manual"], ["Widgets manual", "Building Gadget objects"]]
    for c in chunks:
        assert "<" not in c.text and "not content" not in c.text and "color: red" not in c.text
        # every line of the chunk's text is visible text taken from its cited lines
        raw = "\n".join(lines[c.start_line - 1:c.end_line])
        for ln in c.text.split("\n"):
            for word in ln.split()[:3]:
                assert word in raw
    (b,) = [c for c in chunks if "build_gadget" in c.text]
    assert lines[b.start_line - 1].startswith("<h2>")


def test_notebook_cells_breadcrumbs_and_lines():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Loading data\n", "\n", FILLER]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
         "source": ["import json\n", "\n", "def load(path):\n", "    \"\"\"Read a JSON file.\"\"\"\n",
                    "    return json.load(open(path))\n"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["## Plotting\n", "\n", "Now plot. " + FILLER]},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "outputs": [],
         "source": ["class Plot:\n", "    def draw(self):\n", "        return 1\n"]},
    ], "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(nb, indent=1)
    chunks = chunk_file(text, "nb/intro.ipynb", "doc", "notebook")
    rows = text.split("\n")
    for c in chunks:  # the cited .ipynb lines hold exactly the chunk's source lines
        src = "".join(json.loads(r.strip().rstrip(",")) for r in rows[c.start_line - 1:c.end_line])
        assert src.rstrip("\n") == c.text
    docs = [c for c in chunks if c.kind == "doc"]
    assert [c.headings for c in docs] == [["Loading data"], ["Loading data", "Plotting"]]
    code = {c.symbol: c for c in chunks if c.kind == "code"}
    assert code["load"].language == "python" and '"""Read a JSON file."""' in code["load"].text
    assert code["Plot"].text == "class Plot:" and "def draw" in code["Plot.draw"].text


def test_plain_text_paragraph_windows():
    text = "Notes\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 50 for i in range(12)) + "\n"
    chunks = chunk_docs(text, "NOTES.txt", "text", 1200)
    assert len(chunks) >= 2
    assert_cites_itself(text, chunks)
    assert all(c.headings == [] and c.language == "text" for c in chunks)
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert all(i + 1 in covered for i, ln in enumerate(text.split("\n")) if ln.strip())


def test_empty_and_whitespace_docs_give_no_chunks():
    assert chunk_docs("", "e.md", "markdown") == []
    assert chunk_docs("\n\n   \n", "e.txt", "text") == []


def test_small_file_with_trailing_newline_cites_only_its_lines():
    text = "# Guide\n\n## Retries\n\nCalls are retried.\nSet max_retries.\n"
    chunks = chunk_docs(text, "g.md", "markdown")
    assert_cites_itself(text, chunks)
    assert [(c.start_line, c.end_line, c.headings) for c in chunks] == [(1, 6, ["Guide", "Retries"])]


def test_embedded_text_carries_the_breadcrumbs():
    text = "# Agents\n\n## Memory\n\n" + FILLER + "\n"
    (c,) = chunk_docs(text, "docs/agent_memory.md", "markdown")
    assert c.embed_text().endswith(c.text)
    head = c.embed_text()[: -len(c.text)]
    assert "Agents > Memory" in head and "agent memory" in head
