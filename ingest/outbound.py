"""Where the server may fetch from for its doors: public addresses only, unless the operator opts in.

The server fetches URLs that callers of its doors name (the Knowledge tab, the Knowledge API, and the
sync of sources added there): a docs website, a git repository. Unchecked, a caller could make the
server read what only the server can reach (an admin page on loopback, a cloud's metadata service at
169.254.169.254, a service on the private network) and read it back through the chat's citations.

So a URL's host is resolved once and refused when ANY of its addresses is not public: loopback,
link-local, private, unspecified, multicast, reserved, one of this machine's own addresses, or one of
those wrapped in an IPv6 form (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64). A spelling of an
address (2130706433, 0x7f000001, 0177.0.0.1, 127.1, 0) is whatever the resolver makes of it: the check
reads what the resolver answers, as the connection would. The connection is then made to the address
checked (ingest/http_client.py for websites, git's options in ingest/sources.py), so a name that
answers differently the second time (DNS rebinding) gains nothing.

`server.fetch_allow` opens what the operator wants fetched: host names (exactly) and networks. A
network opens the private addresses in it, never this machine itself (loopback or its own addresses):
those are opened only by naming them exactly (the host name or the address). ssh logs in with the
server's own keys, so ssh URLs are fetched only from hosts fetch_allow opens.

The command line, run by the operator, fetches what it is told: it passes no policy (None).
"""
from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ingest.errors import SourceError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "server.fetch_allow"
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}
TRANSPORTS = {"http": "http", "https": "https", "git": "git", "ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh"}
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(\[[^\]]*\]|[^/:\[]+):")  # git's `user@host:path`: ssh
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
OWN_ADDRESSES_TTL_S = 30.0  # interfaces come and go; reading them again costs little


class OutboundRefused(SourceError):
    """A fetch the server may not make for its doors; the message says which setting opens it."""


@dataclass(frozen=True)
class Endpoint:
    """Where a URL connects: its transport (http, https, git, ssh, or another that is refused), host, port."""
    transport: str
    host: str  # lowercased, without brackets or a trailing dot
    port: int


def endpoint(url: str) -> Endpoint | None:
    """Where `url` connects to; None for what reads this machine's files (a path, a file: URL)."""
    url = url.strip()
    helper = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)::", url)  # git's `transport::address` (ext::, fd::)
    if helper:
        return Endpoint(helper.group(1).lower() + "::", "", 0)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if scheme:
        name = scheme.group(1).lower()
        if name == "file":
            return None
        transport = TRANSPORTS.get(name)
        if transport is None:
            return Endpoint(name, "", 0)
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:  # a port that is not a number: nothing can connect there
            port = None
        return Endpoint(transport, _plain_host(parts.hostname or ""), port or DEFAULT_PORTS[transport])
    m = _SCP_LIKE.match(url)
    if m and "/" not in url.split(":", 1)[0]:
        return Endpoint("ssh", _plain_host(m.group(1)), DEFAULT_PORTS["ssh"])
    return None


def _plain_host(host: str) -> str:
    # %-escapes decoded: an IPv6 zone is written `%25` in a URL (`[fe80::1%25eth0]`); the resolver reads `%eth0`.
    return unquote(host).strip().strip("[]").lower().rstrip(".")


def resolve(host: str, port: int | None = None) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order, as a connection would resolve it
    (numeric spellings included); [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        try:  # an address with a zone the resolver does not know (`::1%lo`): still that address
            return [ipaddress.ip_address(host.split("%")[0])] if "%" in host else []
        except ValueError:
            return []
    out: list[Address] = []
    for info in infos:
        try:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        except ValueError:
            continue
        if address not in out:
            out.append(address)
    return out


# -- this machine ---------------------------------------------------------------------------------
_own: tuple[float, frozenset[Address]] = (0.0, frozenset())
_own_lock = threading.Lock()


def own_addresses() -> frozenset[Address]:
    """This machine's own addresses: its interfaces' (from /proc, no extra dependency) and what its
    host names resolve to. Read again every OWN_ADDRESSES_TTL_S."""
    global _own
    with _own_lock:
        at, known = _own
        if time.monotonic() - at < OWN_ADDRESSES_TTL_S and known:
            return known
        found: set[Address] = set(_interface_addresses())
        for name in {socket.gethostname(), socket.getfqdn()}:
            found.update(resolve(name))
        _own = (time.monotonic(), frozenset(found))
        return _own[1]


def _interface_addresses() -> list[Address]:
    """IPv4: the `/32 host LOCAL` entries of /proc/net/fib_trie; IPv6: /proc/net/if_inet6."""
    out: list[Address] = []
    try:
        last = None
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            m = re.match(r"^[\s|+`-]*-- (\d+\.\d+\.\d+\.\d+)\s*$", line)
            if m:
                last = m.group(1)
            elif last and line.strip().startswith("/32 host LOCAL"):
                out.append(ipaddress.IPv4Address(last))
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0] if line.split() else ""
            if len(raw) == 32:
                out.append(ipaddress.IPv6Address(int(raw, 16)))
    except (OSError, ValueError):
        pass
    return out


