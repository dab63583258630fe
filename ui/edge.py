"""The HTTP edge of `devcopilot serve`: every request to every door passes here first.

One error type (`HTTPError`) rendered in one place (`error_response`); one table of who may call
which paths (`POLICY`), applied by one plain-ASGI guard (`Guard`) that tells the routes who is
calling (the FastAPI dependency `caller`); one request-size limit (`BodyLimit`, outermost).
`install` puts a FastAPI app behind all of it; `ui/server.py` does so for the whole server: the
OpenAI API, the Knowledge API, MCP over HTTP, the source viewer, the avatars and the web UI.
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ui.auth import basic_user


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


def error_response(error: HTTPError) -> Response:
    """The one rendering of an HTTPError, for the routes (through `install`'s handler) and the guards."""
    if error.plain:
        return PlainTextResponse(error.message, status_code=error.status, headers=error.headers)
    return JSONResponse({"error": {"message": error.message, "type": error.kind, "code": error.status}},
                        status_code=error.status, headers=error.headers)


def read_json(body: bytes, too_deep: str = "The request body is not valid JSON.") -> object:
    """A request body as JSON (an empty body is `{}`), or HTTPError 400 in one sentence."""
    try:
        return json.loads(body or b"{}")
    except RecursionError:
        raise HTTPError(400, too_deep) from None
    except ValueError:  # UnicodeDecodeError among them
        raise HTTPError(400, "The request body is not valid JSON.") from None


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

    Of `needs`, the first that is configured is required (the API token when one is set, else the
    web UI's users when there are some); when none is configured the paths are open. With `local`,
    this machine's CLI is let in whatever is configured. `refusal` words the 401 for the credential
    that was needed."""
    path: str
    needs: tuple[str, ...]
    refusal: Callable[[str], HTTPError]
    local: bool = False

    def matches(self, path: str) -> bool:
        return path.startswith(self.path[:-1]) if self.path.endswith("*") else path == self.path


_BEARER = "A bearer token is required: send 'Authorization: Bearer TOKEN'."


def _api_refusal(_needed: str) -> HTTPError:
    return HTTPError(401, _BEARER, "auth_error")


def _mcp_refusal(_needed: str) -> HTTPError:
    return HTTPError(401, _BEARER, "auth_error", headers={"WWW-Authenticate": 'Bearer realm="devcopilot"'})


def _knowledge_refusal(needed: str) -> HTTPError:
    how = "'Authorization: Bearer TOKEN' (server.api_token)" if needed == API_TOKEN else \
        "the web UI's user and password"
    return HTTPError(401, f"This needs {how}.", "auth_error")


def _sign_in(_needed: str) -> HTTPError:
    return HTTPError(401, "Sign in to use devcopilot.", "auth_error", plain=True,
                     headers={"WWW-Authenticate": 'Basic realm="devcopilot", charset="UTF-8"'})


# The first rule that matches a request's path decides. Change who may call what here, and only here.
POLICY: tuple[Rule, ...] = (
    Rule("/v1/knowledge*", (API_TOKEN, USER), _knowledge_refusal, local=True),  # the Knowledge API
    Rule("/v1/*", (API_TOKEN,), _api_refusal),  # the OpenAI-compatible API
    Rule("/mcp", (API_TOKEN,), _mcp_refusal),  # MCP over HTTP
    Rule("*", (USER,), _sign_in),  # the web UI, the source viewer, the avatars, /healthz
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
        needed = next((n for n in rule.needs if self.configured(n)), None)
        if needed is None or caller.kind == needed:
            return caller
        raise rule.refusal(needed)


class Guard:
    """Refuse a request the policy does not let in, before any route or mounted app sees it; tell the
    routes who is calling (`caller`).

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which relays every piece of a streamed
    answer through a memory stream of its own: with 50 chat sessions streaming, that relay was the
    largest single cost of the server's event loop. The work per request is one header lookup."""

    def __init__(self, app, gate: Gate):
        self.app = app
        self.gate = gate

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            authorization = ""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                    break
            try:
                who = self.gate.admit(scope["path"], authorization)
            except HTTPError as e:
                return await error_response(e)(scope, receive, send)
            scope.setdefault("state", {})["caller"] = who  # the server gives each request a state of its own
        await self.app(scope, receive, send)


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


def install(app: FastAPI, gate: Gate, max_bytes: int) -> FastAPI:
    """Put `app` (with whatever is mounted on it) behind the edge: the size limit outermost, then the
    guard, and every HTTPError a route raises rendered by `error_response`. Call it last."""

    async def on_error(_request: Request, error: HTTPError) -> Response:
        return error_response(error)

    async def on_invalid(_request: Request, error: RequestValidationError) -> Response:
        return error_response(_invalid_parameter(error))

    app.add_exception_handler(HTTPError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_middleware(Guard, gate=gate)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)  # added last, so outermost: before any route reads the body
    return app
