"""Definitions a question names in plain words: "the realtime runner" is `RealtimeRunner`,
"model settings" is `ModelSettings`, "function tool" is `function_tool` and `FunctionTool`.

People write the classes and functions they ask about as ordinary words. Two or three adjacent
words that, run together, spell a top-level name the knowledge base defines are taken to name
it; the vocabulary is the KB's own, so the rule works for any framework. A CamelCase word (two
humps or more, so not "Agent") names its definition too. (Looking up snake_case words the same
way was measured and not kept: one file more on one set, a lower mrr@10 on the dev set.)
"""
from __future__ import annotations

import re

from indexes.lexical import STOP

# Whole words, possessives included ("runner's"), but not the pieces of a contraction ("don't").
WORD = re.compile(r"(?<![\w'’])[A-Za-z][A-Za-z0-9]*(?=['’]s\b|(?![\w'’]))")
CAMEL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")
# "I got a UserError": an exception a question names is the symptom, not what it asks about.
RAISED = re.compile(r"(Error|Exception|Warning)$")


def name_key(name: str) -> str:
    """How a defined name is spelled as run-together lowercase words."""
    return name.replace("_", "").lower()


def names_by_key(symbols) -> dict[str, set[str]]:
    """Top-level names (the part before the first dot) of `symbols`, by their run-together key."""
    out: dict[str, set[str]] = {}
    for sym in symbols:
        head = sym.split(".", 1)[0]
        if head:
            out.setdefault(name_key(head), set()).add(head)
    return out


def named_in_plain_words(question: str, names: dict[str, set[str]], longest: int = 3) -> set[str]:
    """Names spelled by 2 to `longest` adjacent words of the question (a span neither starting nor
    ending with a stop word, so "is the" never spells `isthe`), or written in CamelCase."""
    written = WORD.findall(question)
    words = [w.lower() for w in written]
    found: set[str] = set()
    for w in written:
        if CAMEL_CASE.fullmatch(w) and not RAISED.search(w):
            found |= names.get(w.lower(), set())
    for size in range(2, longest + 1):
        for i in range(len(words) - size + 1):
            span = words[i:i + size]
            if span[0] in STOP or span[-1] in STOP:
                continue
            found |= names.get("".join(span), set())
    return found


# A definition named for the default of something: get_default_model, default_exporter, DEFAULT_TIMEOUT,
# defaultTimeout, timeout_default.
DEFAULT_NAME = re.compile(r"_*(?:get_?)?default_?([a-z]\w*?[a-z0-9])|_*([a-z]\w*?[a-z0-9])_default")


def defaults_by_name(symbols) -> dict[str, set[str]]:
    """`symbols` named for a default, by the snake_case name they default (`get_default_model` under "model",
    `DEFAULT_CACHE_CAPACITY` under "cache_capacity"); methods by their own name (`Builder.default_added`)."""
    out: dict[str, set[str]] = {}
    for sym in symbols:
        m = DEFAULT_NAME.fullmatch(sym.rsplit(".", 1)[-1].lower())
        name = m and (m.group(1) or m.group(2))
        if name and name not in STOP:  # `is_default` defaults nothing
            out.setdefault(name, set()).add(sym)
    return out
