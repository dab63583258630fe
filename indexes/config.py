"""The settings: one schema, read from a TOML file and the environment.

Imported as copilot.config by most of the product; it lives here, in indexes/, so that the
parts of this layer that stand alone (the LlamaIndex retriever) load it too.
Precedence (lowest to highest): built-in defaults, the TOML file, environment variables,
explicit overrides (CLI flags).

The schema is the dataclasses below: a field's type says what its value must be (an int is fine
for a float; environment variables, which are text, are converted), and an `Annotated` rule says
which values make sense: `Range` for numbers, `Duration` for schedules, `Folders` for folder lists,
`HostsAndNetworks` for what the server may fetch.
Every value is checked as it is read; an unknown table or key, a wrong type or a value out of
range stops start-up with a ConfigError, one sentence naming the key (`section.key`) and what to
write instead. `prices` and `[[assistants]]` are free-form tables owned by copilot/monitor.py and
copilot/assistants.py: only their shape is checked here.

The environment is read in one place, ingest/environment.py (the lowest layer, so that git's child
processes in ingest/ get theirs from it too): load_config reads the DEVCOPILOT_* variables of
ENV_MAP there, the providers' usual ones (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID,
OPENAI_PROJECT_ID, DASHSCOPE_API_KEY, DASHSCOPE_HTTP_BASE_URL), and the proxy and CA certificate
variables into `Config.network`. The two writes go through it too: git's child environment
(`child_environment`) and the defaults libraries read as they load (`default_environment`:
HF_HUB_OFFLINE, TOKENIZERS_PARALLELISM). No other module touches os.environ (tests/test_settings.py
checks it); they get a Config.
"""
from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from indexes.embeddings import EMBEDDING_PROVIDERS, RUNTIMES, unknown_provider, unknown_runtime
from indexes.stores import EF_SEARCH, STORE_KINDS, unknown_store
from ingest.environment import environment

