"""`devcopilot serve`: the web UI, the OpenAI-compatible API and MCP on one FastAPI server.

Security defaults: loopback bind; every request passes the one edge (ui/edge.py: the names the
server answers to, the pages that may post to it, who may call which path, the request-size limit,
the errors): with `auth` users, every door needs a signed-in user or the bearer token; with
`api_token` alone, /v1 and /mcp need the token. Bound beyond loopback with neither, it does not
start without `insecure` (`serve --insecure`). The source viewer (ui/viewer.py) reads only files
that are indexed.

While it runs, the server is the one process writing its data dir: it registers there, and
`devcopilot ingest` / `forget` hand it their work through the Knowledge API (ui/knowledge_api.py,
indexes/writer.py, indexes/jobs.py); `[sync] every` re-syncs every source on a schedule.
"""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from ui import render
from ui.edge import WILDCARDS, Gate, HTTPError, JSONText, Names, install, is_loopback
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


def security_warnings(host: str, auth: str | list[str], api_token: str) -> list[str]:
    """What to say when serving beyond loopback with doors left open: the web UI without users, and
    (only with --insecure) everything without any credential."""
    if is_loopback(host):
        return []
    out = []
    if not auth:
        out.append(f"WARNING: serving on {host} WITHOUT a password: anyone who can reach this machine can use the "
                   "web UI and index sources. Use --auth user:password, or bind to 127.0.0.1.")
    if not auth and not api_token:
        out.append(f"WARNING: the API at http://{host}/v1 and MCP at /mcp have NO bearer token: anyone who can "
                   "reach them can chat through your model account. Use --api-token TOKEN.")
    return out


def refuse_open_exposure(host: str, auth: str | list[str], api_token: str, insecure: bool) -> None:
    """ValueError (one sentence saying what to do) for a server bound beyond loopback with neither users
    nor an API token, unless the operator said `--insecure`."""
    if is_loopback(host) or auth or api_token or insecure:
        return
    raise ValueError(f"Serving on {host or 'every interface'} with neither --auth nor --api-token would let anyone "
                     "who can reach this machine use it; add one of them, bind to 127.0.0.1, or pass --insecure "
                     "to serve it open anyway.")


def server_names(host: str, cfg) -> Names:
    """The names the server bound to `host` answers to, from the settings (ui/edge.py Names)."""
    return Names.served(host, cfg.server.public_url, cfg.server.allowed_hosts, cfg.server.cors_origins)


def names_sentence(host: str, names: Names) -> str:
    """What a server bound to every interface answers to, said once at start-up; "" otherwise."""
    if host not in WILDCARDS:
        return ""
    if names.any_host:
        return (f"Bound to {host or 'every interface'}: answering to any host name (server.allowed_hosts = "
                "[\"*\"]).")
    shown = ", ".join(sorted(names.hosts, key=lambda n: (n[0].isdigit() or ":" in n, n)))
    return (f"Bound to {host or 'every interface'}: answering only to {shown}; add other names this machine "
            "is reached at to server.allowed_hosts (or [\"*\"] for any).")


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
               local_token: str = "", names: Names | None = None) -> FastAPI:
    """The FastAPI app: the API, MCP, the Knowledge API (index jobs run by `jobs`, made here when not
    given), the viewer, the avatars and the Gradio UI, all behind the one edge (ui/edge.py), answering
    to the `names` of a server bound to `host` (by default, from the settings: `server_names`)."""
    from indexes.jobs import Jobs
    from ui.api import api_router
    from ui.changes_api import changes_router
    from ui.graph_api import graph_router
    from ui.knowledge_api import knowledge_router
    from ui.mcp_server import build_server, http_app
    from ui.viewer import viewer_router

    gate = Gate(api_token=api_token, users=parse_auth(auth), local_token=local_token)
    mcp_asgi, mcp_lifespan = http_app(build_server(copilot))
    app = FastAPI(title="devcopilot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=mcp_lifespan,
                  default_response_class=JSONText)
    app.include_router(api_router(copilot))
    app.state.jobs = jobs if jobs is not None else Jobs(copilot.index)
    app.state.copilot = copilot
    app.include_router(knowledge_router(copilot.index, app.state.jobs, cfg))
    app.include_router(viewer_router(copilot.index))
    app.include_router(graph_router(copilot.index))  # /v1/graph: the code graph (ui/graph_api.py)
    app.include_router(changes_router(copilot.index, cfg.server.public_url))
    app.add_route("/mcp", mcp_asgi)  # Streamable HTTP (POST, GET and DELETE on one path)

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True}

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def no_such_route(request: Request):
        # Last of the API's routes: a path (or method) none of them takes is the API's own error, not the
        # web UI's page (mounted at "/", it would answer everything else).
        raise HTTPError(404, f"There is no {request.method} {request.url.path[:200]} in this API; its routes are "
                             "/v1/models, /v1/chat/completions and /v1/knowledge (docs/live-reindex.md).",
                        "not_found_error")

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
    return install(app, gate, max_bytes=int(cfg.server.max_request_bytes or 0),
                   names=names if names is not None else server_names(host, cfg))


