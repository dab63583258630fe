"""Shared fixtures: a config in a temporary data dir, small corpora written on the fly."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from copilot.config import load_config  # noqa: E402


@pytest.fixture
def cfg(tmp_path):
    """A Config whose data dir is private to the test; no environment leaks in."""
    return load_config(env={}, overrides={"data_dir": str(tmp_path / "data")})


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


@pytest.fixture
def project(tmp_path):
    return write_tree(tmp_path / "project", SMALL_PROJECT)


@pytest.fixture(autouse=True)
def no_devcopilot_env(monkeypatch):
    """Tests start from the defaults, whatever DEVCOPILOT_* the calling shell has set."""
    for var in list(os.environ):
        if var.startswith("DEVCOPILOT_"):
            monkeypatch.delenv(var)


def ingested_data_dir(root: Path) -> tuple[Path, Path]:
    """SMALL_PROJECT written under root and ingested through the CLI: (data dir, project)."""
    from ui.cli import main

    project = write_tree(root / "project", SMALL_PROJECT)
    data = root / "data"
    assert main(["--data-dir", str(data), "ingest", str(project), "--quiet"]) == 0
    return data, project


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright (tests/browser_support.py), one per test module."""
    from browser_support import launch
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
