"""The MCP server: the copilot's search, sources and answers as tools for coding agents.

`devcopilot mcp` serves it over stdio (what editors start); `devcopilot serve` also serves it
as Streamable HTTP at /mcp, behind the API's bearer token. Every tool reads through the same
calls as the other doors: `search` and `find_definition` through indexes/retrieve.py (so they
return what an assistant would cite), `read_source` by the source viewer's rules
(indexes/indexed_files.py: indexed files only, bounded), `ask` through the group chat.

Bad arguments come back as tool errors a model can act on (what was wrong, what to call
instead); results are cut to a budget of about MAX_RESULT_CHARS characters.
"""
# No `from __future__ import annotations`: the SDK reads the tools' Annotated types at run time.
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from copilot.chat import Copilot
from copilot.citations import CiteStyle
from copilot.reply import Transcript
from copilot.routing import UnknownAssistant, find_assistant
from indexes.indexed_files import MAX_LINES, find_indexed_file, line_range
from indexes.retrieve import RetrievalDown, find_definitions, retrieve
from indexes.search import Hit, SearchError

MAX_RESULT_CHARS = 24_000  # about 6,000 tokens: what one tool result may add to an agent's context
PASSAGE_CHARS = 4_000  # one passage's text at most, so a long chunk does not crowd out the others

INSTRUCTIONS = """devcopilot indexes a software framework's documentation and source code{what}.
Use `search` first for any question about that framework (how to do something, which API to call,
what an option means), `find_definition` for where a class, function or method is defined,
`read_source` to read more lines around a passage, and `ask` for a written answer with numbered
citations. Cite passages by their path and lines or link."""

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


def render_hits(hits: list[Hit], budget: int = MAX_RESULT_CHARS) -> tuple[str, int]:
    """Ranked passages as Markdown within `budget` characters: (text, how many were shown)."""
    parts: list[str] = []
    used = 0
    shown = 0
    for n, h in enumerate(hits, 1):
        c = h.chunk
        text, cut = _cut(c.text, PASSAGE_CHARS)
        head = (f"[{n}] {c.path}:{c.start_line}-{c.end_line}" + (f" · {_title(h)}" if _title(h) else "")
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


def build_server(copilot: Copilot) -> MCPServer:
    """An MCPServer whose tools read `copilot`'s index and ask its group chat."""
    tools = Tools(copilot)
    what = ", ".join(f"'{n}'" for n in tools.kb_names())
    # log_level: the SDK configures the root logger with it; INFO would log every HTTP request
    # the chat's model client makes, on every turn.
    about = f" (knowledge bases: {what})" if what else ""
    server = MCPServer("devcopilot", log_level="WARNING", instructions=INSTRUCTIONS.format(what=about))
    for tool in (tools.list_knowledge_bases, tools.search, tools.read_source, tools.find_definition):
        server.add_tool(tool, annotations=READ_ONLY, structured_output=False)
    server.add_tool(ask_tool(copilot), annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
                    structured_output=False)
    server.add_tool(tools.check_docs, annotations=READ_ONLY, structured_output=False)
    return server


class Tools:
    """The tools that read the index: each public method but `kb_names` is one, registered by its
    name, its docstring as the description and its Annotated parameters as the argument schema."""

    def __init__(self, copilot: Copilot):
        self.index = copilot.index

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
            lines.append(f"KB '{kb['name']}': {kb['files']} files, {kb['chunks']} chunks, last indexed "
                         f"{kb['last_indexed'] or 'never'}" + (" (last indexing was interrupted)"
                                                               if kb["interrupted"] else ""))
            lines += [f"  - {s['spec']} [{s['kind']}{' ' + s['version'] if s['version'] else ''}]: {s['files']} "
                      f"files, {s['chunks']} chunks" for s in kb["sources"]]
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
    ) -> CallToolResult:
        """Search the indexed documentation and source code (hybrid: keywords and meaning) and return
        the best passages, ranked, each with its path, start and end line, symbol or heading trail,
        knowledge base, link and text. These are exactly the passages the copilot's assistants would
        cite. Results stay within about 6,000 tokens: long passages are cut (read_source reads the rest).
        When the result says the match is weak, the indexed sources probably do not cover the question."""
        kbs = self._check_kb(kb)
        try:
            found = retrieve(self.index, query, kbs, kind=kind, k=k)
        except RetrievalDown as e:
            raise ToolError(f"The index cannot be searched right now ({e}); try again later.") from None
        text, shown = render_hits(found.hits)
        if not found.hits:
            text = "No passages match. Try other words, another kind, or list_knowledge_bases."
        elif found.weak:
            text = ("Weak match: these passages share little with the query; the indexed sources may not cover "
                    "it.\n\n" + text)
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
    ) -> CallToolResult:
        kbs = self._check_kb(kb)
        found = find_indexed_file(self.index.catalog, path, kbs)
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
    ) -> CallToolResult:
        """Find where a class, function or method is defined in the indexed source code: its file, lines,
        qualified name, link and its first 60 lines (up to three places, best first; about 3,000 tokens at most)."""
        kbs = self._check_kb(kb)
        try:
            found = find_definitions(self.index, name, kbs)
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
            parts.append(f"{c.path}:{d.line}-{end} · {c.symbol or c.path} (KB {d.hit.kb})\n{c.link}\n"
                         + _fence("\n".join(lines), c.language))
            items.append({"path": c.path, "start_line": d.line, "end_line": end, "symbol": c.symbol, "kb": d.hit.kb,
                          "link": c.link, "language": c.language, "text": "\n".join(lines)})
        return CallToolResult(content=[TextContent(type="text", text="\n\n".join(parts))],
                              structured_content={"definitions": items})


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
    ) -> CallToolResult:
        """List the documentation passages that no longer match the source code: names the code no longer has
        (with the likely new name), keyword arguments a signature lacks, stated defaults the code does not
        have, and code examples whose calls do not match the signatures. Each finding cites the doc lines and
        the code lines (path:start-end and link). Checked at indexing time; read-only."""
        from indexes import drift

        kbs = self._check_kb(kb)
        found = [f for name in kbs for f in drift.findings(self.index.catalog, name, [kind] if kind else None)
                 if not path or f.doc_path.startswith(path)]
        shown = found[:limit]
        lines, used = [], 0
        for f in shown:
            line = (f"[{f.kind}] {f.doc_place} (KB {f.kb}): {f.message}\n  doc: {f.doc_link}"
                    + (f"\n  code: {f.code_place} {f.symbol} {f.code_link}" if f.code_path else ""))
            if used + len(line) > MAX_RESULT_CHARS and lines:
                shown = shown[:len(lines)]
                break
            lines.append(line)
            used += len(line)
        more = len(found) - len(shown)
        text = "\n\n".join(lines) if lines else "No doc passage was found out of step with the code."
        if more:
            text += f"\n\n({more} more findings left out; narrow with kind or path, or raise limit.)"
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content={"counts": drift.counts(found),
                                                  "findings": [f.to_json() for f in shown]})


