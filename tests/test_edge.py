"""The one HTTP edge (ui/edge.py) in front of every door of the real server (ui.server.create_app under
uvicorn): who may call what, the request-size limit, and the one shape of an error."""
from __future__ import annotations

import base64
import contextlib
import json
import socket
from urllib.parse import urlparse

import pytest
from support.corpus import SMALL_PROJECT, write_tree
from support.servers import ServerThread

from copilot.chat import Copilot
from copilot.config import load_config
from indexes.build import ingest
from indexes.search import Index
from ui.api import ChatRequest
from ui.edge import HTTPError
from ui.server import create_app

API_TOKEN, LOCAL_TOKEN, LIMIT = "api-token-123", "local-token-456", 50_000
USERS = "ann:pw-1234"
SETUPS = {"open": ("", ""), "token": ("", API_TOKEN), "users": (USERS, ""), "both": (USERS, API_TOKEN)}
CREDENTIALS = {
    "none": "", "api": f"Bearer {API_TOKEN}", "local": f"Bearer {LOCAL_TOKEN}", "wrong bearer": "Bearer nope",
    "user": "Basic " + base64.b64encode(USERS.encode()).decode(),
    "wrong password": "Basic " + base64.b64encode(b"ann:nope").decode(),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The real app over one small KB, served four ways: open, with an API token, with UI users, with both."""
    root = tmp_path_factory.mktemp("edge")
    project = write_tree(root / "project", SMALL_PROJECT)
    cfg = load_config(env={}, overrides={"data_dir": str(root / "data"),
                                         "server": {"max_request_bytes": LIMIT, "allowed_roots": [str(root)]}})
    index = Index(cfg)
    ingest(index, [str(project)], "default")
    copilot = Copilot(cfg, index=index)
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(ServerThread(create_app(copilot, cfg, auth=auth, api_token=token,
                                                                 local_token=LOCAL_TOKEN)))
               for name, (auth, token) in SETUPS.items()} | {"project": project}


def call(url: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
         chunked: bool = False) -> tuple[int, dict[str, str], str]:
    """One HTTP/1.1 request on a socket of its own, the body sent with Content-Length or chunked:
    (status, headers in lower case, body). A server may answer before it has read the whole body."""
    u = urlparse(url)
    head = {"Host": f"127.0.0.1:{u.port}", "Connection": "close", **{k: v for k, v in (headers or {}).items() if v}}
    if body is not None:
        head["Transfer-Encoding" if chunked else "Content-Length"] = "chunked" if chunked else str(len(body))
    with socket.create_connection((u.hostname, u.port), timeout=60) as s:
        with contextlib.suppress(OSError):  # the server answered and hung up before taking it all
            s.sendall(f"{method} {path} HTTP/1.1\r\n".encode()
                      + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode() + b"\r\n")
            if body is not None and chunked:
                for i in range(0, len(body), 4096):
                    s.sendall(f"{len(body[i:i + 4096]):x}\r\n".encode() + body[i:i + 4096] + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            elif body is not None:
                s.sendall(body)
        data = b""
        with contextlib.suppress(OSError):
            while part := s.recv(65536):
                data += part
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    found = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if found.get("transfer-encoding") == "chunked":
        out = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            if int(size, 16) == 0:
                break
            out, rest = out + rest[:int(size, 16)], rest[int(size, 16) + 2:]
        rest = out
    return int(lines[0].split()[1]), found, rest.decode("utf-8", "replace")


def error_of(status: int, body: str) -> dict:
    """The error a JSON error body carries, checked for the one shape: {"error": {message, type, code}}."""
    error = json.loads(body)["error"]
    assert set(json.loads(body)) == {"error"} and set(error) == {"message", "type", "code"}, body
    assert error["code"] == status and error["message"].endswith("."), body
    return error


EVERYONE = set(CREDENTIALS)
BEARER = "A bearer token is required: send 'Authorization: Bearer TOKEN'."
USERS_NEEDED = "This needs the web UI's user and password."
EITHER = "This needs 'Authorization: Bearer TOKEN' (server.api_token) or the web UI's user and password."
BASIC = 'Basic realm="devcopilot", charset="UTF-8"'
# The policy, written out: for each door, who gets in on each setup, and the refusal everyone else gets
# (message, type, WWW-Authenticate). None as the type: plain text, for a person in a browser tab. With
# the web UI's users, no door is open to nobody: a user or the API token.
DOORS = {
    "api": (("GET", "/v1/models"), {"open": EVERYONE, "token": {"api"}, "users": {"user"}, "both": {"api", "user"}},
            {"token": (BEARER, "auth_error", None), "users": (USERS_NEEDED, "auth_error", None),
             "both": (EITHER, "auth_error", None)}),
    "knowledge": (("GET", "/v1/knowledge/jobs"),
                  {"open": EVERYONE, "token": {"api", "local"}, "users": {"user", "local"},
                   "both": {"api", "user", "local"}},
                  {"token": ("This needs 'Authorization: Bearer TOKEN' (server.api_token).", "auth_error", None),
                   "users": (USERS_NEEDED, "auth_error", None), "both": (EITHER, "auth_error", None)}),
    "mcp": (("GET", "/mcp"), {"open": EVERYONE, "token": {"api"}, "users": {"user"}, "both": {"api", "user"}},
            {"token": (BEARER, "auth_error", 'Bearer realm="devcopilot"'), "users": (USERS_NEEDED, "auth_error", BASIC),
             "both": (EITHER, "auth_error", 'Bearer realm="devcopilot"')}),
}
SIGN_IN = ("Sign in to use devcopilot.", None, BASIC)
for door, target in {"web UI": ("GET", "/"), "avatars": ("GET", "/avatars/Nobody"),
                     "health": ("GET", "/healthz")}.items():
    DOORS[door] = (target, {"open": EVERYONE, "token": EVERYONE, "users": {"user"}, "both": {"user"}},
                   {"users": SIGN_IN, "both": SIGN_IN})
# The viewer, where the API's citations link: closed by the users, and then the API token opens it too.
DOORS["viewer"] = (("GET", "/source?path=/etc/passwd"),
                   {"open": EVERYONE, "token": EVERYONE, "users": {"user"}, "both": {"user", "api"}},
                   {"users": SIGN_IN, "both": SIGN_IN})


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("door", list(DOORS))
def test_who_may_call_each_door(servers, setup, door):
    (method, path), admitted, refusals = DOORS[door]
    for who, authorization in CREDENTIALS.items():
        status, headers, body = call(servers[setup], method, path,
                                     {"Authorization": authorization} if authorization else {})
        if who in admitted[setup]:
            assert status != 401, (setup, door, who, body)
            continue
        message, kind, challenge = refusals[setup]
        assert status == 401 and headers.get("www-authenticate") == challenge, (setup, door, who, status, headers)
        if kind is None:
            assert body == message and headers["content-type"].startswith("text/plain"), (setup, door, who, body)
        else:
            assert error_of(401, body) == {"message": message, "type": kind, "code": 401}, (setup, door, who)


TOO_LARGE = {"error": {"message": f"The request is larger than {LIMIT:,} bytes (server.max_request_bytes); send less.",
                       "type": "request_too_large", "code": 413}}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/knowledge/jobs", "/mcp", "/gradio_api/upload"])
def test_every_post_route_has_the_size_limit(servers, path, chunked):
    big = json.dumps({"model": "guide", "messages": [{"role": "user", "content": "x" * LIMIT}]}).encode()
    for setup, authorization in (("open", ""), ("both", CREDENTIALS["api"])):  # the limit comes before the password
        status, headers, body = call(servers[setup], "POST", path, {"Content-Type": "application/json",
                                                                    "Authorization": authorization}, big, chunked)
        assert status == 413 and json.loads(body) == TOO_LARGE, (setup, status, body[:300])
        assert headers["connection"] == "close" and headers["content-type"] == "application/json"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_under_the_limit_reaches_the_route_whole(servers, chunked):
    body = json.dumps({"action": "explode", "padding": "y" * (LIMIT - 100)}).encode()
    assert len(body) <= LIMIT
    status, _, text = call(servers["open"], "POST", "/v1/knowledge/jobs", {"Content-Type": "application/json"},
                           body, chunked)
    assert status == 400 and error_of(400, text)["message"] == "'action' must be \"add\", \"reindex\" or \"forget\"."


def test_each_door_errors_in_one_json_shape(servers):
    url = servers["open"]
    chat = json.dumps({"model": "wizard", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, body = call(url, "POST", "/v1/chat/completions", {"Content-Type": "application/json"}, chat)
    assert error_of(status, body) == {"message": "There is no assistant 'wizard'; use one of: guide, tutoring, coding "
                                                 "(GET /v1/models lists them).", "type": "not_found_error", "code": 404}
    status, _, body = call(url, "DELETE", "/v1/knowledge/jobs/job-nope")
    assert error_of(status, body) == {"message": "There is no job 'job-nope'.", "type": "not_found_error", "code": 404}
    status, _, body = call(url, "POST", "/v1/knowledge/jobs", {"Content-Type": "text/plain"}, b'{"action": "reindex"}')
    assert status == 415 and error_of(status, body)["message"] == ("Send the job as JSON with 'Content-Type: "
                                                                   "application/json'.")
    status, _, body = call(servers["token"], "POST", "/mcp", {"Content-Type": "application/json"}, b"{}")
    assert error_of(status, body) == {"message": BEARER, "type": "auth_error", "code": 401}
    # A query parameter FastAPI checks is named in one sentence too, after the caller is let in.
    status, _, body = call(url, "GET", "/v1/knowledge/jobs/job-nope?wait=soon")
    assert status == 422 and error_of(status, body)["message"].startswith("'wait' is not valid: ")
    status, _, body = call(url, "GET", "/source")
    assert error_of(status, body) == {"message": "'path' is required.", "type": "invalid_request_error", "code": 422}
    assert call(servers["token"], "GET", "/v1/knowledge/jobs/job-nope?wait=soon")[0] == 401
    # The viewer's page opens in a browser tab: its "not indexed" is a sentence in plain text.
    status, headers, body = call(url, "GET", "/source?path=/etc/passwd&lines=1-2")
    assert (status, body) == (404, "That file is not part of any indexed source.")
    assert headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path, body, says", [
    ("/v1/chat/completions", {"model": "coding", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]},
     "'stream' must be true or false."),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
     "'messages[0].content[0].text' must be a string."),
    ("/v1/knowledge/jobs", {"action": "reindex", "kb": "default", "wait": "no"}, "'wait' must be true or false."),
    ("/v1/knowledge/jobs", {"action": "reindex", "kb": "default", "exclude": "*.md"},
     "'exclude' must be a list of glob patterns."),
])
def test_a_request_model_names_the_wrong_field(servers, path, body, says):
    headers = {"Content-Type": "application/json", "Authorization": CREDENTIALS["api"]}
    status, _, text = call(servers["both"], "POST", path, headers, json.dumps(body).encode())
    assert error_of(status, text) == {"message": says, "type": "invalid_request_error", "code": 400}


def test_the_chat_request_model_reads_what_the_copilot_needs():
    req = ChatRequest.parse(json.dumps({"model": " Coding ", "stream": True, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "image_url"}]},
        {"role": "user", "content": "c"}]}).encode(), max_chars=100)
    assert (req.model, req.question, req.stream, req.include_usage) == ("coding", "c", True, False)
    assert req.history == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    with pytest.raises(HTTPError) as e:
        ChatRequest.parse(json.dumps({"messages": [{"role": "user", "content": "x" * 101}]}).encode(), max_chars=100)
    assert e.value.status == 400 and e.value.message.startswith("'messages[0]' is 101 characters long")


def test_routes_learn_who_is_calling(servers):
    """The Knowledge API records a job sent with this machine's token as the CLI's, any other as the API's."""
    for who, by in (("local", "cli"), ("api", "api")):
        status, _, body = call(servers["both"], "POST", "/v1/knowledge/jobs",
                               {"Content-Type": "application/json", "Authorization": CREDENTIALS[who]},
                               json.dumps({"action": "forget", "kb": f"nothing-{who}"}).encode())
        assert status == 202 and json.loads(body)["by"] == by, body
