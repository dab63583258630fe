"""Outbound fetches: what the server fetches for its doors (the Knowledge API and tab, the sync of the
sources they added) reaches only public addresses, unless `server.fetch_allow` opens more; the
command line fetches what its operator tells it; and every page is fetched within bounds (bytes,
time per page, time per site).

Real servers on this machine: a loopback-only "admin" page holding a secret (on every address of
this machine, so each spelling of it reaches it), a docs page on 127.0.0.2 (opted in) that redirects
to it, a git repository served over smart HTTP by `git http-backend`, an endless page, a page that
drips. The attacks go through the real doors (POST /v1/knowledge/jobs, KnowledgeTab.add_source), and
each test checks that nothing of the secret was fetched, indexed or quoted."""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.git import commit_all, git
from support.live import request
from support.servers import ServerThread, free_port

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.cli import main
from ui.server import create_app

TOKEN = "fetch-token-123456"
SECRET = "ADMIN-ONLY-walrus-4417"
OPTED_IN = "127.0.0.2"  # server.fetch_allow names it: the "allowed" site of these tests


# -- servers -------------------------------------------------------------------------------------------
class Web:
    """An HTTP server on `host` (on "::", every address of this machine, IPv4 and IPv6) whose `routes`
    map a path to a handler function; it counts the requests and the bytes it sent."""

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


def admin_routes() -> dict:
    """A loopback-only admin service: every path answers with the secret."""
    page = f"<html><head><title>Admin</title></head><body><main><h1>Admin console</h1><p>The admin secret is " \
           f"{SECRET}.</p><a href='/secret.html'>more</a></main></body></html>"
    return {"/robots.txt": send("text/plain", "", 404),
            "/llms.txt": send("text/plain", "# Admin\n\n- [Secret](/secret.md)\n"),
            "/secret.md": send("text/markdown", f"# Secret\n\nThe admin secret is {SECRET}.\n"),
            "/info/refs": send("text/plain", SECRET),
            "*": send("text/html", page)}


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
    work = write_tree(root / f"{name}-work", files)
    git("init", "-q", "-b", "main", cwd=work)
    commit_all(work, "first")
    bare = root / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    git("update-server-info", cwd=bare)
    return bare


# -- the server and its doors ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin():
    web = Web(admin_routes(), host="::")
    yield web
    web.close()


def serving(root: Path, server: dict):
    """The real server (Knowledge API, the Knowledge tab over its queue) over a small project, with the
    `server` settings given."""
    import gradio as gr

    from ui.knowledge_tab import KnowledgeTab

    allowed, outside = root / "allowed", root / "outside"
    project = write_tree(allowed / "project", SMALL_PROJECT)
    outside.mkdir()
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": {
        "allowed_roots": [str(allowed)], **server}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    app = create_app(copilot, cfg, api_token=TOKEN)
    tab = KnowledgeTab(copilot, cfg, lambda current: gr.update(), app.state.jobs)
    with ServerThread(app) as url:
        yield {"url": url, "cfg": cfg, "jobs": app.state.jobs, "tab": tab, "root": root, "allowed": allowed,
               "outside": outside}


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    """The server as it starts by default: nothing opened by server.fetch_allow."""
    yield from serving(tmp_path_factory.mktemp("fetch"), {})


@pytest.fixture(scope="module")
def opted(tmp_path_factory):
    """The server with 127.0.0.2 opened by server.fetch_allow."""
    yield from serving(tmp_path_factory.mktemp("opted"), {"fetch_allow": [OPTED_IN]})


def submit(door, sources: list[str], kb: str = "fetched") -> tuple[int, dict]:
    return request(door["url"] + "/v1/knowledge/jobs", {"action": "add", "kb": kb, "sources": sources}, TOKEN)