DAY = 86_400.0  # seconds
YEAR = 365 * DAY


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message is one clear sentence."""


# -- the rules a value must follow, beyond its type ---------------------------------------------
def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Range:
    """A number from `low` to `high` (None: no upper limit); with `above`, `low` itself is excluded.
    `low_means`: what the lowest value means, where it means something ("one per CPU core")."""
    low: float
    high: float | None = None
    low_means: str = ""
    above: bool = False

    def expected(self, kind: Any) -> str:
        what = "a whole number" if kind is int else "a number"
        low, high = _number(self.low), None if self.high is None else _number(self.high)
        if self.above:
            bound = f"above {low}" + (f" and at most {high}" if high is not None else "")
        else:
            bound = f"of at least {low}" if high is None else f"from {low} to {high}"
        return f"{what} {bound}" + (f" ({low}: {self.low_means})" if self.low_means else "")

    def problem(self, value: Any, kind: Any) -> str:
        fits = value > self.low if self.above else value >= self.low
        if math.isfinite(value) and fits and (self.high is None or value <= self.high):
            return ""
        return f"must be {self.expected(kind)}, not {_number(value) if math.isfinite(value) else value}"


@dataclass(frozen=True)
class Duration:
    """A schedule: "90s", "30m", "1h", "1d", "1h30m" or seconds, from one second to `most`; "" = never."""
    most: float

    def expected(self, kind: Any) -> str:
        return 'a duration in quotes such as "30m", "1h" or "1d"'

    def problem(self, value: str, kind: Any) -> str:
        seconds = parse_duration(value)
        if value and seconds < 1:
            return f"({value!r}) must be at least one second"
        if seconds > self.most:
            return f"({value!r}) must be at most a year (365d)"
        return ""


@dataclass(frozen=True)
class Folders:
    """A list of existing folders, each an absolute path (`~` allowed)."""

    def expected(self, kind: Any) -> str:
        return "a list of folders"

    def problem(self, value: list[str], kind: Any) -> str:
        for entry in value:
            path = Path(entry).expanduser()
            if not path.is_absolute():
                return (f"holds {entry!r}, which is not an absolute path; write the folder's full path "
                        "(starting with / or ~)")
            if path.is_file():
                return f"holds {entry!r}, which is a file, not a folder; give the folder that holds it"
            if not path.is_dir():
                return f"holds {entry!r}, which is not an existing folder; create it or remove it from the list"
        return ""


@dataclass(frozen=True)
class HostsAndNetworks:
    """A list of host names and networks (an address alone is a network of one)."""

    def expected(self, kind: Any) -> str:
        return 'a list of host names and networks, such as ["docs.internal", "10.1.0.0/16"]'

    def problem(self, value: list[str], kind: Any) -> str:
        from ingest.outbound import parse_allow

        try:
            parse_allow(value)
        except ValueError as e:
            return (f"holds {str(e)!r}, which is neither a host name nor a network; write a name such as "
                    '"docs.internal" or a network such as "10.1.0.0/16"')
        return ""


@dataclass(frozen=True)
class Folder:
    """One existing folder, an absolute path (`~` allowed); "" = none."""

    def expected(self, kind: Any) -> str:
        return "a folder's full path"

    def problem(self, value: str, kind: Any) -> str:
        if not value:
            return ""
        said = Folders().problem([value], kind)
        return said.replace("create it or remove it from the list", "give an existing folder, or leave it empty")


@dataclass(frozen=True)
class Prices:
    """Model name -> {input, output}: USD per million tokens (copilot/monitor.py reads them)."""

    def expected(self, kind: Any) -> str:
        return 'a table of prices, one per model, such as [prices."gpt-4o"] with input = 2.5 and output = 10'

    def problem(self, value: dict[str, Any], kind: Any) -> str:
        for model, price in value.items():
            if not isinstance(price, Mapping):
                return (f"holds {model!r} = {_found(price)}; write it as a table, [prices.\"{model}\"] with input "
                        "and output in USD per million tokens")
            for key, usd in price.items():
                if key not in ("input", "output"):
                    return f"holds {model!r} with {key!r}; a price has only input and output (USD per million tokens)"
                if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd) or usd < 0:
                    return (f"holds {model!r} with {key} = {_found(usd)}; write a number of at least 0 (USD per "
                            "million tokens)")
        return ""


@dataclass(frozen=True)
class Tables:
    """A list of tables (a single table counts as a list of one), whose keys another module checks."""
    name: str

    def expected(self, kind: Any) -> str:
        return f"a list of [[{self.name}]] tables"

    def problem(self, value: Any, kind: Any) -> str:
        return ""


HOST_NAME = re.compile(r"(?i)^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$")


@dataclass(frozen=True)
class HostNames:
    """Host names or addresses a server answers to ("copilot.example.com", "10.0.0.5", "::1"), or "*"
    alone for any."""

    def expected(self, kind: Any) -> str:
        return 'a list of host names or addresses, such as ["copilot.example.com", "10.0.0.5"]'

    def problem(self, value: list[str], kind: Any) -> str:
        for entry in value:
            if entry == "*":
                continue
            try:
                ipaddress.ip_address(entry.strip("[]"))
            except ValueError:
                if not HOST_NAME.match(entry):
                    return (f"holds {entry!r}, which is not a host name or address; write the name alone, without "
                            'scheme, port or path (such as "copilot.example.com"), or "*" for any')
        return ""


@dataclass(frozen=True)
class Origins:
    """Web origins: "scheme://host[:port]" with scheme http or https, nothing after."""

    def expected(self, kind: Any) -> str:
        return 'a list of origins, such as ["https://tools.example.com"]'

    def problem(self, value: list[str], kind: Any) -> str:
        for entry in value:
            try:
                parts = urlsplit(entry)
                parts.port  # noqa: B018 (raises on a port that is not a number)
            except ValueError:
                parts = None
            ok = (parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
                  and parts.path in ("", "/") and not parts.query and not parts.fragment and "@" not in parts.netloc)
            if not ok:
                return (f"holds {entry!r}, which is not an origin; write scheme://host[:port] with nothing after "
                        '(such as "https://tools.example.com")')
        return ""


# -- the settings ---------------------------------------------------------------------------------
@dataclass
class EmbeddingConfig:
    provider: str = "local"  # local | openai | dashscope
    model: str = "all-MiniLM-L6-v2"
    # local only, default model only (others run on torch): "onnx" (no torch at run time; PyTorch's
    # vectors) | "onnx-int8" (faster, moves some neighbours: docs/performance.md) | "torch"
    runtime: str = "onnx"
    # torch and remote providers: texts per call (onnx embeds each text alone)
    batch_size: Annotated[int, Range(1)] = 64
    # onnx: texts embedded side by side during an ingest; 0: one per CPU core
    threads: Annotated[int, Range(0, low_means="one per CPU core")] = 0
    api_key: str = ""
    base_url: str = ""


@dataclass
class StoreConfig:
    kind: str = "chroma"  # chroma | chroma-http | qdrant | qdrant-url
    url: str = ""  # chroma-http: http://host:port ; qdrant-url: http://host:6333
    api_key: str = ""
    # neighbours an HNSW search explores (why 400: indexes/stores.py)
    ef_search: Annotated[int, Range(1)] = EF_SEARCH


@dataclass
class IngestConfig:
    max_file_bytes: Annotated[int, Range(1)] = 1_000_000
    chunk_chars: Annotated[int, Range(1)] = 1200
    git_timeout_s: Annotated[int, Range(1, DAY)] = 300
    site_max_pages: Annotated[int, Range(1)] = 500  # docs websites: pages read at most
    site_concurrency: Annotated[int, Range(1)] = 4  # requests at once (1 when robots.txt sets a Crawl-delay)
    site_timeout_s: Annotated[float, Range(0, DAY, above=True)] = 20.0  # each connect or read of a page
    # A page's whole response (however slowly it drips), and the whole site: what was fetched in time is
    # indexed, the rest skipped and counted.
    site_page_seconds: Annotated[float, Range(0, DAY, above=True)] = 60.0
    site_seconds: Annotated[float, Range(0, 7 * DAY, above=True)] = 1800.0
    # the code graph (definitions, references, calls: indexes/graph.py), made from the chunker's parse;
    # false: not made (and a KB's graph is dropped on its next ingest)
    graph: bool = True


@dataclass
class SearchConfig:
    k: Annotated[int, Range(1)] = 10
    # depth taken from each retriever before fusion (30 beat 40 and 60 on both eval corpora)
    candidates: Annotated[int, Range(1)] = 30
    fusion: str = "score"  # "score": weighted sum of scaled scores | "rrf": weighted reciprocal rank
    score_depth: Annotated[int, Range(1)] = 100  # how deep each retriever's scores are read to scale them to [0, 1]
    rrf_k: Annotated[int, Range(0)] = 60
    dense_weight: Annotated[float, Range(0)] = 0.4  # 0.4 / 0.6 beat 0.3-0.7 and equal weights on both eval corpora
    lexical_weight: Annotated[float, Range(0)] = 0.6
    read_kind: bool = True  # lift the kind (docs or source) the question's wording asks for into and within the top 5
    plain_names: bool = True  # lift definitions the question names in plain words ("model settings")
    # code in top folders examples/, tests/, scripts/, benchmarks/: fused score x this
    side_folder_weight: Annotated[float, Range(0)] = 0.7
    reranker: str = ""  # "module:callable" returning a Reranker; empty = none
    # The weak-retrieval verdict (indexes/retrieve.py): share of the question's IDF weight found in a top chunk...
    min_overlap: Annotated[float, Range(0, 1)] = 0.3
    # ...and the best embedding similarity under which a question is off-topic. -1: 0.3 with the local
    # model (on-topic questions scored >= 0.34 on both eval corpora, off-topic <= 0.33), else off.
    min_similarity: Annotated[float, Range(-1, 1, low_means="0.3 with the local model, else off")] = -1.0
    # The chat model's help with what the chat cites (copilot/model_search.py), when a model is configured;
    # off by default: their effect is unmeasured until a model runs offline (docs/retrieval.md).
    rewrite_with_model: bool = False  # the question and the model's search query for it, both searched, fused
    rerank_with_model: bool = False  # the model orders the top `rerank_depth` hits; the assistant cites its first
    rerank_depth: Annotated[int, Range(1, 100)] = 20
    model_timeout_s: Annotated[float, Range(0, 600, above=True)] = 10.0  # each call at most; then the plain ranking


@dataclass
class ChatConfig:
    provider: str = ""  # "" = automatic from the environment | openai | dashscope | offline
    model: str = ""  # empty: gpt-4o-mini (openai) or qwen-plus (dashscope)
    api_key: str = ""
    base_url: str = ""  # OpenAI-compatible server (Ollama, vLLM, llama.cpp) or DashScope HTTP base
    # openai only: the OpenAI-Organization and OpenAI-Project headers; empty: OPENAI_ORG_ID, OPENAI_PROJECT_ID
    organization: str = ""
    project: str = ""
    fallback_model: str = ""  # tried on the same backend when the main model keeps failing
    # per call; for streams, the longest wait between two pieces
    timeout_s: Annotated[float, Range(0, DAY, above=True)] = 60.0
    # on 429 / 5xx / timeouts, with exponential backoff honouring Retry-After
    max_retries: Annotated[int, Range(0, low_means="no retry")] = 3
    backoff_s: Annotated[float, Range(0, DAY)] = 0.5
    max_backoff_s: Annotated[float, Range(0, DAY)] = 20.0
    temperature: Annotated[float, Range(0, 2)] = 0.2
    max_tokens: Annotated[int, Range(1)] = 1200
    tools: bool = True  # let the Coding assistant call bounded search tools when the model supports them
    max_tool_calls: Annotated[int, Range(0, low_means="no tool calls")] = 3
    corpus_language: str = "English"  # retrieval queries are rewritten into it when a model is available
    kb: str = ""  # the one knowledge base the chat reads; empty: every indexed KB (an assistant's `kbs` narrows it)
    history_turns: Annotated[int, Range(1)] = 6  # earlier messages given to the model and the condenser
    max_message_chars: Annotated[int, Range(1)] = 20_000  # longer messages are refused with a clear sentence


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: Annotated[int, Range(1, 65535)] = 7860
    auth: str | list[str] = ""  # "user:password" for the web UI; a list: several users
    api_token: str = ""  # bearer token for /v1/*; empty = no token (fine on loopback)
    max_request_bytes: Annotated[int, Range(1)] = 1_000_000
    # API turns answered at once; each waits on its model on a thread of its own
    chat_threads: Annotated[int, Range(1)] = 64
    # Streamed API answers are written at most this often; what arrives in between goes out as one
    # chunk (clients parse fewer events, the server makes fewer writes). 0: every piece as it comes.
    stream_pace_ms: Annotated[int, Range(0, 60_000, low_means="every piece as it comes")] = 30
    # folders the UI may index (absolute paths of existing folders)
    allowed_roots: Annotated[list[str], Folders()] = field(default_factory=list)
    # What the server may fetch for its doors (the Knowledge tab and API, their sources' sync) beyond
    # public addresses: host names (exactly) and networks, e.g. ["docs.internal", "10.1.0.0/16"]. A
    # network never opens this machine itself: name its host or address (ingest/outbound.py).
    fetch_allow: Annotated[list[str], HostsAndNetworks()] = field(default_factory=list)
    # The address clients reach the server at (e.g. https://copilot.example.com behind a proxy): the
    # API's citation links to the source viewer are built on it. Empty: the address each request came to.
    public_url: str = ""
    # `serve` processes behind the port; 0: one per CPU core
    workers: Annotated[int, Range(0, low_means="one per CPU core")] = 0
    # Conversations, feedback and usage figures in a PostgreSQL database that several servers share
    # ("postgresql://user:password@host:5432/devcopilot"); empty: SQLite and a file in the data dir.
    database_url: str = ""
    # Other names the server is reached at (the Host header), besides its bind address, localhost on
    # loopback and public_url's host; bound to 0.0.0.0 or ::, this machine's names are added. ["*"]:
    # any name (turns the check against DNS rebinding off). ui/edge.py Names.
    allowed_hosts: Annotated[list[str], HostNames()] = field(default_factory=list)
    # Pages on other sites that may call the server from a browser (CORS, without credentials) and post
    # to it, e.g. ["https://tools.example.com"]; empty: none, only the server's own pages.
    cors_origins: Annotated[list[str], Origins()] = field(default_factory=list)


@dataclass
class SyncConfig:
    # `serve` re-syncs every source this often (git fetch, folder and package rescan): "1h", "30m"; "" = never.
    # At most a year (longer waits overflow the timer).
    every: Annotated[str, Duration(YEAR)] = ""

    @property
    def seconds(self) -> float:
        return parse_duration(self.every)


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "1h", "1d", "1h30m" or a plain number of seconds; 0 for ""."""
    text = str(text).strip().lower()
    if not text:
        return 0.0
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd])|\s+", "", text):
        raise ConfigError(f"Setting 'sync.every' must be a duration such as 30m, 1h or 1d, not {text!r}.")
    return sum(float(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts)


@dataclass
class ProjectConfig:
    # The project answers are given for: the versions its lock or requirement files (or its .venv) pin are the
    # ones searched (indexes/project.py); "" = the newest indexed version of each library.
    path: Annotated[str, Folder()] = ""


@dataclass
class BudgetConfig:
    # model calls are refused once spending reaches it
    limit_usd: Annotated[float, Range(0, low_means="no budget")] = 0.0
    warn_ratio: Annotated[float, Range(0, 1)] = 0.8


@dataclass(frozen=True)
class NetworkConfig:
    """How the chat model's HTTP goes out, read from the environment (no table of the file): the
    proxies of HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (lowercase first when both are set, as
    curl and requests read them) and the CA certificates of REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE or
    SSL_CERT_FILE. copilot/models.py gives them to requests, which then reads no environment."""
    proxies: dict[str, str] = field(default_factory=dict)  # http | https | all -> proxy URL
    no_proxy: str = ""  # hosts reached directly: "localhost,.internal,10.0.0.0/8", "*" for all
    ca_bundle: str = ""  # a CA certificates file (or folder); empty: requests' own

    @property
    def verify(self) -> str | bool:
        """requests' `verify`: the CA bundle, else True (its own certificates)."""
        return self.ca_bundle or True

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies for requests to `url`: none when NO_PROXY names its host (decided as requests does)."""
        return {} if self._reached_directly(url) else dict(self.proxies)

    def _reached_directly(self, url: str) -> bool:
        import urllib.request  # here: loading it takes ~0.1 s, which every command would pay

        parts = urlsplit(url)
        host = parts.hostname
        if host is None:
            return True
        entries = [e for e in self.no_proxy.replace(" ", "").split(",") if e]
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
        if address is not None:  # an IP address: by network ("10.0.0.0/8") or exactly
            for entry in entries:
                if "/" in entry:
                    try:
                        if address in ipaddress.IPv4Network(entry, strict=False):
                            return True
                    except ValueError:
                        pass
                elif host == entry:
                    return True
        # A name (or an address) by its ending, with or without the port; "*" for every host.
        host_with_port = f"{host}:{parts.port}" if parts.port else host
        return urllib.request.proxy_bypass_environment(host_with_port, {"no": self.no_proxy})


def network_from(env: Mapping[str, str]) -> NetworkConfig:
    """The proxy and CA certificate variables, read once (requests would read them on every call)."""
    def variable(name: str) -> str:
        lower = env.get(name.lower())
        return lower if lower is not None else env.get(name.upper(), "")

    proxies = {scheme: variable(f"{scheme}_proxy") for scheme in ("http", "https", "all")}
    ca = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or env.get("SSL_CERT_FILE") or ""
    return NetworkConfig({k: v for k, v in proxies.items() if v}, variable("no_proxy"), ca)


@dataclass
class Config:
    data_dir: Path = Path(".devcopilot")
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    project: ProjectConfig = field(default_factory=ProjectConfig)
    # model -> {input, output} USD per million tokens
    prices: Annotated[dict[str, Any], Prices()] = field(default_factory=dict)
    # [[assistants]] tables, see copilot/assistants.py
    assistants: Annotated[list[dict[str, Any]], Tables("assistants")] = field(default_factory=list)
    # From the environment only, never from the file.
    network: NetworkConfig = field(default_factory=NetworkConfig, metadata={"in_file": False})

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite"


# Environment variables understood, mapped to (section, key). Keys hold secrets where noted.
ENV_MAP = {
    "DEVCOPILOT_DATA_DIR": ("", "data_dir"),
    "DEVCOPILOT_EMBEDDING_PROVIDER": ("embedding", "provider"),
    "DEVCOPILOT_EMBEDDING_MODEL": ("embedding", "model"),
    "DEVCOPILOT_EMBEDDING_RUNTIME": ("embedding", "runtime"),
    "DEVCOPILOT_STORE": ("store", "kind"),
    "DEVCOPILOT_STORE_URL": ("store", "url"),
    "DEVCOPILOT_STORE_API_KEY": ("store", "api_key"),
    "DEVCOPILOT_CHAT_PROVIDER": ("chat", "provider"),
    "DEVCOPILOT_CHAT_MODEL": ("chat", "model"),
    "DEVCOPILOT_CHAT_API_KEY": ("chat", "api_key"),
    "DEVCOPILOT_CHAT_BASE_URL": ("chat", "base_url"),
    "DEVCOPILOT_CHAT_FALLBACK_MODEL": ("chat", "fallback_model"),
    "DEVCOPILOT_API_TOKEN": ("server", "api_token"),
    "DEVCOPILOT_AUTH": ("server", "auth"),  # user:password for the web UI
    "DEVCOPILOT_ALLOWED_HOSTS": ("server", "allowed_hosts"),  # comma-separated: the names a container is reached by
    "DEVCOPILOT_DATABASE_URL": ("server", "database_url"),  # holds a password
    "DEVCOPILOT_BUDGET_USD": ("budget", "limit_usd"),
}


# Settings that moved, read under their old names too: (old section, key) -> new section.
MOVED = {("chat", "min_overlap"): "search", ("chat", "min_similarity"): "search"}


def _moved(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with settings written under their old section moved to the new one."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for (old, key), new in MOVED.items():
        if isinstance(out.get(old), dict) and key in out[old]:
            out.setdefault(new, {})
            if isinstance(out[new], dict):
                out[new].setdefault(key, out[old][key])
            del out[old][key]
    return out


# -- reading values against the schema ----------------------------------------------------------
FILE, OVERRIDE = "the file", "an override"  # where a value came from; else the environment variable's name
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@functools.cache
def schema(cls: type) -> dict[str, Any]:
    """The settings of a section (or of Config): name -> type, `Annotated` rules included; the
    fields that are not read from the file (Config.network) left out."""
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in fields(cls) if f.metadata.get("in_file", True)}


def kind_and_rules(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(the type, its rules) of a field's annotation."""
    if get_origin(hint) is Annotated:
        kind, *rules = get_args(hint)
        return kind, tuple(rules)
    return hint, ()


def _apply(obj: Any, values: Mapping[str, Any], where: str, source: str) -> None:
    known = schema(type(obj))
    for key, value in values.items():
        name = f"{where}{key}"
        if key not in known:
            raise ConfigError(_unknown(name, value))
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"Setting '{name}' must be a table of settings ([{name}]), not {_found(value)}.")
            _apply(current, value, f"{name}.", source)
        else:
            setattr(obj, key, _checked(name, known[key], value, source))


