"""`devcopilot serve`: the web UI, the OpenAI-compatible API and MCP on one FastAPI server.

Security defaults: loopback bind; HTTP Basic auth for everything but /v1 and /mcp when `auth` is
set (those take the bearer token instead); request bodies above server.max_request_bytes are
refused; the source viewer reads only files that are indexed.

While it runs, the server is the one process writing its data dir: it registers there, and
`devcopilot ingest` / `forget` hand it their work through the Knowledge API (ui/knowledge_api.py,
indexes/writer.py, indexes/jobs.py); `[sync] every` re-syncs every source on a schedule.
"""
from __future__ import annotations

import functools
import html
import ipaddress
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response

from indexes.indexed_files import find_indexed_file
from ui import render
from ui.auth import basic_ok
from ui.indexing import ProgressClock

log = logging.getLogger("devcopilot.serve")

ASSETS = Path(__file__).parent / "assets"


def repo_root() -> Path:
    """This project's own repository: the folder holding the `copilot` package."""
    import copilot

    return Path(copilot.__file__).resolve().parent.parent


def ensure_knowledge(index, root: Path, say: Callable[[str], None] = print) -> bool:
    """On a first run (no knowledge base at all) index `root` into KB 'default'. True when it did."""
    if index.catalog.kbs():
        return False
    from indexes.build import ingest

    say(f"Nothing is indexed yet: indexing {root} into knowledge base 'default' so you can try it at once…")
    last = {"stage": "", "pct": -1}
    clock = ProgressClock()

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "index":  # files chunked: the chunks embedded ("embed") say more
            return
        if stage != "embed":  # scanning and the lexical index have no meaningful total: say when they start
            if stage != last["stage"]:
                say({"scan": "  scanning files…", "lexical": "  building the lexical index…"}.get(stage, f"  {stage}…"))
            last["stage"] = stage
            return
        pct = int(100 * done / total) if total else 0
        if last["stage"] != "embed" or pct >= last["pct"] + 10 or done >= total:
            last.update(stage=stage, pct=pct)
            left = clock.left(done, total)
            say(f"  embedding: {done:,} of ~{total:,} chunks ({pct}%)" + (f", about {left} left" if left else ""))

    summary = ingest(index, [str(root)], "default", progress=progress)
    say(summary.line())
    return True


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_warnings(host: str, auth: str | list[str], api_token: str) -> list[str]:
    if is_loopback(host):
        return []
    out = []
    if not auth:
        out.append(f"WARNING: serving on {host} WITHOUT a password: anyone who can reach this machine can use the "
                   "web UI and index sources. Use --auth user:password, or bind to 127.0.0.1.")
    if not api_token:
        out.append(f"WARNING: the API at http://{host}/v1 and MCP at /mcp have NO bearer token: anyone who can "
                   "reach them can chat through your model account. Use --api-token TOKEN.")
    return out


def parse_auth(auth: str | list[str]) -> list[tuple[str, str]]:
    """The web UI's users: one "user:password", or several (`--auth` repeated, or a list in the config).
    Each signed-in user has conversations of their own."""
    out = []
    for entry in [auth] if isinstance(auth, str) else list(auth or []):
        if not entry:
            continue
        user, sep, password = str(entry).partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth must look like user:password, with both parts non-empty.")
        out.append((user, password))
    return out


