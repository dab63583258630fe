"""`serve --workers N`: N server processes behind one port.

One process answers every chat turn's query embedding, HTTP and streaming; on a busy server it
is CPU-bound on one core. So the parent process here only accepts connections and hands each,
as an open socket (SCM_RIGHTS), to one of N worker processes, which serve it with the same app
`serve` builds; it reads nothing but the first bytes of the request, without consuming them, to
choose the worker:

- `/v1/knowledge...` (index jobs, polled by id): always the first worker, which holds the jobs
  and runs the `[sync]` schedule;
- the rest of `/v1/...` (the API, which keeps no state in the process): the next worker in turn;
- everything else (the web UI): the worker chosen by the client's address, because Gradio keeps
  a browser session's state (its queue, its event stream) in the process that started it.

A connection stays with its worker for its life (keep-alive included). The workers share the
data dir: the catalog, conversations and embedding cache are SQLite in WAL mode, usage figures
are merged under a file lock (copilot/monitor.py); with `server.database_url`, conversations and
usage are in that PostgreSQL database instead. A worker that dies is started again.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
import zlib
from dataclasses import dataclass

log = logging.getLogger("devcopilot.workers")

PEEK_TIMEOUT_S = 30.0  # a connection that sends no request line in this time is closed


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def route(head: bytes, client: str, workers: int, turn: int) -> int | None:
    """The worker (of those ready) for a connection whose first bytes are `head` (see the module's
    doc); None: the first worker, ready or not (the jobs live there: a job asked of another worker
    could not be polled)."""
    parts = head.split(b" ", 2)
    path = parts[1] if len(parts) > 1 else b""
    if path.startswith(b"/v1/knowledge"):
        return None
    if path.startswith(b"/v1/"):
        return turn % workers
    return zlib.crc32(client.encode()) % workers


@dataclass
class _Worker:
    number: int
    channel: socket.socket  # the parent's end: sockets go down it, "ready" comes up
    process: multiprocessing.process.BaseProcess
    ready: bool = False


def run_workers(cfg, host: str, port: int, auth: str | list[str], api_token: str, workers: int, build,
                say=print, first_ready=None) -> None:
    """Accept on host:port and hand connections to `workers` processes until interrupted; each
    builds its app with `build(cfg, auth=, api_token=, schedules=) -> (app, index)` (a module-level
    function: it travels to the worker by name). Only the first worker runs schedules and index jobs;
    `first_ready()` is called once it is ready (the server registers then)."""
    listener = socket.create_server((host, port), backlog=2048, reuse_port=False)
    listener.setblocking(False)
    context = multiprocessing.get_context("spawn")  # a clean interpreter: the parent may hold threads
    pool = [_start(context, cfg, n, auth, api_token, build) for n in range(workers)]
    sel = selectors.DefaultSelector()
    for w in pool:
        sel.register(w.channel, selectors.EVENT_READ, ("worker", w))
    pending: dict[socket.socket, tuple[str, float]] = {}
    turn = itertools.count()
    stopping = False
    announced = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            ready = [w for w in pool if w.ready]
            if pool[0].ready and first_ready is not None:
                first_ready()
                first_ready = None
            if ready and not announced:  # accept only once a worker can serve
                sel.register(listener, selectors.EVENT_READ, ("accept", None))
                announced = True
                say(f"  {len(pool)} worker processes; the first is ready")
            for key, _ in sel.select(timeout=1.0):
                kind, obj = key.data
                if kind == "accept":
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        while True:
                            conn, addr = listener.accept()
                            conn.setblocking(False)
                            pending[conn] = (addr[0], time.monotonic())
                            sel.register(conn, selectors.EVENT_READ, ("peek", conn))
                elif kind == "peek":
                    _dispatch(sel, pending, obj, pool, next(turn))
                else:
                    _heard(sel, obj)
            now = time.monotonic()
            for conn, (_, since) in list(pending.items()):
                if now - since > PEEK_TIMEOUT_S:
                    _drop(sel, pending, conn)
            for i, w in enumerate(pool):
                if not w.process.is_alive() and not stopping:
                    log.warning("worker %d stopped (exit code %s); starting it again", w.number, w.process.exitcode)
                    say(f"worker {w.number} stopped (exit code {w.process.exitcode}); starting it again")
                    with contextlib.suppress(KeyError, ValueError):
                        sel.unregister(w.channel)
                    w.channel.close()
                    pool[i] = _start(context, cfg, w.number, auth, api_token, build)
                    sel.register(pool[i].channel, selectors.EVENT_READ, ("worker", pool[i]))
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        listener.close()
        for conn in list(pending):
            _drop(sel, pending, conn)
        for w in pool:
            if w.process.is_alive():
                os.kill(w.process.pid, signal.SIGTERM)
        for w in pool:
            w.process.join(timeout=15)
            if w.process.is_alive():
                w.process.kill()


def _start(context, cfg, number: int, auth: str | list[str], api_token: str, build) -> _Worker:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = context.Process(target=_worker_main, args=(cfg, number, child, auth, api_token, build),
                              name=f"devcopilot-worker-{number}", daemon=False)
    process.start()
    child.close()
    parent.setblocking(False)
    return _Worker(number, parent, process)


def _heard(sel, w: _Worker) -> None:
    try:
        data = w.channel.recv(64)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if data.startswith(b"ready"):
        w.ready = True
    elif not data:  # the worker closed its end: it is gone; the loop starts another
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(w.channel)
        w.ready = False


def _dispatch(sel, pending, conn: socket.socket, pool: list[_Worker], turn: int) -> None:
    try:
        head = conn.recv(64, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        head = b""
    client = pending.get(conn, ("", 0))[0]
    if not head:  # closed before sending anything
        _drop(sel, pending, conn)
        return
    ready = [w for w in pool if w.ready] or pool
    chosen = route(head, client, len(ready), turn)
    w = pool[0] if chosen is None else ready[chosen]  # a worker not ready yet takes it once it starts
    sel.unregister(conn)
    pending.pop(conn, None)
    try:
        socket.send_fds(w.channel, [b"c"], [conn.fileno()])
    except OSError:
        log.warning("could not hand a connection to worker %d", w.number)
    conn.close()  # the worker holds its own copy now


def _drop(sel, pending, conn: socket.socket) -> None:
    with contextlib.suppress(KeyError, ValueError):
        sel.unregister(conn)
    pending.pop(conn, None)
    conn.close()


# -- the worker process ---------------------------------------------------------------------------------
def freeze_startup_objects() -> None:
    """Once the app is built: exclude everything made so far (Gradio, the indexes, ~230,000 objects)
    from the cyclic garbage collector's full passes, which walked them all (~120 ms with every thread
    of the process stopped) though none of them is ever freed."""
    gc.collect()
    gc.freeze()


def _worker_main(cfg, number: int, channel: socket.socket, auth: str | list[str], api_token: str, build) -> None:
    import asyncio

    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the parent stops us
    app, index = build(cfg, auth=auth, api_token=api_token, schedules=number == 0)
    app = _Named(app, number)
    index.embedder.embed(["warm up"])  # load the model before the first question
    freeze_startup_objects()

    class Server(uvicorn.Server):
        """uvicorn, fed connections the parent accepted instead of listening itself."""

        async def startup(self, sockets=None):
            await super().startup(sockets=[])
            loop = asyncio.get_running_loop()
            config = self.config

            def protocol():
                return config.http_protocol_class(config=config, server_state=self.server_state,
                                                  app_state=self.lifespan.state)

            def receive():
                try:
                    msg, fds, _, _ = socket.recv_fds(channel, 16, 16)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    msg, fds = b"", []
                if not msg:  # the parent is gone
                    self.should_exit = True
                    loop.remove_reader(channel.fileno())
                    return
                for fd in fds:
                    sock = socket.socket(fileno=fd)
                    sock.setblocking(False)
                    loop.create_task(loop.connect_accepted_socket(protocol, sock))

            channel.setblocking(False)
            loop.add_reader(channel.fileno(), receive)
            channel.sendall(b"ready")

    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    Server(config).run()
    sys.exit(0)


class _Named:
    """The app, its responses marked with the worker's number (x-devcopilot-worker), to see the balance."""

    def __init__(self, app, number: int):
        self.app, self.header = app, (b"x-devcopilot-worker", str(number).encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def marked(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        return await self.app(scope, receive, marked)
