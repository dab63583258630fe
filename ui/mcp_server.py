"""The MCP server: the copilot's search, sources and answers as tools for coding agents.

`devcopilot mcp` serves it over stdio (what editors start); `devcopilot serve` also serves it
as Streamable HTTP at /mcp, behind the API's bearer token. Every tool reads through the same
calls as the other doors: `search` and `find_definition` through indexes/retrieve.py (so they
return what an assistant would cite), `read_source` by the source viewer's rules
(indexes/indexed_files.py: indexed files only, bounded), `ask` through the group chat.

Bad arguments come back as tool errors a model can act on (what was wrong, what to call
instead); results are cut to a budget of about MAX_RESULT_CHARS characters. A request whose
arguments hold a lone surrogate or a NUL (ui/strings.py) is refused with a JSON-RPC error before
any tool runs (`refuse_unfit_text`), over HTTP and stdio alike; over stdio, a line that is not a
JSON-RPC message is answered with one too (`run_stdio`), and the end of input ends the server.

Every tool that reads takes `version` (and `library`, when a KB holds several): the version of
each library answered from. Without it, what the client's project pins, when the client shares
its folder as an MCP root (over stdio: the client runs on this machine), else `project.path`,
else the newest indexed (indexes/versions.py).
"""
# No `from __future__ import annotations`: the SDK reads the tools' Annotated types at run time.
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.resolve import ListRoots, Resolve
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    ListRootsResult,
    TextContent,
    ToolAnnotations,
    jsonrpc_message_adapter,
)
from pydantic import Field, ValidationError

from copilot.chat import Copilot
from copilot.citations import CiteStyle
from copilot.reply import Transcript
from copilot.routing import UnknownAssistant, find_assistant
from indexes import graph
from indexes.changes import ChangesError, listing, what_changed
from indexes.indexed_files import MAX_LINES, find_indexed_file, line_range
from indexes.project import versions_for
from indexes.retrieve import RetrievalDown, find_definitions, retrieve
from indexes.search import Hit, SearchError
from indexes.versions import VersionChoice
from ingest.files import counted
from ui.edge import USER
from ui.strings import first_refusal

MAX_RESULT_CHARS = 24_000  # about 6,000 tokens: what one tool result may add to an agent's context
PASSAGE_CHARS = 4_000  # one passage's text at most, so a long chunk does not crowd out the others

INSTRUCTIONS = """devcopilot indexes a software framework's documentation and source code{what}.
Use `search` first for any question about that framework (how to do something, which API to call,
what an option means), `find_definition` for where a class, function or method is defined,
`read_source` to read more lines around a passage, `what_changed` for what changed in a library
between two indexed versions, and `ask` for a written answer with numbered citations. Cite passages
by their path and lines or link."""

# The code graph's tools (indexes/graph.py), said apart so the instructions read in one place.
GRAPH_INSTRUCTIONS = """
Use `find_references` for every place a function, class or method is used (calls, imports, subclasses,
decorators), and `call_graph` for who calls it to a depth (what breaks if it changes) or what it calls."""


# The version arguments every reading tool takes.
Version = Annotated[str | None, Field(max_length=100, description="The version of the library to answer from, e.g. "
                                                                  "'0.23.1'; 'all' for every version indexed; omit "
                                                                  "for your project's (when you share its folder) "
                                                                  "or the newest.")]
Library = Annotated[str | None, Field(max_length=200, description="The library `version` is of, when the knowledge "
                                                                  "base holds several (list_knowledge_bases names "
                                                                  "them).")]
NO_ROOTS = ListRootsResult(roots=[])


def _asked_roots(ctx: Context) -> ListRootsResult | ListRoots:
    """The client's roots: known from earlier in the session, else asked (the SDK asks the client), from a
    server that reads them (over stdio) and a client that declares it has some; else none."""
    known = getattr(ctx.mcp_server, "devcopilot_roots", None)  # set by build_server(roots=True): session -> roots
    capabilities = ctx.client_capabilities
    if known is None or capabilities is None or capabilities.roots is None:
        return NO_ROOTS
    return known.get(id(ctx.session)) or ListRoots()


