"""The security suite of issue 25 ("Nothing reaches what it should not"): each numbered break of the issue
replayed as an attacker or a careless setting would, through the real doors (the Knowledge API and tab,
/v1, /mcp, the viewer, `devcopilot serve`, `ingest` and `mcp` as processes) against real servers on this
machine, and property-based fuzzing of /v1 and /v1/knowledge. Each test replays an attack that worked on
main before the fixes, or names what it holds; the edge's tests (breaks 5, 6, 8, 9, 11, 12 and the fuzzing),
run there, all failed but those guarding what already held: the settings of break 11 that issue 24 made
strict, the chat's lone-surrogate check, the Knowledge API's content type, the CLI's list of every user's
gaps and the chat fuzzing (which found nothing there within its examples).

The sections below follow the issue's numbered breaks; each break and the tests that hold it ([slow]: left
out of `make test-fast`):

 1. Server-side request forgery with read-back: test_ssrf_loopback_spellings_are_refused,
    test_ssrf_every_address_form_is_classified, test_ssrf_any_address_refuses_and_networks_never_open_this_machine,
    test_ssrf_a_redirect_to_loopback_is_not_followed, test_ssrf_the_connection_goes_to_the_address_checked,
    test_ssrf_tls_keeps_the_host_name_while_connecting_to_the_checked_address,
    test_ssrf_git_over_http_reaches_only_what_the_policy_allows, test_ssrf_a_door_sources_resync_stays_under_the_policy
 2. allowed_roots given as a string: test_allowed_roots_given_as_a_string_stops_serve_and_etc_stays_out [slow]
 3. An endless page: test_an_endless_page_ends_with_memory_bounded,
    test_a_slow_drip_page_ends_at_the_page_deadline [slow], test_the_whole_site_ends_at_the_site_deadline [slow]
 4. A FIFO named .gitignore: test_ignore_files_and_sources_that_are_not_regular_files_are_skipped_and_counted,
    test_a_fifo_named_gitignore_does_not_wedge_the_servers_writer
 5. No Host check; CORS; text/plain bodies: test_every_route_answers_only_to_the_servers_names,
    test_configured_names_and_a_wildcard_bind_answer_to_their_names_only, test_any_host_only_when_the_operator_says_so,
    test_pages_on_other_origins_get_no_cors_and_may_not_post, test_configured_origins_get_cors_without_credentials,
    test_json_routes_refuse_other_content_types
 6. A lone surrogate in the jobs API: test_break_6_a_lone_surrogate_job_is_refused_and_status_keeps_working,
    test_strings_that_are_not_text_are_refused_before_anything_is_stored,
    test_the_web_apps_boxes_refuse_text_that_is_not_text, test_a_nul_or_bytes_that_are_not_utf8_in_the_url_are_refused,
    test_stored_text_that_is_not_text_is_shown_escaped
 7. pkg:NAME reaches plain folders: test_pkg_names_installed_distributions_only
 8. The Usage tab leaks across users: test_each_user_sees_only_their_own_questions_in_the_usage_tab,
    test_the_cli_lists_every_users_gaps
 9. --auth alone leaves /mcp and /v1 open: test_with_users_no_door_is_open_to_nobody,
    test_beyond_loopback_an_open_server_does_not_start_without_insecure
10. ssh URLs naming this machine otherwise: test_ssh_urls_naming_this_machine_are_held_to_the_allowed_roots,
    test_ssh_from_the_doors_needs_the_host_named
11. Settings that fail late: test_settings_that_cannot_work_stop_the_start_in_one_sentence,
    test_names_and_origins_are_settings, test_the_fetch_settings_are_checked_at_start
12. MCP over stdio: test_mcp_over_stdio_exits_cleanly_when_input_ends_at_once [slow],
    test_mcp_over_stdio_answers_bad_input_and_keeps_serving [slow],
    test_mcp_over_http_refuses_arguments_that_are_not_text (the same check over HTTP)
13. conversations.sqlite readable by every local user: test_the_data_dir_and_what_the_server_writes_are_private [slow]

The classes of "What to build", each with the tests that hold it:

- Outbound fetches from the server's doors: break 1's tests (test_ssrf_*) and break 10's (test_ssh_*).
- Bounded fetches: break 3's tests.
- One regular-file check: break 4's tests.
- Host and origin: break 5's tests.
- Auth covers every route: break 9's tests.
- Per-user data: break 8's tests.
- Strings at the edge: break 6's tests and test_mcp_over_http_refuses_arguments_that_are_not_text (MCP over
  stdio: test_mcp_over_stdio_answers_bad_input_and_keeps_serving).
- pkg: installed distributions only: test_pkg_names_installed_distributions_only; files 0600, data dir 0700:
  test_the_data_dir_and_what_the_server_writes_are_private.
- MCP over stdio: break 12's two stdio tests.
- A security suite in CI: this file; its fuzzing of /v1 and /v1/knowledge is the last section
  (test_fuzz_chat_completions, test_fuzz_knowledge_jobs, test_fuzz_knowledge_reads_with_odd_query_strings).
- The settings those classes add (server.fetch_allow, allowed_hosts, cors_origins, the fetch time limits) are
  checked at start: break 11's tests.

The servers attacked are module-scoped fixtures (each starts once): `admin`, a loopback-only admin page
holding SECRET on every address of this machine; `door` and `opted`, the server by default and with
127.0.0.2 opened by server.fetch_allow; `kapi`, one more like `door` for the tests that wedge its writer;
`servers`, the edge's five set-ups over `world`; `fuzzed`, one the fuzzing may change. The web sites, git
forge and raw requests they are attacked with are in tests/support/security.py."""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlparse

import hypothesis
import pytest
from hypothesis import strategies as st
from support.corpus import SMALL_PROJECT, write_tree
from support.live import Server, devcopilot, env, request, start
from support.packages import declare_distribution
from support.security import (
    GitHTTP,
    Web,
    bare_repository,
    basic,
    call,
    endless,
    error_of,
    hosts_alias,
    loose_modes,
    make_special,
    own_address,
    redirect,
    release_fifo,
    send,
    site_with,
    sleepy,
    small_project_copilot,
)
from support.servers import ServerThread, free_port

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.search import Index
from ingest.files import WalkReport, walk
from ingest.sources import SourceError, resolve
from ui.cli import main
from ui.edge import Names
from ui.server import create_app, refuse_open_exposure

REPO = Path(__file__).resolve().parent.parent
TOKEN = "security-token-0451"  # the API token of every server here that has one
SECRET = "ADMIN-ONLY-walrus-4417"
OPTED_IN = "127.0.0.2"  # server.fetch_allow names it: the "allowed" site of the fetch tests
ALICE, BOB = ("alice", "pw-alice-1"), ("bob", "pw-bob-2")
NOT_REGULAR = "not a regular file"


