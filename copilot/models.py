"""Chat-model backends: OpenAI-compatible (over HTTP with `requests`), DashScope (its own SDK), or none.

Every backend streams `Delta`s. `ResilientModel` wraps one with what a shared copilot needs:
retries with exponential backoff on 429 / 5xx / timeouts (honouring Retry-After), a per-call
timeout, an optional fallback model, and usage accounting in the monitor. When everything
fails it raises `ModelUnavailable`, and the chat answers offline with a note instead.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from copilot.config import Config, redact

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "dashscope": "qwen-plus"}


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it (may be malformed)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    counted: bool = False  # True when the API gave no usage and we estimated it locally


@dataclass
class Delta:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)  # complete calls, given once at the end
    usage: Usage | None = None
    finish: str = ""
    notice: str = ""  # e.g. "rate limited, retrying in 20 s", shown to the user during a long wait


class ModelError(Exception):
    """One failed call. `retryable` for 429 / 5xx / timeouts / refused connections."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None, status: int = 0):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class ModelUnavailable(Exception):
    """No model could answer (retries and fallback exhausted, or the budget is spent)."""


class StreamCut(Exception):
    """The stream broke after some text had arrived; `partial` keeps it."""

    def __init__(self, message: str, partial: str):
        super().__init__(message)
        self.partial = partial


class ChatModel(Protocol):
    provider: str
    model: str
    supports_tools: bool

    def stream(self, messages: list[dict], *, tools: list[dict] | None = None, json_mode: bool = False,
               max_tokens: int | None = None, model: str | None = None) -> Iterator[Delta]: ...


