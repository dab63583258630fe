"""Shared fixtures: a config in a temporary data dir, the small project, a browser. Helpers that tests
and benches call live in tests/support/."""
from __future__ import annotations

import os

import pytest

# Plain `assert`s in the helpers report their values as a test's own do.
pytest.register_assert_rewrite("support")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from support.corpus import SMALL_PROJECT, write_tree  # noqa: E402

from copilot.config import load_config  # noqa: E402


@pytest.fixture
def cfg(tmp_path):
    """A Config whose data dir is private to the test; no environment leaks in."""
    return load_config(env={}, overrides={"data_dir": str(tmp_path / "data")})


@pytest.fixture
def project(tmp_path):
    return write_tree(tmp_path / "project", SMALL_PROJECT)


@pytest.fixture(autouse=True)
def no_devcopilot_env(monkeypatch):
    """Tests start from the defaults, whatever DEVCOPILOT_* the calling shell has set."""
    for var in list(os.environ):
        if var.startswith("DEVCOPILOT_"):
            monkeypatch.delenv(var)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright (tests/support/browser.py), one per test module."""
    from playwright.sync_api import sync_playwright
    from support.browser import launch

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