# -- the servers attacked ------------------------------------------------------------------------------------
def admin_routes() -> dict:
    """A loopback-only admin service: every path answers with the secret."""
    page = f"<html><head><title>Admin</title></head><body><main><h1>Admin console</h1><p>The admin secret is " \
           f"{SECRET}.</p><a href='/secret.html'>more</a></main></body></html>"
    return {"/robots.txt": send("text/plain", "", 404),
            "/llms.txt": send("text/plain", "# Admin\n\n- [Secret](/secret.md)\n"),
            "/secret.md": send("text/markdown", f"# Secret\n\nThe admin secret is {SECRET}.\n"),
            "/info/refs": send("text/plain", SECRET),
            "*": send("text/html", page)}


@pytest.fixture(scope="module")
def admin():
    web = Web(admin_routes(), host="::")
    yield web
    web.close()


def serving(root: Path, server: dict):
    """The real server (Knowledge API with the API token, the Knowledge tab over its queue) over a small
    project in root/allowed, the only folder it may index, with the `server` settings given."""
    import gradio as gr

    from ui.knowledge_tab import KnowledgeTab

    allowed, outside = root / "allowed", root / "outside"
    copilot = small_project_copilot(root, allowed / "project", {"allowed_roots": [str(allowed)], **server})
    outside.mkdir()
    cfg = copilot.cfg
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


@pytest.fixture(scope="module")
def kapi(tmp_path_factory):
    """A server like `door`, of its own: the tests of breaks 4 and 7 add KBs to it and wedge and cancel its
    writer (on a build without the fix a FIFO hangs it for good), which must not touch the fetch tests."""
    yield from serving(tmp_path_factory.mktemp("secfiles"), {})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The small project indexed into KB 'default', the copilot over it, and its settings."""
    root = tmp_path_factory.mktemp("edge25")
    copilot = small_project_copilot(root, root / "project", {"allowed_roots": [str(root)]})
    return {"root": root, "project": root / "project", "cfg": copilot.cfg, "copilot": copilot}


NAMED = {"allowed_hosts": ["copilot.example.com"], "public_url": "https://copilot.public.example",
         "cors_origins": ["https://tools.example.com"]}


@pytest.fixture(scope="module")
def servers(world):
    """The real app served five ways: open; with two users; with two users and an API token; with names
    and origins configured; bound (as far as its names go) to every interface of a machine called
    `devbox` at 10.1.2.3."""
    copilot, cfg = world["copilot"], world["cfg"]
    named_cfg = load_config(env={}, overrides={"data_dir": str(cfg.data_dir), "server": NAMED})
    users = [":".join(ALICE), ":".join(BOB)]
    apps = {
        "open": create_app(copilot, cfg),
        "users": create_app(copilot, cfg, auth=users),
        "both": create_app(copilot, cfg, auth=users, api_token=TOKEN),
        "named": create_app(Copilot(named_cfg, index=copilot.index), named_cfg),
        "wildcard": create_app(copilot, cfg, host="0.0.0.0",
                               names=Names.served("0.0.0.0", machine=lambda: {"devbox", "devbox.lan", "10.1.2.3"})),
    }
    with contextlib.ExitStack() as stack:
        yield {name: (stack.enter_context(ServerThread(app)), app) for name, app in apps.items()}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A server of its own (the fuzz may forget its KB): open, over the small project."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "empty").mkdir()
    copilot = small_project_copilot(root, root / "project", {"allowed_roots": [str(root / "empty")]})
    app = create_app(copilot, copilot.cfg)
    with ServerThread(app) as url:
        yield url, app, copilot.cfg


# -- what the doors were asked and what they stored ----------------------------------------------------------
def post_job(site: dict, body: dict) -> tuple[int, dict]:
    """POST /v1/knowledge/jobs with the API token: (status, the job or the error)."""
    return request(site["url"] + "/v1/knowledge/jobs", body, TOKEN)


def add_sources(site: dict, sources: list[str], kb: str = "fetched") -> tuple[int, dict]:
    return post_job(site, {"action": "add", "kb": kb, "sources": sources})


def finished(site: dict, job: dict, timeout: float = 120) -> dict:
    """The job once it has ended (queued or running no more), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the job did not finish within {timeout} s: {job}"
        status, job = request(f"{site['url']}/v1/knowledge/jobs/{job['id']}?wait=2", token=TOKEN)
        assert status == 200
    return job


def kb_names(site: dict) -> set[str]:
    status, known = request(site["url"] + "/v1/knowledge", token=TOKEN)
    assert status == 200
    return {k["name"] for k in known["knowledge_bases"] if k["chunks"]}


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


def conversations(cfg) -> int:
    with contextlib.closing(sqlite3.connect(cfg.data_dir / "conversations.sqlite")) as db:
        return db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]


def job_ids(app) -> set[str]:
    return {j.id for j in app.state.jobs.all()}


