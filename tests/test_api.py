"""The OpenAI-compatible API through the real `openai` client against a real uvicorn server on loopback."""
from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI
from support.chat import build_world, make_copilot
from support.llm_server import LLMServer, Reply, system_text
from support.servers import serve

from ui.api import api_router, sse
from ui.edge import POLICY, Gate, Rule, install

TOKEN = "api-token-for-tests"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def model_server():
    s = LLMServer().start()
    yield s
    s.stop()


def serve_router(router) -> tuple[str, uvicorn.Server, threading.Thread]:
    app = FastAPI()
    app.include_router(router)
    install(app, Gate(), max_bytes=1_000_000)  # the routes learn who calls from the edge
    return serve(app)


@pytest.fixture(scope="module")
def api(world, tmp_path_factory, model_server):
    """Two copilots behind one app and the server's edge (a 20,000-byte limit): offline at /offline
    (open), with a model at /model (the API's rule: the token)."""
    offline = make_copilot(world, tmp_path_factory.mktemp("offline"))
    online = make_copilot(world, tmp_path_factory.mktemp("online"), model_server)
    app = FastAPI()
    app.include_router(api_router(offline), prefix="/offline")
    app.include_router(api_router(online), prefix="/model")
    api_rule = next(rule for rule in POLICY if rule.matches("/v1/models"))
    policy = (Rule("/model/*", api_rule.needs, api_rule.refusal), Rule("*", (), api_rule.refusal))
    install(app, Gate(api_token=TOKEN, policy=policy), max_bytes=20_000)
    url, server, thread = serve(app)
    yield url, offline, online
    server.should_exit = True
    thread.join(5)


def client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_models_lists_the_assistants(api):
    url, _, _ = api
    ids = [m.id for m in client(url + "/offline").models.list()]
    assert ids == ["guide", "tutoring", "coding"]


def test_non_streaming_answer_with_sources(api):
    url, _, _ = api
    r = client(url + "/offline").chat.completions.create(
        model="coding", messages=[{"role": "user", "content": "what arguments does build_gadget take?"}])
    text = r.choices[0].message.content
    assert text.startswith("_No language model") and "def build_gadget(name, size=DEFAULT_SIZE)" in text
    assert "\n\nSources:\n[1] widgets/core.py:19-21 — build_gadget" in text
    extra = r.model_extra
    assert extra["sources"][0]["path"] == "widgets/core.py" and extra["sources"][0]["n"] == 1
    assert extra["speakers"] == ["Coding"]


def test_citation_links_are_absolute_urls_whose_lines_match_the_text(api):
    """A file path on the server means nothing to a remote client: every link is a viewer URL built
    from the address served (or server.public_url), and names the lines the text does."""
    import re
    from urllib.parse import parse_qs, urlparse

    url, offline, _ = api
    for stream in (False, True):
        r = client(url + "/offline").chat.completions.create(
            model="coding", stream=stream, messages=[{"role": "user", "content": "how does MemoryStore save?"}])
        if stream:
            chunks = list(r)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            sources = chunks[-1].model_extra["sources"]
        else:
            text, sources = r.choices[0].message.content, r.model_extra["sources"]
        links = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r"<([^>]+)>", text)
        assert links and all(link.startswith(url + "/source?path=") for link in links), links
        head = re.search(r"\[1\] `(\S+)` lines (\d+)-(\d+)\*\* — [\w.]+ \(\[open\]\(([^)]+)\)\)", text)
        assert head, text
        assert parse_qs(urlparse(head.group(4)).query)["lines"] == [f"{head.group(2)}-{head.group(3)}"]
        for s in sources:
            assert s["link"].startswith(url + "/source?path=") and s["kb"] == "default", s
            assert parse_qs(urlparse(s["link"]).query)["lines"] == [f"{s['start_line']}-{s['end_line']}"]
    offline.cfg.server.public_url = "https://copilot.example.com/"
    try:
        r = client(url + "/offline").chat.completions.create(
            model="coding", messages=[{"role": "user", "content": "how does MemoryStore save?"}])
        assert all(s["link"].startswith("https://copilot.example.com/source?path=")
                   for s in r.model_extra["sources"])
    finally:
        offline.cfg.server.public_url = ""