def finished(door, job: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        status, job = request(f"{door['url']}/v1/knowledge/jobs/{job['id']}?wait=5", token=TOKEN)
        assert status == 200
    return job


def add_in_the_tab(door, spec: str) -> str:
    """The Knowledge tab's Add button: the status it shows."""
    from ui.knowledge_tab import Following

    return door["tab"].add_source(spec, "fetched", Following(), None)[0]


def assert_the_secret_is_nowhere(door) -> None:
    """Not in any chunk of the catalog, not in what the chat quotes."""
    with sqlite3.connect(door["cfg"].catalog_path) as db:
        assert db.execute("SELECT COUNT(*) FROM chunks WHERE text LIKE ?", (f"%{SECRET}%",)).fetchone()[0] == 0
    question = {"role": "user", "content": f"What is the admin secret of the admin console? {SECRET[:10]}"}
    status, answer = request(door["url"] + "/v1/chat/completions", {"model": "tutoring", "messages": [question]},
                             TOKEN)
    assert status == 200 and SECRET not in json.dumps(answer)


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


# -- break 1: server-side request forgery with read-back -----------------------------------------------
SPELLINGS = ["http://2130706433:{p}/llms.txt", "http://0x7f000001:{p}/llms.txt", "http://0177.0.0.1:{p}/llms.txt",
             "http://127.1:{p}/llms.txt", "http://0:{p}/llms.txt", "http://[::1]:{p}/llms.txt",
             "http://[::ffff:127.0.0.1]:{p}/llms.txt", "http://{own}:{p}/llms.txt", "http://{alias}:{p}/llms.txt",
             "http://LOCALHOST.:{p}/llms.txt", "http://169.254.169.254/latest/meta-data/",
             "http://127.1:{p}/team/repo.git", "git://127.0.0.1:{p}/repo.git", "http://2130706433:{p}/repo.git"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_ssrf_loopback_spellings_are_refused(door, admin, spelling):
    """Every spelling of this machine (and the cloud metadata address) is refused by both doors, in
    one sentence saying which setting opens it; the admin service is never asked for anything."""
    own, alias = own_address(), hosts_alias()
    if ("{own}" in spelling and not own) or ("{alias}" in spelling and not alias):
        pytest.skip("this machine has no such address or name")
    url = spelling.format(p=admin.port, own=own, alias=alias)
    before = admin.total
    status, err = submit(door, [url])
    if status == 202:  # taken: the job fetches it, and what it read is indexed (the break this test holds)
        finished(door, err)
    assert_the_secret_is_nowhere(door)
    assert status == 400, (url, err)
    message = err["error"]["message"]
    assert "server.fetch_allow" in message and "command line" in message and "\n" not in message
    shown = add_in_the_tab(door, url)
    assert shown.startswith("❌") and "server.fetch_allow" in shown
    assert admin.total == before
    assert_the_secret_is_nowhere(door)


@pytest.mark.parametrize("address, why", [
    ("93.184.216.34", ""), ("2606:2800:220:1:248:1893:25c8:1946", ""),
    ("127.0.0.2", "this machine (loopback)"), ("0.0.0.0", "this machine"), ("::", "this machine"),
    ("::ffff:127.0.0.1", "this machine (loopback)"), ("::127.0.0.1", "this machine (loopback)"),
    ("64:ff9b::7f00:1", "this machine (loopback)"), ("2002:7f00:1::", "this machine (loopback)"),
    ("::ffff:10.0.0.1", "a private address"), ("2002:a00:1::", "a private address"),
    ("10.1.2.3", "a private address"), ("172.16.0.1", "a private address"), ("192.168.1.1", "a private address"),
    ("fd00::1", "a private address"), ("169.254.169.254", "a link-local address"), ("fe80::1", "a link-local address"),
    ("224.0.0.251", "a multicast address"), ("ff02::1", "a multicast address"), ("240.0.0.1", "a private address"),
    ("100.64.0.1", "not a public address"), ("::ffff:93.184.216.34", ""),
])
def test_ssrf_every_address_form_is_classified(address, why):
    from ingest.outbound import not_public

    assert not_public(ipaddress.ip_address(address)) == why


def test_ssrf_any_address_refuses_and_networks_never_open_this_machine(monkeypatch):
    """A name is refused when any of its addresses is not public; a network in fetch_allow opens the
    private addresses in it, but this machine only when its address (or name) is given exactly."""
    from ingest.outbound import Outbound, OutboundRefused, own_addresses

    real = socket.getaddrinfo
    fake = {"split.test": ["93.184.216.34", "127.0.0.1"], "public.test": ["93.184.216.34"],
            "lan.test": ["10.1.2.3"]}

    def resolver(host, port, *args, **kwargs):
        if host in fake:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0)) for a in fake[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    strict = Outbound()
    with pytest.raises(OutboundRefused, match="resolves to 127.0.0.1, this machine"):
        strict.check_url("https://split.test/docs/")
    assert [str(a) for a in strict.check_url("https://public.test/docs/")] == ["93.184.216.34"]
    with pytest.raises(OutboundRefused, match="a private address; .* add its host or network to server.fetch_allow"):
        strict.check_url("http://lan.test/")
    assert Outbound.from_settings(["10.1.0.0/16"]).check_url("http://lan.test/")
    assert Outbound.from_settings(["lan.test"]).check_url("http://lan.test/")
    with pytest.raises(OutboundRefused, match="this machine"):
        Outbound.from_settings(["127.0.0.0/8", "0.0.0.0/0"]).check_url("http://127.0.0.1:8000/")
    assert Outbound.from_settings(["127.0.0.1"]).check_url("http://127.0.0.1:8000/")
    own = next((a for a in own_addresses() if a.version == 4 and not a.is_loopback), None)
    if own is not None:  # this machine's own address, e.g. 192.0.2.2 in 192.0.2.0/24
        with pytest.raises(OutboundRefused, match=f"resolves to {own}, this machine;"):
            Outbound.from_settings([f"{own}/24"]).check_url(f"http://{own}:8000/")
        assert Outbound.from_settings([str(own)]).check_url(f"http://{own}:8000/")


def test_ssrf_a_redirect_to_loopback_is_not_followed(opted, admin):
    """The opted-in site (127.0.0.2) is fetched; its redirects to loopback are not: a page that
    redirects is skipped and counted, an entry that redirects fails in one sentence."""
    loop = f"http://127.0.0.1:{admin.port}"
    docs = Web({"/robots.txt": send("text/plain", "", 404),
                "/llms.txt": send("text/plain", "# Docs\n\n- [Guide](/guide.md)\n- [Admin](/admin.md)\n"),
                "/guide.md": send("text/markdown", "# Guide\n\nThe opted-in guide explains quokka tuning.\n"),
                "/admin.md": redirect(loop + "/secret.md"),
                "/go.txt": redirect(loop + "/llms.txt")}, host=OPTED_IN)
    try:
        before = admin.total
        status, job = submit(opted, [f"http://{OPTED_IN}:{docs.port}/llms.txt"])
        assert status == 202, job
        job = finished(opted, job)
        assert job["state"] == "done", job
        result = job["results"][0]
        assert result["files"] == 1 and result["skipped"] == {"at addresses the server may not fetch "
                                                              "(server.fetch_allow)": 1}, result
        status, job = submit(opted, [f"http://{OPTED_IN}:{docs.port}/go.txt"], kb="redirected")
        job = finished(opted, job)
        assert job["state"] == "failed" and "resolves to 127.0.0.1, this machine" in job["message"], job
        assert docs.requests["/admin.md"] == 1 and admin.total == before
        assert_the_secret_is_nowhere(opted)
    finally:
        docs.close()


def test_ssrf_the_connection_goes_to_the_address_checked(monkeypatch):
    """DNS rebinding: a name that answers an allowed address to the check and loopback afterwards.
    The website fetcher (httpx over the real httpcore) connects to the address it checked, so the
    loopback service behind the second answer is never reached; TLS is not involved here, the name
    stays the Host header."""
    from ingest.http_client import client
    from ingest.outbound import Outbound

    port = free_port()
    allowed = Web({"*": send("text/plain", "the allowed page")}, host=OPTED_IN, port=port)
    secret = Web({"*": send("text/plain", SECRET)}, host="127.0.0.1", port=port)
    real = socket.getaddrinfo
    answers = iter(["127.0.0.2"] + ["127.0.0.1"] * 50)
    asked = Counter()

    def rebinding(host, *args, **kwargs):
        if host == "docs.rebind.test":
            asked[host] += 1
            host = next(answers)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        with client(Outbound(networks=(ipaddress.ip_network(OPTED_IN),)), 10, {}) as http:
            r = http.get(f"http://docs.rebind.test:{port}/page")
        assert r.status_code == 200 and r.text == "the allowed page"
        assert asked["docs.rebind.test"] == 1 and secret.total == 0 and allowed.requests["/page"] == 1
    finally:
        allowed.close()
        secret.close()


def test_ssrf_tls_keeps_the_host_name_while_connecting_to_the_checked_address(tmp_path, monkeypatch):
    """The pinned connection still verifies the certificate for the URL's name, sent as SNI."""
    import ssl

    from ingest.http_client import client
    from ingest.outbound import Outbound

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=docs.pinned.test", "-addext",
                    "subjectAltName=DNS:docs.pinned.test"], check=True, capture_output=True)
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    site = Web({"*": send("text/plain", "over TLS")}, host=OPTED_IN)
    site.server.socket = context.wrap_socket(site.server.socket, server_side=True)
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        OPTED_IN if host == "docs.pinned.test" else host, *a, **k))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    try:
        with client(Outbound(hosts=frozenset({"docs.pinned.test"})), 10, {}) as http:
            r = http.get(f"https://docs.pinned.test:{site.port}/x")
        assert r.text == "over TLS" and names == ["docs.pinned.test"]
    finally:
        site.close()


