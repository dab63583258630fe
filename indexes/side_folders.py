"""Side folders: examples/, benchmarks/, scripts/, tests/ beside a project's docs and library, and
the code of the docs (docs/, docs_src/: the snippets the pages include).

Code there uses the library rather than defines it: it shares the library's words and scores
alike, while a question about what the library does is answered by the library's source. So
code in a side folder steps behind at equal relevance, unless the question asks for examples,
tests or demos itself. Text there (a README) is left alone: it may be the only page that
describes a feature.
"""
from __future__ import annotations

import re

SIDE_WORDS = {"example", "examples", "sample", "samples", "demo", "demos", "bench", "benchmark", "benchmarks",
              "script", "scripts", "test", "tests"}

# "an example", "examples", "example code", "a test", "测试"... but not "for example", "sample rate"
# or "example.com".
_ASKS = re.compile(
    r"\b(examples|samples|demos|tests|benchmarks)\b"
    r"|\b(an?|any|some|the|your)\s+(\w+\s+)?(example|sample|demo|test|benchmark)\b(?![.\w])"
    r"|\b(example|sample|demo|test)\s+(code|apps?|projects?|scripts?|programs?|files?|suites?)\b"
    r"|示例|例子|样例|范例|演示|测试",
    re.IGNORECASE)


def in_side_folder(path: str) -> bool:
    """The path's top folder is a side folder: `examples/`, `benchmarks/`, `typing-examples/`...
    Only the top folder: `docs/examples/` is documentation, `src/pkg/testing.py` is library."""
    top, sep, _ = path.partition("/")
    return bool(sep) and any(word in SIDE_WORDS for word in re.split(r"[-_.]", top.lower()))


def in_docs_folder(path: str) -> bool:
    """The path's top folder holds the docs (`docs/`, `doc/`, `docs_src/`, `docs-src/`): code there is the
    snippets the pages include, which use the library as examples do. Kept apart from `in_side_folder`,
    whose other readers (the API surface, the code graph) count docs code as they always have."""
    top, sep, _ = path.partition("/")
    return bool(sep) and re.split(r"[-_.]", top.lower())[0] in {"doc", "docs"}


def asks_for_side_folders(question: str) -> bool:
    return _ASKS.search(question) is not None
