"""Bounded tools the Coding assistant may call when the model supports tool calls.

They read only the index: `read_file_range` returns lines of chunks already indexed (never
the file system), so a path outside the indexed sources, or with `..`, finds nothing;
`what_changed` compares two indexed versions of a library (indexes/changes.py, which reads a
Python version's indexed folder with griffe). Each answer gets at most `chat.max_tool_calls`
calls; results are short and their chunks become numbered sources.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field

from indexes import graph
from indexes.changes import ChangesError, Place, listing, place_chunk, versions_of, what_changed
from indexes.graph import GraphError
from indexes.indexed_files import find_indexed_file, line_range
from indexes.retrieve import find_definitions
from indexes.search import Index, SearchError
from ingest.chunk import Chunk

TOOL_SPECS = [
    {"type": "function", "function": {
        "name": "search_code", "description": "Search the indexed source code; returns the best matching chunks.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "find_definition",
        "description": "Find where a class, function or method is defined (e.g. Runner.run).",
        "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}}},
    {"type": "function", "function": {
        "name": "read_file_range", "description": "Read lines start..end (at most 120) of an indexed file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "start": {"type": "integer"},
                                                        "end": {"type": "integer"}},
                       "required": ["path", "start", "end"]}}},
    # The code graph (indexes/graph.py): references resolved through imports, with file, line and caller.
    {"type": "function", "function": {
        "name": "find_references",
        "description": "Every place a function, class or method is used: calls, imports, subclasses, decorators, "
                       "each with file, line and the symbol it is in.",
        "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}}},
    {"type": "function", "function": {
        "name": "call_graph",
        "description": "Who calls a function or method (direction 'callers'; depth 2-3 also gives their callers: "
                       "what breaks if it changes), or what it calls (direction 'callees').",
        "parameters": {"type": "object", "properties": {"symbol": {"type": "string"},
                                                        "direction": {"type": "string"},
                                                        "depth": {"type": "integer"}},
                       "required": ["symbol"]}}},
    {"type": "function", "function": {
        "name": "what_changed",
        "description": "What changed in a library between two indexed versions: symbols added and removed, "
                       "signature changes, deprecations, docstrings and doc pages, each cited in both versions. "
                       "Give `symbol` (e.g. Runner.run) to see only what concerns it.",
        "parameters": {"type": "object", "properties": {"library": {"type": "string"},
                                                        "from_version": {"type": "string"},
                                                        "to_version": {"type": "string"},
                                                        "symbol": {"type": "string"}},
                       "required": ["library", "from_version", "to_version"]}}},
]
GRAPH_TOOLS = ("find_references", "call_graph")
GRAPH_SITES = 30  # sites a graph tool lists at most (about 4,000 characters)
MAX_CHANGES = 12  # changes one what_changed call lists (each with a citation into both versions)

MAX_LINES = 120
MAX_INT = 10**9  # line numbers beyond this are a model's mistake, not a file

log = logging.getLogger("devcopilot.tools")
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOL_SPECS}
TYPE_WORDS = {"string": "a string", "integer": "a whole number"}


def check_arguments(name: str, args: dict) -> dict | str:
    """The arguments of a call to tool `name`, checked against its declared parameters and converted
    to their types; or, when they do not fit, one sentence saying which argument is wrong and why.

    A model's arguments are JSON it wrote: numbers may be 1e400 (infinity once parsed), NaN, 2.5,
    true or "ten". Whole numbers written as text ("12") are accepted."""
    schema = SCHEMAS[name]
    for key in schema.get("required", []):
        if args.get(key) is None:
            return f"'{key}' is required"
    out = {}
    for key, prop in schema["properties"].items():
        if args.get(key) is None:
            continue
        value, want = args[key], prop["type"]
        if want == "string" and isinstance(value, str):
            out[key] = value
        elif want == "integer" and (n := _whole(value)) is not None:
            out[key] = n
        else:
            return f"'{key}' must be {TYPE_WORDS[want]}, not {_shown(value)}"
    return out


def _whole(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,10}\s*", value):
        value = int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and abs(value) <= MAX_INT else None


def _shown(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _usage(name: str) -> str:
    props = SCHEMAS[name]["properties"]
    return "{" + ", ".join(f'"{k}": {TYPE_WORDS[p["type"]]}' for k, p in props.items()) + "}"


@dataclass
class ToolResult:
    text: str  # what the model reads
    chunks: list[Chunk] = field(default_factory=list)  # to cite
    labels: list[str] = field(default_factory=list)  # how the model is told each chunk (default: path and lines)


class ToolBox:
    def __init__(self, index: Index, kbs: list[str], max_calls: int = 3, versions=None):
        self.index = index
        self.kbs = kbs
        self.versions = versions  # the VersionChoice the answer is at (indexes/versions.py); None: the newest
        self.max_calls = max_calls
        self.calls = 0

    @property
    def exhausted(self) -> bool:
        return self.calls >= self.max_calls

    def run(self, name: str, arguments: str) -> ToolResult:
        self.calls += 1
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            return ToolResult(f"error: the arguments for {name} were not valid JSON; call it again with a JSON object.")
        if name not in SCHEMAS:
            return ToolResult(f"error: there is no tool named {name!r}; use {', '.join(list(SCHEMAS)[:-1])} or "
                              f"{list(SCHEMAS)[-1]}.")
        checked = check_arguments(name, args)
        if isinstance(checked, str):
            return ToolResult(f"error: {checked}; call {name} again with {_usage(name)}.")
        try:
            if name == "search_code":
                return self.search_code(checked["query"])
            if name == "find_definition":
                return self.find_definition(checked["symbol"])
            if name in GRAPH_TOOLS:
                return self.graph(name, checked["symbol"], checked.get("direction", "callers"), checked.get("depth", 1))
            if name == "what_changed":
                return self.what_changed(checked["library"], checked["from_version"], checked["to_version"],
                                         checked.get("symbol", ""))
            return self.read_file_range(checked["path"], checked["start"], checked["end"])
        except (SearchError, GraphError) as e:
            return ToolResult(f"error: {e}")
        except Exception as e:  # a tool never ends the answer: the model hears what failed and carries on
            log.exception("tool %s failed", name)
            return ToolResult(f"error: {name} failed ({type(e).__name__}); try other arguments, or answer with "
                              "what you have.")

    def _search(self, query: str, k: int) -> list[Chunk]:
        hits = []
        for kb in self.kbs:
            if self.index.catalog.kb(kb) is not None:
                sources = self.index.scope(kb, self.versions).sources  # None: one version of each library
                scoped = {"sources": sources} if sources is not None else {}
                hits += self.index.search(query, kb=kb, k=k, kind="code", **scoped)
        hits.sort(key=lambda h: -h.score)
        return [h.chunk for h in hits[:k]]

    def search_code(self, query: str) -> ToolResult:
        if not query.strip():
            return ToolResult("error: give a query.")
        chunks = self._search(query, 5)
        return ToolResult(_listing(chunks, 12) or "no matches", chunks)

    def find_definition(self, symbol: str) -> ToolResult:
        symbol = symbol.strip().strip("`").removesuffix("()")
        if not symbol:
            return ToolResult("error: give a symbol name.")
        found = find_definitions(self.index, symbol, self.kbs, versions=self.versions)
        out = []
        for d in found:  # the definition itself, not the top of the enclosing class
            c, lines = d.hit.chunk, d.lines[:40]
            where = f"{c.path} lines {d.line}-{d.line + len(lines) - 1} ({c.symbol or c.path})"
            out.append(where + ":\n" + "\n".join(lines))
        return ToolResult("\n\n".join(out) or f"no definition of {symbol!r} in the indexed code",
                          [d.hit.chunk for d in found])

    def read_file_range(self, path: str, start: int, end: int) -> ToolResult:
        path = path.strip().replace("\\", "/")
        if ".." in path.split("/"):
            return ToolResult("error: paths with '..' are not allowed; use a path as shown in the sources.")
        found = find_indexed_file(self.index.catalog, path, self.kbs,
                                  {kb: self.index.scope(kb, self.versions).sources for kb in self.kbs})
        if found is None:
            return ToolResult(f"error: {path!r} is not an indexed file.")
        first, last, lines = line_range(found, start, end, MAX_LINES)
        if not lines:
            return ToolResult(f"no indexed lines of {found.path} in {start}-{end} (it has {len(found.lines)}).")
        used = [c for c in found.chunks if c.start_line <= last and c.end_line >= first]
        body = "\n".join(f"{n:5d}  {ln}" for n, ln in enumerate(lines, first))
        return ToolResult(f"{found.path} lines {first}-{last}:\n{body}", used)

    def what_changed(self, library: str, from_version: str, to_version: str, symbol: str = "") -> ToolResult:
        """The changes between two indexed versions of a library (indexes/changes.py), at most MAX_CHANGES,
        each cited in both versions: its chunks become numbered sources, labelled with their version."""
        held = [kb for kb in self.kbs if self.index.catalog.kb(kb) is not None and versions_of(self.index, kb, library)]
        kb = held[0] if held else (self.kbs[0] if len(self.kbs) == 1 else None)
        try:
            report = what_changed(self.index, library, from_version, to_version, symbol, kb)
        except ChangesError as e:
            return ToolResult(f"error: {e}")
        chunks: list[Chunk] = []
        labels: list[str] = []
        names = {id(p): (c.name, "doc" if c.kind.startswith("page_") else "code") for c in report.changes
                 for p in (c.old, c.new) if p is not None}

        def cite(p: Place) -> str:  # the listing says which version; the model is told each source's
            label = f"{p.cite()} in {p.version}"
            if label not in labels:
                chunks.append(place_chunk(p, *names.get(id(p), (p.path, "code"))))
                labels.append(label)
            return p.cite()

        text = listing(report, max_chars=5500, cite=cite, max_changes=MAX_CHANGES,
                       more="call what_changed again with a symbol to see what concerns it")
        return ToolResult(text, chunks, labels)


    def graph(self, name: str, symbol: str, direction: str, depth: int) -> ToolResult:
        """References (find_references) or callers / callees (call_graph) from the code graph; the chunks
        holding the sites are cited."""
        if direction not in ("callers", "callees"):
            return ToolResult("error: 'direction' must be \"callers\" or \"callees\"; call call_graph again.")
        kbs = [kb for kb in self.kbs if self.index.catalog.kb(kb) is not None]
        within = {kb: self.index.scope(kb, self.versions).sources for kb in kbs}  # at the answer's versions
        if name == "find_references":
            answer = graph.references(self.index, kbs, symbol, within=within)
        else:
            ask = graph.callers if direction == "callers" else graph.callees
            answer = ask(self.index, kbs, symbol, max(1, min(depth, graph.MAX_DEPTH)), within=within)
        shown = answer.sites[:GRAPH_SITES]
        cited = list(dict.fromkeys(s.chunk.id for s in shown if s.chunk is not None))
        chunks = {s.chunk.id: s.chunk for s in shown if s.chunk is not None}
        return ToolResult(graph.describe(answer, max_sites=GRAPH_SITES, links=False), [chunks[i] for i in cited])


def _listing(chunks: list[Chunk], max_lines: int) -> str:
    out = []
    for c in chunks:
        text = "\n".join(c.text.splitlines()[:max_lines])
        out.append(f"{c.path} lines {c.start_line}-{c.end_line} ({c.symbol or c.title}):\n{text}")
    return "\n\n".join(out)