def test_ssrf_git_over_http_reaches_only_what_the_policy_allows(opted, tmp_path):
    """A git URL over http to a loopback service is refused up front and nothing asks it; the opted-in
    forge is cloned through the pinned address; a redirect from it to loopback is not followed."""
    repos = tmp_path / "repos"
    bare_repository(repos, "secret", {"ADMIN.md": f"# Admin\n\nThe admin secret is {SECRET}.\n"})
    bare_repository(repos, "widgets", {"README.md": "# Widgets\n\nWidgets ship a flux capacitor named kelpie.\n"})
    loop, forge = GitHTTP(repos, "127.0.0.1"), None
    try:
        forge = GitHTTP(repos, OPTED_IN, elsewhere=loop.url)
        for url in (f"{loop.url}/secret.git", loop.url.replace("127.0.0.1", "127.1") + "/secret.git"):
            status, err = submit(opted, [url], kb="git")
            assert status == 400 and "this machine" in err["error"]["message"], err
        job = finished(opted, submit(opted, [f"{forge.url}/widgets.git"], kb="git")[1])
        assert job["state"] == "done" and job["results"][0]["files"] == 1, job
        job = finished(opted, submit(opted, [f"{forge.url}/moved.git"], kb="moved")[1])
        assert job["state"] == "failed" and "Could not clone" in job["message"], job
        assert forge.requests["/moved.git/info/refs"] == 1 and sum(loop.requests.values()) == 0
        assert_the_secret_is_nowhere(opted)
    finally:
        loop.close()
        if forge is not None:
            forge.close()