def client_roots(ctx: Context, listed: Annotated[ListRootsResult, Resolve(_asked_roots)]) -> ListRootsResult:
    """The client's roots, kept for the session so they are asked once."""
    known = getattr(ctx.mcp_server, "devcopilot_roots", None)
    if known is not None and listed.roots:
        known[id(ctx.session)] = listed
    return listed


# Filled by the SDK from `client_roots`, not by the model: the folder the client shares as its project.
Roots = Annotated[ListRootsResult, Resolve(client_roots)]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _when(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


def _title(h: Hit) -> str:
    return h.chunk.title


def passage(h: Hit) -> dict:
    """One search hit as the tools return it."""
    return {**h.to_json(), "kb": h.kb, "title": _title(h)}


def _fence(text: str, language: str) -> str:
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{language if language not in ('markdown', 'text', 'rst', 'html') else ''}\n{text}\n{ticks}"


def _cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:text.rfind("\n", 0, limit) if "\n" in text[:limit] else limit], True


def render_hits(hits: list[Hit], budget: int = MAX_RESULT_CHARS,
                label: Callable[[Hit], str] | None = None) -> tuple[str, int]:
    """Ranked passages as Markdown within `budget` characters: (text, how many were shown); `label` says a
    passage's version when its KB holds several."""
    parts: list[str] = []
    used = 0
    shown = 0
    for n, h in enumerate(hits, 1):
        c = h.chunk
        text, cut = _cut(c.text, PASSAGE_CHARS)
        version = label(h) if label is not None else ""
        head = (f"[{n}] {c.path}:{c.start_line}-{c.end_line}" + (f" · {_title(h)}" if _title(h) else "")
                + (f" · {version}" if version else "")
                + f" ({c.kind}, {c.language}; KB {h.kb}; score {h.score:.3f})\n{c.link}\n")
        block = head + _fence(text, c.language) + (
            f"\n(cut: read_source(kb={h.kb!r}, path={c.path!r}, start_line={c.start_line}) reads it all)"
            if cut else "")
        if used + len(block) > budget and shown:
            parts.append(f"({len(hits) - shown} more passages left out to stay within the result budget; "
                         "ask for fewer with k, or search more precisely.)")
            break
        parts.append(block)
        used += len(block)
        shown += 1
    return "\n\n".join(parts), shown


class CopilotServer(MCPServer):
    """The SDK's server, whose refusal of a call's arguments is one sentence a coding agent can act on rather
    than pydantic's report (a line per field, links to its docs)."""

    async def call_tool(self, name, arguments, context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            if isinstance(e, UnexpectedToolError) or not isinstance(e.__cause__, ValidationError):
                raise
            tool = next((t for t in await self.list_tools() if t.name == name), None)
            takes = set((tool.input_schema or {}).get("properties", {})) if tool else set()
            raise ToolError(arguments_refused(name, e.__cause__, sorted(set(arguments) - takes))) from e.__cause__


def arguments_refused(tool: str, error: ValidationError, unknown: list[str]) -> str:
    """What was wrong with a tool call's arguments, field by field, and what to do."""
    said = []
    for err in error.errors():
        field = ".".join(str(part) for part in err["loc"])
        if err["type"] == "missing":
            said.append(f"'{field}' is required")
            continue
        got = err.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) and len(repr(got)) <= 40 else ""
        said.append(f"'{field}': {err['msg'][:1].lower()}{err['msg'][1:]}{shown}")
    if unknown:
        said.append(f"it takes no {', '.join(repr(u) for u in unknown)}")
    return f"The {tool} tool's arguments are not right: {'; '.join(said)}. Fix them and call it again."


def build_server(copilot: Copilot, roots: bool = False) -> MCPServer:
    """An MCPServer whose tools read `copilot`'s index and ask its group chat; with `roots`, the folder the
    client shares as its root is the project whose pinned versions answer."""
    tools = Tools(copilot, roots)
    what = ", ".join(f"'{n}'" for n in tools.kb_names())
    # log_level: the SDK configures the root logger with it; INFO would log every HTTP request
    # the chat's model client makes, on every turn.
    about = f" (knowledge bases: {what})" if what else ""
    server = CopilotServer("devcopilot", log_level="WARNING",
                           instructions=INSTRUCTIONS.format(what=about) + GRAPH_INSTRUCTIONS)
    if roots:
        server.devcopilot_roots = {}  # session -> the roots it listed (client_roots asks once)
    for tool in (tools.list_knowledge_bases, tools.search, tools.read_source, tools.find_definition,
                 tools.what_changed):
        server.add_tool(tool, annotations=READ_ONLY, structured_output=False)
    for tool in (tools.find_references, tools.call_graph):  # the code graph
        server.add_tool(tool, annotations=READ_ONLY, structured_output=False)
    server.add_tool(ask_tool(copilot, tools), annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
                    structured_output=False)
    server.add_tool(tools.check_docs, annotations=READ_ONLY, structured_output=False)
    server.middleware.append(refuse_unfit_text)
    return server