def _checked(name: str, hint: Any, value: Any, source: str) -> Any:
    """`value` as the setting's type, within its rules, or a ConfigError in one sentence."""
    kind, rules = kind_and_rules(hint)
    via = "" if source in (FILE, OVERRIDE) else f" (set by {source})"
    if any(isinstance(r, Duration) for r in rules) and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # `every = 3600`: a plain number of seconds, as it has always been read
    typed = _typed(kind, value, text=source != FILE)
    if typed is None:
        raise ConfigError(_wrong_type(name, via, kind, _expected(kind, rules), value, source))
    for rule in rules:
        problem = rule.problem(typed, kind)
        if problem:
            raise ConfigError(f"Setting '{name}'{via} {problem}.")
    return typed


def _typed(kind: Any, value: Any, text: bool) -> Any:
    """`value` as `kind`, or None when it is not one. `text`: a string (an environment variable, a flag)
    is converted to a number or a boolean; in the file, values must have their type already."""
    if text and isinstance(value, str) and kind in (int, float, bool):
        word = value.strip().lower()
        if kind is bool:
            return True if word in TRUE else False if word in FALSE else None
        try:
            return kind(word)
        except ValueError:
            return None
    if kind is bool:
        return value if isinstance(value, bool) else None
    if kind in (int, float):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = number and (kind is float or isinstance(value, int))  # an int is fine for a float, not the reverse
        try:
            return kind(value) if ok else None
        except OverflowError:  # an integer too large for a float
            return None
    if kind is str:
        return value if isinstance(value, str) else None
    if kind is Path:
        return Path(value).expanduser() if isinstance(value, (str, Path)) else None
    if kind == list[str]:
        if text and isinstance(value, str):  # an environment variable: comma-separated
            return [v.strip() for v in value.split(",") if v.strip()]
        return list(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    if kind == str | list[str]:
        return value if isinstance(value, str) else _typed(list[str], value, text)
    if kind == dict[str, Any]:
        return dict(value) if isinstance(value, Mapping) else None
    if kind == list[dict[str, Any]]:
        tables = [value] if isinstance(value, Mapping) else value  # one [assistants] table: a list of one
        ok = isinstance(tables, list) and all(isinstance(v, Mapping) for v in tables)
        return [dict(v) for v in tables] if ok else None
    raise TypeError(f"the settings schema has no reader for {kind}")  # a new field of a new type: add it above


KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string in quotes",
         Path: "a path in quotes", list[str]: "a list of strings in quotes",
         str | list[str]: "a string in quotes or a list of them", dict[str, Any]: "a table"}