def test_ssrf_a_door_sources_resync_stays_under_the_policy(admin, tmp_path):
    """The catalog records who added a source: a re-index or sync re-fetches the operator's sources as
    told (here a loopback docs site the CLI indexed) and a door's under the policy (once the opt-in is
    gone, the opted-in site it added is refused)."""
    from indexes.jobs import Jobs

    docs = Web({"/robots.txt": send("text/plain", "", 404),
                "/llms.txt": send("text/plain", "# Docs\n\n- [Guide](/guide.md)\n"),
                "/guide.md": send("text/markdown", "# Guide\n\nSync keeps the numbat index fresh.\n")}, host=OPTED_IN)
    data = tmp_path / "data"
    try:
        operator = f"http://127.0.0.1:{admin.port}/llms.txt"
        assert main(["--data-dir", str(data), "ingest", operator, "--kb", "mixed", "--quiet"]) == 0
        opted = load_config(env={}, overrides={"data_dir": str(data), "server": {"fetch_allow": [OPTED_IN]}})
        jobs = Jobs(Index(opted))
        job = jobs.wait(jobs.submit("add", "mixed", [f"http://{OPTED_IN}:{docs.port}/llms.txt"], by="api").id, 120)
        assert job.state == "done", job.message
        added = {s["spec"]: s["added_by"] for s in Index(opted).catalog.sources("mixed")}
        assert added == {operator: "cli", f"http://{OPTED_IN}:{docs.port}/llms.txt": "api"}
        strict = load_config(env={}, overrides={"data_dir": str(data)})
        before = admin.total
        sync = Jobs(Index(strict))
        job = sync.wait(sync.submit("reindex", "mixed", by="sync").id, 120)
        assert job.state == "failed" and f"resolves to {OPTED_IN}, this machine" in job.message, job.message
        assert admin.total > before and job.results[0]["sources"] == [operator]  # the operator's: as told
        job = sync.wait(sync.submit("reindex", "mixed", by="cli").id, 120)  # the operator's own re-index
        assert job.state == "done", job.message
    finally:
        docs.close()


