"""Real processes for the live re-index tests and bench: `devcopilot serve`, a loop of chat requests
against it, and `devcopilot` commands run beside it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from support.servers import free_port

BIN = Path(sys.executable).parent
FAILED_WORDS = ("can't search the knowledge base", "Something went wrong", "went wrong")


def env() -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
    out.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false",
               GRADIO_ANALYTICS_ENABLED="False")
    return out


def devcopilot(data: Path, *args: str, config: Path | None = None, timeout: float = 600,
               check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "devcopilot"), "--data-dir", str(data)] + (["--config", str(config)] if config else [])
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env())
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def start(data: Path, *args: str, config: Path | None = None) -> subprocess.Popen:
    """A command started as from a terminal, where Ctrl+C (SIGINT) stops it: a suite run in the background
    by a shell without job control (`make test &`) has SIGINT ignored, and a child would inherit that."""
    cmd = [str(BIN / "devcopilot"), "--data-dir", str(data)] + (["--config", str(config)] if config else [])
    return subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            preexec_fn=_interruptible)


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def request(url: str, body: dict | None = None, token: str = "", method: str | None = None,
            timeout: float = 60) -> tuple[int, dict | str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read().decode(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


class Server:
    """`devcopilot serve` on a free port, as a real process."""

    def __init__(self, data: Path, config: Path | None = None, *extra: str):
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Its output goes to a file beside the data dir: a pipe nobody reads would fill and stop it.
        self.log = data.parent / f"serve-{self.port}.log"
        cmd = [str(BIN / "devcopilot"), "--data-dir", str(data)] + (["--config", str(config)] if config else [])
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd + ["serve", "--port", str(self.port), *extra], stdout=out,
                                         stderr=subprocess.STDOUT, text=True, env=env())

    def __enter__(self) -> Server:
        from indexes.writer import running_server

        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    # Answering, and registered on the data dir (with --workers, once the first
                    # worker is ready): from then on commands hand it their writes.
                    if running_server(self.data) is not None:
                        return self
                    raise OSError("not registered yet")
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not start") from None
                time.sleep(0.3)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def ask(self, question: str, model: str = "tutoring", token: str = "") -> tuple[int, dict | str]:
        return request(self.url + "/v1/chat/completions",
                       {"model": model, "messages": [{"role": "user", "content": question}]}, token)


@dataclass
class Answer:
    at: float  # when the answer arrived (time.time())
    question: str
    ok: bool
    text: str
    paths: list[str]


@dataclass
class ChatLoop:
    """Threads asking the server questions in a loop until stopped; every answer is kept."""
    server: Server
    questions: list[tuple[str, str]]  # (model, question)
    threads: int = 2
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._answered = threading.Condition()  # notified at each answer kept
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]

    def _run(self, i: int) -> None:
        n = i
        while not self._stop.is_set():
            model, q = self.questions[n % len(self.questions)]
            n += 1
            try:
                status, body = self.server.ask(q, model)
            except OSError as e:
                self._keep(Answer(time.time(), q, False, f"{type(e).__name__}: {e}", []))
                continue
            if status != 200 or not isinstance(body, dict):
                self._keep(Answer(time.time(), q, False, f"HTTP {status}: {body}", []))
                continue
            text = body["choices"][0]["message"]["content"]
            ok = not any(w in text for w in FAILED_WORDS)
            self._keep(Answer(time.time(), q, ok, text, [s["path"] for s in body.get("sources", [])]))

    def _keep(self, answer: Answer) -> None:
        with self._answered:
            self.answers.append(answer)
            self._answered.notify_all()

    def __enter__(self) -> ChatLoop:
        for t in self._workers:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._workers:
            t.join(60)

    def failed(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def first_citing(self, path: str, question: str, after: float) -> float | None:
        for a in sorted(self.answers, key=lambda a: a.at):
            if a.at >= after and a.question == question and path in a.paths:
                return a.at
        return None

    def wait_until(self, condition: Callable[[list[Answer]], bool], timeout: float = 60) -> bool:
        """Whether condition(answers so far) became true within `timeout` s; checked at each new answer."""
        with self._answered:
            return self._answered.wait_for(lambda: condition(self.answers), timeout)

    def wait_for(self, path: str, question: str, after: float, timeout: float = 60) -> float | None:
        """When the first answer to `question` citing `path` arrived after `after`; None if none within `timeout` s."""
        self.wait_until(lambda _: self.first_citing(path, question, after) is not None, timeout)
        return self.first_citing(path, question, after)
