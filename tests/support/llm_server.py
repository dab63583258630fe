"""A local OpenAI-compatible (and DashScope-compatible) chat server for tests and benches.

It speaks real HTTP, so the real `openai` client and the real `dashscope` SDK talk to it.
Replies are scripted: `script(...)` queues replies taken in order, `rule(match, reply)` answers
every request that matches, and `default` answers the rest. A reply can stream text, call
tools, report usage (or not), fail with 429 + Retry-After or 500, wait or hang, or cut the
stream mid-answer. Every request received is recorded so tests can check what was sent.

    server = LLMServer().start()
    server.script(Reply(text="Hello there"), Reply(status=429, retry_after=1))
    openai.OpenAI(base_url=server.url, api_key="test")  # DashScope: dashscope.base_http_api_url = server.dashscope_url
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str = "OK"
    tool_calls: list[dict] = field(default_factory=list)  # [{"name": ..., "arguments": "json text"}]
    status: int = 200  # anything else: an error response
    retry_after: float | None = None  # Retry-After header on errors
    error_message: str = ""  # the error's message (default: "scripted error STATUS")
    delay: float = 0.0  # seconds before the response starts (a hang when longer than the client's timeout)
    token_delay: float = 0.0  # seconds between streamed pieces
    cut_after: int | None = None  # stream this many pieces, then drop the connection
    usage: bool = True  # include usage figures
    prompt_tokens: int = 11
    completion_tokens: int | None = None  # default: number of pieces


Responder = Callable[[dict], Reply]


def pieces(text: str) -> list[str]:
    """Split text the way a model streams: words with their following space."""
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch in " \n":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out or [""]


def system_text(body: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []) if m.get("role") == "system")


def last_user(body: dict) -> str:
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return ""


class LLMServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[dict] = []  # {"protocol", "path", "headers", "body" (OpenAI shape), "raw", "peer"}
        self.pieces_sent = 0  # streamed text pieces written so far, to observe streaming from a test
        self.hung_up = threading.Event()  # set when a client closes a stream before its end
        self.queue: deque[Reply] = deque()
        self.rules: list[tuple[Callable[[dict], bool], Reply | Responder]] = []
        self.default: Reply | Responder = Reply(text="This is the scripted default answer [1].")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As real model servers do: each small write goes out at once. With Nagle's algorithm the
            # stream's last bytes waited for the client's delayed ACK (~40 ms a request).
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/chat/completions"):
                    protocol, body = "openai", raw
                elif self.path.endswith("/services/aigc/text-generation/generation"):
                    protocol = "dashscope"
                    params = raw.get("parameters") or {}
                    body = {"model": raw.get("model"), "messages": (raw.get("input") or {}).get("messages", []),
                            "stream": "enable" in (self.headers.get("X-DashScope-SSE") or "") or params.get(
                                "stream", False), **{k: v for k, v in params.items() if k != "stream"}}
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with server._lock:
                    server.requests.append({"protocol": protocol, "path": self.path,
                                            "headers": dict(self.headers), "body": body, "raw": raw,
                                            "peer": self.client_address})  # one per connection
                reply = server._pick(body)
                if reply.delay:
                    server._stop.wait(reply.delay)
                if reply.status != 200:
                    self._error(protocol, reply)
                elif protocol == "openai":
                    self._openai(body, reply)
                else:
                    self._dashscope(body, reply)

            # -- writing ---------------------------------------------------------------------
            def _json(self, status: int, obj: Any, headers: dict | None = None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, protocol: str, reply: Reply):
                headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
                if protocol == "openai":
                    obj = {"error": {"message": reply.error_message or f"scripted error {reply.status}",
                                     "type": "test", "code": None}}
                else:
                    obj = {"code": "Throttling" if reply.status == 429 else "InternalError",
                           "message": f"scripted error {reply.status}", "request_id": uuid.uuid4().hex}
                self._json(reply.status, obj, headers)

            def _start_stream(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()

            def _chunk(self, data: str):
                b = data.encode()
                self.wfile.write(f"{len(b):x}\r\n".encode() + b + b"\r\n")
                self.wfile.flush()

            def _cut(self):
                # Drop the connection without the terminating chunk: the client sees a broken stream.
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

            def _openai(self, body: dict, reply: Reply):
                cid = "chatcmpl-" + uuid.uuid4().hex[:12]
                model = body.get("model", "test-model")
                parts = pieces(reply.text) if reply.text else []
                usage = {"prompt_tokens": reply.prompt_tokens,
                         "completion_tokens": reply.completion_tokens if reply.completion_tokens is not None
                         else len(parts) + len(reply.tool_calls),
                         "total_tokens": 0}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                finish = "tool_calls" if reply.tool_calls else "stop"
                calls = [{"index": i, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                          "function": {"name": tc["name"], "arguments": tc.get("arguments", "{}")}}
                         for i, tc in enumerate(reply.tool_calls)]
                if not body.get("stream"):
                    msg: dict[str, Any] = {"role": "assistant", "content": reply.text if not calls else None}
                    if calls:
                        msg["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
                    obj = {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                           "choices": [{"index": 0, "message": msg, "finish_reason": finish}]}
                    if reply.usage:
                        obj["usage"] = usage
                    self._json(200, obj)
                    return

                def frame(delta: dict, finish_reason=None, extra: dict | None = None) -> str:
                    obj = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                           "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
                    obj.update(extra or {})
                    return "data: " + json.dumps(obj) + "\n\n"

                self._start_stream()
                try:
                    self._chunk(frame({"role": "assistant", "content": ""}))
                    for i, p in enumerate(parts):
                        if reply.cut_after is not None and i >= reply.cut_after:
                            self._cut()
                            return
                        if reply.token_delay:
                            server._stop.wait(reply.token_delay)
                        self._chunk(frame({"content": p}))
                        server.pieces_sent += 1
                    for c in calls:
                        self._chunk(frame({"tool_calls": [c]}))
                    self._chunk(frame({}, finish))
                    if reply.usage and (body.get("stream_options") or {}).get("include_usage"):
                        self._chunk("data: " + json.dumps({"id": cid, "object": "chat.completion.chunk",
                                                           "created": int(time.time()), "model": model,
                                                           "choices": [], "usage": usage}) + "\n\n")
                    self._chunk("data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    server.hung_up.set()

            def _dashscope(self, body: dict, reply: Reply):
                rid = uuid.uuid4().hex
                parts = pieces(reply.text) if reply.text else []
                calls = [{"index": i, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                          "function": {"name": tc["name"], "arguments": tc.get("arguments", "{}")}}
                         for i, tc in enumerate(reply.tool_calls)]
                out_tokens = reply.completion_tokens if reply.completion_tokens is not None else len(parts)
                usage = {"input_tokens": reply.prompt_tokens, "output_tokens": out_tokens,
                         "total_tokens": reply.prompt_tokens + out_tokens}
                finish = "tool_calls" if calls else "stop"

                def result(content: str, finish_reason: str, tool_calls=None) -> dict:
                    msg: dict[str, Any] = {"role": "assistant", "content": content}
                    if tool_calls:
                        msg["tool_calls"] = tool_calls
                    obj: dict[str, Any] = {"output": {"choices": [{"message": msg, "finish_reason": finish_reason}]},
                                           "request_id": rid}
                    if reply.usage:
                        obj["usage"] = usage
                    return obj

                if not body.get("stream"):
                    self._json(200, result(reply.text, finish, calls or None))
                    return
                self._start_stream()
                try:
                    n = 0
                    for i, p in enumerate(parts):
                        if reply.cut_after is not None and i >= reply.cut_after:
                            self._cut()
                            return
                        if reply.token_delay:
                            server._stop.wait(reply.token_delay)
                        n += 1
                        self._chunk(f"id:{n}\nevent:result\n:HTTP_STATUS/200\ndata:"
                                    + json.dumps(result(p, "null")) + "\n\n")
                    n += 1
                    self._chunk(f"id:{n}\nevent:result\n:HTTP_STATUS/200\ndata:"
                                + json.dumps(result("", finish, calls or None)) + "\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    server.hung_up.set()

        class Server(ThreadingHTTPServer):
            # Python's default listen backlog is 5: a burst of new connections (50 sessions starting at
            # once) overflowed it, and each dropped connection attempt was retried a second later.
            # Model servers in use (uvicorn, Go's net/http) listen with backlogs in the thousands.
            request_queue_size = 1024

            def handle_error(self, request, client_address):  # a client that gave up (timeout) is expected
                pass

        self.httpd = Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    # -- scripting ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL for the openai client."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def dashscope_url(self) -> str:
        """Value for `dashscope.base_http_api_url`."""
        return f"http://{self.host}:{self.port}/api/v1"

    def script(self, *replies: Reply) -> LLMServer:
        with self._lock:
            self.queue.extend(replies)
        return self

    def rule(self, match: Callable[[dict], bool] | str, reply: Reply | Responder) -> LLMServer:
        """Answer requests matching `match` (a predicate on the body, or text in the system prompt)."""
        if isinstance(match, str):
            needle = match

            def match(body: dict) -> bool:
                return needle in system_text(body)
        with self._lock:
            self.rules.append((match, reply))
        return self

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.pieces_sent = 0
            self.hung_up.clear()
            self.queue.clear()
            self.rules.clear()
            self.default = Reply(text="This is the scripted default answer [1].")

    def _pick(self, body: dict) -> Reply:
        with self._lock:
            chosen = next((reply for match, reply in self.rules if match(body)), None)
            if chosen is None:
                chosen = self.queue.popleft() if self.queue else self.default
        return chosen(body) if callable(chosen) else chosen  # a responder may wait: not under the lock

    def bodies(self, protocol: str | None = None) -> list[dict]:
        with self._lock:
            return [r["body"] for r in self.requests if protocol in (None, r["protocol"])]

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> LLMServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # a model server for trying the copilot by hand or load benches
    import argparse

    ap = argparse.ArgumentParser(description="A local OpenAI/DashScope-compatible test model server.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before each response starts")
    ap.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed pieces")
    ap.add_argument("--text", default="This is the scripted default answer [1].")
    a = ap.parse_args()
    s = LLMServer(port=a.port)
    s.default = Reply(text=a.text, delay=a.delay, token_delay=a.token_delay)
    s.start()
    print(f"test model server at {s.url} (DashScope: {s.dashscope_url}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()