async def refuse_unfit_text(ctx, call_next):
    """MCP middleware (every request, before its parameters are validated and its tool runs): a
    request whose parameters hold a lone surrogate or a NUL gets a JSON-RPC error naming the one."""
    if ctx.request_id is not None and ctx.params:
        said = first_refusal({"params": dict(ctx.params)})  # named as over stdio: 'params.arguments.query'
        if said:
            raise MCPError(INVALID_PARAMS, said)
    return await call_next(ctx)


class Tools:
    """The tools that read the index: each public method but `kb_names` is one, registered by its
    name, its docstring as the description and its Annotated parameters as the argument schema."""

    def __init__(self, copilot: Copilot, roots: bool = False):
        self.index = copilot.index
        self.cfg = copilot.cfg
        self.roots = roots  # read the client's roots (stdio: the client runs on this machine)

    def kb_names(self) -> list[str]:
        return [i.name for i in self.index.catalog.kbs()]

    def _check_kb(self, kb: str | None) -> list[str]:
        names = self.kb_names()
        if not names:
            raise ToolError("Nothing is indexed yet: run `devcopilot ingest SOURCE` on the machine running this "
                            "server, then call again.")
        if kb is None:
            return names
        try:
            self.index.searchable(kb)
        except SearchError as e:
            raise ToolError(f"{e} Call list_knowledge_bases to see them.") from None
        return [kb]

    @staticmethod
    def client_folder(roots: ListRootsResult | None) -> str:
        """The first folder of this machine among the client's roots (its working folder), or ""."""
        for root in (roots or NO_ROOTS).roots:
            uri = str(root.uri)
            if uri.startswith("file://") and Path(unquote(urlsplit(uri).path)).is_dir():
                return unquote(urlsplit(uri).path)
        return ""

    def versions(self, roots: ListRootsResult | None, version: str | None, library: str | None,
                 project: bool = True) -> VersionChoice | None:
        """The versions asked for, then those the client's project pins (and, with `project`, project.path)."""
        try:
            chosen = VersionChoice.parse(version, library) if version is not None or library is not None else None
        except ValueError as e:
            raise ToolError(str(e)) from None
        folder = self.client_folder(roots) or (self.cfg.project.path if project else "")
        return versions_for(chosen, folder) if folder else chosen

    def notes(self, kbs: list[str], choice: VersionChoice | None) -> str:
        """What the versions asked for could not give, as lines ahead of a result ("" for none)."""
        return "".join(f"Note: {n}\n\n" for n in self.index.version_notes(kbs, choice))

    def label(self, h: Hit) -> str:
        c = h.chunk
        return f"{c.library} {c.version}" if c.library and c.library in self.index.side_by_side(h.kb) else ""

    def list_knowledge_bases(self) -> CallToolResult:
        """List the knowledge bases this copilot has indexed: for each, its sources (folder, git URL,
        installed package or docs website, with version), file and chunk counts and when it was last
        indexed. Call this to learn which `kb` names the other tools accept."""
        kbs = self.index.catalog.describe()
        for kb in kbs:
            for item in (kb, *kb["sources"]):
                item["last_indexed"] = _when(item["last_indexed"])
        lines = []
        for kb in kbs:
            lines.append(f"KB '{kb['name']}': {counted(kb['files'], 'file')}, {counted(kb['chunks'], 'chunk')}, "
                         f"last indexed {kb['last_indexed'] or 'never'}"
                         + (" (last indexing was interrupted)" if kb["interrupted"] else ""))
            lines += [f"  - {s['spec']} [{s['kind']}{' ' + s['version'] if s['version'] else ''}]: "
                      f"{counted(s['files'], 'file')}, {counted(s['chunks'], 'chunk')}" for s in kb["sources"]]
            lines += [f"  versions of {lib}: {', '.join(vs)} (search with version=...; the newest by default)"
                      for lib, vs in kb["versions"].items() if len(vs) > 1]
        text = "\n".join(lines) or "Nothing is indexed yet: run `devcopilot ingest SOURCE`."
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content={"knowledge_bases": kbs})

    def search(
        self,
        query: Annotated[str, Field(min_length=1, max_length=2000,
                                    description="What to look for, in words or code (`Runner.run`, "
                                                "'how do I add memory to an agent').")],
        kb: Annotated[str | None, Field(description="Knowledge base to search (list_knowledge_bases names "
                                                    "them); omit to search all.")] = None,
        kind: Annotated[Literal["doc", "code"] | None, Field(description="'doc' for documentation only, 'code' "
                                                                         "for source code only; omit for "
                                                                         "both.")] = None,
        k: Annotated[int, Field(ge=1, le=20, description="How many passages, 1 to 20.")] = 8,
        version: Version = None,
        library: Library = None,
        *,
        roots: Roots,
    ) -> CallToolResult:
        """Search the indexed documentation and source code (hybrid: keywords and meaning) and return
        the best passages, ranked, each with its path, start and end line, symbol or heading trail,
        knowledge base, link and text. These are exactly the passages the copilot's assistants would
        cite. Results stay within about 6,000 tokens: long passages are cut (read_source reads the rest).
        When the result says the match is weak, the indexed sources probably do not cover the question."""
        kbs = self._check_kb(kb)
        choice = self.versions(roots, version, library)
        try:
            found = retrieve(self.index, query, kbs, kind=kind, k=k, versions=choice)
        except RetrievalDown as e:
            raise ToolError(f"The index cannot be searched right now ({e}); try again later.") from None
        text, shown = render_hits(found.hits, label=self.label)
        if not found.hits:
            text = "No passages match. Try other words, another kind, or list_knowledge_bases."
        elif found.weak:
            text = ("Weak match: these passages share little with the query; the indexed sources may not cover "
                    "it.\n\n" + text)
        text = self.notes(kbs, choice) + text
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content={"query": query, "weak": found.weak,
                                                  "hits": [passage(h) for h in found.hits[:shown]]})

    def read_source(
        self,
        kb: Annotated[str, Field(description="The knowledge base holding the file (as search results give it).")],
        path: Annotated[str, Field(min_length=1, description="The file's path exactly as search results give "
                                                             "it, e.g. 'src/pkg/module.py'.")],
        start_line: Annotated[int, Field(ge=1, description="First line to read (1-based).")] = 1,
        end_line: Annotated[int | None, Field(ge=1, description="Last line to read (inclusive); omit for "
                                                                f"{MAX_LINES} lines.")] = None,
        version: Version = None,
        library: Library = None,
        *,
        roots: Roots,
    ) -> CallToolResult:
        kbs = self._check_kb(kb)
        choice = self.versions(roots, version, library)
        found = find_indexed_file(self.index.catalog, path, kbs, {k: self.index.scope(k, choice).sources for k in kbs})
        if found is None:
            raise ToolError(f"'{path}' is not an indexed file of knowledge base '{kb}'. Use a path exactly as "
                            "search or find_definition return it.")
        total = len(found.lines)
        if start_line > total:
            raise ToolError(f"'{found.path}' has {total} lines; start_line must be {total} or less.")
        first, last, lines = line_range(found, start_line, end_line or start_line + MAX_LINES - 1)
        body, used = [], 0
        for n, ln in enumerate(lines, first):
            row = f"{n:5d}  {ln}"
            if used + len(row) > MAX_RESULT_CHARS and body:
                break
            body.append(row)
            used += len(row) + 1
        last = first + len(body) - 1
        more = f"\n(lines {last + 1}-{total} not shown: call again with start_line={last + 1})" if last < total else ""
        head = f"{found.path} (KB {found.kb}, from {found.spec}), lines {first}-{last} of {total}:\n"
        return CallToolResult(content=[TextContent(type="text", text=head + "\n".join(body) + more)],
                              structured_content={"kb": found.kb, "path": found.path, "start_line": first,
                                                  "end_line": last, "total_lines": total,
                                                  "text": "\n".join(lines[:len(body)])})

    read_source.__doc__ = (f"Read lines of one indexed file (only files the copilot indexed can be read), "
                           f"numbered: at most {MAX_LINES} lines and about 6,000 tokens per call; call again "
                           "with a later start_line for more.")

    def find_definition(
        self,
        name: Annotated[str, Field(min_length=1, max_length=200,
                                   description="A class, function or method name: 'Runner', 'Runner.run' or "
                                               "'run'.")],
        kb: Annotated[str | None, Field(description="Knowledge base to look in; omit for all.")] = None,
        version: Version = None,
        library: Library = None,
        *,
        roots: Roots,
    ) -> CallToolResult:
        """Find where a class, function or method is defined in the indexed source code: its file, lines,
        qualified name, link and its first 60 lines (up to three places, best first; about 3,000 tokens at most)."""
        kbs = self._check_kb(kb)
        choice = self.versions(roots, version, library)
        try:
            found = find_definitions(self.index, name, kbs, versions=choice)
        except RetrievalDown as e:
            raise ToolError(f"The index cannot be searched right now ({e}); try again later.") from None
        if not found:
            text = (f"No definition of '{name}' in the indexed code. Check the spelling, try the class name, or "
                    "use search.")
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"definitions": []})
        parts, items = [], []
        for d in found:
            c = d.hit.chunk
            lines = d.lines[:60]
            end = d.line + len(lines) - 1
            version = self.label(d.hit)
            parts.append(f"{c.path}:{d.line}-{end} · {c.symbol or c.path}{' · ' + version if version else ''} "
                         f"(KB {d.hit.kb})\n{c.link}\n" + _fence("\n".join(lines), c.language))
            items.append({"path": c.path, "start_line": d.line, "end_line": end, "symbol": c.symbol, "kb": d.hit.kb,
                          "link": c.link, "language": c.language, "text": "\n".join(lines), "library": c.library,
                          "version": c.version})
        return CallToolResult(content=[TextContent(type="text", text="\n\n".join(parts))],
                              structured_content={"definitions": items})

    def what_changed(
        self,
        library: Annotated[str, Field(min_length=1, max_length=200,
                                      description="The library, as list_knowledge_bases names it, e.g. "
                                                  "'openai-agents'.")],
        from_version: Annotated[str, Field(min_length=1, max_length=100,
                                           description="The older version, e.g. '0.23.0' ('0.23' is the oldest "
                                                       "0.23.x indexed).")],
        to_version: Annotated[str, Field(min_length=1, max_length=100,
                                         description="The newer version, e.g. '0.24.0'.")],
        symbol: Annotated[str | None, Field(max_length=200, description="Only what concerns this symbol: "
                                                                         "'Runner.run', 'Runner'; omit for "
                                                                         "everything.")] = None,
        kb: Annotated[str | None, Field(description="Knowledge base holding both versions; omit to find the "
                                                    "one that has the library.")] = None,
    ) -> CallToolResult:
        """What changed in a library between two indexed versions: public symbols added and removed,
        signature changes (parameters added, removed, renamed, defaults, annotations, return type),
        deprecations, docstrings changed, and doc pages added, removed or changed, each cited in both
        versions (path:lines and link). Within about 6,000 tokens: narrow it with `symbol`."""
        self._check_kb(kb)
        try:
            report = what_changed(self.index, library, from_version, to_version, symbol or "", kb)
        except ChangesError as e:
            raise ToolError(str(e)) from None
        text = listing(report, max_chars=MAX_RESULT_CHARS)
        shown, used = [], 0
        for c in report.changes:  # the structured copy within the same budget
            item = c.to_json()
            used += len(str(item))
            if used > MAX_RESULT_CHARS and shown:
                break
            shown.append(item)
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content={**report.to_json(), "changes": shown,
                                                  "left_out": len(report.changes) - len(shown)})


    # -- the code graph ------------------------------------------------------------------------------
    def find_references(
        self,
        symbol: Annotated[str, Field(min_length=1, max_length=200,
                                     description="A function, class or method as the code names it: 'Runner.run', "
                                                 "'run', 'agents.run.Runner'.")],
        kb: Annotated[str | None, Field(description="Knowledge base to look in; omit for all.")] = None,
        version: Version = None,
        library: Library = None,
        *,
        roots: Roots,
    ) -> CallToolResult:
        """Find every reference to a function, class or method in the indexed code: call sites, imports (with
        aliases), subclasses, decorator uses, type annotations, each with its file, line, the symbol it sits in,
        the code line and a link; resolved through imports and re-exports. References the graph could only
        match by name (the receiver's type is unknown) are listed apart as unresolved. About 6,000 tokens at
        most."""
        return self._graph(lambda index, kbs, within: graph.references(index, kbs, symbol, within=within), kb,
                           roots, version, library)

    def call_graph(
        self,
        symbol: Annotated[str, Field(min_length=1, max_length=200,
                                     description="A function, class or method: 'Runner.run', 'run'.")],
        direction: Annotated[Literal["callers", "callees"], Field(
            description="'callers': who calls it (what may break if it changes); 'callees': what it calls.")]
        = "callers",
        depth: Annotated[int, Field(ge=1, le=graph.MAX_DEPTH, description="Levels to follow, 1 to 5: 2 also "
                                                                           "gives the callers' callers.")] = 1,
        kb: Annotated[str | None, Field(description="Knowledge base to look in; omit for all.")] = None,
        version: Version = None,
        library: Library = None,
        *,
        roots: Roots,
    ) -> CallToolResult:
        """Who calls a function, class or method (its call sites, then their callers to a depth: what breaks if
        it changes), or what it calls, grouped by file, each site with its line, the calling symbol, the code
        line and a link. About 6,000 tokens at most."""
        ask = graph.callers if direction == "callers" else graph.callees
        return self._graph(lambda index, kbs, within: ask(index, kbs, symbol, depth, within=within), kb,
                           roots, version, library)

    def _graph(self, ask, kb: str | None, roots: ListRootsResult | None, version: str | None,
               library: str | None) -> CallToolResult:
        """The graph's answer at the versions chosen (as search reads them), what they could not give said first."""
        kbs = self._check_kb(kb)
        choice = self.versions(roots, version, library)
        scopes = {k: self.index.scope(k, choice) for k in kbs}
        try:
            answer = ask(self.index, kbs, {k: scope.sources for k, scope in scopes.items()})
        except graph.GraphError as e:
            raise ToolError(str(e)) from None
        notes = self.notes(kbs, choice)
        text, _ = _cut(notes + graph.describe(answer, max_sites=80), MAX_RESULT_CHARS)
        found = answer.to_json()
        found["sites"] = found["sites"][:80]
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=found)

    def check_docs(
        self,
        kb: Annotated[str | None, Field(description="Knowledge base to check; omit for all.")] = None,
        kind: Annotated[Literal["missing", "keyword", "default", "example"] | None,
                        Field(description="Only findings of this kind: 'missing' (a name the code no longer has), "
                                          "'keyword' (an argument a signature lacks), 'default' (a default the code "
                                          "does not have), 'example' (a code block's call that does not match); "
                                          "omit for all.")] = None,
        path: Annotated[str | None, Field(description="Only the findings in doc files whose path starts with "
                                                      "this, e.g. 'docs/guide'.")] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="How many findings at most.")] = 50,
        version: Annotated[str | None, Field(max_length=100, description="Only the findings at this version of "
                                                                         "the library, e.g. '0.23.1', when the "
                                                                         "knowledge base holds several; omit for "
                                                                         "every version's.")] = None,
        library: Library = None,
    ) -> CallToolResult:
        """List the documentation passages that no longer match the source code: names the code no longer has
        (with the likely new name), keyword arguments a signature lacks, stated defaults the code does not
        have, and code examples whose calls do not match the signatures. Each finding cites the doc lines and
        the code lines (path:start-end and link); in a knowledge base holding several versions of a library, the
        version the passage was checked at. Checked at indexing time; read-only."""
        from indexes import drift

        kbs = self._check_kb(kb)
        found = [f for name in kbs for f in drift.findings(self.index.catalog, name, [kind] if kind else None)
                 if not path or f.doc_path.startswith(path)]
        notes = ""
        if version is not None or library is not None:  # narrowed to one version, as search reads it
            choice = self.versions(None, version, library, project=False)
            scopes = {name: self.index.scope(name, choice) for name in kbs}
            notes = self.notes(kbs, choice)
            found = [f for name in kbs for f in drift.at_versions([g for g in found if g.kb == name],
                                                                  scopes[name].answered)]
        shown = found[:limit]
        lines, used = [], 0
        for f in shown:
            at = f", {f.version_label}" if f.version else ""
            line = (f"[{f.kind}] {f.doc_place} (KB {f.kb}{at}): {f.message}\n  doc: {f.doc_link}"
                    + (f"\n  code: {f.code_place} {f.symbol} {f.code_link}" if f.code_path else ""))
            if used + len(line) > MAX_RESULT_CHARS and lines:
                shown = shown[:len(lines)]
                break
            lines.append(line)
            used += len(line)
        more = len(found) - len(shown)
        text = notes + ("\n\n".join(lines) if lines else "No doc passage was found out of step with the code.")
        if more:
            text += f"\n\n({more} more findings left out; narrow with kind or path, or raise limit.)"
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content={"counts": drift.counts(found),
                                                  "findings": [f.to_json() for f in shown]})


