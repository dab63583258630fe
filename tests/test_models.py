"""Chat-model backends over real HTTP: the OpenAI-compatible one (requests) and the real `dashscope` SDK,
both against the local test model server."""
from __future__ import annotations

import json

import pytest
from support.llm_server import LLMServer, Reply

from copilot.config import load_config
from copilot.models import ModelUnavailable, StreamCut, describe_chat_model, make_model
from copilot.monitor import Monitor

USER = [{"role": "user", "content": "How do retries work?"}]


@pytest.fixture(scope="module")
def llm():
    server = LLMServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean(llm):
    llm.reset()


def model_for(llm, tmp_path, provider="openai", process_environment=False, **chat):
    """A model on the test server; with `process_environment`, the settings read this process's variables."""
    url = llm.url if provider == "openai" else llm.dashscope_url
    cfg = load_config(env=None if process_environment else {}, overrides={"data_dir": str(tmp_path / "data"), "chat": {
        "provider": provider, "base_url": url, "api_key": "sk-secret-key-1234567890", "model": "main-model",
        "timeout_s": 2, "backoff_s": 0.01, **chat}})
    waits: list[float] = []
    monitor = Monitor(cfg)
    model = make_model(cfg, monitor)
    model.sleep = waits.append  # record the backoff instead of sleeping it
    return model, monitor, waits


@pytest.mark.parametrize("provider", ["openai", "dashscope"])
def test_streams_tokens_and_records_usage(llm, tmp_path, provider):
    model, monitor, _ = model_for(llm, tmp_path, provider)
    llm.script(Reply(text="Retries use exponential backoff [1].", prompt_tokens=42))
    deltas = list(model.stream(USER, assistant="Tutoring"))
    texts = [d.text for d in deltas if d.text]
    assert len(texts) > 3 and "".join(texts) == "Retries use exponential backoff [1]."
    body = llm.bodies(provider)[0]
    assert body["messages"][-1]["content"] == "How do retries work?" and body["stream"]
    f = monitor.figures()
    assert f["models"]["main-model"]["input_tokens"] == 42
    assert f["models"]["main-model"]["output_tokens"] == len(texts)
    assert f["assistants"]["Tutoring"]["calls"] == 1 and f["models"]["main-model"]["estimated_calls"] == 0


@pytest.mark.parametrize("provider", ["openai", "dashscope"])
def test_429_honours_retry_after(llm, tmp_path, provider):
    model, monitor, waits = model_for(llm, tmp_path, provider)
    llm.script(Reply(status=429, retry_after=7), Reply(text="after the wait"))
    assert model.complete(USER, assistant="Coding") == "after the wait"
    assert waits == [7.0]
    assert len(llm.requests) == 2 and monitor.figures()["counters"]["model_retries"] == 1


def test_500_is_retried_with_backoff_then_gives_up(llm, tmp_path):
    model, _, waits = model_for(llm, tmp_path, max_retries=2)
    llm.script(Reply(status=500), Reply(text="recovered"))
    assert model.complete(USER, assistant="Coding") == "recovered"
    llm.script(*[Reply(status=500)] * 3)
    with pytest.raises(ModelUnavailable, match="500"):
        model.complete(USER, assistant="Coding")
    assert waits == [0.01, 0.01, 0.02]  # exponential backoff from backoff_s


def test_client_errors_are_not_retried(llm, tmp_path):
    model, _, waits = model_for(llm, tmp_path)
    llm.script(Reply(status=401))
    with pytest.raises(ModelUnavailable, match="401"):
        model.complete(USER, assistant="Coding")
    assert waits == [] and len(llm.requests) == 1


@pytest.mark.parametrize("provider", ["openai", "dashscope"])
def test_a_hang_past_the_timeout_is_retried(llm, tmp_path, provider):
    model, _, waits = model_for(llm, tmp_path, provider, timeout_s=2)
    llm.script(Reply(delay=6, text="too late"), Reply(text="in time"))
    assert model.complete(USER, assistant="Coding") == "in time"
    assert len(waits) == 1 and len(llm.requests) == 2


def test_fallback_model_after_the_main_one_keeps_failing(llm, tmp_path):
    model, monitor, _ = model_for(llm, tmp_path, max_retries=1, fallback_model="small-model")
    llm.rule(lambda b: b["model"] == "main-model", Reply(status=503))
    llm.rule(lambda b: b["model"] == "small-model", Reply(text="from the fallback"))
    assert model.complete(USER, assistant="Coding") == "from the fallback"
    assert [b["model"] for b in llm.bodies()] == ["main-model", "main-model", "small-model"]
    assert "small-model" in monitor.figures()["models"]


@pytest.mark.parametrize("provider", ["openai", "dashscope"])
def test_stream_cut_keeps_what_came(llm, tmp_path, provider):
    model, _, _ = model_for(llm, tmp_path, provider)
    llm.script(Reply(text="one two three four five", cut_after=2))
    got = []
    with pytest.raises(StreamCut) as e:
        for d in model.stream(USER, assistant="Coding"):
            got.append(d.text)
    assert e.value.partial == "one two " == "".join(got)
    assert len(llm.requests) == 1  # no retry once text was shown


def test_connection_refused_is_a_clear_failure(tmp_path):
    cfg = load_config(env={}, overrides={"data_dir": str(tmp_path), "chat": {
        "provider": "openai", "base_url": "http://127.0.0.1:9/v1", "max_retries": 1, "backoff_s": 0.01}})
    model = make_model(cfg)
    model.sleep = lambda s: None
    with pytest.raises(ModelUnavailable, match="could not reach"):
        model.complete(USER, assistant="Coding")


