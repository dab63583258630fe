"""The HTTP edge of `devcopilot serve`: every request to every door passes here first.

One error type (`HTTPError`) rendered in one place (`error_response`); the names this server answers
to and the pages that may change things on it (`Names`: Host, Origin, CORS); one table of who may
call which paths (`POLICY`); one plain-ASGI guard (`Guard`) applying both, and JSON routes' content
type, before any route, and telling the routes who is calling (the FastAPI dependency `caller`); one
request-size limit (`BodyLimit`); JSON bodies read in one place (`read_json`: no lone surrogate, no
NUL, ui/strings.py). `install` puts a FastAPI app behind all of it; `ui/server.py` does so for the
whole server: the OpenAI API, the Knowledge API, MCP over HTTP, the source viewer, the avatars and
the web UI.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ui.auth import basic_user
from ui.strings import first_refusal


class HTTPError(Exception):
    """A request the server will not answer as asked: the status, one sentence for the client, and
    the error's type (OpenAI's names: invalid_request_error, not_found_error, auth_error, ...).

    Rendered as JSON `{"error": {"message", "type", "code"}}`, except the few a person reads in a
    browser tab (the web UI's sign-in, the viewer's "not indexed"), which are plain text."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", *,
                 headers: dict[str, str] | None = None, plain: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers
        self.plain = plain


class JSONText(JSONResponse):
    """Starlette's JSONResponse, byte for byte, except that text which is not UTF-8 (a lone surrogate
    read back from something stored) is sent as JSON escapes instead of failing with a 500."""

    def render(self, content) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def error_response(error: HTTPError) -> Response:
    """The one rendering of an HTTPError, for the routes (through `install`'s handler) and the guards."""
    if error.plain:
        return PlainTextResponse(error.message, status_code=error.status, headers=error.headers)
    return JSONText({"error": {"message": error.message, "type": error.kind, "code": error.status}},
                    status_code=error.status, headers=error.headers)


# Only a \u escape can spell a NUL or a surrogate in JSON (raw ones are not valid JSON or not UTF-8),
# so a body without one is not walked (ui/strings.py).
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def read_json(body: bytes, too_deep: str = "The request body is not valid JSON.") -> object:
    """A request body as JSON (an empty body is `{}`), or HTTPError 400 in one sentence: not JSON, too
    deep, or a string (key or value) holding a lone surrogate or a NUL, named by its field."""
    try:
        value = json.loads(body or b"{}")
    except RecursionError:
        raise HTTPError(400, too_deep) from None
    except ValueError:  # UnicodeDecodeError among them
        raise HTTPError(400, "The request body is not valid JSON.") from None
    if _ESCAPE.search(body or b""):
        said = first_refusal(value)
        if said:
            raise HTTPError(400, said)
    return value


# Who may call: the credentials a caller can present.
LOCAL = "local"  # the token the server left in its data dir for this machine's CLI (indexes/writer.py)
API_TOKEN = "api_token"  # server.api_token, as `Authorization: Bearer TOKEN`
USER = "user"  # one of the web UI's users (--auth), as HTTP Basic
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """Who sent a request: `kind` is one of LOCAL, API_TOKEN, USER, ANONYMOUS; `user` names a USER."""
    kind: str
    user: str = ""


NOBODY = Caller(ANONYMOUS)


@dataclass(frozen=True)
class Rule:
    """Who may call the paths `path` names ("/mcp" that path; "/v1/*" every path starting "/v1/").

    The paths are closed as soon as one of the credentials in `needs` is configured (the API token,
    the web UI's users); then a caller must present one of those that are, or of `also` (the viewer,
    closed by the users, also lets the API's token in: its links are in the API's answers). When none
    is configured the paths are open. With `local`, this machine's CLI is let in whatever is
    configured. `refusal` words the 401 for the credentials that would have been accepted."""
    path: str
    needs: tuple[str, ...]
    refusal: Callable[[tuple[str, ...]], HTTPError]
    local: bool = False
    also: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        return path.startswith(self.path[:-1]) if self.path.endswith("*") else path == self.path


_BEARER = "A bearer token is required: send 'Authorization: Bearer TOKEN'."
_USERS = "This needs the web UI's user and password."
_EITHER = "This needs 'Authorization: Bearer TOKEN' (server.api_token) or the web UI's user and password."
_BASIC_CHALLENGE = 'Basic realm="devcopilot", charset="UTF-8"'


def _api_refusal(accepted: tuple[str, ...]) -> HTTPError:
    message = _BEARER if accepted == (API_TOKEN,) else _USERS if accepted == (USER,) else _EITHER
    return HTTPError(401, message, "auth_error")


def _mcp_refusal(accepted: tuple[str, ...]) -> HTTPError:
    challenge = 'Bearer realm="devcopilot"' if API_TOKEN in accepted else _BASIC_CHALLENGE
    return HTTPError(401, _api_refusal(accepted).message, "auth_error", headers={"WWW-Authenticate": challenge})


