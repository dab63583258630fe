"""Text no door accepts: a lone surrogate (JSON's `\\ud800` escapes spell one, yet it is not text:
no UTF-8 file, terminal or database can hold it) and NUL (PostgreSQL's text and C strings cannot).

Every door checks what it reads against this before anything is stored: the HTTP edge's JSON
bodies (ui/edge.py `read_json`), MCP's messages over HTTP and stdio (ui/mcp_server.py), the web
app's chat box and Knowledge tab. A refusal names the field, in one sentence.
"""
from __future__ import annotations

import re

from indexes.status import escaped

UNFIT = re.compile("[\x00\ud800-\udfff]")  # a surrogate left in a Python str has no partner: pairs decode to one


def unfit(text: str) -> str:
    """What in `text` is not text ("a lone surrogate", "a NUL character"), or "" when it is all text."""
    found = UNFIT.search(text)
    if found is None:
        return ""
    return "a NUL character" if found.group() == "\x00" else "a lone surrogate"


def refusal(where: str, text: str) -> str:
    """The sentence refusing `text` as the field `where`, or "" when it is fine."""
    what = unfit(text)
    if not what:
        return ""
    if what == "a NUL character":
        return f"'{where}' holds a NUL character (\\u0000); send text without it."
    return f"'{where}' is not valid Unicode (it holds a lone surrogate such as \\ud800); send UTF-8 text."


def first_refusal(value: object, top: str = "request body") -> str:
    """The sentence refusing the first unfit string (key or value) in a JSON document, naming its field
    as `messages[0].content`; "" when every string is text. Iterative: a document as deep as the JSON
    parser allows is walked without running out of stack."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            said = refusal(where or top, item)
            if said:
                return said
        elif isinstance(item, dict):
            named = [(f"{where}.{escaped(key)}" if where else escaped(key), key, child) for key, child in item.items()]
            said = next((s for s in (refusal(name, key) for name, key, _ in named) if s), "")
            if said:
                return said
            stack.extend((name, child) for name, _, child in reversed(named))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return ""