def ask_tool(copilot: Copilot, tools: Tools) -> Callable[..., CallToolResult]:
    """The `ask` tool for `copilot`: a function of its own, as its question's length limit is the
    copilot's setting (chat.max_message_chars), read when the schema is made."""

    def ask(
        question: Annotated[str, Field(min_length=1, max_length=copilot.cfg.chat.max_message_chars,
                                       description="The question, as you would ask a colleague who knows the "
                                                   "framework.")],
        assistant: Annotated[str | None, Field(description="Who answers: 'Tutoring' (docs), 'Coding' (source) "
                                                           "or another configured assistant; omit to let the "
                                                           "Guide choose.")] = None,
        version: Version = None,
        library: Library = None,
        *,
        roots: Roots,
        ctx: Context,
    ) -> CallToolResult:
        """Ask the copilot's group chat: a written answer with numbered citations [n] to the passages it
        used (path, lines, link). Without a configured language model it answers with the best passages,
        quoted, and says so. The answer stays within about 6,000 tokens. Slower than search; prefer search
        when you will read the passages yourself."""
        if assistant is not None:
            try:
                find_assistant(assistant, copilot.assistants)
            except UnknownAssistant as e:
                raise ToolError(e.sentence(hint=", or omit it")) from None
        return answer(copilot, question, assistant, tools.versions(roots, version, library, project=False),
                      owner=signed_in_user(ctx))

    return ask