def _expected(kind: Any, rules: tuple[Any, ...]) -> str:
    """What a setting must be, in words."""
    return rules[0].expected(kind) if rules else KINDS[kind]


def _found(value: Any, item: type | None = None) -> str:
    """A value as the message shows it; for a list, its first item that is not an `item`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else "a long string"
    if isinstance(value, list):
        odd = next((v for v in value if item is None or not isinstance(v, item)), None)
        return "a list" if odd is None or item is None else f"a list holding {_found(odd)}"
    return "a table" if isinstance(value, Mapping) else type(value).__name__


def _wrong_type(name: str, via: str, kind: Any, expected: str, value: Any, source: str) -> str:
    key = name.rsplit(".", 1)[-1]
    if isinstance(value, str) and expected.startswith("a list") and source == FILE:
        return f"Setting '{name}' must be {expected}, not a string; write {key} = [{json.dumps(value)}]."
    hint = ""
    if isinstance(value, str) and source == FILE and expected.startswith(("a number", "a whole number", "true")):
        unquoted = value.strip().lower()
        if unquoted in ("true", "false") or re.fullmatch(r"-?\d+(\.\d+)?", unquoted):
            hint = "; write it without quotes"
    item = Mapping if kind == list[dict[str, Any]] else str if kind in (list[str], str | list[str]) else None
    return f"Setting '{name}'{via} must be {expected}, not {_found(value, item)}{hint}."


def _unknown(name: str, value: Any) -> str:
    """The sentence for a table or key the schema does not know, with the closest known name."""
    section, _, key = name.rpartition(".")
    top = schema(Config)
    tables = sorted(k for k, hint in top.items() if is_dataclass(hint))  # the sections of settings
    if not section and isinstance(value, Mapping):
        shown = {t: f"[{t}]" for t in [*tables, "prices"]} | {"assistants": "[[assistants]]"}
        close = difflib.get_close_matches(key, list(shown), n=1, cutoff=0.6)
        hint = f"did you mean {shown[close[0]]}?" if close else f"the tables are {', '.join(sorted(shown.values()))}."
        return f"Unknown table [{key}] in the configuration; {hint}"
    # The same name in another table first ("k" under [chat] is search.k), else the closest in its own.
    suggestion = next((f"{t}.{key}" for t in tables if t != section and key in schema(top[t])), "")
    if not suggestion:
        close = difflib.get_close_matches(key, list(schema(top[section]) if section else top), n=1, cutoff=0.6)
        suggestion = (f"{section}.{close[0]}" if section else close[0]) if close else ""
    hint = f"did you mean '{suggestion}'?" if suggestion else "remove it or check its spelling."
    return f"Unknown setting '{name}' in the configuration; {hint}"


# -- loading ----------------------------------------------------------------------------------------
def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config. `env` defaults to the process environment (ingest/environment.py)."""
    env = environment() if env is None else env
    cfg = Config()
    path = path or env.get("DEVCOPILOT_CONFIG")
    if path:
        p = Path(path).expanduser()
        if p.is_dir():
            raise ConfigError(f"Configuration file '{p}' is a folder; give the TOML file itself.")
        if not p.is_file():
            raise ConfigError(f"Configuration file '{p}' does not exist; create it or drop --config.")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"Configuration file '{p}' is not valid TOML ({e}); fix it and try again.") from None
        _apply(cfg, _moved(data), "", FILE)
    for var, (section, key) in ENV_MAP.items():
        if env.get(var):
            _apply(cfg, {section: {key: env[var]}} if section else {key: env[var]}, "", var)
    # Provider keys from their usual variables, so `export OPENAI_API_KEY=...` just works.
    if cfg.embedding.provider == "openai" and not cfg.embedding.api_key:
        cfg.embedding.api_key = env.get("OPENAI_API_KEY", "")
    if cfg.embedding.provider == "dashscope" and not cfg.embedding.api_key:
        cfg.embedding.api_key = env.get("DASHSCOPE_API_KEY", "")
    _pick_chat_provider(cfg.chat, env)
    if overrides:
        _apply(cfg, {k: v for k, v in overrides.items() if v is not None}, "", OVERRIDE)
    _chat_from_environment(cfg.chat, env)
    cfg.network = network_from(env)
    if cfg.store.kind not in STORE_KINDS:
        raise ConfigError(unknown_store(cfg.store.kind))
    if cfg.embedding.provider not in EMBEDDING_PROVIDERS:
        raise ConfigError(unknown_provider(cfg.embedding.provider))
    if cfg.embedding.runtime not in RUNTIMES:
        raise ConfigError(unknown_runtime(cfg.embedding.runtime))
    if cfg.server.database_url:
        check_database_url(cfg.server.database_url)
    if cfg.search.fusion not in ("score", "rrf"):
        raise ConfigError(f"Unknown search fusion '{cfg.search.fusion}'; use score or rrf.")
    return cfg


