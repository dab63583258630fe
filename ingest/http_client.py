"""The HTTP client docs websites are fetched with (ingest/website.py): connections made to the address the
outbound policy checked, and a time limit that holds for a whole response.

httpx takes no resolver of its own, but its connection pool (httpcore) takes a network backend: this
one resolves the host, checks every address with the policy (ingest/outbound.py) and connects to the
address it checked, so a name that answers differently the second time (DNS rebinding) reaches
nothing new, and every redirect hop, being a new connection, is checked too. TLS still verifies the
certificate against the URL's host name (httpcore gives the name, not the address, as SNI).

httpx's timeouts hold for each read; a server that drips a byte a second never trips them. So every
connect, read and write of a thread inside `time_limit(until)` waits at most until then, and the
response ends with TimeLimit once it has passed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from ingest.outbound import Outbound

_limit = threading.local()


class TimeLimit(Exception):
    """The time limit of `time_limit` passed before the response was read."""


@contextmanager
def time_limit(until: float) -> Iterator[None]:
    """Every connect, read and write this thread makes inside the block ends by `until` (time.monotonic())."""
    before = getattr(_limit, "until", None)
    _limit.until = until
    try:
        yield
    finally:
        _limit.until = before


def _waiting(timeout: float | None) -> tuple[float | None, bool]:
    """(how long a socket operation may wait, whether the time limit is what bounds it); TimeLimit when
    the limit has passed."""
    until = getattr(_limit, "until", None)
    if until is None:
        return timeout, False
    left = until - time.monotonic()
    if left <= 0:
        raise TimeLimit()
    return (left, True) if timeout is None or left < timeout else (timeout, False)


def _within(operation, timeout: float | None, *args, **kwargs):
    wait, bounded = _waiting(timeout)
    try:
        return operation(*args, timeout=wait, **kwargs)
    except (httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout):
        if bounded:
            raise TimeLimit() from None
        raise


class LimitedStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the thread's time limit."""

    def __init__(self, inner: httpcore.NetworkStream):
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _within(self.inner.read, timeout, max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _within(self.inner.write, timeout, buffer)

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return LimitedStream(_within(self.inner.start_tls, timeout, ssl_context, server_hostname))

    def get_extra_info(self, info: str):
        return self.inner.get_extra_info(info)


class CheckedBackend(httpcore.NetworkBackend):
    """Connects to an address the policy allowed (`outbound`; None: the operator's, unchecked), within
    the thread's time limit."""

    def __init__(self, outbound: Outbound | None):
        self.outbound = outbound
        self.plain = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        if self.outbound is None:
            return LimitedStream(_within(self.plain.connect_tcp, timeout, host, port,
                                                local_address=local_address, socket_options=socket_options))
        addresses = self.outbound.addresses(host, port, "http")  # OutboundRefused when one is not allowed
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve the host '{host}'")
        failed: Exception | None = None
        for address in addresses:  # each in turn, as socket.create_connection tries a name's addresses
            try:
                stream = _within(self.plain.connect_tcp, timeout, str(address), port, local_address=local_address,
                                 socket_options=socket_options)
                return LimitedStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                failed = e
        raise failed  # type: ignore[misc]

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("docs websites are fetched over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Transport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that connects through `backend`.

    HTTPTransport builds its pool without a way to give it a network backend, so this builds the pool
    itself, with httpx's default limits; the rest (requests, responses, errors) is HTTPTransport's."""

    def __init__(self, backend: httpcore.NetworkBackend):  # not super().__init__: it would build its own pool
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend)


def client(outbound: Outbound | None, timeout_s: float, headers: dict[str, str]) -> httpx.Client:
    """An httpx client whose connections go through CheckedBackend. With a policy, no proxy is used (a
    proxy would connect where the policy cannot see); the operator's fetches (None) keep the proxies
    of the environment, as httpx reads them."""
    return httpx.Client(transport=_Transport(CheckedBackend(outbound)), timeout=timeout_s, follow_redirects=True,
                        headers=headers, trust_env=outbound is None)