def _avatar_file(avatar: str) -> Path | None:
    p = Path(avatar).expanduser()
    for candidate in ([p] if p.is_absolute() else [Path.cwd() / p, ASSETS / p]):
        if candidate.is_file():
            return candidate
    return None


def build_server_app(cfg, auth: str | list[str] = "", api_token: str = "", root: Path | None = None,
                     host: str = "127.0.0.1", local_token: str = "", schedules: bool = True, queue_url: str = "",
                     names: Names | None = None):
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
    app = create_app(copilot, cfg, auth=auth, api_token=api_token, host=host, jobs=jobs, local_token=local_token,
                     names=names)
    app.state.schedule = SyncSchedule(jobs, cfg.sync.seconds).start() if schedules and cfg.sync.seconds else None
    return app, index


def checked_start(cfg, host: str, auth: str | list[str], api_token: str, insecure: bool) -> Names:
    """What must hold before anything slow happens, each failure one sentence: a well-formed --auth, a
    credential beyond loopback (or --insecure), a database within reach. Says what is exposed; returns
    the names the server answers to (looked up once: the workers get them as they are)."""
    parse_auth(auth)
    refuse_open_exposure(host, auth, api_token, insecure)
    names = server_names(host, cfg)
    if cfg.server.database_url:
        from copilot.conversations import open_conversations

        open_conversations(cfg).close()
    for line in [*security_warnings(host, auth, api_token), names_sentence(host, names)]:
        if line:
            print(line, file=sys.stderr)
    return names


def check_listen(host: str, port: int) -> None:
    """ValueError, one sentence saying what to do, when this server could not listen on host:port (the port
    taken, an address not this machine's): said before a first run's indexing, not after it (or, with one
    worker, after saying it is running)."""
    import errno
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        socket.create_server((host, port), family=family).close()
    except socket.gaierror:
        raise ValueError(f"The host to serve on, '{host}', is not a name this machine can look up; give one of "
                         "its addresses with --host: 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                         "interface).") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ValueError(f"Port {port} on {host} is already in use (another `devcopilot serve`?); stop what "
                             "uses it, or give another with --port.") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise ValueError(f"The host to serve on, {host}, is not an address of this machine; give one of its "
                             "addresses with --host: 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                             "interface).") from None
        if e.errno == errno.EACCES:
            raise ValueError(f"Port {port} needs privileges this user does not have; give one above 1023 with "
                             "--port.") from None
        raise ValueError(f"Cannot listen on {host}:{port} ({e.strerror or e}); check --host and --port.") from None


def serve(cfg, host: str = "127.0.0.1", port: int = 7860, auth: str | list[str] = "", api_token: str = "",
          root: Path | None = None, workers: int = 1, insecure: bool = False) -> None:
    """Index this repository on a first run, then serve the UI and the API until interrupted;
    with workers > 1, from that many processes behind the one port (ui/workers.py). Beyond loopback
    with neither `auth` nor `api_token`, only with `insecure`.

    The server registers on its data dir once it listens (indexes/writer.py): `devcopilot ingest`
    and `forget` then hand it their work, so it is the one process writing the store."""
    import threading

    import uvicorn

    from indexes.writer import Registration

    names = checked_start(cfg, host, auth, api_token, insecure)
    check_listen(host, port)
    registration = Registration(cfg.data_dir, local_url(host, port))

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
                                          queue_url=local_url(host, port), names=names), say=said,
                        first_ready=register)
        finally:
            registration.__exit__(None, None, None)
        return
    app, index = build_server_app(cfg, auth, api_token, root, host, local_token=registration.token, names=names)
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
    if host in WILDCARDS or is_loopback(host):
        return f"http://127.0.0.1:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