def _pick_chat_provider(chat: ChatConfig, env: Mapping[str, str]) -> None:
    """Pick the chat backend from the usual variables when the configuration leaves it open."""
    if chat.provider == "":
        if chat.api_key or chat.base_url or env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
            chat.provider = "openai"
        elif env.get("DASHSCOPE_API_KEY"):
            chat.provider = "dashscope"
        else:
            chat.provider = "offline"


def _chat_from_environment(chat: ChatConfig, env: Mapping[str, str]) -> None:
    """The chosen backend's key, address and headers from its usual variables, where the settings leave them."""
    if chat.provider == "openai":
        chat.api_key = chat.api_key or env.get("OPENAI_API_KEY", "")
        chat.base_url = chat.base_url or env.get("OPENAI_BASE_URL", "")
        chat.organization = chat.organization or env.get("OPENAI_ORG_ID", "")
        chat.project = chat.project or env.get("OPENAI_PROJECT_ID", "")
    elif chat.provider == "dashscope":
        chat.api_key = chat.api_key or env.get("DASHSCOPE_API_KEY", "")
        chat.base_url = chat.base_url or env.get("DASHSCOPE_HTTP_BASE_URL", "")
    if chat.provider not in ("openai", "dashscope", "offline"):
        raise ConfigError(f"Unknown chat provider '{chat.provider}'; use openai, dashscope or offline.")


def check_database_url(url: str) -> str:
    """The URL if it names a PostgreSQL database, else a ConfigError in one sentence."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        parts = None
    has_host = parts is not None and (parts.hostname or "host=" in parts.query)  # ?host=/run/postgresql: a socket
    if not has_host or parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"Setting 'server.database_url' ({redact_url(url)!r}) is not a PostgreSQL URL; write it "
                          "as postgresql://user:password@host:5432/database, or leave it empty for SQLite in the "
                          "data dir.")
    return url


def redact_url(url: str) -> str:
    """A database URL with its password hidden."""
    try:
        parts = urlsplit(url)
        if parts.password:
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:
        return "(an unreadable URL)"
    return url


def redact(secret: str) -> str:
    """Show that a key is set without showing it."""
    if not secret:
        return ""
    return secret[:3] + "…" + secret[-2:] if len(secret) > 12 else "***"
