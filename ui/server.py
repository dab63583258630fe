"""`devcopilot serve`: the web UI, the OpenAI-compatible API and MCP on one FastAPI server.

Security defaults: loopback bind; every request passes the one edge (ui/edge.py: who may call
which path, the request-size limit, the errors): HTTP Basic for the web UI when `auth` is set, the
bearer token for /v1 and /mcp when `api_token` is; the source viewer (ui/viewer.py) reads only
files that are indexed.

While it runs, the server is the one process writing its data dir: it registers there, and
`devcopilot ingest` / `forget` hand it their work through the Knowledge API (ui/knowledge_api.py,
indexes/writer.py, indexes/jobs.py); `[sync] every` re-syncs every source on a schedule.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response

from ui import render
from ui.edge import Gate, install
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


def create_app(copilot, cfg, auth: str | list[str] = "", api_token: str = "", host: str = "127.0.0.1", jobs=None,
               local_token: str = "") -> FastAPI:
    """The FastAPI app: the API, MCP, the Knowledge API (index jobs run by `jobs`, made here when not
    given), the viewer, the avatars and the Gradio UI, all behind the one edge (ui/edge.py)."""
    from indexes.jobs import Jobs
    from ui.api import api_router
    from ui.changes_api import changes_router
    from ui.knowledge_api import knowledge_router
    from ui.mcp_server import build_server, http_app
    from ui.viewer import viewer_router

    gate = Gate(api_token=api_token, users=parse_auth(auth), local_token=local_token)
    mcp_asgi, mcp_lifespan = http_app(build_server(copilot), host)
    app = FastAPI(title="devcopilot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=mcp_lifespan)
    app.include_router(api_router(copilot))
    app.state.jobs = jobs if jobs is not None else Jobs(copilot.index)
    app.state.copilot = copilot
    app.include_router(knowledge_router(copilot.index, app.state.jobs, cfg))
    app.include_router(viewer_router(copilot.index))
    app.include_router(changes_router(copilot.index, cfg.server.public_url))
    app.add_route("/mcp", mcp_asgi)  # Streamable HTTP (POST, GET and DELETE on one path)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True}

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
    return install(app, gate, max_bytes=int(cfg.server.max_request_bytes or 0))


def _avatar_file(avatar: str) -> Path | None:
    p = Path(avatar).expanduser()
    for candidate in ([p] if p.is_absolute() else [Path.cwd() / p, ASSETS / p]):
        if candidate.is_file():
            return candidate
    return None


def build_server_app(cfg, auth: str | list[str] = "", api_token: str = "", root: Path | None = None,
                     host: str = "127.0.0.1", local_token: str = "", schedules: bool = True, queue_url: str = ""):
    """The app `serve` runs (web UI, API, MCP, Knowledge API) over the data dir, indexing `root` on a
    first run: (app, index). With `schedules`, this process holds the server's job queue and, with
    `[sync] every`, re-syncs every source on that schedule; the other worker processes of `--workers N`
    hand their Knowledge tab's jobs to it, at `queue_url` (ui/server_client.py)."""
    from copilot.chat import Copilot
    from indexes.jobs import Jobs, SyncSchedule
    from indexes.search import Index

    index = Index(cfg)
    ensure_knowledge(index, root or repo_root())
    copilot = Copilot(cfg, index=index)
    if schedules or not queue_url:
        jobs = Jobs(index)
    else:
        from ui.server_client import RemoteJobs

        jobs = RemoteJobs(queue_url, local_token)
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
                        functools.partial(build_server_app, host=host, local_token=registration.token,
                                          queue_url=local_url(host, port)), say=said,
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
        app.state.copilot.close()  # the threads working ahead of the Guide's answers
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