class BodyLimit:
    """Refuse any request whose body grows past `max_bytes`, however it is sent.

    A Content-Length header can be left out (Transfer-Encoding: chunked), so the body itself is
    counted: it is read up to the limit before the route sees any of it, and a request that goes
    past is answered 413 without the route running, so nothing of it is stored (an upload route
    writes what it reads to disk as it goes)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.max_bytes:
            return await self.app(scope, receive, send)
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                response = JSONResponse({"error": {"message": f"The request is larger than {self.max_bytes:,} "
                                                   "bytes (server.max_request_bytes); send less.",
                                                   "type": "request_too_large"}}, status_code=413,
                                        headers={"Connection": "close"})
                return await response(scope, receive, send)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(parts), "more_body": False}

        await self.app(scope, replay, send)


class Guard:
    """Answer `refusal(request)` instead of the app when it gives a response (size, password, token).

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which relays every piece of a streamed
    answer through a memory stream of its own: with 50 chat sessions streaming, that relay was the
    largest single cost of the server's event loop."""

    def __init__(self, app, refusal: Callable[[Request], Response | None]):
        self.app = app
        self.refusal = refusal

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            response = self.refusal(Request(scope))
            if response is not None:
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(copilot, cfg, auth: str | list[str] = "", api_token: str = "", host: str = "127.0.0.1", jobs=None,
               local_token: str = "") -> FastAPI:
    """The FastAPI app: the API, MCP, the Knowledge API (index jobs run by `jobs`, made here when not
    given), the viewer, the avatars and the Gradio UI."""
    from indexes.jobs import Jobs
    from ui.api import api_router, bearer_ok
    from ui.knowledge_api import knowledge_router
    from ui.mcp_server import build_server, http_app

    credentials = parse_auth(auth)
    max_bytes = int(cfg.server.max_request_bytes or 0)
    mcp_asgi, mcp_lifespan = http_app(build_server(copilot), host)
    app = FastAPI(title="devcopilot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=mcp_lifespan)

    def refusal(request: Request) -> Response | None:
        """The answer to a request refused before any route sees it, or None to let it through."""
        length = request.headers.get("content-length")
        if max_bytes and length and length.isdigit() and int(length) > max_bytes:
            return JSONResponse({"error": {"message": f"The request is larger than {max_bytes:,} bytes; send "
                                           "less.", "type": "request_too_large"}}, status_code=413)
        # The API and MCP have their own bearer token; everything else (UI, viewer, avatars) needs the password.
        path = request.url.path
        if path == "/mcp" and api_token and not bearer_ok(request, api_token):
            return JSONResponse({"error": {"message": "A bearer token is required: send 'Authorization: Bearer "
                                           "TOKEN'.", "type": "auth_error"}}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="devcopilot"'})
        if credentials and not (path.startswith("/v1/") or path == "/mcp") and not _basic_ok(request, credentials):
            return PlainTextResponse("Sign in to use devcopilot.", status_code=401,
                                     headers={"WWW-Authenticate": 'Basic realm="devcopilot", charset="UTF-8"'})
        return None

    app.include_router(api_router(copilot, token=api_token or None))
    app.state.jobs = jobs if jobs is not None else Jobs(copilot.index)
    app.include_router(knowledge_router(copilot.index, app.state.jobs, cfg, api_token, credentials, local_token))

    app.add_route("/mcp", mcp_asgi)  # Streamable HTTP (POST, GET and DELETE on one path)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True}

    @app.get("/source", include_in_schema=False)
    def source(path: str, lines: str = ""):
        return _source_view(copilot.index, path, lines)

    @app.get("/avatars/{name}", include_in_schema=False)
    def avatar(name: str):
        for a in copilot.assistants:
            if a.name == name and render.is_image(a.avatar):
                found = _avatar_file(a.avatar)
                if found:
                    return FileResponse(found)
        return Response(status_code=404)

    import gradio as gr  # here, not at the top: `serve --workers N`'s parent process never builds the UI

    from ui.app import CSS, HEAD, build_app

    app = gr.mount_gradio_app(app, build_app(copilot, cfg, app.state.jobs), path="/", css=CSS, head=HEAD,
                              footer_links=[], show_error=False)
    app.add_middleware(Guard, refusal=refusal)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)  # outermost: before any route reads the body
    return app


def _basic_ok(request: Request, credentials: list[tuple[str, str]]) -> bool:
    return basic_ok(request.headers.get("authorization", ""), credentials)


def _avatar_file(avatar: str) -> Path | None:
    p = Path(avatar).expanduser()
    for candidate in ([p] if p.is_absolute() else [Path.cwd() / p, ASSETS / p]):
        if candidate.is_file():
            return candidate
    return None


def _source_view(index, path: str, lines: str) -> Response:
    """A read-only view of one indexed file, the cited lines highlighted. Nothing else is readable.

    The file on disk is shown only while its content is what was indexed (same hash): a file
    replaced since, by other text or by a hard link to a file outside the source (same path, other
    content), is shown from the catalog's own copy of the indexed lines instead."""
    try:
        start, _, end = lines.partition("-")
        start_n, end_n = int(start or 0), int(end or start or 0)
    except ValueError:
        start_n = end_n = 0
    found = find_indexed_file(index.catalog, path) if Path(path).is_absolute() else None
    if found is None:
        return PlainTextResponse("That file is not part of any indexed source.", status_code=404)
    note = "This file changed since it was indexed; the indexed text is shown." if found.from_index else ""
    return HTMLResponse(_file_page(found.path, found.spec, found.text, start_n, end_n, note))


def _file_page(rel: str, spec: str, text: str, start: int, end: int, note: str = "") -> str:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        mark = ' class="hit"' if start <= n <= end else ""
        rows.append(f'<tr id="L{n}"{mark}><td class="n"><a href="#L{n}">{n}</a></td>'
                    f"<td><pre>{html.escape(line)}</pre></td></tr>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(rel)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:13px}}
td{{padding:0 .6em;vertical-align:top}} td.n{{text-align:right;color:#888;user-select:none}} td.n a{{color:inherit;
text-decoration:none}} pre{{margin:0;font-family:ui-monospace,monospace;white-space:pre-wrap}}
tr.hit{{background:#fff5c2}} .meta{{color:#666}}</style></head><body>
<h3>{html.escape(rel)}</h3><p class="meta">from {html.escape(spec)}; lines {start}–{end} highlighted</p>
{f'<p class="meta"><strong>{html.escape(note)}</strong></p>' if note else ''}
<table>{''.join(rows)}</table></body></html>"""


def build_server_app(cfg, auth: str | list[str] = "", api_token: str = "", root: Path | None = None,
                     host: str = "127.0.0.1", local_token: str = "", schedules: bool = True):
    """The app `serve` runs (web UI, API, MCP, Knowledge API) over the data dir, indexing `root` on a
    first run: (app, index). With `schedules` and `[sync] every`, this process re-syncs every source
    on that schedule (one process of several does)."""
    from copilot.chat import Copilot
    from indexes.jobs import Jobs, SyncSchedule
    from indexes.search import Index

    index = Index(cfg)
    ensure_knowledge(index, root or repo_root())
    copilot = Copilot(cfg, index=index)
    jobs = Jobs(index)
    app = create_app(copilot, cfg, auth=auth, api_token=api_token, host=host, jobs=jobs, local_token=local_token)
    app.state.schedule = SyncSchedule(jobs, cfg.sync.seconds).start() if schedules and cfg.sync.seconds else None
    return app, index


def serve(cfg, host: str = "127.0.0.1", port: int = 7860, auth: str | list[str] = "", api_token: str = "",
          root: Path | None = None, workers: int = 1) -> None:
    """Index this repository on a first run, then serve the UI and the API until interrupted;
    with workers > 1, from that many processes behind the one port (ui/workers.py).

    The server registers on its data dir once it listens (indexes/writer.py): `devcopilot ingest`
    and `forget` then hand it their work, so it is the one process writing the store."""
    import threading

    import uvicorn

    from indexes.writer import Registration

    parse_auth(auth)  # a malformed --auth fails before anything slow happens
    if cfg.server.database_url:  # a database that cannot be reached stops the start in one sentence
        from copilot.conversations import open_conversations

        open_conversations(cfg).close()
    registration = Registration(cfg.data_dir, local_url(host, port))
    for line in security_warnings(host, auth, api_token):
        print(line, file=sys.stderr)

    def register() -> None:
        registration.__enter__()
        if not registration.registered:
            log.warning("another server is registered on %s and takes its writes; this one only serves", cfg.data_dir)

    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    synced = f"; every source is re-synced every {cfg.sync.every}" if cfg.sync.seconds else ""
    running = (f"devcopilot is running: web chat at http://{shown}:{port}/  API at http://{shown}:{port}/v1  "
               f"MCP at http://{shown}:{port}/mcp  (Ctrl+C stops it){synced}")
    if workers > 1:
        from indexes.search import Index
        from ui.workers import run_workers

        index = Index(cfg)
        ensure_knowledge(index, root or repo_root())  # once, here, before the workers open the data dir
        for line in stale_kbs(index):
            print(line, file=sys.stderr)
        del index

        def said(text: str) -> None:
            print(running if "first is ready" in text else text, flush=True)

        try:
            run_workers(cfg, host, port, auth, api_token, workers,
                        functools.partial(build_server_app, host=host, local_token=registration.token), say=said,
                        first_ready=register)
        finally:
            registration.__exit__(None, None, None)
        return
    app, index = build_server_app(cfg, auth, api_token, root, host, local_token=registration.token)
    for line in stale_kbs(index):
        print(line, file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    from ui.workers import freeze_startup_objects

    freeze_startup_objects()
    started = threading.Event()

    def register_when_listening() -> None:
        # Commands find the server only once it answers, so none hands work to a server not yet there.
        while not server.started and not server.should_exit:
            started.wait(0.05)
        if server.started:
            register()

    threading.Thread(target=register_when_listening, daemon=True).start()
    print(running, flush=True)
    try:
        server.run()
    finally:
        started.set()
        if app.state.schedule is not None:
            app.state.schedule.stop()
        registration.__exit__(None, None, None)


def stale_kbs(index) -> list[str]:
    """A warning for each KB embedded by another model or runtime than the configured one."""
    from indexes.search import SearchError

    out = []
    for info in index.catalog.kbs():
        try:
            index.searchable(info.name)
        except SearchError as e:
            out.append(f"WARNING: {e}")
    return out


def local_url(host: str, port: int) -> str:
    """Where commands on this machine reach a server bound to `host`."""
    if host in ("::", "::1"):
        return f"http://[::1]:{port}"
    if host in ("", "0.0.0.0", "localhost") or is_loopback(host):
        return f"http://127.0.0.1:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