def _knowledge_refusal(accepted: tuple[str, ...]) -> HTTPError:
    message = ("This needs 'Authorization: Bearer TOKEN' (server.api_token)." if accepted == (API_TOKEN,)
               else _USERS if accepted == (USER,) else _EITHER)
    return HTTPError(401, message, "auth_error")


def _sign_in(_accepted: tuple[str, ...]) -> HTTPError:
    return HTTPError(401, "Sign in to use devcopilot.", "auth_error", plain=True,
                     headers={"WWW-Authenticate": _BASIC_CHALLENGE})


# The first rule that matches a request's path decides. Change who may call what here, and only here.
# With the web UI's users (--auth), nobody reaches any door without signing in or the API token.
POLICY: tuple[Rule, ...] = (
    Rule("/v1/knowledge*", (API_TOKEN, USER), _knowledge_refusal, local=True),  # the Knowledge API
    Rule("/v1/*", (API_TOKEN, USER), _api_refusal),  # the OpenAI-compatible API
    Rule("/mcp", (API_TOKEN, USER), _mcp_refusal),  # MCP over HTTP
    Rule("/source", (USER,), _sign_in, also=(API_TOKEN,)),  # the source viewer, where citations link
    Rule("*", (USER,), _sign_in),  # the web UI, the avatars, /healthz
)


class Gate:
    """The policy applied to one server's credentials: who a request comes from, and whether the rule
    for its path lets them in. Tokens are compared in constant time."""

    def __init__(self, api_token: str = "", users: list[tuple[str, str]] | None = None, local_token: str = "",
                 policy: tuple[Rule, ...] = POLICY):
        self.api_token = api_token
        self.users = list(users or [])
        self.local_token = local_token
        self.policy = policy

    def configured(self, credential: str) -> bool:
        return bool(self.api_token) if credential == API_TOKEN else bool(self.users) if credential == USER else False

    def identify(self, authorization: str) -> Caller:
        """Who the `Authorization` header says is calling."""
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            token = value.strip().encode()
            if self.local_token and hmac.compare_digest(token, self.local_token.encode()):
                return Caller(LOCAL)
            if self.api_token and hmac.compare_digest(token, self.api_token.encode()):
                return Caller(API_TOKEN)
        elif scheme == "basic" and self.users:
            user = basic_user(authorization, self.users)
            if user is not None:
                return Caller(USER, user)
        return NOBODY

    def admit(self, path: str, authorization: str) -> Caller:
        """The caller, when the rule for `path` lets them in; else HTTPError 401 saying what is needed."""
        rule = next(r for r in self.policy if r.matches(path))
        caller = self.identify(authorization) if authorization else NOBODY
        if rule.local and caller.kind == LOCAL:
            return caller
        if not any(self.configured(n) for n in rule.needs):
            return caller
        accepted = tuple(n for n in (*rule.needs, *rule.also) if self.configured(n))
        if caller.kind in accepted:
            return caller
        raise rule.refusal(accepted)


# -- the names this server answers to, and the pages that may change things on it -------------------
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = ("", "0.0.0.0", "::")  # binds that listen on every interface
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    """Whether a server bound to `host` listens on this machine's loopback interface only."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name a Host header (or an origin's authority) gives, in lower case, without its port or the
    brackets of an IPv6 address: "[::1]:7860" -> "::1", "Example.COM.:80" -> "example.com"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).rstrip(".")


def machine_names() -> set[str]:
    """This machine's host names, the addresses they resolve to and the address it reaches the network
    from: what a server bound to every interface is reached at, besides localhost."""
    names = {socket.gethostname(), socket.getfqdn()}
    addresses = set()
    for name in list(names):
        try:
            addresses |= {str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    for probe, family in (("192.0.2.1", socket.AF_INET), ("2001:db8::1", socket.AF_INET6)):
        try:  # a UDP "connection" sends nothing: it only picks the interface a packet would leave by
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                addresses.add(s.getsockname()[0])
        except OSError:
            pass
    return {host_name(n) for n in names | addresses if n} - {"0.0.0.0", "::"}


def origin_of(url: str) -> str:
    """"scheme://host[:port]" of a URL, in lower case: what a browser sends as `Origin` for its pages."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