def devcopilot_py(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python devcopilot.py ARGS` of this checkout, as a real process."""
    return subprocess.run([sys.executable, str(REPO / "devcopilot.py"), *args], capture_output=True, text=True,
                          env=env(), cwd=REPO, timeout=timeout)


def chat(content, **extra) -> dict:
    return {"model": "tutoring", "messages": [{"role": "user", "content": content}], **extra}


JSON = {"Content-Type": "application/json"}
CHAT = json.dumps({"model": "tutoring", "messages": [{"role": "user", "content": "how do retries work?"}]}).encode()
FORGET = json.dumps({"action": "forget", "kb": "no-such-kb"}).encode()


# -- break 1: server-side request forgery with read-back (outbound fetches from the doors) ------------------
SPELLINGS = ["http://2130706433:{p}/llms.txt", "http://0x7f000001:{p}/llms.txt", "http://0177.0.0.1:{p}/llms.txt",
             "http://127.1:{p}/llms.txt", "http://0:{p}/llms.txt", "http://[::1]:{p}/llms.txt",
             "http://[::ffff:127.0.0.1]:{p}/llms.txt", "http://{own}:{p}/llms.txt", "http://{alias}:{p}/llms.txt",
             "http://LOCALHOST.:{p}/llms.txt", "http://169.254.169.254/latest/meta-data/",
             "http://127.1:{p}/team/repo.git", "git://127.0.0.1:{p}/repo.git", "http://2130706433:{p}/repo.git",
             # An IPv6 zone is written %25 in a URL; undecoded it was taken for a name that does not resolve.
             "http://[fe80::1%25lo]:{p}/llms.txt", "http://[::1%25lo]:{p}/llms.txt"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_ssrf_loopback_spellings_are_refused(door, admin, spelling):
    """Every spelling of this machine (and the cloud metadata address) is refused by both doors, in
    one sentence saying which setting opens it; the admin service is never asked for anything."""
    own, alias = own_address(), hosts_alias()
    if ("{own}" in spelling and not own) or ("{alias}" in spelling and not alias):
        pytest.skip("this machine has no such address or name")
    url = spelling.format(p=admin.port, own=own, alias=alias)
    before = admin.total
    status, err = add_sources(door, [url])
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
        status, job = add_sources(opted, [f"http://{OPTED_IN}:{docs.port}/llms.txt"])
        assert status == 202, job
        job = finished(opted, job)
        assert job["state"] == "done", job
        result = job["results"][0]
        assert result["files"] == 1 and result["skipped"] == {"at addresses the server may not fetch "
                                                              "(server.fetch_allow)": 1}, result
        status, job = add_sources(opted, [f"http://{OPTED_IN}:{docs.port}/go.txt"], kb="redirected")
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
            status, err = add_sources(opted, [url], kb="git")
            assert status == 400 and "this machine" in err["error"]["message"], err
        job = finished(opted, add_sources(opted, [f"{forge.url}/widgets.git"], kb="git")[1])
        assert job["state"] == "done" and job["results"][0]["files"] == 1, job
        job = finished(opted, add_sources(opted, [f"{forge.url}/moved.git"], kb="moved")[1])
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


# -- break 2: allowed_roots given as a string allows / --------------------------------------------------------
@pytest.mark.slow
def test_allowed_roots_given_as_a_string_stops_serve_and_etc_stays_out(tmp_path):
    """`allowed_roots = "/x"` used to be read letter by letter into the roots '/' and 'x': the server
    started and indexed /etc for anyone holding the API token."""
    (tmp_path / "x").mkdir()
    config = tmp_path / "devcopilot.toml"
    config.write_text(f'[server]\nallowed_roots = "{tmp_path / "x"}"\n', encoding="utf-8")
    data, port = tmp_path / "data", free_port()
    proc = start(data, "serve", "--port", str(port), config=config)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("devcopilot serve started with allowed_roots given as a string")
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "'server.allowed_roots' must be a list of folders" in err, err
    with pytest.raises(OSError):  # nothing answers: /etc cannot be indexed through it
        request(f"http://127.0.0.1:{port}/v1/knowledge/jobs", {"action": "add", "sources": ["/etc"]}, timeout=5)
    # Written as the list it must be, the roots are that folder: /etc is refused with one sentence.
    config.write_text(f'[server]\nallowed_roots = ["{tmp_path / "x"}"]\n', encoding="utf-8")
    cfg = load_config(str(config), env={}, overrides={"data_dir": str(data)})
    with ServerThread(create_app(Copilot(cfg), cfg, api_token=TOKEN)) as url:
        status, err = request(url + "/v1/knowledge/jobs", {"action": "add", "kb": "etc", "sources": ["/etc"]}, TOKEN)
        assert status == 400 and "outside the folders this server may index" in err["error"]["message"], err


# -- break 3: an endless page grows memory without limit (bounded fetches) -----------------------------------
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
        assert "1 file (1 new or changed" in out and "1 larger than 5,000,000 bytes" in out, out
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
        assert "1 file (" in out and "1 took longer than 2 s (ingest.site_page_seconds)" in out, out
        assert web.sent["/drip.html"] < 60  # about 2 s of it, not the 20 s it would drip for
    finally:
        web.close()


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


# -- break 4: a FIFO named .gitignore hangs the ingest (one regular-file check for every read) ---------------
@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_ignore_files_and_sources_that_are_not_regular_files_are_skipped_and_counted(tmp_path, kind):
    """A FIFO named .gitignore hung the ingest for good (the ignore file was read with a plain open);
    a socket or device named .gitignore was passed over without a word. Now every read of the walk,
    the ignore files' included, is one regular-file check: skipped and counted, the rest indexed."""
    folder = write_tree(tmp_path / "src", {"guide.md": "# Guide\n\nThe heron waits by the sluice gate.\n",
                                           "sub/.gitignore": "secret.md\n", "sub/secret.md": "# Secret\n",
                                           "sub/kept.md": "# Kept\n\nOtters hold hands.\n"})
    specials = [folder / ".gitignore", folder / "notes.md"]
    for path in specials:
        make_special(kind, path)
    result: dict = {}

    def run() -> None:
        report = WalkReport()
        result["paths"] = [f.path for f in walk(folder, report=report)]
        result["report"] = report

    walker = threading.Thread(target=run, daemon=True)
    walker.start()
    walker.join(20)
    hung = walker.is_alive()
    for path in specials if kind == "fifo" else []:
        release_fifo(path)
    walker.join(20)
    assert not hung, "the walk hung on a special file"
    assert result["paths"] == ["guide.md", "sub/kept.md"]  # the regular ignore file below still applies
    assert result["report"].skipped[NOT_REGULAR] == 2
    assert result["report"].examples[NOT_REGULAR] in (".gitignore", "notes.md")


def test_a_fifo_named_gitignore_does_not_wedge_the_servers_writer(kapi):
    """Through the server the hung read held the writer: the job stayed "running", cancel was ignored,
    every later job stayed queued."""
    folder = write_tree(kapi["allowed"] / "piped", {"guide.md": "# Piped\n\nThe heron waits by the sluice gate.\n"})
    fifo = folder / ".gitignore"
    os.mkfifo(fifo)
    try:
        status, job = post_job(kapi, {"action": "add", "kb": "piped", "sources": [str(folder)]})
        assert status == 202, job
        job = finished(kapi, job, timeout=60)
        assert job["state"] == "done", job
        assert job["results"][0]["files"] == 1 and job["results"][0]["skipped"] == {NOT_REGULAR: 1}, job
        # The writer is free: a later job runs, and one asked to stop stops.
        later = write_tree(kapi["allowed"] / "later", {f"note{i}.md": f"# Note {i}\n\nBeavers build dam {i}.\n"
                                                      for i in range(300)})
        status, job = post_job(kapi, {"action": "add", "kb": "later", "sources": [str(later)]})
        assert status == 202
        status, asked = request(f"{kapi['url']}/v1/knowledge/jobs/{job['id']}", token=TOKEN, method="DELETE")
        assert status == 200 and asked["cancel_requested"], asked
        assert finished(kapi, job, timeout=60)["state"] == "cancelled"
        job = finished(kapi, post_job(kapi, {"action": "add", "kb": "piped", "sources": [str(folder)]})[1], timeout=60)
        assert job["state"] == "done", job
    finally:
        release_fifo(fifo)


# -- break 5: no Host check outside /mcp; CORS for other origins; text/plain bodies (host and origin) --------
DOORS = [("GET", "/", True), ("GET", "/healthz", True), ("GET", "/source?path=/etc/passwd", True),
         ("GET", "/v1/models", False), ("GET", "/v1/knowledge", False), ("GET", "/mcp", False),
         ("POST", "/v1/knowledge/jobs", False), ("POST", "/gradio_api/queue/join", True)]
REFUSED_NAME = ("This server does not answer to the name 'evil.example'; add it to server.allowed_hosts to reach "
                "it by that name.")


def test_every_route_answers_only_to_the_servers_names(servers):
    """A DNS-rebinding page sends its own name as Host: refused on every route (JSON for programs, a
    sentence in plain text for a browser tab), and no job is queued."""
    url, app = servers["open"]
    before = job_ids(app)
    for method, path, plain in DOORS:
        status, headers, text = call(url, method, path, {"Host": "evil.example:80", **JSON},
                                     FORGET if method == "POST" else None)
        assert status == 421, (path, status, text[:200])
        if plain:
            assert text == REFUSED_NAME and headers["content-type"].startswith("text/plain"), path
        else:
            assert error_of(421, text)["message"] == REFUSED_NAME, path
    assert job_ids(app) == before
    port = urlparse(url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST."):
        assert call(url, "GET", "/v1/knowledge", {"Host": host})[0] == 200, host


@pytest.mark.parametrize("setup, answered, refused", [
    ("named", ["copilot.example.com", "copilot.public.example:443", "localhost:7860"], ["evil.example", "10.1.2.3"]),
    ("wildcard", ["devbox:7860", "devbox.lan", "10.1.2.3:7860", "localhost", "[::1]:7860"],
     ["evil.example", "copilot.example.com"]),
])
def test_configured_names_and_a_wildcard_bind_answer_to_their_names_only(servers, setup, answered, refused):
    url, _ = servers[setup]
    for host in answered:
        assert call(url, "GET", "/v1/knowledge", {"Host": host})[0] == 200, host
    for host in refused:
        assert call(url, "GET", "/v1/knowledge", {"Host": host})[0] == 421, host


def test_any_host_only_when_the_operator_says_so():
    names = Names.served("0.0.0.0", allowed_hosts=["*"], machine=lambda: {"devbox"})
    names.check("/v1/knowledge", "GET", "evil.example", "", False)  # no refusal
    with pytest.raises(Exception, match="does not answer to the name 'evil.example'"):
        Names.served("0.0.0.0", machine=lambda: {"devbox"}).check("/v1/knowledge", "GET", "evil.example", "", False)
    assert Names.served("192.168.1.5").hosts == {"192.168.1.5"}  # not loopback: its own address only


PREFLIGHT = {"Origin": "http://localhost:9999", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type, authorization"}


def test_pages_on_other_origins_get_no_cors_and_may_not_post(servers):
    """Another localhost origin (any other site, too) gets no CORS answer, let alone with credentials, and
    its page's posts are refused before anything is queued; the server's own pages post as before."""
    url, app = servers["open"]
    for path in ("/v1/knowledge/jobs", "/v1/chat/completions", "/mcp", "/gradio_api/queue/join", "/gradio_api/info"):
        status, headers, _ = call(url, "OPTIONS", path, PREFLIGHT)
        assert status == 403 and not any(k.startswith("access-control-") for k in headers), (path, status, headers)
    status, headers, _ = call(url, "GET", "/gradio_api/info", {"Origin": "http://localhost:9999"})
    assert status == 200 and not any(k.startswith("access-control-") for k in headers), headers
    before, talks = job_ids(app), conversations(app.state.copilot.cfg)
    for path, body in (("/v1/knowledge/jobs", FORGET), ("/v1/chat/completions", CHAT),
                       ("/gradio_api/queue/join", b"{}")):
        for origin in ("http://localhost:9999", "null", "https://evil.example"):
            status, headers, text = call(url, "POST", path, {"Origin": origin, **JSON}, body)
            assert status == 403 and "may not change anything on this server" in text, (path, origin, status, text)
            assert not any(k.startswith("access-control-") for k in headers)
    assert job_ids(app) == before and conversations(app.state.copilot.cfg) == talks
    same = f"http://127.0.0.1:{urlparse(url).port}"
    assert call(url, "POST", "/v1/knowledge/jobs", {"Origin": same, **JSON}, FORGET)[0] == 202


def test_configured_origins_get_cors_without_credentials(servers):
    url, _ = servers["named"]
    allowed = {**PREFLIGHT, "Origin": "https://tools.example.com"}
    status, headers, _ = call(url, "OPTIONS", "/v1/chat/completions", allowed)
    assert status == 204 and headers["access-control-allow-origin"] == "https://tools.example.com"
    assert "access-control-allow-credentials" not in headers
    status, headers, _ = call(url, "GET", "/v1/models", {"Origin": "https://tools.example.com"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://tools.example.com"
    for origin in ("https://tools.example.com", "https://copilot.public.example"):  # cors_origins, public_url
        assert call(url, "POST", "/v1/knowledge/jobs", {"Origin": origin, **JSON}, FORGET)[0] == 202, origin
    assert call(url, "POST", "/v1/knowledge/jobs", {"Origin": "https://evil.example", **JSON}, FORGET)[0] == 403


@pytest.mark.parametrize("path, body, says", [
    ("/v1/chat/completions", CHAT, "Send the request as JSON with 'Content-Type: application/json'."),
    ("/v1/knowledge/jobs", FORGET, "Send the job as JSON with 'Content-Type: application/json'."),
    ("/mcp", b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
     "Send MCP messages as JSON with 'Content-Type: application/json'."),
])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_json_routes_refuse_other_content_types(servers, path, body, says, content_type):
    """A page on another site can post text/plain or a form without asking first; a JSON route refuses
    it with 415, and nothing is stored."""
    url, app = servers["open"]
    before, talks = job_ids(app), conversations(app.state.copilot.cfg)
    status, _, text = call(url, "POST", path, {"Content-Type": content_type} if content_type else {}, body)
    assert error_of(status, text) == {"message": says, "type": "invalid_request_error", "code": 415}
    assert job_ids(app) == before and conversations(app.state.copilot.cfg) == talks


# -- break 6: a lone surrogate in the jobs API gives a 500 and breaks status (strings at the edge) -----------
NOT_TEXT = [
    ("/v1/chat/completions", chat("why \ud800 here?"), "'messages[0].content' is not valid Unicode"),
    ("/v1/chat/completions", chat("why\x00"), "'messages[0].content' holds a NUL character"),
    ("/v1/chat/completions", chat([{"type": "text", "text": "a\udc80"}]), "'messages[0].content[0].text' is not"),
    ("/v1/chat/completions", chat("hi", model="tutor\ud800ing"), "'model' is not valid Unicode"),
    ("/v1/chat/completions", {"messages": [{"role": "us\x00er", "content": "hi"}]}, "'messages[0].role' holds a NUL"),
    ("/v1/chat/completions", {**chat("hi"), "x\ud800": 1}, "'x\\ud800' is not valid Unicode"),
    ("/v1/knowledge/jobs", {"action": "add", "kb": "\ud800", "sources": ["{project}"]}, "'kb' is not valid Unicode"),
    ("/v1/knowledge/jobs", {"action": "add", "kb": "k", "sources": ["{project}\ud800"]}, "'sources[0]' is not valid"),
    ("/v1/knowledge/jobs", {"action": "add", "kb": "k", "sources": "{project}\x00"}, "'sources' holds a NUL"),
    ("/v1/knowledge/jobs", {"action": "add", "kb": "k", "sources": ["{project}"], "include": ["*.md\udfff"]},
     "'include[0]' is not valid Unicode"),
    ("/v1/knowledge/jobs", {"action": "add", "kb": "k", "sources": ["{project}"], "exclude": ["\x00"]},
     "'exclude[0]' holds a NUL"),
    ("/v1/knowledge/jobs", {"action": "reindex\ud800"}, "'action' is not valid Unicode"),
]


@pytest.mark.parametrize("path, body, says", NOT_TEXT, ids=[f"{p.rsplit('/', 1)[1]}-{s.split()[0]}"
                                                          for p, _, s in NOT_TEXT])
def test_strings_that_are_not_text_are_refused_before_anything_is_stored(servers, world, path, body, says):
    url, app = servers["open"]
    raw = json.dumps(body).replace("{project}", str(world["project"])).encode()  # \ud800 as JSON spells it
    before, talks = job_ids(app), conversations(world["cfg"])
    status, _, text = call(url, "POST", path, JSON, raw)
    error = error_of(status, text)
    assert status == 400 and error["message"].startswith(says), error
    assert job_ids(app) == before and conversations(world["cfg"]) == talks
    assert call(url, "GET", "/v1/knowledge")[0] == 200


def test_the_web_apps_boxes_refuse_text_that_is_not_text(world):
    """The chat box and the Knowledge tab's source box say so in one sentence; nothing is stored or queued."""
    import gradio as gr
    from starlette.requests import Request

    from indexes.jobs import Jobs
    from ui.chat_tab import ChatTab
    from ui.knowledge_tab import Following, KnowledgeTab

    gradio_request = gr.Request(request=Request({"type": "http", "method": "POST", "path": "/", "query_string": b"",
                                                 "headers": []}))
    chat_tab, talks = ChatTab(world["copilot"], world["cfg"]), conversations(world["cfg"])
    for message in ("how do retries work?\ud800", "memory\x00"):
        with pytest.warns(UserWarning, match="which is not text; type it again without it"):
            outputs = list(chat_tab.submit(message, [], [], None, "", "", gradio_request))
        assert len(outputs) == 1 and outputs[0][0] == [] and outputs[0][2] is None  # no answer, no conversation
    assert conversations(world["cfg"]) == talks
    jobs = Jobs(world["copilot"].index)
    tab = KnowledgeTab(world["copilot"], world["cfg"], lambda kb: None, jobs)
    status = tab.add_source(f"{world['project']}\udcff", "default", Following())[0]
    assert status == "❌ The source holds a lone surrogate, which is not text; type a plain path, git URL or pkg:NAME."
    assert jobs.all() == []


@pytest.mark.parametrize("path", ["/v1/knowledge/jobs/job-1?wait=%00", "/source?path=%2Ftmp%2F%00x",
                                  "/source?path=%ED%A0%80", "/v1/knowledge/jobs/job%00x"])
def test_a_nul_or_bytes_that_are_not_utf8_in_the_url_are_refused(servers, path):
    url, _ = servers["open"]
    status, _, text = call(url, "GET", path)
    assert status == 400 and "NUL character (%00)" in text, (path, status, text)


def test_break_6_a_lone_surrogate_job_is_refused_and_status_keeps_working(servers, world):
    """The replay of break 6: a job whose kb is "\\ud800" was a 500, stored, and then broke `devcopilot
    status` and GET /v1/knowledge until a restart."""
    url, app = servers["open"]
    raw = b'{"action": "add", "kb": "\\ud800", "sources": ["' + str(world["project"]).encode() + b'"]}'
    status, _, text = call(url, "POST", "/v1/knowledge/jobs", JSON, raw)
    assert status == 400 and "'kb' is not valid Unicode" in text
    status, _, text = call(url, "GET", "/v1/knowledge")
    assert status == 200 and json.loads(text)["knowledge_bases"][0]["name"] == "default"
    r = devcopilot_py("--data-dir", str(world["cfg"].data_dir), "status")
    assert r.returncode == 0 and "KB 'default'" in r.stdout, r.stderr


def test_stored_text_that_is_not_text_is_shown_escaped(servers, world):
    """Whatever reached a store before the doors checked (a writer's description in the lock file, a job
    in the queue) is shown escaped by `status` and the Knowledge API, never a crash."""
    from indexes.writer import writing

    url, app = servers["open"]
    job = app.state.jobs.submit("reindex", "bad\ud800kb")  # straight into the queue, past the doors
    app.state.jobs.wait(job.id, 30)
    status, _, text = call(url, "GET", "/v1/knowledge/jobs")
    assert status == 200 and "bad\\ud800kb" in text, text[:300]
    with writing(world["cfg"].data_dir, "devcopilot ingest /src/\udcff into 'default'"):
        status, _, text = call(url, "GET", "/v1/knowledge")
        assert status == 200 and json.loads(text)["writer"].startswith("devcopilot ingest /src/\\udcff"), text[:300]
        r = devcopilot_py("--data-dir", str(world["cfg"].data_dir), "status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["writer"].startswith("devcopilot ingest /src/\\udcff into 'default'")


# -- break 7: pkg:NAME reaches plain folders (installed distributions only) ----------------------------------
REFUSED_DOCS = ("'docs' is not an installed package (no distribution provides it); install it, or add its "
                "folder as a folder source.")


def test_pkg_names_installed_distributions_only(kapi, tmp_path, monkeypatch):
    """`pkg:docs` indexed the checkout's docs/ folder (a namespace package to the import system, the
    working directory being on sys.path), outside the allowed roots."""
    checkout = write_tree(tmp_path / "checkout", {"docs/secret.md": "# Secret\n\nThe vault code is 0451.\n"})
    monkeypatch.syspath_prepend(str(checkout))  # as the working directory is, run from a checkout
    status, job = post_job(kapi, {"action": "add", "kb": "pkgdocs", "sources": ["pkg:docs"]})
    assert status == 202, job
    job = finished(kapi, job, timeout=60)
    assert job["state"] == "failed" and job["message"] == REFUSED_DOCS, job
    assert "pkgdocs" not in kb_names(kapi)
    # A regular package folder named like an installed distribution, ahead of it on sys.path, is not it.
    site = write_tree(tmp_path / "site", {"otterpkg/__init__.py": "", "otterpkg/raft.py": "HANDS = 2\n"})
    declare_distribution(site, "otterpkg")
    shadow = write_tree(tmp_path / "shadow", {"otterpkg/__init__.py": "VAULT = '0451'\n"})
    monkeypatch.syspath_prepend(str(site))
    assert resolve("pkg:otterpkg", kapi["cfg"].data_dir).walk_root == site / "otterpkg"
    monkeypatch.syspath_prepend(str(shadow))
    with pytest.raises(SourceError, match=r"^'otterpkg' is not an installed package \(no distribution"):
        resolve("pkg:otterpkg", kapi["cfg"].data_dir)


# -- break 8: the Usage tab leaks across users (per-user data) ------------------------------------------------
def test_each_user_sees_only_their_own_questions_in_the_usage_tab(servers, world):
    """Alice and Bob each ask (through the API, signed in) a question nobody indexed an answer for: each
    one's Usage tab lists their own coverage gap and not the other's; `devcopilot usage --gaps` lists both."""
    url, _ = servers["users"]
    asked = {ALICE: "How do I configure the quantum flux capacitor of alice?",
             BOB: "How do I configure the quantum flux capacitor of bob?"}
    for user, question in asked.items():
        status, _, text = call(url, "POST", "/v1/chat/completions", {**JSON, "Authorization": basic(user)},
                               json.dumps(chat(question)).encode())
        assert status == 200, text[:300]

    for user, other in ((ALICE, BOB), (BOB, ALICE)):
        summary, gaps, csv_text = usage_tab_of(world, user)
        assert asked[user] in gaps and asked[other] not in gaps, (user, gaps)
        assert asked[other] not in csv_text and f"your conversations ({user[0]})" in summary


def usage_tab_of(world, user) -> tuple[str, list, str]:
    """What `user` (signed in) sees in the Usage tab: its summary, the gaps' questions, the CSV's text."""
    import gradio as gr
    from starlette.requests import Request

    from ui.usage_tab import UsageTab

    scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "query_string": b"",
             "headers": [(b"authorization", basic(user).encode())]}
    summary, _, gaps, csv_path, _ = UsageTab(world["copilot"]).usage(gr.Request(request=Request(scope)))
    return summary, [g[0] for g in gaps], Path(csv_path).read_text()


def test_a_question_asked_over_mcp_counts_in_the_askers_usage_tab(servers, world):
    """MCP's `ask` over HTTP, signed in as Alice, is Alice's conversation (from the door "mcp"): her Usage tab
    lists its coverage gap, Bob's does not (it was nobody's before)."""
    url, _ = servers["users"]
    question = "How do I configure the quantum flux capacitor over mcp?"
    headers = {**JSON, "Accept": "application/json, text/event-stream", "Authorization": basic(ALICE)}
    status, reply_headers, _ = call(url, "POST", "/mcp", headers, json.dumps(INIT).encode())
    assert status == 200
    session = {**headers, "Mcp-Session-Id": reply_headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
    call(url, "POST", "/mcp", session, b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    ask = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
           "params": {"name": "ask", "arguments": {"question": question}}}
    status, _, text = call(url, "POST", "/mcp", session, json.dumps(ask).encode())
    reply = json.loads(text.split("data: ", 1)[1]) if "data: " in text else json.loads(text)
    assert status == 200 and "result" in reply, reply
    assert question in usage_tab_of(world, ALICE)[1]
    assert question not in usage_tab_of(world, BOB)[1]
    mine = world["copilot"].conversations.listing(owner=ALICE[0], origin="mcp")  # not in her web chat list
    assert any(c["title"].startswith("How do I configure the quantum flux capacitor over") for c in mine), mine


def test_the_cli_lists_every_users_gaps(world, capsys):
    capsys.readouterr()
    assert main(["--data-dir", str(world["cfg"].data_dir), "usage", "--gaps", "--json"]) == 0
    questions = [g["question"] for g in json.loads(capsys.readouterr().out)]
    assert any(q.endswith("of alice?") for q in questions) and any(q.endswith("of bob?") for q in questions)


def test_a_websocket_is_behind_the_edge_like_any_request(servers):
    """No door speaks WebSocket today, but a mounted app that does (a later Gradio) must not open one to a caller
    the edge would refuse: without a sign-in, from another site's page, or under another name. A route that
    echoes is mounted first for the test; signed in, from no page, it opens and echoes."""
    from starlette.routing import WebSocketRoute
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    async def echo(ws):
        await ws.accept()
        await ws.send_text("echo " + await ws.receive_text())
        await ws.close()

    url, app = servers["users"]
    app.router.routes.insert(0, WebSocketRoute("/ws-echo", echo))
    ws_url = url.replace("http://", "ws://") + "/ws-echo"
    with connect(ws_url, additional_headers={"Authorization": basic(ALICE)}) as ws:
        ws.send("hi")
        assert ws.recv() == "echo hi"
    refused = [{},  # no sign-in
               {"Authorization": basic(("alice", "wrong"))},
               {"Authorization": basic(ALICE), "Origin": "https://evil.example"},  # another site's page
               {"Authorization": basic(ALICE), "Host": "evil.example"}]  # another name
    for headers in refused:
        with pytest.raises(InvalidStatus) as e, connect(ws_url, additional_headers=headers):
            pass
        assert e.value.response.status_code == 403, headers


# -- break 9: --auth alone leaves /mcp and /v1 open (auth covers every route) --------------------------------
SIGNED_IN_DOORS = [("GET", "/v1/models", None), ("POST", "/v1/chat/completions", CHAT), ("GET", "/mcp", None),
                   ("POST", "/mcp", b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'), ("GET", "/v1/knowledge", None),
                   ("POST", "/v1/knowledge/jobs", FORGET), ("GET", "/source?path={file}", None), ("GET", "/", None)]


@pytest.mark.parametrize("setup", ["users", "both"])
def test_with_users_no_door_is_open_to_nobody(servers, world, setup):
    url, app = servers[setup]
    file = quote(str(world["project"] / "widgets" / "core.py"))
    talks = conversations(world["cfg"])
    for method, path, body in SIGNED_IN_DOORS:
        path = path.format(file=file)
        for who in ("", "Bearer wrong", basic((ALICE[0], "wrong"))):
            status, headers, text = call(url, method, path, {**JSON, "Authorization": who} if who else JSON, body)
            assert status == 401 and "MemoryStore" not in text, (setup, path, who, status, text[:200])
        status, _, text = call(url, method, path, {**JSON, "Authorization": basic(ALICE)}, body)
        assert status != 401, (setup, path, text[:200])
        if setup == "both" and path != "/":  # the web UI's page is for its users; every other door takes the token
            status, _, text = call(url, method, path, {**JSON, "Authorization": f"Bearer {TOKEN}"}, body)
            assert status != 401, (setup, path, text[:200])
    assert conversations(world["cfg"]) == talks + (2 if setup == "both" else 1)  # the admitted chats only


def test_beyond_loopback_an_open_server_does_not_start_without_insecure(tmp_path):
    port = free_port()
    r = devcopilot_py("--data-dir", str(tmp_path / "d"), "serve", "--host", "0.0.0.0", "--port", str(port),
                      timeout=120)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr[-2000:])
    assert r.stderr.count("\n") == 1 and "--insecure" in r.stderr and "--auth" in r.stderr, r.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was indexed
    for host, auth, token, insecure in (("0.0.0.0", "a:b", "", False), ("0.0.0.0", "", "t", False),
                                        ("0.0.0.0", "", "", True), ("127.0.0.1", "", "", False),
                                        ("::1", "", "", False), ("localhost", "", "", False)):
        refuse_open_exposure(host, auth, token, insecure)  # no refusal
    for host in ("0.0.0.0", "::", "", "192.168.1.5"):
        with pytest.raises(ValueError, match="--insecure"):
            refuse_open_exposure(host, "", "", False)


# -- break 10: ssh URLs naming this machine otherwise pass the allowed-roots check ----------------------------
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
    status, err = add_sources(door, [spec], kb="ssh")
    assert status == 400 and "outside the folders" in err["error"]["message"], (spec, err)
    assert "outside the folders" in add_in_the_tab(door, spec)


def test_ssh_from_the_doors_needs_the_host_named(door):
    """ssh logs in with the server's own keys: from the doors, only to hosts server.fetch_allow names;
    that holds for a repository under the allowed roots reached over ssh to this machine too."""
    inside = f"ssh://127.1{door['allowed'].as_posix()}/project"
    for spec in ("git@github.com:acme/private.git", "ssh://git@github.com/acme/private.git", inside):
        status, err = add_sources(door, [spec], kb="ssh")
        assert status == 400 and "logs in with this server's own keys" in err["error"]["message"], (spec, err)


# -- break 11: settings that fail late (every setting checked at start, in one sentence) ----------------------
@pytest.mark.parametrize("toml, says", [
    ('[sync]\nevery = "99999999999999999999d"\n', "Setting 'sync.every' ('99999999999999999999d') must be at most "
                                                  "a year (365d)."),
    ("[synk]\nevery = \"1h\"\n", "Unknown table [synk] in the configuration; did you mean [sync]?"),
    ("[server]\nport = \"7860\"\n", "Setting 'server.port' must be a whole number from 1 to 65535, not '7860'; "
                                    "write it without quotes."),
    ("[server]\nallowed_hosts = \"copilot.example.com\"\n", "Setting 'server.allowed_hosts' must be a list of host "
                                                            "names or addresses"),
    ('[server]\nallowed_hosts = ["https://copilot.example.com/"]\n', "Setting 'server.allowed_hosts' holds "
                                                                     "'https://copilot.example.com/', which is not"),
    ('[server]\ncors_origins = ["*"]\n', "Setting 'server.cors_origins' holds '*', which is not an origin"),
])
def test_settings_that_cannot_work_stop_the_start_in_one_sentence(tmp_path, capsys, toml, says):
    config = tmp_path / "devcopilot.toml"
    config.write_text(toml)
    assert main(["--config", str(config), "--data-dir", str(tmp_path / "d"), "serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"devcopilot: {says}") and err.count("\n") == 1, err
    assert not (tmp_path / "d").exists()


def test_names_and_origins_are_settings(tmp_path):
    config = tmp_path / "devcopilot.toml"
    config.write_text('[server]\nallowed_hosts = ["copilot.example.com", "10.0.0.5", "*"]\n'
                      'cors_origins = ["https://tools.example.com"]\n')
    cfg = load_config(config, env={})
    assert cfg.server.allowed_hosts == ["copilot.example.com", "10.0.0.5", "*"]
    assert cfg.server.cors_origins == ["https://tools.example.com"]


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


# -- break 12: MCP over stdio aborts at end of input and leaves bad input unanswered --------------------------
def mcp_process(data: Path, stdin) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(data), "mcp"],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=REPO)


@pytest.mark.slow
def test_mcp_over_stdio_exits_cleanly_when_input_ends_at_once(world):
    """An editor probing the server closes stdin at once, while the embedding model still loads."""
    proc = mcp_process(world["cfg"].data_dir, subprocess.DEVNULL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out == b"", err.decode()[-2000:]
    assert b"terminate called" not in err and b"Traceback" not in err


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def tool_call(rid: int, query: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": "search", "arguments": {"query": query}}}).encode()


@pytest.mark.slow
def test_mcp_over_stdio_answers_bad_input_and_keeps_serving(world):
    lines = [json.dumps(INIT).encode(), b'{"jsonrpc": "2.0", "method": "notifications/initialized"}',
             tool_call(2, "memory \ud800"), b"this is not JSON", b'{"jsonrpc": "2.0", "id": 3, "method": ',
             tool_call(4, "memory\x00store"), b'{"id": 5, "hello": "world"}', b"\xff\xfe not UTF-8",
             b'{"jsonrpc": "2.0", "id": 6, "method": "tools/list"}', tool_call(7, "MemoryStore")]
    proc = mcp_process(world["cfg"].data_dir, subprocess.PIPE)
    out, err = proc.communicate(b"\n".join(lines) + b"\n", timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    replies = [json.loads(line) for line in out.decode().splitlines()]
    by_id = {r["id"]: r for r in replies if r.get("id") is not None}
    assert set(by_id) == {1, 2, 4, 5, 6, 7}, replies
    assert by_id[2]["error"] == {"code": -32602, "message": "'params.arguments.query' is not valid Unicode (it "
                                                            "holds a lone surrogate such as \\ud800); send UTF-8 text."}
    assert by_id[4]["error"]["code"] == -32602 and "holds a NUL character" in by_id[4]["error"]["message"]
    assert by_id[5]["error"]["code"] == -32600
    parse_errors = [r for r in replies if r.get("id") is None]
    assert len(parse_errors) == 3 and {r["error"]["code"] for r in parse_errors} == {-32700}
    assert "widgets/core.py" in by_id[7]["result"]["content"][0]["text"]  # still serving after all that


def test_mcp_over_http_refuses_arguments_that_are_not_text(servers):
    """The same middleware guards MCP over HTTP: a tool argument with a NUL gets a JSON-RPC error, and a
    lone surrogate (which the SDK cannot parse) a parse error; neither reaches a tool."""
    url, _ = servers["open"]
    headers = {**JSON, "Accept": "application/json, text/event-stream"}
    status, reply_headers, _ = call(url, "POST", "/mcp", headers, json.dumps(INIT).encode())
    assert status == 200
    session = {**headers, "Mcp-Session-Id": reply_headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
    call(url, "POST", "/mcp", session, b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    status, _, text = call(url, "POST", "/mcp", session, tool_call(2, "memory\x00store"))
    reply = json.loads(text.split("data: ", 1)[1]) if "data: " in text else json.loads(text)
    assert reply["error"]["code"] == -32602 and "holds a NUL character" in reply["error"]["message"], reply
    status, _, text = call(url, "POST", "/mcp", session, tool_call(3, "memory \ud800"))
    assert status == 400 and "error" in json.loads(text.split("data: ", 1)[1] if "data: " in text else text)


# -- break 13: conversations.sqlite readable by every local user (files 0600, data dir 0700) ------------------
@pytest.mark.slow
def test_the_data_dir_and_what_the_server_writes_are_private(tmp_path):
    """conversations.sqlite, the catalog, the stores... were 0644 in a 0755 data dir: every local user
    could read every conversation. Now the data dir is 0700 (an existing one is tightened, once, said on
    stderr) and each file in it 0600."""
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)  # as an older version left it
    r = devcopilot(data, "ingest", str(project), "--quiet")
    assert "0700" in r.stderr and str(data) in r.stderr, r.stderr
    with Server(data) as server:
        status, answer = server.ask("How do I build a gadget?")
        assert status == 200, answer
    assert (data / "conversations.sqlite").is_file() and (data / "catalog.sqlite").is_file()
    assert loose_modes(data) == []
    r = devcopilot(data, "status")  # already private: nothing more to say
    assert "0700" not in r.stderr, r.stderr


# -- fuzzing: /v1 and /v1/knowledge against the real app (no 500, nothing stored from a refused request) -----
ODD_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["\ud800", "a\udfffb", "\x00", "nul\x00", "\ud83d\ude00",
                                                            "", " ", "default", "guide", "tutoring", "../../etc"]))
HUGE = st.one_of(st.integers(min_value=10 ** 20, max_value=10 ** 40), st.integers(max_value=-(10 ** 20)),
                 st.sampled_from([1e308, -1e308, float("inf"), float("nan")]))
JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ODD_TEXT, HUGE),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_TEXT, inner, max_size=4),
                           max_leaves=12)
PART = st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", 3]), "text": JSON_VALUES}),
                 JSON_VALUES)
MESSAGE = st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["user", "assistant", "system"]), JSON_VALUES),
                                 "content": st.one_of(ODD_TEXT, st.lists(PART, max_size=3), JSON_VALUES)})
CHAT_BODIES = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(MESSAGE, max_size=3), JSON_VALUES)},
    optional={"model": st.one_of(st.sampled_from(["tutoring", "coding", "guide", "wizard"]), JSON_VALUES),
              "stream": st.one_of(st.booleans(), JSON_VALUES),
              "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": JSON_VALUES}), JSON_VALUES),
              "extra": JSON_VALUES})
JOB_BODIES = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(["add", "reindex", "forget"]), JSON_VALUES)},
    optional={"kb": st.one_of(st.sampled_from(["fuzz", "nothing", None]), JSON_VALUES),
              "sources": st.one_of(st.lists(ODD_TEXT, max_size=3), JSON_VALUES),
              "include": st.one_of(st.lists(ODD_TEXT, max_size=2), JSON_VALUES),
              "exclude": st.one_of(st.lists(ODD_TEXT, max_size=2), JSON_VALUES),
              "wait": st.one_of(st.just(False), JSON_VALUES), "by": st.one_of(st.sampled_from(["cli", "ui"]),
                                                                              JSON_VALUES)})
# Requests a client would send, with odd text where text goes: a good share is answered, not refused.
QUESTIONS = st.one_of(st.text(min_size=1, max_size=40), st.sampled_from(["how do retries work?", "MemoryStore", "?"]))
GOOD_CHATS = st.builds(lambda q, model, stream, usage: chat(q, model=model, stream=stream,
                                                           stream_options={"include_usage": usage}),
                       QUESTIONS, st.sampled_from(["tutoring", "coding", "guide", "Coding", "auto"]), st.booleans(),
                       st.booleans())
GOOD_JOBS = st.builds(lambda action, kb, wait: {"action": action, "kb": kb, "wait": wait},
                      st.sampled_from(["forget", "reindex"]), st.sampled_from(["fuzz", "nothing", "default.2"]),
                      st.booleans())
RAW_BODIES = st.one_of(st.binary(max_size=200), st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
                       st.integers(1, 3000).map(lambda n: b'{"messages": ' + b"[" * n + b"]" * n + b"}"),
                       st.sampled_from([b"", b"{", b"1e400", b'{"messages": 1e400}', b'"\\ud800"', b"NaN",
                                        b'{"action": "add", "kb": "\\ud800\\udc00"}', b"\xef\xbb\xbf{}"]))
FUZZ = hypothesis.settings(max_examples=120, deadline=30_000, derandomize=True, database=None,
                           suppress_health_check=list(hypothesis.HealthCheck))


def assert_kept_its_shape(url, app, cfg, method: str, path: str, body: bytes | None, headers: dict) -> None:
    """Never a 5xx; every 4xx in the one JSON error shape; nothing stored from a refused request."""
    before, talks = job_ids(app), conversations(cfg)
    status, got, text = call(url, method, path, headers, body)
    hypothesis.event(f"HTTP {status}")  # --hypothesis-show-statistics: how many got through, how many were refused
    assert status < 500, (path, body, status, text[:500])
    if status >= 400:
        assert got["content-type"] == "application/json", (path, body, got)
        error_of(status, text)
        assert job_ids(app) == before and conversations(cfg) == talks, (path, body, status, text)


def test_fuzz_chat_completions(fuzzed):
    url, app, cfg = fuzzed

    @FUZZ
    @hypothesis.given(body=st.one_of(st.one_of(GOOD_CHATS, CHAT_BODIES).map(lambda b: json.dumps(b).encode()),
                                     RAW_BODIES))
    def post(body):
        assert_kept_its_shape(url, app, cfg, "POST", "/v1/chat/completions", body, JSON)

    post()


def test_fuzz_knowledge_jobs(fuzzed):
    url, app, cfg = fuzzed

    @FUZZ
    @hypothesis.given(body=st.one_of(st.one_of(GOOD_JOBS, JOB_BODIES).map(lambda b: json.dumps(b).encode()),
                                     RAW_BODIES))
    def post(body):
        assert_kept_its_shape(url, app, cfg, "POST", "/v1/knowledge/jobs", body, JSON)

    post()


def test_fuzz_knowledge_reads_with_odd_query_strings(fuzzed):
    url, app, cfg = fuzzed
    segment = st.one_of(st.text(max_size=20).map(lambda t: quote(t, safe="")), st.binary(max_size=10).map(
        lambda b: quote(b, safe="")), st.sampled_from(["%00", "%ED%A0%80", "%ff", "1e400", "nan", "-1", "60", "..%2f"]))

    @FUZZ
    @hypothesis.given(job=segment, wait=segment, extra=segment)
    def get(job, wait, extra):
        for path in (f"/v1/knowledge/jobs/{job}?wait={wait}", f"/v1/knowledge?{extra}={wait}",
                     f"/v1/knowledge/jobs?{extra}"):
            assert_kept_its_shape(url, app, cfg, "GET", path, None, {})
        assert_kept_its_shape(url, app, cfg, "DELETE", f"/v1/knowledge/jobs/{job}", None, {})

    get()
