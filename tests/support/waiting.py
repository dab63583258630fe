"""Waiting for a condition that another thread changes and that has no event of its own to wait on."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Return as soon as condition() is true (checked every 10 ms); fail with `what` after `timeout` s.

    For ordering a test's steps: wait until the state the next step needs is there, rather than
    sleeping for a guess of how long that takes (too short on a busy machine, too long elsewhere)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)
