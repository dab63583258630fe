"""Line windows: split a range of lines into pieces that fit the embedding model's window.

Shared by docs chunking (a section too large for one chunk) and code chunking (a definition too
large for one chunk, and files no parser reads).
"""
from __future__ import annotations

import re

FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")


def split_lines(lines: list[str], start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split [start, end) into ranges of at most ~max_chars, preferring blank-line breaks
    outside code fences. No line is dropped."""
    out = []
    cur = start
    size = 0
    last_break = -1
    fence = False
    for k in range(start, end):
        if FENCE.match(lines[k]):
            fence = not fence
        size += len(lines[k]) + 1
        if not lines[k].strip() and not fence:
            last_break = k + 1
        if size >= max_chars and k + 1 < end:
            cut = last_break if last_break > cur + 2 and (last_break - cur) * 2 > (k - cur) else k + 1
            out.append((cur, cut))
            cur = cut
            size = sum(len(lines[j]) + 1 for j in range(cur, k + 1))
            last_break = -1
    if cur < end:
        # a small tail joins the previous window rather than standing alone
        if out and sum(len(lines[j]) + 1 for j in range(cur, end)) < max_chars // 4:
            out[-1] = (out[-1][0], end)
        else:
            out.append((cur, end))
    return out