def signed_in_user(ctx: Context) -> str:
    """The web UI's user who sent this call over HTTP (--auth, as the edge let them in: ui/edge.py), so their
    questions count in their Usage tab as they do from the chat and the API; "" for a token, a local caller
    or stdio."""
    state = getattr(getattr(ctx.request_context, "request", None), "state", None)
    who = getattr(state, "caller", None)
    return who.user if who is not None and who.kind == USER else ""


# How an answer's sources read: "[1] src/app.py:3-9 · App.run <link>".
CITES = CiteStyle(title=" · {}", kb="")


def answer(copilot: Copilot, question: str, assistant: str | None,
           versions: VersionChoice | None = None, owner: str = "") -> CallToolResult:
    """One turn of the group chat, collected: each speaker's answer and its numbered sources; the conversation is
    `owner`'s (a signed-in user) and says it came over MCP."""
    session = copilot.new_session(owner=owner, origin="mcp")
    turn = Transcript(CITES).take(copilot.chat(question, session, assistant, versions=versions))
    text, _ = _cut(turn.text, MAX_RESULT_CHARS)
    sources = [{"assistant": name, **{k: v for k, v in s.to_json().items() if k != "excerpt"}}
               for name, s in turn.sources]
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content={"answer": text, "speakers": turn.speakers, "sources": sources},
                          is_error=turn.failed)