def estimate_tokens(text: str) -> int:
    """A local count when the API gives none: ~4 characters a token, one per CJK character."""
    cjk = len(re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", text))
    return cjk + max(0, len(text) - cjk) // 4 + (1 if text else 0)


def messages_tokens(messages: list[dict]) -> int:
    return sum(4 + estimate_tokens(str(m.get("content") or "")) for m in messages)


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (any capitalisation), or None."""
    try:
        for key, value in (headers or {}).items():
            if key.lower() == "retry-after":
                return max(0.0, float(value))
    except (AttributeError, TypeError, ValueError):
        pass
    return None


# -- OpenAI-compatible ---------------------------------------------------------------------------
class OpenAIModel:
    """Any server that speaks OpenAI's chat completions (OpenAI, Ollama, vLLM, llama.cpp, ...),
    over plain HTTP with `requests`: one session, its connections kept and shared by every turn's
    thread. The `openai` client spent about twice the CPU on each streamed call (its request
    building, and per piece of the stream its HTTP layers); a busy server streams for dozens of
    sessions at once (bench/load_chat.py). Like the `openai` client: the key as a bearer token,
    OPENAI_BASE_URL / OPENAI_ORG_ID / OPENAI_PROJECT_ID (read by load_config into `cfg.chat`), the
    environment's proxies and CA certificates (read by load_config into `cfg.network`)."""

    provider = "openai"

    def __init__(self, cfg: Config):
        import requests

        c = cfg.chat
        self.model = c.model or DEFAULT_MODELS["openai"]
        self.supports_tools = c.tools
        self.cfg = c
        base = c.base_url or "https://api.openai.com/v1"
        self.url = base.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {c.api_key or 'no-key'}", "Content-Type": "application/json",
                        "Accept": "text/event-stream", "User-Agent": "devcopilot"}
        for header, value in (("OpenAI-Organization", c.organization), ("OpenAI-Project", c.project)):
            if value:
                self.headers[header] = value
        self._requests = requests
        self.session = requests.Session()
        # Every turn answered at once holds a connection, two while a follow-up is condensed during its
        # routing call: keep that many (the default keeps 10, and drops the rest after each call).
        pool = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(16, 2 * cfg.server.chat_threads))
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, pool)
        # The environment's proxy (NO_PROXY included) and CA certificates for this one URL, as the
        # settings read them: requests would read them again on every call, walking the whole
        # environment (~0.3 ms a call).
        self.session.trust_env = False
        self.session.proxies, self.session.verify = cfg.network.proxies_for(self.url), cfg.network.verify

    def stream(self, messages, *, tools=None, json_mode=False, max_tokens=None, model=None):
        import urllib3

        requests = self._requests
        body: dict[str, Any] = {"model": model or self.model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}, "temperature": self.cfg.temperature,
                                "max_tokens": max_tokens or self.cfg.max_tokens}
        if tools:
            body["tools"] = tools
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            response = self._post(body)
            if response.status_code == 400:
                # Some compatible servers reject optional features: drop the one named and ask again.
                said = response.text.lower()
                dropped = [k for k, word in (("stream_options", "stream_options"), ("response_format",
                           "response_format"), ("tools", "tool")) if k in body and word in said]
                if dropped:
                    response.close()
                    for k in dropped:
                        body.pop(k)
                    if "tools" in dropped:
                        self.supports_tools = False
                    response = self._post(body)
        except requests.Timeout:
            raise ModelError("the model did not answer in time", True) from None
        except requests.RequestException as e:
            raise ModelError(f"could not reach the model server ({clean_error(_reason(e))})", True) from None
        if response.status_code >= 400:
            status = response.status_code
            detail = _error_detail(response)
            response.close()
            raise ModelError(_status_message(status, detail), status == 429 or status >= 500 or status == 408,
                             _retry_after(response.headers), status)
        calls: dict[int, dict] = {}
        usage = None
        finish = ""
        try:
            # Read to the very end, past [DONE]: the connection then goes back to the pool for the
            # next call.
            for line in _lines(response.raw):
                if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                    continue
                chunk = json.loads(line[5:])
                if not isinstance(chunk, dict):
                    raise ValueError("a stream event that is not an object")
                if chunk.get("error"):
                    error = chunk["error"]
                    raise ModelError(f"the stream broke ({error.get('message') if isinstance(error, dict) else error})",
                                     True)
                if chunk.get("usage"):
                    figures = chunk["usage"]
                    usage = Usage(figures.get("prompt_tokens") or 0, figures.get("completion_tokens") or 0)
                for choice in chunk.get("choices") or []:
                    d = choice.get("delta") or {}
                    if d.get("content"):
                        yield Delta(text=d["content"])
                    for tc in d.get("tool_calls") or []:
                        slot = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": ""})
                        slot["id"] = tc.get("id") or slot["id"]
                        function = tc.get("function") or {}
                        slot["name"] += function.get("name") or ""
                        slot["arguments"] += function.get("arguments") or ""
                    finish = choice.get("finish_reason") or finish
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise ModelError("the model stopped answering (timeout)", True) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as e:
            raise ModelError(f"the stream broke ({clean_error(_reason(e))})", True) from None  # or a broken line
        finally:  # also when the turn is abandoned (its client left): stop the model's answer now
            response.close()
        yield Delta(tool_calls=[ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"])
                                for i, c in sorted(calls.items())], usage=usage, finish=finish or "stop")

    def _post(self, body: dict):
        return self.session.post(self.url, data=json.dumps(body, ensure_ascii=False).encode(), headers=self.headers,
                                 stream=True, timeout=(self.cfg.timeout_s, self.cfg.timeout_s))


def _lines(raw) -> Iterator[bytes]:
    """A streamed body's lines as they arrive, whatever each read brings; chunked or not (for a body
    sent without chunks, urllib3's own stream waits for the whole of it)."""
    if raw.chunked and raw.supports_chunked_reads():
        reads = raw.read_chunked(None, decode_content=True)
    else:
        reads = iter(lambda: raw.read1(65536, decode_content=True), b"")
    rest = b""
    for data in reads:
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r")
    if rest:
        yield rest.rstrip(b"\r")


def _error_detail(response) -> str:
    """What an error response says: OpenAI's {"error": {"message": ...}}, else its text."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason or ""


def _reason(e: Exception) -> str:
    """The innermost cause of a requests error ("Connection refused"), not its pool's long repr."""
    while e.args and isinstance(e.args[0], Exception):
        e = e.args[0]
    reason = str(getattr(e, "reason", None) or e)
    return re.sub(r"^\w+\(host=[^)]*\): ", "", reason)  # "HTTPConnection(host='h', port=1): Failed ..."