# -- break 10: ssh URLs naming this machine otherwise ----------------------------------------------------
@pytest.mark.parametrize("spelling", ["ssh://127.1{o}/secret.git", "ssh://2130706433{o}/secret.git",
                                      "ssh://[::ffff:127.0.0.1]{o}/secret.git", "git+ssh://127.0.0.1{o}/secret.git",
                                      "ssh://{alias}{o}/secret.git", "{alias}:{o}/secret.git",
                                      "ssh://{own}{o}/secret.git", "me@0:{o}/secret.git"])
def test_ssh_urls_naming_this_machine_are_held_to_the_allowed_roots(door, spelling):
    """ssh to this machine reads its files: in any spelling (a short or numeric address, an /etc/hosts
    alias, its own address) it is a local path, so the allowed roots apply."""
    own, alias = own_address(), hosts_alias()
    if ("{own}" in spelling and not own) or ("{alias}" in spelling and not alias):
        pytest.skip("this machine has no such address or name")
    spec = spelling.format(o=door["outside"].as_posix(), own=own, alias=alias)
    status, err = submit(door, [spec], kb="ssh")
    assert status == 400 and "outside the folders" in err["error"]["message"], (spec, err)
    assert "outside the folders" in add_in_the_tab(door, spec)


def test_ssh_from_the_doors_needs_the_host_named(door):
    """ssh logs in with the server's own keys: from the doors, only to hosts server.fetch_allow names;
    that holds for a repository under the allowed roots reached over ssh to this machine too."""
    inside = f"ssh://127.1{door['allowed'].as_posix()}/project"
    for spec in ("git@github.com:acme/private.git", "ssh://git@github.com/acme/private.git", inside):
        status, err = submit(door, [spec], kb="ssh")
        assert status == 400 and "logs in with this server's own keys" in err["error"]["message"], (spec, err)


# -- break 3: bounded fetches ---------------------------------------------------------------------------
def site_with(pages: dict) -> Web:
    listed = "".join(f"- [{p}]({p})\n" for p in pages)
    return Web({"/robots.txt": send("text/plain", "", 404), "/llms.txt": send("text/plain", f"# Docs\n\n{listed}"),
                **pages})


def ingest_cli(data: Path, url: str, capsys, config: str = "") -> tuple[str, float]:
    args = ["--data-dir", str(data)]
    if config:
        (data.parent / "bounds.toml").write_text(config)
        args += ["--config", str(data.parent / "bounds.toml")]
    capsys.readouterr()
    t0 = time.monotonic()
    assert main([*args, "ingest", url, "--kb", "site", "--quiet"]) == 0, capsys.readouterr()
    return capsys.readouterr().out, time.monotonic() - t0