def http_app(server: MCPServer):
    """(ASGI app answering MCP at its mount point, lifespan to run it in) for Streamable HTTP.

    The SDK's own Host, Origin and content-type checks are off: the server's edge (ui/edge.py) makes
    them for every route, /mcp included, from the same settings (server.allowed_hosts, cors_origins)."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
    from mcp.server.transport_security import TransportSecuritySettings

    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server.streamable_http_app(transport_security=security)  # makes the session manager
    manager = server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(_app) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return StreamableHTTPASGIApp(manager), lifespan


def run_stdio(copilot: Copilot) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin, whenever that is (the requests already
    read are answered first); answer every line that is not a JSON-RPC message with a JSON-RPC error
    and go on serving. The client runs on this machine, so the folder it shares as its root is read
    for the versions its project pins."""
    anyio.run(_serve_stdio, build_server(copilot, roots=True))


async def _serve_stdio(server: MCPServer) -> None:
    """The loop MCPServer.run_stdio_async runs, with stdin's lines checked first (`CheckedLines`): the
    SDK's transport drops a line it cannot parse (a lone surrogate among them) without a reply, and
    the client waits for one forever."""
    from mcp.server.stdio import stdio_server

    lines = CheckedLines(anyio.wrap_file(sys.stdin.buffer))
    lowlevel = server._lowlevel_server  # what run_stdio_async runs; the SDK has no public name for it
    async with stdio_server(stdin=lines) as (read_stream, write_stream):
        answers = lines.answer_on(write_stream)
        await lowlevel.run(read_stream, answers, lowlevel.create_initialization_options())


