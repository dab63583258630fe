"""What the security suite (tests/test_security.py) attacks with and looks through: the small project
indexed for a server to serve; web sites and a git forge on this machine's addresses (a loopback-only
admin page, an endless page, a page that drips); one HTTP request with exactly the headers an attacker
sends; special files (FIFOs, sockets, devices); file modes; and what this machine calls itself besides
localhost (its own address, its /etc/hosts aliases)."""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from support.corpus import SMALL_PROJECT, write_tree
from support.git import commit_all, git


# -- the project a server serves ---------------------------------------------------------------------------
def small_project_copilot(root: Path, project: Path, server: dict) -> Copilot:
    """SMALL_PROJECT written at `project` and indexed as KB 'default' in root/data, with these [server]
    settings: the copilot over it (its .cfg and .index are what a server over it uses)."""
    write_tree(project, SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": server})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    return Copilot(cfg, index=index)


# -- web sites -------------------------------------------------------------------------------------------
class Web:
    """An HTTP server on `host` (on "::", every address of this machine, IPv4 and IPv6) whose `routes`
    map a path to a handler function ("*": any other path); it counts the requests and the bytes it sent."""

    def __init__(self, routes: dict, host: str = "127.0.0.1", port: int = 0):
        self.routes, self.requests, self.sent = routes, Counter(), Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0]
                outer.requests[path] += 1
                route = outer.routes.get(path) or outer.routes.get("*")
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    route(self, outer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what these tests want of it

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def server_bind(self):
                if self.address_family == socket.AF_INET6:
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                super().server_bind()

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def send(kind: str, body: str | bytes, status: int = 200, **headers: str):
    """A route answering `body` as `kind` (headers given as Content_Language=... spell Content-Language)."""
    data = body.encode() if isinstance(body, str) else body

    def route(h: BaseHTTPRequestHandler, web: Web):
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(data)
        web.sent[h.path] += len(data)
    return route


def redirect(to: str):
    def route(h: BaseHTTPRequestHandler, web: Web):
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return route


def endless(pause: float = 0.0, piece: bytes = b"<p>" + b"la " * 20_000 + b"</p>", most: int = 64_000_000):
    """A chunked HTML page that goes on until the client stops reading (or `most` bytes, so that a fetcher
    that reads it all still ends), `pause` seconds between pieces."""
    def route(h: BaseHTTPRequestHandler, web: Web):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"5\r\n<html\r\n")
        while web.sent[h.path] < most:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            h.wfile.flush()
            web.sent[h.path] += len(piece)
            time.sleep(pause)
        h.wfile.write(b"0\r\n\r\n")
    return route


def sleepy(seconds: float, text: str):
    """A Markdown page that takes `seconds` to start answering."""
    def route(h: BaseHTTPRequestHandler, web: Web):
        time.sleep(seconds)
        send("text/markdown", text)(h, web)
    return route


def site_with(pages: dict) -> Web:
    """A docs site on loopback whose llms.txt lists `pages` (path: route); no robots.txt."""
    listed = "".join(f"- [{p}]({p})\n" for p in pages)
    return Web({"/robots.txt": send("text/plain", "", 404), "/llms.txt": send("text/plain", f"# Docs\n\n{listed}"),
                **pages})


# -- a git forge -----------------------------------------------------------------------------------------
class GitHTTP:
    """Bare repositories under `root` served over git's smart HTTP (`git http-backend` as a CGI), as
    a git forge would; `moved.git` answers with a redirect to `elsewhere`."""

    def __init__(self, root: Path, host: str, elsewhere: str = ""):
        self.root, self.requests = root, Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self._cgi()

            def do_POST(self):  # noqa: N802
                self._cgi()

            def _cgi(self):
                path, _, query = self.path.partition("?")
                outer.requests[path] += 1
                if path.startswith("/moved.git/") and elsewhere:
                    self.send_response(302)
                    self.send_header("Location", elsewhere + path.replace("/moved.git", "/secret.git", 1))
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(outer.root), "GIT_HTTP_EXPORT_ALL": "1",
                       "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                       "REMOTE_ADDR": self.client_address[0], "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                       "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", "")}
                out = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = next((int(ln.split()[1]) for ln in lines if ln.lower().startswith("status:")), 200)
                self.send_response(status)
                for ln in lines:
                    if ":" in ln and not ln.lower().startswith("status:"):
                        self.send_header(*[p.strip() for p in ln.split(":", 1)])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def bare_repository(root: Path, name: str, files: dict) -> Path:
    """root/NAME.git: a bare repository of one commit holding `files`, ready to be served over HTTP."""
    work = write_tree(root / f"{name}-work", files)
    git("init", "-q", "-b", "main", cwd=work)
    commit_all(work, "first")
    bare = root / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    git("update-server-info", cwd=bare)
    return bare


# -- requests as an attacker sends them ------------------------------------------------------------------
def call(url: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
         timeout: float = 120) -> tuple[int, dict[str, str], str]:
    """One request to the server at `url` with exactly these headers (Host among them, when given; else
    the server's own address): (status, headers in lower case, text)."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": f"127.0.0.1:{u.port}", **(headers or {})})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def basic(user: tuple[str, str]) -> str:
    """The Authorization header of HTTP Basic for (name, password)."""
    return "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


def error_of(status: int, text: str) -> dict:
    """The JSON error's fields, checked for the one shape {"error": {message, type, code}}."""
    body = json.loads(text)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}, text
    assert body["error"]["code"] == status and body["error"]["message"].endswith("."), text
    return body["error"]


# -- this machine's other names ----------------------------------------------------------------------------
def own_address() -> str:
    """This machine's first non-loopback IPv4 address (`hostname -I`), or ''."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return next((a for a in out.split() if "." in a and not a.startswith("127.")), "")


def hosts_alias() -> str:
    """A name /etc/hosts gives this machine besides localhost, or ''."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        parts = line.split("#")[0].split()
        if parts and parts[0].startswith("127."):
            names = [n for n in parts[1:] if "localhost" not in n]
            if names:
                return names[0]
    return ""


# -- files that are not regular, and file modes -------------------------------------------------------------
def make_special(kind: str, path: Path) -> None:
    """A FIFO, a UNIX socket or a character device (null's numbers) at `path`."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's path must fit in 108 bytes: bind the bare name
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(path.name)  # the file stays after the socket is closed
        finally:
            os.chdir(here)
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")


def release_fifo(fifo: Path) -> None:
    """Let a reader blocked on opening the FIFO go on (it then reads end of file): what a hung ingest
    on a build without the fix needs for the test to end."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # nobody is blocked on it
        pass


def loose_modes(data: Path) -> list[str]:
    """Every folder under `data` (itself included) that is not 0700 and every file that is not 0600."""
    loose = []
    for folder, dirs, files in os.walk(data):
        for path in [Path(folder)] + [Path(folder) / d for d in dirs] + [Path(folder) / f for f in files]:
            meta = path.lstat()
            want = 0o700 if stat.S_ISDIR(meta.st_mode) else 0o600
            if not stat.S_ISLNK(meta.st_mode) and stat.S_IMODE(meta.st_mode) != want:
                loose.append(f"{path.relative_to(data.parent)}: {oct(stat.S_IMODE(meta.st_mode))}")
    return sorted(set(loose))