def test_usage_counted_locally_when_the_api_gives_none(llm, tmp_path):
    model, monitor, _ = model_for(llm, tmp_path)
    llm.script(Reply(text="a reply without usage figures", usage=False))
    model.complete(USER, assistant="Guide")
    row = monitor.figures()["models"]["main-model"]
    assert row["estimated_calls"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] > 0


@pytest.mark.parametrize("provider", ["openai", "dashscope"])
def test_tool_calls_come_back_whole(llm, tmp_path, provider):
    model, _, _ = model_for(llm, tmp_path, provider)
    llm.script(Reply(text="", tool_calls=[{"name": "find_definition", "arguments": '{"symbol": "Runner.run"}'}]))
    tools = [{"type": "function", "function": {"name": "find_definition", "parameters": {"type": "object"}}}]
    final = list(model.stream(USER, assistant="Coding", tools=tools))[-1]
    assert [(t.name, t.arguments) for t in final.tool_calls] == [("find_definition", '{"symbol": "Runner.run"}')]
    assert llm.bodies()[0]["tools"][0]["function"]["name"] == "find_definition"


def test_backend_chosen_from_the_environment_and_keys_redacted(tmp_path):
    base = {"data_dir": str(tmp_path)}
    assert load_config(env={}, overrides=base).chat.provider == "offline"
    c = load_config(env={"OPENAI_API_KEY": "sk-abcdefghijklmnop1234"}, overrides=base)
    assert c.chat.provider == "openai" and c.chat.api_key == "sk-abcdefghijklmnop1234"
    line = describe_chat_model(c)
    assert "gpt-4o-mini" in line and "sk-abcdefghijklmnop1234" not in line
    c = load_config(env={"DASHSCOPE_API_KEY": "ds-abcdefghijklmnop1234"}, overrides=base)
    assert c.chat.provider == "dashscope" and "qwen" in describe_chat_model(c)
    c = load_config(env={"DEVCOPILOT_CHAT_BASE_URL": "http://127.0.0.1:11434/v1", "DEVCOPILOT_CHAT_MODEL": "llama3"},
                    overrides=base)
    assert c.chat.provider == "openai" and "llama3" in describe_chat_model(c)
    assert "offline" in describe_chat_model(load_config(env={}, overrides=base))


def test_an_optional_feature_the_server_rejects_is_dropped(llm, tmp_path):
    model, _, waits = model_for(llm, tmp_path)
    llm.rule(lambda b: "stream_options" in b,
             Reply(status=400, error_message="Unrecognized request argument supplied: stream_options"))
    llm.default = Reply(text="fine without it")
    assert model.complete(USER, assistant="Coding") == "fine without it"
    assert ["stream_options" in b for b in llm.bodies()] == [True, False] and waits == []


def test_the_stream_is_read_to_its_end_so_the_next_call_reuses_the_connection(llm, tmp_path):
    model, monitor, _ = model_for(llm, tmp_path)
    llm.script(Reply(text="first answer"), Reply(text="second answer"))
    for expected in ("first answer", "second answer"):
        deltas = list(model.stream(USER, assistant="Coding"))
        assert "".join(d.text for d in deltas) == expected
        assert deltas[-1].finish == "stop" and deltas[-1].usage is not None
    assert len(llm.requests) == 2
    assert llm.requests[0]["peer"] == llm.requests[1]["peer"]  # same client port: one connection


def test_calls_answered_at_once_keep_their_connections_for_the_next_ones(llm, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    model, _, _ = model_for(llm, tmp_path)
    llm.default = Reply(text="a b c d e", token_delay=0.02)
    for _wave in range(2):
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: model.complete(USER, assistant="Coding"), range(16)))
        assert answers == ["a b c d e"] * 16
    assert len(llm.requests) == 32
    # the second wave reused the first wave's connections (a pool of 10 would have dropped 6 of them)
    assert len({r["peer"] for r in llm.requests}) <= 16


def test_a_stream_sent_without_chunks_still_arrives_piece_by_piece(tmp_path):
    """Some servers send server-sent events with no chunked encoding, until they close the
    connection: the first piece must reach the caller while the server still holds the rest."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()
    waited: list[bool] = []

    def event(text: str) -> bytes:
        return f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': text}}]})}\n\n".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(event("first "))
            self.wfile.flush()
            waited.append(release.wait(10))  # True: the caller had the first piece before we gave up
            self.wfile.write(event("second") + b"data: [DONE]\n\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = load_config(env={}, overrides={"data_dir": str(tmp_path), "chat": {
            "provider": "openai", "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1", "timeout_s": 30}})
        deltas = make_model(cfg).backend.stream(USER)
        assert next(deltas).text == "first "
        release.set()
        assert [d.text for d in deltas if d.text] == ["second"]
    finally:
        release.set()
        server.shutdown()
    assert waited == [True]


def test_the_environments_proxy_carries_the_calls_and_no_proxy_is_honoured(llm, tmp_path, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", llm.url.rsplit("/v1", 1)[0])  # the test server, acting as the proxy
    nowhere = "http://127.0.0.1:9/v1"  # nothing listens there
    model, _, _ = model_for(llm, tmp_path, process_environment=True, base_url=nowhere, max_retries=0)
    llm.default = Reply(text="Through the proxy.")
    assert model.complete(USER, assistant="Tutoring") == "Through the proxy."
    assert llm.requests[-1]["path"] == nowhere + "/chat/completions"  # asked of the proxy, for that URL
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct, _, _ = model_for(llm, tmp_path, process_environment=True, base_url=nowhere, max_retries=0)
    with pytest.raises(ModelUnavailable, match="could not reach the model server"):
        direct.complete(USER, assistant="Tutoring")  # straight to the address, where nobody answers
    assert len(llm.requests) == 1
