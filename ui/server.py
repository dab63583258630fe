"""`devcopilot serve`: the web UI, the OpenAI-compatible API and MCP on one FastAPI server.

Security defaults: loopback bind; HTTP Basic auth for everything but /v1 and /mcp when `auth` is
set (those take the bearer token instead); request bodies above server.max_request_bytes are
refused; the source viewer reads only files that are indexed.
"""
from __future__ import annotations

import base64
import functools
import hmac
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
from ui.app import CSS, HEAD, build_app
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


def create_app(copilot, cfg, auth: str | list[str] = "", api_token: str = "",
               host: str = "127.0.0.1") -> FastAPI:
    from copilot.api import bearer_ok
    from copilot.mcp_server import build_server, http_app

    credentials = parse_auth(auth)
    max_bytes = int(cfg.server.max_request_bytes or 0)
    mcp_asgi, mcp_lifespan = http_app(build_server(copilot), host)
    app = FastAPI(title="devcopilot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=mcp_lifespan)

    @app.middleware("http")
    async def guard(request: Request, call_next):
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
        return await call_next(request)

    try:
        from copilot.api import api_router
    except ImportError:
        log.warning("copilot.api is not available: serving the web UI without the /v1 API")
    else:
        app.include_router(api_router(copilot, token=api_token or None))

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

    import gradio as gr

    return gr.mount_gradio_app(app, build_app(copilot, cfg), path="/", css=CSS, head=HEAD, footer_links=[],
                               show_error=False)


def _basic_ok(request: Request, credentials: list[tuple[str, str]]) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    ok = False
    for known_user, known_password in credentials:  # every pair compared, in constant time
        ok |= hmac.compare_digest(user.encode(), known_user.encode()) & \
            hmac.compare_digest(password.encode(), known_password.encode())
    return bool(ok)


def _avatar_file(avatar: str) -> Path | None:
    p = Path(avatar).expanduser()
    for candidate in ([p] if p.is_absolute() else [Path.cwd() / p, ASSETS / p]):
        if candidate.is_file():
            return candidate
    return None


def _source_view(index, path: str, lines: str) -> Response:
    """A read-only view of one indexed file, the cited lines highlighted. Nothing else is readable."""
    try:
        start, _, end = lines.partition("-")
        start_n, end_n = int(start or 0), int(end or start or 0)
    except ValueError:
        start_n = end_n = 0
    found = find_indexed_file(index.catalog, path) if Path(path).is_absolute() else None
    if found is None:
        return PlainTextResponse("That file is not part of any indexed source.", status_code=404)
    return HTMLResponse(_file_page(found.path, found.spec, found.text, start_n, end_n))


def _file_page(rel: str, spec: str, text: str, start: int, end: int) -> str:
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
<table>{''.join(rows)}</table></body></html>"""


def build_server_app(cfg, auth: str | list[str] = "", api_token: str = "", root: Path | None = None,
                     host: str = "127.0.0.1"):
    """The app `serve` runs (web UI + API) over the data dir, indexing `root` on a first run: (app, index)."""
    from copilot.chat import Copilot
    from indexes.search import Index

    index = Index(cfg)
    ensure_knowledge(index, root or repo_root())
    copilot = Copilot(cfg, index=index)
    return create_app(copilot, cfg, auth=auth, api_token=api_token, host=host), index


def serve(cfg, host: str = "127.0.0.1", port: int = 7860, auth: str | list[str] = "", api_token: str = "",
          root: Path | None = None, workers: int = 1) -> None:
    """Index this repository on a first run, then serve the UI and the API until interrupted;
    with workers > 1, from that many processes behind the one port (ui/workers.py)."""
    import uvicorn

    parse_auth(auth)  # a malformed --auth fails before anything slow happens
    for line in security_warnings(host, auth, api_token):
        print(line, file=sys.stderr)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    running = (f"devcopilot is running: web chat at http://{shown}:{port}/  API at http://{shown}:{port}/v1  "
               f"MCP at http://{shown}:{port}/mcp  (Ctrl+C stops it)")
    if workers > 1:
        from indexes.search import Index
        from ui.workers import run_workers

        index = Index(cfg)
        ensure_knowledge(index, root or repo_root())  # once, here, before the workers open the data dir
        for line in stale_kbs(index):
            print(line, file=sys.stderr)
        del index
        run_workers(cfg, host, port, auth, api_token, workers, functools.partial(build_server_app, host=host),
                    say=lambda text: print(running if "first is ready" in text else text, flush=True))
        return
    app, index = build_server_app(cfg, auth, api_token, root, host)
    for line in stale_kbs(index):
        print(line, file=sys.stderr)
    print(running, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


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