# -- DashScope ------------------------------------------------------------------------------------
class DashScopeModel:
    provider = "dashscope"

    def __init__(self, cfg: Config):
        import dashscope

        c = cfg.chat
        self.model = c.model or DEFAULT_MODELS["dashscope"]
        self.supports_tools = c.tools
        self.cfg = c
        self._ds = dashscope
        if c.base_url:
            dashscope.base_http_api_url = c.base_url.rstrip("/")

    def stream(self, messages, *, tools=None, json_mode=False, max_tokens=None, model=None):
        import requests

        kwargs: dict[str, Any] = {"model": model or self.model, "messages": messages, "api_key": self.cfg.api_key,
                                  "stream": True, "incremental_output": True, "result_format": "message",
                                  "temperature": self.cfg.temperature, "max_tokens": max_tokens or self.cfg.max_tokens,
                                  "request_timeout": max(1, round(self.cfg.timeout_s))}
        if tools:
            kwargs["tools"] = tools
        if json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        calls: dict[int, dict] = {}
        usage = None
        finish = ""
        try:
            responses = self._ds.Generation.call(**kwargs)
            for r in responses:
                if r.status_code != 200:
                    status = int(r.status_code)
                    raise ModelError(_status_message(status, r.message or r.code or ""),
                                     status == 429 or status >= 500, _retry_after(getattr(r, "headers", None)),
                                     status)
                if r.usage:
                    usage = Usage(r.usage.get("input_tokens", 0) or 0, r.usage.get("output_tokens", 0) or 0)
                for choice in (r.output or {}).get("choices") or []:
                    msg = choice.get("message") or {}
                    if msg.get("content"):
                        yield Delta(text=msg["content"])
                    for i, tc in enumerate(msg.get("tool_calls") or []):
                        slot = calls.setdefault(tc.get("index", i), {"id": "", "name": "", "arguments": ""})
                        fn = tc.get("function") or {}
                        slot["id"] = tc.get("id") or slot["id"]
                        slot["name"] += fn.get("name") or ""
                        slot["arguments"] += fn.get("arguments") or ""
                    if choice.get("finish_reason") not in (None, "null"):
                        finish = choice["finish_reason"]
        except ModelError:
            raise
        except requests.exceptions.Timeout:
            raise ModelError("the model did not answer in time", True) from None
        except (requests.exceptions.RequestException, OSError) as e:
            raise ModelError(f"could not reach DashScope ({clean_error(e)})", True) from None
        except Exception as e:  # the SDK's own errors (no key, bad parameter): not worth retrying
            raise ModelError(f"DashScope refused the call ({type(e).__name__}: {clean_error(e)})", False) from None
        yield Delta(tool_calls=[ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"])
                                for i, c in sorted(calls.items())], usage=usage, finish=finish or "stop")


def _status_message(status: int, detail: str) -> str:
    what = {429: "rate limited", 401: "the API key was refused", 403: "access was refused",
            404: "the model or endpoint was not found"}.get(status, "server error" if status >= 500 else "refused")
    return f"HTTP {status}: {what} ({clean_error(detail)[:200]})"


def clean_error(e: Any) -> str:
    """Error text without anything that looks like a key."""
    return re.sub(r"(sk-|Bearer )[A-Za-z0-9_\-\.]{6,}", r"\1***", str(e)).strip() or type(e).__name__


# -- the wrapper the chat uses -------------------------------------------------------------------
@dataclass
class Reply:
    """What one finished call produced."""
    text: str
    tool_calls: list[ToolCall]
    model: str


