"""An OpenAI-compatible HTTP API over the copilot, for editors and scripts.

`POST /v1/chat/completions` (streaming and not): `model` is an assistant name in lower case,
`guide` lets the Guide route; the last user message is the question and the earlier
messages are the history. Sources are appended to the answer as a numbered list and also
returned in an extra `sources` field. `GET /v1/models` lists the assistants. The version of each
library answered from is chosen with extra fields (OpenAI clients pass them as `extra_body`):
`"version": "0.23.1"` (with `"library"` when the KB holds several), or `"versions":
{"openai-agents": "0.23.1"}`; "all" reads every version; by default the project `project.path`
pins, else the newest indexed (indexes/versions.py).
Who may call it (the bearer token or a signed-in user, when configured), under which names and
with what content type, and how large a request may be are the HTTP edge's to say (ui/edge.py);
this module reads the request (`ChatRequest`) and answers it, in a conversation owned by the
signed-in user when there is one (their Usage tab counts it).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from copilot.chat import Copilot
from copilot.citations import CiteStyle
from copilot.events import TOKEN
from copilot.links import public_links, public_url
from copilot.models import estimate_tokens
from copilot.reply import Transcript
from copilot.routing import UnknownAssistant, find_assistant
from indexes.versions import VersionChoice
from ui.edge import USER, Caller, HTTPError, caller, read_json

ALIASES = {"devcopilot": "guide", "default": "guide", "auto": "guide"}


@dataclass
class ChatRequest:
    """A chat completion request, checked: what the copilot needs of it."""
    model: str  # as sent, lower case ("" = the Guide)
    question: str
    history: list[dict]
    stream: bool
    include_usage: bool
    versions: VersionChoice | None = None  # the versions asked for ("version", "library", "versions")

    @classmethod
    def parse(cls, body: bytes, max_chars: int) -> ChatRequest:
        """Check every field a chat completion request uses, or raise HTTPError 400 naming the field
        that is wrong, in one sentence (a lone surrogate or a NUL in any field: `read_json`). Nothing
        malformed reaches the copilot."""
        req = read_json(body, too_deep="The request body is nested too deeply; send plain JSON with a 'messages' "
                                       "list.")
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list) or not req["messages"]:
            raise HTTPError(400, "The request needs a non-empty 'messages' list.")
        model = req.get("model")
        if model is not None and not isinstance(model, str):
            raise HTTPError(400, "'model' must be a string naming an assistant (GET /v1/models lists them).")
        stream = req.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise HTTPError(400, "'stream' must be true or false.")
        options = req.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise HTTPError(400, "'stream_options' must be an object, such as {\"include_usage\": true}.")
        include_usage = (options or {}).get("include_usage")
        if include_usage is not None and not isinstance(include_usage, bool):
            raise HTTPError(400, "'stream_options.include_usage' must be true or false.")
        messages = [_message(m, i, max_chars) for i, m in enumerate(req["messages"])]
        last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), None)
        if last is None:
            raise HTTPError(400, "The request has no user message to answer.")
        history = [m for m in messages[:last] if m["role"] in ("user", "assistant")]
        return cls(str(model or "").strip().lower(), messages[last]["content"], history, bool(stream),
                   bool(include_usage), _versions(req))


def _versions(req: dict) -> VersionChoice | None:
    """The "version", "library" and "versions" fields as a choice of versions, or HTTPError 400 naming the field."""
    version, library, versions = req.get("version"), req.get("library"), req.get("versions")
    if version is not None and not isinstance(version, str):
        raise HTTPError(400, "'version' must be a string such as \"0.24.0\", \"newest\" or \"all\".")
    if library is not None and not isinstance(library, str):
        raise HTTPError(400, "'library' must be a string naming a library, such as \"openai-agents\".")
    if versions is not None and (not isinstance(versions, dict)
                                 or not all(isinstance(v, str) for v in versions.values())):
        raise HTTPError(400, "'versions' must be an object of library names to versions, such as "
                             "{\"openai-agents\": \"0.24.0\"}.")
    if version is None and library is None and not versions:
        return None
    try:
        return VersionChoice.parse(version, library, versions)
    except ValueError as e:
        raise HTTPError(400, str(e)) from None


def _message(m, i: int, max_chars: int) -> dict:
    """`messages[i]` as {"role", "content"} with its content as text, or HTTPError 400 naming what is wrong."""
    if not isinstance(m, dict):
        raise HTTPError(400, f"'messages[{i}]' must be an object with a 'role' and a 'content'.")
    role = m.get("role")
    if not isinstance(role, str):
        raise HTTPError(400, f"'messages[{i}].role' must be a string such as \"user\".")
    text = _text(m.get("content"), f"messages[{i}].content", required=role == "user")
    if role in ("user", "assistant") and len(text) > max_chars:
        raise HTTPError(400, f"'messages[{i}]' is {len(text):,} characters long and the limit is {max_chars:,} "
                             "(chat.max_message_chars); shorten it or ask about one part.")
    return {"role": role, "content": text}


# How an answer's sources read: "[1] src/app.py:3-9 — App.run (KB default) <https://host/source?path=...>",
# each link an absolute URL (under `server.public_url`, else the address the request came to).
CITES = CiteStyle(url=lambda s, base: public_url(s.link, base))


def public_base(copilot: Copilot, request: Request) -> str:
    """Where clients reach this server: `server.public_url`, else the address the request came to."""
    return (copilot.cfg.server.public_url or str(request.base_url)).rstrip("/")


def api_router(copilot: Copilot) -> APIRouter:
    """The OpenAI-compatible routes. Who may call them is the edge's business (ui/edge.py: POLICY);
    so is the request-size limit."""
    router = APIRouter()
    # Turns run on threads of their own: a turn waiting on its model holds one of these, not one of
    # the 40 the rest of the server shares (50 streaming sessions queued behind those 40).
    pool = ThreadPoolExecutor(max_workers=max(1, copilot.cfg.server.chat_threads), thread_name_prefix="chat-turn")

    async def in_pool(fn, *args):
        return await asyncio.wrap_future(pool.submit(fn, *args))

    @router.get("/v1/models")
    async def models():
        now = int(time.time())
        return {"object": "list", "data": [{"id": a.key, "object": "model", "created": now, "owned_by": "devcopilot",
                                            "name": a.name, "description": a.description}
                                           for a in copilot.assistants]}

    @router.post("/v1/chat/completions")
    async def completions(request: Request, who: Annotated[Caller, Depends(caller)]):
        req = ChatRequest.parse(await request.body(), copilot.cfg.chat.max_message_chars)
        model = ALIASES.get(req.model or "guide", req.model or "guide")
        try:
            spec = find_assistant(model, copilot.assistants, exact=True)
        except UnknownAssistant as e:
            names = [a.key for a in copilot.assistants]
            raise HTTPError(404, e.sentence(names, " (GET /v1/models lists them)"), "not_found_error") from None
        base = public_base(copilot, request)
        target = None if spec.is_guide else spec.name
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        owner = who.user if who.kind == USER else ""  # a signed-in user's questions count in their Usage tab
        # The turn's thread also stores the conversation it starts: one hand-over to a thread per turn.
        if req.stream:
            events = _stream(copilot, req.question, req.history, target, cid, model, req.include_usage, base, owner,
                             req.versions)
            pace = max(0, copilot.cfg.server.stream_pace_ms) / 1000
            return StreamingResponse(_threaded(events, pool, pace), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return await in_pool(_complete, copilot, req.question, req.history, target, cid, model, base, owner,
                             req.versions)

    return router


async def _threaded(items: Iterator[dict | str], pool: ThreadPoolExecutor, pace: float) -> AsyncIterator[str]:
    """Run a blocking generator of stream chunks on `pool` and send them as server-sent events.
    Writes are at least `pace` seconds apart (the first and the last go at once): what arrives in
    between goes out as one write, its text-only chunks merged into one chunk (`sse`). A model
    streams a few characters at a time; a client then parses one event where it would parse
    dozens, and a busy server makes fewer writes. The generator's thread wakes the event loop only
    when the loop waits for it. If the client goes away, the generator is closed, on its own
    thread, after its current step."""
    loop = asyncio.get_running_loop()
    ready: list = []
    lock = threading.Lock()
    wake = asyncio.Event()
    waiting = False  # the loop is waiting for the next item: the next `put` wakes it
    end = object()
    stop = threading.Event()

    def put(item) -> None:  # on the pool thread
        nonlocal waiting
        with lock:
            ready.append(item)
            if not waiting and item is not end:
                return
            waiting = False
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(wake.set)

    def produce() -> None:  # on a pool thread
        try:
            for item in items:
                if stop.is_set():
                    break
                put(item)
        except BaseException as e:  # noqa: BLE001 - handed to the event loop, raised there
            put(e)
        finally:
            items.close()
            put(end)

    pool.submit(produce)
    last_write = -pace
    try:
        while True:
            with lock:
                idle = waiting = not ready
                wake.clear()
            if idle:
                await wake.wait()
            pause = last_write + pace - loop.time()
            with lock:
                ended = any(item is end for item in ready)
                wake.clear()
            if pause > 0 and not ended:  # `put(end)` sets `wake`: the last write goes at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), pause)
            with lock:
                batch, ready[:] = ready[:], []
            chunks = []
            for item in batch:
                if isinstance(item, (dict, str)):
                    chunks.append(item)
                    continue
                if chunks:
                    yield sse(chunks)
                if item is end:
                    return
                raise item
            if chunks:
                last_write = loop.time()
                yield sse(chunks)
    finally:
        stop.set()


def sse(chunks: list[dict | str]) -> str:
    """Chunk objects (and the closing "[DONE]") as server-sent events, in order; consecutive chunks
    that carry only answer text become one chunk with their texts joined."""
    events: list[dict | str] = []
    texts: list[dict] = []

    def merge() -> None:
        if texts:
            first = texts[0]
            content = "".join(t["choices"][0]["delta"]["content"] for t in texts)
            events.append({**first, "choices": [{**first["choices"][0], "delta": {"content": content}}]})
            texts.clear()

    for c in chunks:
        if _text_only(c):
            texts.append(c)
        else:
            merge()
            events.append(c)
    merge()
    return "".join("data: " + (c if isinstance(c, str) else json.dumps(c, ensure_ascii=False)) + "\n\n"
                   for c in events)


def _text_only(chunk: dict | str) -> bool:
    if not isinstance(chunk, dict) or chunk.keys() != {"id", "object", "created", "model", "choices"}:
        return False
    choices = chunk["choices"]
    return (len(choices) == 1 and choices[0]["finish_reason"] is None and choices[0]["delta"].keys() == {"content"}
            and bool(choices[0]["delta"]["content"]))


def _text(content, where: str, required: bool) -> str:
    """Message content as text: a string, or a list of parts whose {type: text} parts are joined
    (other parts, such as images, are passed over). HTTPError 400 names what is wrong."""
    if content is None and not required:
        return ""
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                raise HTTPError(400, f"'{where}[{j}]' must be an object such as "
                                     "{\"type\": \"text\", \"text\": \"...\"}.")
            if part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise HTTPError(400, f"'{where}[{j}].text' must be a string.")
                texts.append(part["text"])
    else:
        raise HTTPError(400, f"'{where}' must be a string or a list of text parts.")
    return "\n".join(texts)


def _sources(turn: Transcript, base: str) -> list[dict]:
    """The `sources` field: each cited source with its speaker, its link an absolute URL."""
    return [{"assistant": name, **s.to_json(), "link": public_url(s.link, base)} for name, s in turn.sources]


def _complete(copilot: Copilot, question: str, history: list[dict], target: str | None, cid: str, model: str,
              base: str = "", owner: str = "", versions: VersionChoice | None = None) -> dict:
    """The turn as one chat completion, in a new stored conversation seeded with `history` (the signed-in
    user's, if any). Through the Guide several may speak, so each speaker is labelled; a request to one
    assistant gets its answer alone."""
    sid = copilot.new_session(history, owner, "api")
    turn = Transcript(CITES, labelled=target is None, base=base).take(copilot.chat(question, sid, target,
                                                                                   versions=versions))
    text = public_links(turn.text, base)  # links to files on the server turned into viewer URLs
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": estimate_tokens(question), "completion_tokens": estimate_tokens(text),
                      "total_tokens": estimate_tokens(question) + estimate_tokens(text)},
            "sources": _sources(turn, base), "speakers": turn.speakers, "session_id": sid}


def _stream(copilot: Copilot, question: str, history: list[dict], target: str | None, cid: str, model: str,
            include_usage: bool = False, base: str = "", owner: str = "",
            versions: VersionChoice | None = None) -> Iterator[dict | str]:
    """The turn as OpenAI chat completion chunks (objects), then "[DONE]", in a new stored conversation
    seeded with `history` (the signed-in user's, if any); `sse` writes them."""
    sid = copilot.new_session(history, owner, "api")
    turn = Transcript(CITES, labelled=target is None, base=base)
    created = int(time.time())
    sent: list[str] = []

    def chunk(content: str | None = None, finish: str | None = None, role: str | None = None, **extra) -> dict:
        delta = {"content": content} if content is not None else {}
        if role:
            delta["role"] = role
        if content:
            sent.append(content)
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    yield chunk("", role="assistant")
    for ev in copilot.chat(question, sid, target, versions=versions):
        text = turn.write(ev)
        if text is not None:  # offline answers stream whole paragraphs, so their links arrive whole
            yield chunk(public_links(text, base) if ev.type == TOKEN else text)
    yield chunk(None, "stop", sources=_sources(turn, base), speakers=turn.speakers, session_id=sid)
    if include_usage:  # as OpenAI does: a last chunk with no choices and the usage (counted locally)
        p, c = estimate_tokens(question), estimate_tokens("".join(sent))
        yield {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
               "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}
    yield "[DONE]"
