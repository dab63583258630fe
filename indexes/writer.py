"""One writer per data dir, and the server that does the writing while it runs.

**The writer lock.** Every ingest and forget holds `writer.lock` in the data dir (an exclusive
`flock`), so two never write at once: a second one waits (saying for whom) or, asked not to wait,
refuses in one sentence. The kernel drops the lock when its process dies, however it dies, so
"is someone writing now?" always has a true answer: `holder()` asks the lock, not a pid file.
The lock is re-entrant within a process (an ingest inside a job that holds it does not deadlock);
threads of one process take turns.

**The serving process.** A store embedded in a folder (Chroma, Qdrant's local mode) must not be
written by one process while another serves from it: Chroma's reader keeps its vector index in
memory and never sees (or worse, half-sees) what another process wrote, and Qdrant's local mode
refuses a second process outright. So while `devcopilot serve` runs it registers itself here
(`server.lock` held for its lifetime, `server.json` saying where it listens and a token for this
machine's users), and `devcopilot ingest` / `forget` hand their work to it: the server is then
the only process that opens the store, and it sees its own writes at once.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCK = "writer.lock"
SERVER_LOCK = "server.lock"
SERVER_INFO = "server.json"
WAIT_POLL_S = 0.05  # how often a cancellable wait for the lock looks at `cancelled()`


class WriterBusy(RuntimeError):
    """Another process (or job) is writing the data dir and the caller asked not to wait."""


class Cancelled(Exception):
    """The caller gave up (its `cancelled()` said so) while waiting for the lock: nothing was written.
    Index jobs (indexes/jobs.py) raise it too when asked to stop."""


@dataclass
class Holder:
    pid: int
    what: str  # e.g. "devcopilot ingest /src/docs into 'default'"
    since: float

    def describe(self) -> str:
        return f"{self.what} (pid {self.pid}, since {time.strftime('%H:%M:%S', time.localtime(self.since))})"


class _ProcessLock:
    """The process's side of one data dir's lock: a thread lock, and the flock held by the outermost user."""

    def __init__(self):
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_locks: dict[str, _ProcessLock] = {}
_locks_guard = threading.Lock()


def _process_lock(data_dir: Path) -> _ProcessLock:
    key = str(Path(data_dir).resolve())
    with _locks_guard:
        return _locks.setdefault(key, _ProcessLock())


def busy_sentence(holder: Holder | None) -> str:
    who = holder.describe() if holder else "another process"
    return (f"Another ingest is writing this data dir: {who}; try again when it finishes, or leave out "
            "--no-wait to wait for it.")


@contextmanager
def writing(data_dir: Path, what: str, wait: bool = True, on_wait: Callable[[Holder | None], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold the data dir's writer lock for the block. With `wait`, wait for the current writer
    (calling `on_wait` once with who it is); without, raise WriterBusy at once. With `cancelled`,
    the wait looks at it every few hundredths of a second and, once it says True, raises
    Cancelled (an index job asked to stop must not wait for another writer to finish)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    pl = _process_lock(data_dir)
    if not pl.thread_lock.acquire(blocking=False):  # another thread of this process writes
        if not wait:
            raise WriterBusy(busy_sentence(holder(data_dir)))
        if on_wait:
            on_wait(holder(data_dir))
        if cancelled is None:
            pl.thread_lock.acquire()
        else:
            while not pl.thread_lock.acquire(timeout=WAIT_POLL_S):
                if cancelled():
                    raise Cancelled()
    try:
        if pl.depth == 0:
            pl.fd = _flock(data_dir, what, wait, on_wait, cancelled)
        pl.depth += 1
        try:
            yield
        finally:
            pl.depth -= 1
            if pl.depth == 0 and pl.fd is not None:
                fd, pl.fd = pl.fd, None
                try:
                    os.ftruncate(fd, 0)
                finally:
                    os.close(fd)  # closing releases the flock
    finally:
        pl.thread_lock.release()


def _flock(data_dir: Path, what: str, wait: bool, on_wait: Callable[[Holder | None], None] | None,
           cancelled: Callable[[], bool] | None) -> int:
    """Take the lock file's flock (waiting for another process as `writing` says) and sign it; the open fd."""
    fd = os.open(data_dir / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if not _try_flock(fd):
            current = _read_holder(data_dir / LOCK)
            if not wait:
                raise WriterBusy(busy_sentence(current)) from None
            if on_wait:
                on_wait(current)
            if cancelled is None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
            else:
                while not _try_flock(fd):  # each try takes a few hundredths of a second
                    if cancelled():
                        raise Cancelled()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "what": what, "since": time.time()}).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_flock(fd: int) -> bool:
    """Take the exclusive lock if it is free. A few quick tries: `holder()` probes with a shared lock
    for a moment, which must not pass for a writer."""
    for _ in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.01)
    return False


def holder(data_dir: Path) -> Holder | None:
    """Who writes the data dir now, or None. Asks the lock itself, so a killed writer is never reported."""
    path = Path(data_dir) / LOCK
    pl = _process_lock(Path(data_dir))
    if pl.fd is not None:  # this process holds it (a probe below would succeed: flock is per open file)
        return _read_holder(path)
    if not _held(path):
        return None
    return _read_holder(path) or Holder(0, "another process", time.time())


def _held(path: Path) -> bool:
    """True when another open file holds an exclusive flock on `path` (probed with a shared lock, which
    never blocks a writer's exclusive attempt for longer than the probe)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_holder(path: Path) -> Holder | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(int(info["pid"]), str(info["what"]), float(info["since"])) if info else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- the serving process -------------------------------------------------------------------------

@dataclass
class ServerInfo:
    pid: int
    url: str  # where this machine reaches it, e.g. http://127.0.0.1:7860
    token: str  # a secret for this machine's users (server.json is readable by its owner only)


class Registration:
    """Held by `devcopilot serve` for its lifetime: the data dir's commands find it and hand it their writes."""

    def __init__(self, data_dir: Path, url: str):
        self.data_dir = Path(data_dir)
        self.token = secrets.token_urlsafe(24)
        self.url = url
        self.fd: int | None = None

    def __enter__(self) -> Registration:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / SERVER_LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another server serves this data dir and takes the writes
            os.close(fd)
            return self
        self.fd = fd
        info = self.data_dir / SERVER_INFO
        tmp = info.with_name(f".{SERVER_INFO}.{os.getpid()}")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "url": self.url, "token": self.token}, f)
        os.replace(tmp, info)
        return self

    @property
    def registered(self) -> bool:
        return self.fd is not None

    def __exit__(self, *exc):
        if self.fd is not None:
            try:
                (self.data_dir / SERVER_INFO).unlink(missing_ok=True)
            finally:
                os.close(self.fd)
                self.fd = None


def running_server(data_dir: Path) -> ServerInfo | None:
    """The `devcopilot serve` registered on this data dir and alive, or None."""
    if not _held(Path(data_dir) / SERVER_LOCK):
        return None
    try:
        info = json.loads((Path(data_dir) / SERVER_INFO).read_text(encoding="utf-8"))
        return ServerInfo(int(info["pid"]), str(info["url"]), str(info["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