def check_line(line: bytes) -> tuple[object, JSONRPCError | None]:
    """(the line as JSON, the JSON-RPC error answering it or None when it is a message the SDK can
    take): not JSON (-32700), a string that is not text (-32602, ui/strings.py), not a JSON-RPC
    message (-32600). The error carries the request's id when it has one."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError among them
        return None, _error(None, PARSE_ERROR, "Parse error: the line is not JSON; send one JSON-RPC message per line.")
    rid = _id_of(message)
    said = first_refusal(message, "message")
    if said:
        return message, _error(rid, INVALID_PARAMS, said)
    try:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError:
        return message, _error(rid, INVALID_REQUEST, "Invalid request: the line is not a JSON-RPC 2.0 message.")
    return message, None


def _id_of(message: object) -> str | int | None:
    rid = message.get("id") if isinstance(message, dict) else None
    return rid if isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool)) else None


def _error(rid: str | int | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=rid, error=ErrorData(code=code, message=message))


ANSWER_AT_END_S = 120.0  # at the end of stdin, how long the requests read before it have to be answered


class CheckedLines:
    """stdin's lines as the SDK's stdio transport reads them (`async for line in ...`), each a JSON-RPC
    message it can parse. A line that is not one is answered here (`check_line`), on the transport's
    write stream, and not passed on; blank lines are passed over. At the end of input, the requests
    passed on are answered (for up to ANSWER_AT_END_S) before the transport hears of it: it would
    drop them unanswered."""

    def __init__(self, stdin):
        self.stdin = stdin
        self.replies = None
        self.open = anyio.Event()
        self.unanswered: set[str | int] = set()  # ids of the requests passed on, until their answer is sent

    def answer_on(self, write_stream) -> "Answers":
        """The transport's write stream is open: refusals go there; the server writes through the
        returned stream, which tells this one which requests it answered."""
        self.replies = write_stream
        self.open.set()
        return Answers(write_stream, self.unanswered)

    async def __aiter__(self):
        async for line in self.stdin:
            if not line.strip():
                continue
            message, error = check_line(line)
            if error is not None:
                await self.open.wait()
                await self.replies.send(SessionMessage(error))
                continue
            if isinstance(message, dict) and "method" in message and _id_of(message) is not None:
                self.unanswered.add(_id_of(message))
            elif isinstance(message, dict) and message.get("method") == "notifications/cancelled":
                params = message.get("params")  # a cancelled request gets no answer
                self.unanswered.discard(params.get("requestId") if isinstance(params, dict) else None)
            yield line.decode("utf-8")
        with anyio.move_on_after(ANSWER_AT_END_S):  # the end of input: what was asked is answered first
            while self.unanswered:
                await anyio.sleep(0.05)


class Answers:
    """The transport's write stream, noting each request answered (CheckedLines.unanswered)."""

    def __init__(self, stream, unanswered: set[str | int]):
        self.stream = stream
        self.unanswered = unanswered

    async def send(self, item: SessionMessage) -> None:
        await self.stream.send(item)
        if not hasattr(item.message, "method"):  # a response or an error: its request is answered
            self.unanswered.discard(item.message.id)

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> "Answers":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
