"""The process environment: read and written here, and nowhere else (tests/test_settings.py checks it).

The settings (indexes/config.py, `load_config`) read their variables through `environment()`; this
module sits in the lowest layer so that ingest's child processes (git) get theirs from it too.
"""
from __future__ import annotations

import os


def environment() -> dict[str, str]:
    """This process's environment variables, as they are now."""
    return dict(os.environ)


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a child process: this process's, with `extra` set."""
    return {**os.environ, **extra}


def default_environment(**values: str) -> None:
    """Set variables that libraries read when they load, unless the user has set them already."""
    for name, value in values.items():
        os.environ.setdefault(name, value)