class ResilientModel:
    """Retries, backoff, fallback, budget and usage around one backend."""

    def __init__(self, backend: ChatModel, cfg: Config, monitor=None, sleep: Callable[[float], None] = time.sleep):
        self.backend = backend
        self.cfg = cfg
        self.monitor = monitor
        self.sleep = sleep
        self.provider = backend.provider
        self.model = backend.model

    @property
    def supports_tools(self) -> bool:
        return self.backend.supports_tools

    def stream(self, messages: list[dict], *, assistant: str, tools: list[dict] | None = None,
               json_mode: bool = False, max_tokens: int | None = None,
               on_retry: Callable[[str], None] | None = None) -> Iterator[Delta]:
        """Yield text deltas (and notices before long waits), then one final Delta holding tool calls and finish.

        Retries happen only before the first piece of text; a break after it raises StreamCut
        so the caller keeps what came.
        """
        c = self.cfg.chat
        models = [self.model] + ([c.fallback_model] if c.fallback_model and c.fallback_model != self.model else [])
        last = "no model was tried"
        for model in models:
            for attempt in range(c.max_retries + 1):
                if self.monitor is not None and self.monitor.over_budget():
                    raise ModelUnavailable("the usage budget is spent")
                got: list[str] = []
                try:
                    final = Delta()
                    for d in self.backend.stream(messages, tools=tools, json_mode=json_mode,
                                                 max_tokens=max_tokens, model=model):
                        if d.text:
                            got.append(d.text)
                            yield d
                        elif not d.notice:
                            final = d
                    self._record(model, assistant, messages, "".join(got), final)
                    yield final
                    return
                except ModelError as e:
                    if got:
                        self._record(model, assistant, messages, "".join(got), Delta())
                        raise StreamCut(str(e), "".join(got)) from None
                    last = str(e)
                    if self.monitor is not None:
                        self.monitor.count("model_errors")
                    if not e.retryable or attempt == c.max_retries:
                        break
                    wait = min(c.max_backoff_s, e.retry_after if e.retry_after is not None
                               else c.backoff_s * (2 ** attempt))
                    if on_retry is not None:
                        on_retry(f"{model}: {e}; retrying in {wait:.1f} s")
                    if wait >= 2:  # long enough for the user to wonder
                        yield Delta(notice=f"The model is busy ({e.status or 'timeout'}); retrying in {wait:.0f} s.")
                    if self.monitor is not None:
                        self.monitor.count("model_retries")
                    self.sleep(wait)
        raise ModelUnavailable(last)

    def complete(self, messages: list[dict], *, assistant: str, json_mode: bool = False,
                 max_tokens: int | None = None) -> str:
        return "".join(d.text for d in self.stream(messages, assistant=assistant, json_mode=json_mode,
                                                   max_tokens=max_tokens))

    def _record(self, model: str, assistant: str, messages: list[dict], text: str, final: Delta) -> None:
        if self.monitor is None:
            return
        usage = final.usage
        if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):
            out = text + "".join(tc.arguments for tc in final.tool_calls)
            usage = Usage(messages_tokens(messages), estimate_tokens(out), counted=True)
        self.monitor.record(model, assistant, usage.input_tokens, usage.output_tokens, usage.counted)


def make_model(cfg: Config, monitor=None) -> ResilientModel | None:
    """The configured chat model, or None for offline mode."""
    provider = cfg.chat.provider
    if provider == "openai":
        return ResilientModel(OpenAIModel(cfg), cfg, monitor)
    if provider == "dashscope":
        return ResilientModel(DashScopeModel(cfg), cfg, monitor)
    return None


def describe_chat_model(cfg: Config) -> str:
    """One line for `devcopilot status`: which chat model is active; keys redacted."""
    c = cfg.chat
    if c.provider == "offline":
        return ("offline (no language model configured: set OPENAI_API_KEY, DASHSCOPE_API_KEY or "
                "DEVCOPILOT_CHAT_BASE_URL to get written answers)")
    model = c.model or DEFAULT_MODELS.get(c.provider, "")
    parts = [f"{c.provider} {model}"]
    if c.base_url:
        parts.append(f"at {c.base_url}")
    parts.append(f"key {redact(c.api_key)}" if c.api_key else "no key")
    if c.fallback_model:
        parts.append(f"fallback {c.fallback_model}")
    return ", ".join(parts)


def parse_json_object(text: str) -> Any:
    """json.loads, or None."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None