def test_an_endless_page_ends_with_memory_bounded(tmp_path, capsys):
    """A chunked page that never ends: reading stops at the 5 MB cap, the page is skipped and counted,
    the rest of the site is indexed; memory holds one capped page, not the stream."""
    import tracemalloc

    from ingest.website import site_source

    web = site_with({"/ok.md": send("text/markdown", "# Ok\n\nThe wombat guide is short.\n"),
                     "/endless.html": endless()})
    try:
        out, _ = ingest_cli(tmp_path / "data", f"http://127.0.0.1:{web.port}/llms.txt", capsys)
        assert "1 files (1 new or changed" in out and "1 larger than 5,000,000 bytes" in out, out
        assert web.sent["/endless.html"] < 16_000_000  # the cap, and what the sockets' buffers held
        tracemalloc.start()
        try:
            site = site_source(f"http://127.0.0.1:{web.port}/llms.txt", tmp_path / "again")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert site.skipped == {"larger than 5,000,000 bytes": 1} and peak < 24_000_000, peak
    finally:
        web.close()


@pytest.mark.slow
def test_a_slow_drip_page_ends_at_the_page_deadline(tmp_path, capsys):
    """A page dripping a byte every tenth of a second never trips a per-read timeout; the page's own
    time limit (ingest.site_page_seconds) ends it, and it is skipped and counted."""
    web = site_with({"/ok.md": send("text/markdown", "# Ok\n\nThe quokka guide is short.\n"),
                     "/drip.html": endless(pause=0.1, piece=b"x", most=200)})
    try:
        out, _ = ingest_cli(tmp_path / "data", f"http://127.0.0.1:{web.port}/llms.txt", capsys,
                            "[ingest]\nsite_page_seconds = 2\nsite_timeout_s = 20\n")
        assert "1 files" in out and "1 took longer than 2 s (ingest.site_page_seconds)" in out, out
        assert web.sent["/drip.html"] < 60  # about 2 s of it, not the 20 s it would drip for
    finally:
        web.close()


def sleepy(seconds: float, text: str):
    def route(h: BaseHTTPRequestHandler, web: Web):
        time.sleep(seconds)
        send("text/markdown", text)(h, web)
    return route


@pytest.mark.slow
def test_the_whole_site_ends_at_the_site_deadline(tmp_path, capsys):
    """A site whose pages each take half a second, with 3 s for the whole site: what was fetched in
    time is indexed, the rest is skipped and counted in one line of the summary."""
    pages = {f"/p{i}.md": sleepy(0.5, f"# Page {i}\n\nPlatypus fact number {i}.\n") for i in range(10)}
    web = site_with(pages)
    try:
        out, _ = ingest_cli(tmp_path / "data", f"http://127.0.0.1:{web.port}/llms.txt", capsys,
                            "[ingest]\nsite_seconds = 3\nsite_concurrency = 1\n")
        summary = next(line for line in out.splitlines() if line.startswith("KB 'site'"))
        files = int(summary.split(": ", 1)[1].split(" files")[0])
        late = int(summary.split("skipped: ", 1)[1].split(" not fetched within 3 s (ingest.site_seconds)")[0])
        assert 1 <= files < 10 and files + late == 10, summary
        assert sum(web.requests[p] for p in pages) < 10
    finally:
        web.close()


# -- the settings ------------------------------------------------------------------------------------------
def test_the_fetch_settings_are_checked_at_start(tmp_path):
    from indexes.config import ConfigError

    ok = load_config(env={}, overrides={"server": {"fetch_allow": ["docs.internal", "10.1.0.0/16", "fd00::/8",
                                                                   "10.0.0.5"]},
                                        "ingest": {"site_page_seconds": 30, "site_seconds": 600}})
    assert ok.server.fetch_allow[0] == "docs.internal" and ok.ingest.site_seconds == 600
    bad = {"server": {"fetch_allow": ["http://docs.internal/"]}, "ingest": {"site_page_seconds": 0}}
    for section, values in bad.items():
        with pytest.raises(ConfigError) as e:
            load_config(env={}, overrides={section: values})
        message = str(e.value)
        assert f"'{section}.{next(iter(values))}'" in message and "\n" not in message
    toml = tmp_path / "c.toml"
    toml.write_text('[server]\nfetch_allow = "10.0.0.0/8"\n')
    with pytest.raises(ConfigError, match=r"server\.fetch_allow.*fetch_allow = \[\"10\.0\.0\.0/8\"\]"):
        load_config(toml, env={})
