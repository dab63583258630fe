"""The HTTP edge and the doors, attacked as an outsider and as another user would (issue 25): the names a
server answers to and the pages that may use it (break 5), strings that are not text at every door
(break 6), per-user usage (break 8), sign-in on every route and no open server beyond loopback (break 9),
settings that cannot work (break 11), MCP over stdio (break 12); and property-based fuzzing of /v1 and
/v1/knowledge against the real app (ui.server.create_app under uvicorn).

Each test names what it holds. Run on the main branch before the edge was hardened, every one failed but
those guarding what already held there: the settings of break 11 that issue 24 made strict, the chat's
lone-surrogate check, the Knowledge API's content type, the CLI's list of every user's gaps and the chat
fuzzing (which found nothing there within its examples)."""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.servers import ServerThread, free_port

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.edge import Names
from ui.server import create_app, refuse_open_exposure

REPO = Path(__file__).resolve().parent.parent
TOKEN = "edge-token-7f3a"
ALICE, BOB = ("alice", "pw-alice-1"), ("bob", "pw-bob-2")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
ENV.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False",
           TOKENIZERS_PARALLELISM="false")


def basic(user: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The small project indexed into KB 'default', the copilot over it, and its settings."""
    root = tmp_path_factory.mktemp("edge25")
    project = write_tree(root / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"), "server": {"allowed_roots": [str(root)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    return {"root": root, "project": project, "cfg": cfg, "copilot": Copilot(cfg, index=index)}


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


def call(url: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
         timeout: float = 120) -> tuple[int, dict[str, str], str]:
    """One request with exactly these headers (Host among them, when given): (status, headers, text)."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": f"127.0.0.1:{u.port}", **(headers or {})})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def error_of(status: int, text: str) -> dict:
    """The JSON error's fields, checked for the one shape {"error": {message, type, code}}."""
    body = json.loads(text)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}, text
    assert body["error"]["code"] == status and body["error"]["message"].endswith("."), text
    return body["error"]


def conversations(cfg) -> int:
    with contextlib.closing(sqlite3.connect(cfg.data_dir / "conversations.sqlite")) as db:
        return db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]


def job_ids(app) -> set[str]:
    return {j.id for j in app.state.jobs.all()}


JSON = {"Content-Type": "application/json"}
CHAT = json.dumps({"model": "tutoring", "messages": [{"role": "user", "content": "how do retries work?"}]}).encode()
FORGET = json.dumps({"action": "forget", "kb": "no-such-kb"}).encode()


# -- break 5: Host, Origin, CORS, content type --------------------------------------------------------
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


# -- break 9: with users, every door needs sign-in or the token; beyond loopback, a credential -----------
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
    r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(tmp_path / "d"), "serve",
                        "--host", "0.0.0.0", "--port", str(port)], capture_output=True, text=True, env=ENV,
                       cwd=REPO, timeout=120)
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


# -- break 6 and strings at every door ------------------------------------------------------------------
def chat(content, **extra) -> dict:
    return {"model": "tutoring", "messages": [{"role": "user", "content": content}], **extra}


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

    request = gr.Request(request=Request({"type": "http", "method": "POST", "path": "/", "query_string": b"",
                                          "headers": []}))
    chat_tab, talks = ChatTab(world["copilot"], world["cfg"]), conversations(world["cfg"])
    for message in ("how do retries work?\ud800", "memory\x00"):
        with pytest.warns(UserWarning, match="which is not text; type it again without it"):
            outputs = list(chat_tab.submit(message, [], [], None, "", request))
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
    r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(world["cfg"].data_dir),
                        "status"], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
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
        r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(world["cfg"].data_dir),
                            "status", "--json"], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["writer"].startswith("devcopilot ingest /src/\\udcff into 'default'")


# -- break 8: each user's Usage tab is their own ----------------------------------------------------------
def test_each_user_sees_only_their_own_questions_in_the_usage_tab(servers, world):
    """Alice and Bob each ask (through the API, signed in) a question nobody indexed an answer for: each
    one's Usage tab lists their own coverage gap and not the other's; `devcopilot usage --gaps` lists both."""
    import gradio as gr
    from starlette.requests import Request

    from ui.usage_tab import UsageTab

    url, _ = servers["users"]
    asked = {ALICE: "How do I configure the quantum flux capacitor of alice?",
             BOB: "How do I configure the quantum flux capacitor of bob?"}
    for user, question in asked.items():
        status, _, text = call(url, "POST", "/v1/chat/completions", {**JSON, "Authorization": basic(user)},
                               json.dumps(chat(question)).encode())
        assert status == 200, text[:300]

    def usage_tab_of(user) -> tuple[str, list]:
        scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "query_string": b"",
                 "headers": [(b"authorization", basic(user).encode())]}
        summary, _, gaps, csv_path, data = UsageTab(world["copilot"]).usage(gr.Request(request=Request(scope)))
        return summary, [g[0] for g in gaps], Path(csv_path).read_text()

    for user, other in ((ALICE, BOB), (BOB, ALICE)):
        summary, gaps, csv_text = usage_tab_of(user)
        assert asked[user] in gaps and asked[other] not in gaps, (user, gaps)
        assert asked[other] not in csv_text and f"your conversations ({user[0]})" in summary


def test_the_cli_lists_every_users_gaps(world, capsys):
    from ui.cli import main

    capsys.readouterr()
    assert main(["--data-dir", str(world["cfg"].data_dir), "usage", "--gaps", "--json"]) == 0
    questions = [g["question"] for g in json.loads(capsys.readouterr().out)]
    assert any(q.endswith("of alice?") for q in questions) and any(q.endswith("of bob?") for q in questions)


# -- break 11: settings that cannot work stop the start -----------------------------------------------------
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
    from ui.cli import main

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


# -- break 12: MCP over stdio -----------------------------------------------------------------------------
def mcp_process(data: Path, stdin) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "devcopilot.py"), "--data-dir", str(data), "mcp"],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=REPO)


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


# -- fuzzing: /v1 and /v1/knowledge against the real app ------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

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


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A server of its own (the fuzz may forget its KB): open, over the small project."""
    root = tmp_path_factory.mktemp("fuzz")
    project = write_tree(root / "project", SMALL_PROJECT)
    (root / "empty").mkdir()
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"),
                                         "server": {"allowed_roots": [str(root / "empty")]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    app = create_app(Copilot(cfg, index=index), cfg)
    with ServerThread(app) as url:
        yield url, app, cfg


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