def test_streaming_answer_through_the_guide(api):
    url, offline, _ = api
    stream = client(url + "/offline").chat.completions.create(
        model="guide", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "How do I give an agent memory?"}])
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens > 10 and not chunks[-1].choices
    chunks = chunks[:-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert text.startswith("**Guide:** @Tutoring will take this.\n\n**Tutoring:** ")
    assert "MemoryStore(path)" in text and "Sources:\n[1] README.md" in text
    last = chunks[-1].model_extra
    assert last["speakers"] == ["Guide", "Tutoring"] and last["sources"][0]["path"] == "README.md"
    assert offline.history(last["session_id"])[-1]["assistant"] == "Tutoring"


def test_history_is_the_earlier_messages_and_the_model_sees_it(api, model_server):
    url, _, online = api
    model_server.reset()
    model_server.rule("You rewrite the user's last message", Reply(text="What does build_gadget return?"))
    model_server.default = Reply(text="It returns a dict [1].")
    r = client(url + "/model", TOKEN).chat.completions.create(model="coding", messages=[
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what arguments does build_gadget take?"},
        {"role": "assistant", "content": "name and size"},
        {"role": "user", "content": "and what does it return?"}])
    assert r.choices[0].message.content.startswith("It returns a dict [1].\n\nSources:\n[1] widgets/core.py")
    history = online.history(r.model_extra["session_id"])
    assert [h["content"] for h in history[:3]] == ["what arguments does build_gadget take?", "name and size",
                                                   "and what does it return?"]
    answer = [b for b in model_server.bodies() if "Rules:" in system_text(b)][-1]
    assert {"role": "assistant", "content": "name and size"} in answer["messages"]


def test_streaming_with_a_model(api, model_server):
    url, _, _ = api
    model_server.reset()
    model_server.default = Reply(text="Streamed from the model, word by word [1].")
    stream = client(url + "/model", TOKEN).chat.completions.create(
        model="tutoring", stream=True, messages=[{"role": "user", "content": "how do retries work?"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("Streamed from the model, word by word [1].\n\nSources:\n[1] docs/guide.md")


def test_a_streamed_answer_is_written_in_paced_chunks_with_the_same_text(world, tmp_path):
    """Pieces that come faster than server.stream_pace_ms go out merged; with 0, one chunk each."""
    model = LLMServer().start()
    words = [f"word{i} " for i in range(60)]
    model.default = Reply(text="".join(words) + "[1].", token_delay=0.005)
    copilot = make_copilot(world, tmp_path, model)
    url, server, thread = serve_router(api_router(copilot))
    try:
        streams = {}
        for pace in (0, 30):
            copilot.cfg.server.stream_pace_ms = pace
            stream = client(url).chat.completions.create(
                model="tutoring", stream=True, messages=[{"role": "user", "content": "how do retries work?"}])
            streams[pace] = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    finally:
        server.should_exit = True
        thread.join(5)
        model.stop()
    texts = {pace: "".join(parts) for pace, parts in streams.items()}
    assert texts[0] == texts[30] and texts[0].startswith("".join(words) + "[1].\n\nSources:\n[1] docs/guide.md")
    # Unpaced, a piece goes out as soon as the server's loop gets to it: most are a chunk of their own (a loaded
    # machine merges a few that queued while the loop was busy; the text above is the same either way).
    assert sum(1 for c in streams[0] if c in words) >= 30, streams[0]
    # paced: writes at least 30 ms apart over a stream of about 300 ms; all 60 apart would need 1.8 s
    assert 2 <= len(streams[30]) <= 30, streams[30]
    assert len(streams[30]) < len(streams[0]) / 2


def test_sse_merges_only_consecutive_text_chunks():
    def chunk(content=None, finish=None, role=None, **extra):
        delta = ({"content": content} if content is not None else {}) | ({"role": role} if role else {})
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    events = [chunk("", role="assistant"), chunk("a "), chunk("b "), chunk(None, "stop", sources=[]),
              {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
               "usage": {"total_tokens": 3}}, "[DONE]"]
    written = sse(events)
    assert written.endswith("data: [DONE]\n\n") and written.count("data: ") == 5
    sent = [json.loads(line[6:]) for line in written.split("\n\n") if line.startswith("data: {")]
    assert sent == [events[0], chunk("a b "), events[3], events[4]]
    assert events[1]["choices"][0]["delta"]["content"] == "a "  # the chunks given are not changed
    assert sse([chunk("x"), chunk("", role="assistant"), chunk("y")]).count("data: ") == 3


def test_bearer_token_required_when_set(api):
    url, _, _ = api
    with pytest.raises(openai.AuthenticationError):
        client(url + "/model", "wrong").chat.completions.create(
            model="coding", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        client(url + "/model", "wrong").models.list()


def test_unknown_model_oversized_and_malformed_requests_get_clear_errors(api):
    url, _, _ = api
    c = client(url + "/offline")
    with pytest.raises(openai.NotFoundError, match="no assistant 'wizard'"):
        c.chat.completions.create(model="wizard", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError, match="larger than 20,000 bytes") as e:
        c.chat.completions.create(model="coding", messages=[{"role": "user", "content": "x" * 50_000}])
    assert e.value.status_code == 413
    r = httpx.post(url + "/offline/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(url + "/offline/v1/chat/completions", json={"model": "coding", "messages": []})
    assert r.status_code == 400 and "non-empty 'messages'" in r.json()["error"]["message"]
    r = httpx.post(url + "/offline/v1/chat/completions",
                   json={"model": "coding", "messages": [{"role": "user", "content": "   "}]})
    assert r.status_code == 200 and "empty" in r.json()["choices"][0]["message"]["content"]


def post_raw(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "/offline/v1/chat/completions", content=body,
                      headers={"Content-Type": "application/json"}, timeout=30)


def user(content) -> dict:
    return {"model": "coding", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize("body, says", [
    (b'{"model": "coding", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (json.dumps(user([{"type": "text", "text": 5}])).encode(), "'messages[0].content[0].text' must be a string"),
    (json.dumps(user([{"type": "text", "text": "hi"}, "plain"])).encode(),
     "'messages[0].content[1]' must be an object"),
    (json.dumps(user(123)).encode(), "'messages[0].content' must be a string or a list of text parts"),
    (json.dumps(user({"text": "hi"})).encode(), "'messages[0].content' must be a string or a list of text parts"),
    (json.dumps({**user("hi"), "stream": True, "stream_options": "yes"}).encode(),
     "'stream_options' must be an object"),
    (json.dumps({**user("hi"), "stream": "no"}).encode(), "'stream' must be true or false"),
    (json.dumps({"model": "coding", "messages": [{"role": "user", "content": "hi"}, 7]}).encode(),
     "'messages[1]' must be an object"),
    (json.dumps({"model": 5, "messages": [{"role": "user", "content": "hi"}]}).encode(), "'model' must be a string"),
    (b'{"model": "coding", "messages": [{"role": "user", "content": "why \\ud800 here?"}]}',
     "not valid Unicode"),
])
def test_malformed_fields_are_a_400_with_one_sentence(api, body, says):
    url, _, _ = api
    r = post_raw(url, body)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    message = r.json()["error"]["message"]
    assert says in message and message.endswith("."), message
    assert "Error" not in message  # no internal exception name leaks


def test_a_lone_surrogate_is_refused_not_answered_with_an_internal_error(api):
    url, _, _ = api
    body = b'{"model": "coding", "messages": [{"role": "user", "content": "what is \\udc80?"}]}'
    assert b"\\udc80" in body
    r = post_raw(url, body)
    assert r.status_code == 400 and "TypeError" not in r.text


def test_a_message_over_the_length_limit_is_a_4xx(api, monkeypatch):
    url, offline, _ = api
    monkeypatch.setattr(offline.cfg.chat, "max_message_chars", 500)
    r = post_raw(url, json.dumps(user("how do retries work? " * 40)).encode())
    assert r.status_code == 400 and "limit is 500" in r.json()["error"]["message"]
    r = post_raw(url, json.dumps({"model": "coding", "stream": True, "messages": [
        {"role": "user", "content": "x" * 600}]}).encode())
    assert r.status_code == 400


def test_stream_false_and_true_are_taken_as_given(api):
    url, _, _ = api
    r = post_raw(url, json.dumps({**user("how do retries work?"), "stream": False}).encode())
    assert r.status_code == 200 and r.json()["object"] == "chat.completion"
    r = post_raw(url, json.dumps({**user("how do retries work?"), "stream": True,
                                  "stream_options": {"include_usage": True}}).encode())
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")


def test_more_streams_than_the_shared_worker_threads_are_answered_at_once(world, tmp_path):
    """45 turns wait on their model together: each model call is held until all 45 have arrived,
    which only happens if the server runs more turns at once than its 40 shared worker threads."""
    n = 45
    barrier = threading.Barrier(n, timeout=30)

    def hold(body: dict) -> Reply:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return Reply(status=500, error_message="the turns were not all running at once")
        return Reply(text="All together now [1].")

    model = LLMServer().start()
    model.default = hold
    copilot = make_copilot(world, tmp_path, model, timeout_s=60)
    url, server, thread = serve_router(api_router(copilot))
    answers: list[str] = []

    def ask(i: int) -> None:
        stream = client(url).chat.completions.create(
            model="tutoring", stream=True, messages=[{"role": "user", "content": f"how do retries work? ({i})"}])
        answers.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))

    try:
        askers = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
        for t in askers:
            t.start()
        for t in askers:
            t.join(90)
    finally:
        server.should_exit = True
        thread.join(5)
        model.stop()
    assert len(answers) == n and all(a.startswith("All together now [1].") for a in answers), answers[:3]


def test_a_client_that_goes_away_stops_the_model_stream(world, tmp_path):
    model = LLMServer().start()
    model.default = Reply(text=" ".join(f"word{i}" for i in range(60)) + " [1].", token_delay=0.05)
    copilot = make_copilot(world, tmp_path, model)
    url, server, thread = serve_router(api_router(copilot))
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", timeout=30, json={
                "model": "tutoring", "stream": True, "messages": [{"role": "user", "content": "how do retries work?"}]
        }) as response:
            for line in response.iter_lines():
                if "word0" in line:
                    break  # and hang up
        # the copilot closed its model stream when the client left: the model server's next write failed
        assert model.hung_up.wait(30), "the model kept streaming to the copilot after its client left"
        assert model.pieces_sent < 40
    finally:
        server.should_exit = True
        thread.join(5)
        model.stop()
