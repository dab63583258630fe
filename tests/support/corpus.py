"""Corpora written on the fly: the small project most tests index, and a generated corpus of many files
(long enough to kill an ingest part-way, or to keep a server busy)."""
from __future__ import annotations

import textwrap
from pathlib import Path


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


SMALL_PROJECT = {
    "README.md": """
        # Widgets

        Widgets is a tiny framework for building gadgets.

        ## Installing

        Run `pip install widgets` to install it.

        ## Memory

        Give an agent long-term memory with `MemoryStore`: create a store and pass it
        to the agent as `memory=MemoryStore(path)`. The store keeps conversations on disk.
        """,
    "docs/guide.md": """
        # Guide

        ## Retries

        Calls that fail with a rate limit are retried with exponential backoff.
        Set `max_retries` on the client to change how often.
        """,
    "widgets/core.py": '''
        """Core widgets."""
        import os

        DEFAULT_SIZE = 3


        class MemoryStore:
            """Keeps conversations on disk."""

            def __init__(self, path):
                self.path = path

            def save(self, conversation_id, messages):
                """Write the messages of one conversation."""
                with open(os.path.join(self.path, conversation_id), "w") as f:
                    f.write("\\n".join(messages))


        def build_gadget(name, size=DEFAULT_SIZE):
            """Build a gadget with a name and a size."""
            return {"name": name, "size": size}
        ''',
}


def ingested_data_dir(root: Path) -> tuple[Path, Path]:
    """SMALL_PROJECT written under root and ingested through the CLI: (data dir, project)."""
    from ui.cli import main

    project = write_tree(root / "project", SMALL_PROJECT)
    data = root / "data"
    assert main(["--data-dir", str(data), "ingest", str(project), "--quiet"]) == 0
    return data, project


N_FILES = 160  # make_corpus's default: about 400 chunks, two write batches, several seconds of embedding
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
         "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
         "whiskey", "xray", "yankee", "zulu"]


def make_corpus(root: Path, n: int = N_FILES) -> Path:
    """n small files (Python and Markdown), every one distinct, about 3 chunks each."""
    for i in range(n):
        w = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(6)]
        pkg = root / f"pkg{i % 12}"
        pkg.mkdir(parents=True, exist_ok=True)
        if i % 2:
            (pkg / f"mod_{i}.py").write_text(
                f'"""Module {i} about {w[0]} and {w[1]}."""\n\nLIMIT_{i} = {i}\n\n\n'
                f"def {w[2]}_{i}(value):\n    \"\"\"Scale the {w[3]} value by {i}.\"\"\"\n    return value * {i}\n\n\n"
                f"class {w[4].title()}{i}:\n    \"\"\"Keeps {w[5]} records number {i}.\"\"\"\n\n"
                f"    def add_{w[1]}(self, item):\n        return [item, {i}]\n")
        else:
            (pkg / f"page_{i}.md").write_text(
                f"# Page {i}: {w[0]} {w[1]}\n\n" + f"The {w[2]} guide explains {w[3]} number {i}. " * 6 +
                f"\n\n## Using {w[4]}\n\n" + f"Call the {w[4]} helper with {w[5]} set to {i}. " * 6 + "\n")
    return root