@dataclass(frozen=True)
class Names:
    """The names this server answers to (the Host header) and the pages, other than its own, that may
    change things on it (the Origin header) or read its answers (CORS).

    A request naming another host is refused on every route: a page on another site whose name was
    made to point at this machine (DNS rebinding) reaches nothing. A state-changing request (POST, PUT,
    PATCH, DELETE) sent by a page (it has an `Origin`) must come from this server's own pages (its
    origin is the Host it sent to), from `public_url`'s or from `server.cors_origins`; only those last
    are answered with CORS headers, without credentials."""
    hosts: frozenset[str] = LOOPBACK_NAMES  # lower case, no port, IPv6 without brackets
    any_host: bool = False  # server.allowed_hosts = ["*"]: the operator turned the Host check off
    origins: frozenset[str] = frozenset()  # public_url's origin
    cors: frozenset[str] = frozenset()  # server.cors_origins

    @classmethod
    def served(cls, bind: str, public_url: str = "", allowed_hosts: Iterable[str] = (),
               cors_origins: Iterable[str] = (), machine: Callable[[], set[str]] = machine_names) -> Names:
        """The names of a server bound to `bind`: that address (and localhost when it is loopback); bound
        to every interface, localhost and this machine's names and addresses (`machine`); and, either
        way, `public_url`'s host and the `allowed_hosts` (settings of the same names)."""
        bind = host_name(bind)
        hosts = set(LOOPBACK_NAMES) | machine() if bind in WILDCARDS else (
            set(LOOPBACK_NAMES) | {bind} if is_loopback(bind) else {bind})
        public = urlsplit(public_url.strip()).hostname if public_url else None
        hosts |= {host_name(h) for h in allowed_hosts if h != "*"} | ({public} if public else set())
        return cls(frozenset(hosts), "*" in allowed_hosts, frozenset({origin_of(public_url)} - {""}),
                   frozenset(o.rstrip("/").lower() for o in cors_origins))

    def check(self, path: str, method: str, host: str, origin: str, preflight: bool) -> None:
        """HTTPError unless a request to `path` may be answered under these names: 421 for a Host this
        server does not answer to, 403 for a page that may not send it. Plain text on the browser's
        routes, JSON on the API's."""
        plain = not is_api(path)
        name = host_name(host)
        if host and not self.any_host and name not in self.hosts:
            raise HTTPError(421, f"This server does not answer to the name '{name[:100]}'; add it to "
                                 "server.allowed_hosts to reach it by that name.", plain=plain)
        if not origin:
            return
        origin = origin.strip().lower()
        if preflight and method == "OPTIONS" and origin not in self.cors:
            raise HTTPError(403, f"Pages at {origin[:200]} may not call this server; add that origin to "
                                 "server.cors_origins to let them.", "permission_error", plain=plain)
        if method in STATE_CHANGING and not (origin in self.cors or origin in self.origins
                                             or origin.partition("://")[2] == host.strip().lower() != ""):
            raise HTTPError(403, f"Pages at {origin[:200]} may not change anything on this server; set "
                                 "server.public_url to that address if it is this server's, or add it to "
                                 "server.cors_origins.", "permission_error", plain=plain)


def is_api(path: str) -> bool:
    """A path a program calls (its errors are JSON), rather than one a person opens in a browser tab."""
    return path.startswith("/v1/") or path == "/mcp"


# The routes that read a JSON body: anything else is refused before it is read (a page on another site
# can post a form or text/plain without asking first, never application/json).
JSON_POSTS = {
    "/v1/chat/completions": "Send the request as JSON with 'Content-Type: application/json'.",
    "/v1/knowledge/jobs": "Send the job as JSON with 'Content-Type: application/json'.",
    "/mcp": "Send MCP messages as JSON with 'Content-Type: application/json'.",
}