def ask_tool(copilot: Copilot) -> Callable[..., CallToolResult]:
    """The `ask` tool for `copilot`: a function of its own, as its question's length limit is the
    copilot's setting (chat.max_message_chars), read when the schema is made."""

    def ask(
        question: Annotated[str, Field(min_length=1, max_length=copilot.cfg.chat.max_message_chars,
                                       description="The question, as you would ask a colleague who knows the "
                                                   "framework.")],
        assistant: Annotated[str | None, Field(description="Who answers: 'Tutoring' (docs), 'Coding' (source) "
                                                           "or another configured assistant; omit to let the "
                                                           "Guide choose.")] = None,
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
        return answer(copilot, question, assistant)

    return ask


# How an answer's sources read: "[1] src/app.py:3-9 · App.run <link>".
CITES = CiteStyle(title=" · {}", kb="")


def answer(copilot: Copilot, question: str, assistant: str | None) -> CallToolResult:
    """One turn of the group chat, collected: each speaker's answer and its numbered sources."""
    turn = Transcript(CITES).take(copilot.chat(question, copilot.new_session(), assistant))
    text, _ = _cut(turn.text, MAX_RESULT_CHARS)
    sources = [{"assistant": name, **{k: v for k, v in s.to_json().items() if k != "excerpt"}}
               for name, s in turn.sources]
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content={"answer": text, "speakers": turn.speakers, "sources": sources},
                          is_error=turn.failed)


def http_app(server: MCPServer, host: str = "127.0.0.1"):
    """(ASGI app answering MCP at its mount point, lifespan to run it in) for Streamable HTTP.

    A server on a loopback address checks the Host and Origin headers (a web page cannot reach
    it through DNS rebinding); one bound to other interfaces relies on its bearer token."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
    from mcp.server.transport_security import TransportSecuritySettings

    loopback = host in ("127.0.0.1", "localhost", "::1")
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=loopback,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"] if loopback else [],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"] if loopback else [])
    server.streamable_http_app(transport_security=security, host=host)  # makes the session manager
    manager = server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(_app) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return StreamableHTTPASGIApp(manager), lifespan


def run_stdio(copilot: Copilot) -> None:
    """Serve MCP on stdin/stdout until the client closes them."""
    build_server(copilot).run("stdio")