def _unwrapped(address: Address) -> tuple[list[Address], bool]:
    """(the IPv4 addresses an IPv6 address carries, whether it is only a translation of them): an
    IPv4-mapped, IPv4-compatible or NAT64 address connects to its IPv4 address; 6to4 and Teredo
    addresses carry one (or two) but are addresses of their own too."""
    if address.version == 4:
        return [], False
    value = int(address)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped], True
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d, the deprecated IPv4-compatible form
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)], True
    if address in _NAT64:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)], True
    if address.sixtofour is not None:
        return [address.sixtofour], False
    if address.teredo is not None:
        return list(address.teredo), False
    return [], False


def is_this_machine_address(address: Address) -> bool:
    """Loopback, unspecified (0.0.0.0 and :: connect here) or one of this machine's own addresses,
    also when wrapped in an IPv6 form."""
    inner, only = _unwrapped(address)
    return any(a.is_loopback or a.is_unspecified or a in own_addresses() for a in inner + ([] if only else [address]))


def reaches_this_machine(host: str) -> bool:
    """True for every name and spelling that reaches this machine: localhost, 127.1, 2130706433, ::1,
    0.0.0.0, its host names, an /etc/hosts alias of it, its own addresses."""
    host = _plain_host(host)
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost", "0.0.0.0", "::"):
        return True
    return any(is_this_machine_address(a) for a in resolve(host))


def not_public(address: Address) -> str:
    """Why the server may not connect to `address` for its doors ('' when it is public)."""
    if is_this_machine_address(address):
        return "this machine" + (" (loopback)" if _loopback(address) else "")
    inner, only = _unwrapped(address)
    for a in inner + ([] if only else [address]):
        if a.is_link_local:
            return "a link-local address"
        if a.is_multicast:
            return "a multicast address"
        if a.is_private:
            return "a private address"
        if a.is_reserved:
            return "a reserved address"
        if not a.is_global:
            return "not a public address"
    return ""


def _loopback(address: Address) -> bool:
    inner, _ = _unwrapped(address)
    return any(a.is_loopback for a in [address, *inner])


# -- the policy -----------------------------------------------------------------------------------
def parse_allow(entries: list[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    """(host names, networks) of `server.fetch_allow`; ValueError naming an entry that is neither.
    An address alone ("10.0.0.5") is a network of one address."""
    hosts, networks = set(), []
    for entry in entries:
        text = entry.strip()
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = _plain_host(text)
        if not HOST_NAME.match(name):
            raise ValueError(entry)
        hosts.add(name)
    return frozenset(hosts), tuple(networks)


@dataclass(frozen=True)
class Outbound:
    """The rule for the fetches the server makes for its doors; `server.fetch_allow` opens more."""
    hosts: frozenset[str] = frozenset()  # host names allowed whatever they resolve to
    networks: tuple[Network, ...] = ()  # networks allowed (an address alone: that one)

    @classmethod
    def from_settings(cls, fetch_allow: list[str] | None) -> Outbound:
        hosts, networks = parse_allow(list(fetch_allow or []))
        return cls(hosts, networks)

    def check_url(self, url: str) -> list[Address]:
        """The addresses `url` may be fetched from ([] when it reads local files or its host does not
        resolve: nothing to connect to), or OutboundRefused saying why not and how to allow it."""
        where = endpoint(url)
        if where is None:
            return []
        if where.transport not in DEFAULT_PORTS:
            raise OutboundRefused(f"'{url}' uses a transport ({where.transport.rstrip(':')}) the server does not "
                                  "fetch over for its doors; give an https, http, git or ssh URL, or index it from "
                                  "the command line.")
        if not where.host:
            raise OutboundRefused(f"'{url}' names no host; give the full URL of the site or repository.")
        if url.split("/", 3)[2 if "://" in url else 0].count("@") > 1:  # parsers disagree on where its host is
            raise OutboundRefused(f"'{url}' has more than one '@' before its host; give a plain URL.")
        return self.addresses(where.host, where.port, where.transport, shown=url)

    def addresses(self, host: str, port: int, transport: str = "https", shown: str = "") -> list[Address]:
        """The addresses `host` resolves to, all allowed, or OutboundRefused; [] when it does not resolve.
        The caller connects to one of these, never to the name again."""
        host = _plain_host(host)
        shown = shown or f"{host}:{port}"
        found = resolve(host, port)
        named = host in self.hosts
        if transport == "ssh" and not named and not (found and all(self._opened(a) for a in found)):
            raise OutboundRefused(
                f"'{shown}' is fetched over ssh, which logs in with this server's own keys; the server fetches "
                f"over ssh only from hosts named in {SETTING} — add '{host}' to it to allow it, give the https "
                "URL, or index it from the command line.")
        if named:
            return found
        for address in found:
            why = not_public(address)
            if why and not self._opened(address):
                advice = "its host" if why.startswith("this machine") else "its host or network"
                raise OutboundRefused(
                    f"'{shown}' resolves to {address}, {why}; the server fetches only public addresses — add "
                    f"{advice} to {SETTING} to allow it, or index it from the command line.")
        return found

    def _opened(self, address: Address) -> bool:
        """Whether fetch_allow opens `address`: a network holding it, but this machine only when the
        entry is that very address."""
        here = is_this_machine_address(address)
        inner, _ = _unwrapped(address)
        for net in self.networks:
            for a in [address, *inner]:
                if a.version == net.version and a in net and (not here or net.num_addresses == 1):
                    return True
        return False