def check_request(path: str, method: str, content_type: str, query: bytes) -> None:
    """HTTPError unless the request's content type suits its route and its path and query string are
    text: no NUL, no bytes that are not UTF-8 (ui/strings.py)."""
    if method == "POST" and path in JSON_POSTS and content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPError(415, JSON_POSTS[path])
    if "\x00" in path:
        raise HTTPError(400, "The path holds a NUL character (%00); send text without it.", plain=not is_api(path))
    raw = unquote_to_bytes(query) if b"%" in query else query
    if raw and (b"\x00" in raw or not _utf8(raw)):
        raise HTTPError(400, "The query string holds a NUL character (%00) or bytes that are not UTF-8; send "
                             "text.", plain=not is_api(path))


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Guard:
    """Refuse a request this server should not answer, before any route or mounted app sees it: under
    another name or from another site's page (`Names`), from a caller the policy does not let in
    (`Gate`), with the wrong content type, or a NUL in its path or query (`check_request`). Tell the
    routes who is calling (`caller`).

    CORS is answered here and only here: a preflight from an origin of `server.cors_origins` gets its
    answer (no credentials); a page's request gets `Access-Control-Allow-Origin` when its origin is one
    of those, and no `Access-Control-*` header otherwise, whatever a mounted app adds (Gradio's own
    would let any localhost page in, with credentials).

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which relays every piece of a streamed
    answer through a memory stream of its own: with 50 chat sessions streaming, that relay was the
    largest single cost of the server's event loop. The work per request is one pass over its headers
    (and, for a page's request, one over its response's)."""

    def __init__(self, app, gate: Gate, names: Names = Names()):
        self.app = app
        self.gate = gate
        self.names = names

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            return await self.socket(scope, receive, send)
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        authorization = host = origin = content_type = asked_headers = ""
        preflight = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"access-control-request-method":
                preflight = True
            elif name == b"access-control-request-headers":
                asked_headers = value.decode("latin-1")
        path, method = scope["path"], scope["method"]
        try:
            self.names.check(path, method, host, origin, preflight)
            if preflight and method == "OPTIONS" and origin:  # from an origin of server.cors_origins
                return await Response(status_code=204, headers={
                    **_cors_headers(origin), "Access-Control-Allow-Methods": "GET, POST, DELETE",
                    "Access-Control-Allow-Headers": asked_headers or "Authorization, Content-Type",
                    "Access-Control-Max-Age": "600"})(scope, receive, send)
            who = self.gate.admit(path, authorization)
            check_request(path, method, content_type, scope.get("query_string", b""))
        except HTTPError as e:
            return await error_response(e)(scope, receive, send)
        scope.setdefault("state", {})["caller"] = who  # the server gives each request a state of its own
        if origin:
            send = _cors_send(send, _cors_headers(origin) if origin.strip().lower() in self.names.cors else {})
        await self.app(scope, receive, send)

    async def socket(self, scope, receive, send):
        """A WebSocket is let through on the terms of a request that changes something: the names, the page
        it comes from (a page of another site must not talk to the server with the user's credentials), the
        sign-in and the path. No door of devcopilot speaks WebSocket today; a mounted app that does (a later
        Gradio) is behind the edge all the same. Refused: closed before it opens (the server answers 403)."""
        headers = {name: value.decode("latin-1") for name, value in scope["headers"]
                   if name in (b"authorization", b"host", b"origin")}
        path = scope["path"]
        try:
            self.names.check(path, "POST", headers.get(b"host", ""), headers.get(b"origin", ""), False)
            who = self.gate.admit(path, headers.get(b"authorization", ""))
            check_request(path, "GET", "", scope.get("query_string", b""))
        except HTTPError:
            await receive()  # websocket.connect: then a close answers the handshake with 403
            return await send({"type": "websocket.close", "code": 1008})
        scope.setdefault("state", {})["caller"] = who
        await self.app(scope, receive, send)


def _cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin.strip(), "Vary": "Origin",
            "Access-Control-Expose-Headers": "Location, Mcp-Session-Id"}


def _cors_send(send, allowed: dict[str, str]):
    """`send`, with the response's Access-Control-* headers replaced by `allowed` (none: no CORS)."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in allowed.items()]

    async def sending(message):
        if message["type"] == "http.response.start":
            kept = [(k, v) for k, v in message.get("headers", ()) if not k.lower().startswith(b"access-control-")]
            message = {**message, "headers": kept + extra}
        await send(message)

    return sending


def caller(request: Request) -> Caller:
    """FastAPI dependency: who sent the request, as the Guard let it in."""
    who = getattr(request.state, "caller", None)
    if who is None:  # a route reached without the edge in front of it: refuse rather than guess
        raise RuntimeError("This route is not behind ui.edge.Guard, which says who is calling.")
    return who


class BodyLimit:
    """Refuse any request whose body grows past `max_bytes`, however it is sent (0: no limit).

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
                error = HTTPError(413, f"The request is larger than {self.max_bytes:,} bytes "
                                  "(server.max_request_bytes); send less.", "request_too_large",
                                  headers={"Connection": "close"})
                return await error_response(error)(scope, receive, send)
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


def _invalid_parameter(error: RequestValidationError) -> HTTPError:
    """FastAPI's check of a route's query and path parameters, in one sentence naming the first one."""
    first = error.errors()[0]
    name = str(first["loc"][-1]) if first.get("loc") else "request"
    if first.get("type") == "missing":
        return HTTPError(422, f"'{name}' is required.")
    msg = str(first.get("msg", "is not valid")).rstrip(".")
    return HTTPError(422, f"'{name}' is not valid: {msg[:1].lower() + msg[1:]}.")


def install(app: FastAPI, gate: Gate, max_bytes: int, names: Names = Names()) -> FastAPI:
    """Put `app` (with whatever is mounted on it) behind the edge: the size limit outermost, then the
    guard, and every HTTPError a route raises rendered by `error_response`. Call it last."""

    async def on_error(_request: Request, error: HTTPError) -> Response:
        return error_response(error)

    async def on_invalid(_request: Request, error: RequestValidationError) -> Response:
        return error_response(_invalid_parameter(error))

    app.add_exception_handler(HTTPError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_middleware(Guard, gate=gate, names=names)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)  # added last, so outermost: before any route reads the body
    return app
