"""One configuration object, loaded from a TOML file and environment variables.

Imported as copilot.config by most of the product; it lives here, in indexes/, so that the
parts of this layer that stand alone (the LlamaIndex retriever) load it too.
Precedence (lowest to highest): built-in defaults, the TOML file, environment variables,
explicit overrides (CLI flags). No other module reads os.environ; they get a Config.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from indexes.embeddings import EMBEDDING_PROVIDERS, RUNTIMES, unknown_provider, unknown_runtime
from indexes.stores import EF_SEARCH, STORE_KINDS, unknown_store


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message is one clear sentence."""


@dataclass
class EmbeddingConfig:
    provider: str = "local"  # local | openai | dashscope
    model: str = "all-MiniLM-L6-v2"
    # local only, default model only (others run on torch): "onnx" (no torch at run time; PyTorch's
    # vectors) | "onnx-int8" (faster, moves some neighbours: docs/performance.md) | "torch"
    runtime: str = "onnx"
    batch_size: int = 64  # torch and remote providers: texts per call (onnx embeds each text alone)
    threads: int = 0  # onnx: texts embedded side by side during an ingest; 0: one per CPU core
    api_key: str = ""
    base_url: str = ""


@dataclass
class StoreConfig:
    kind: str = "chroma"  # chroma | chroma-http | qdrant | qdrant-url
    url: str = ""  # chroma-http: http://host:port ; qdrant-url: http://host:6333
    api_key: str = ""
    ef_search: int = EF_SEARCH  # neighbours an HNSW search explores (why 400: indexes/stores.py)


@dataclass
class IngestConfig:
    max_file_bytes: int = 1_000_000
    chunk_chars: int = 1200
    git_timeout_s: int = 300
    site_max_pages: int = 500  # docs websites: pages read at most
    site_concurrency: int = 4  # requests at once (1 when robots.txt sets a Crawl-delay)
    site_timeout_s: float = 20.0


@dataclass
class SearchConfig:
    k: int = 10
    candidates: int = 30  # depth taken from each retriever before fusion (30 beat 40 and 60 on both eval corpora)
    fusion: str = "score"  # "score": weighted sum of scaled scores | "rrf": weighted reciprocal rank
    score_depth: int = 100  # how deep each retriever's scores are read to scale them to [0, 1]
    rrf_k: int = 60
    dense_weight: float = 0.4  # 0.4 / 0.6 beat 0.3-0.7 and equal weights on both eval corpora
    lexical_weight: float = 0.6
    read_kind: bool = True  # lift the kind (docs or source) the question's wording asks for into and within the top 5
    plain_names: bool = True  # lift definitions the question names in plain words ("model settings")
    side_folder_weight: float = 0.7  # code in top folders examples/, tests/, scripts/, benchmarks/: fused score x this
    reranker: str = ""  # "module:callable" returning a Reranker; empty = none
    # The weak-retrieval verdict (indexes/retrieve.py): share of the question's IDF weight found in a top chunk...
    min_overlap: float = 0.3
    # ...and the best embedding similarity under which a question is off-topic. -1: 0.3 with the local
    # model (on-topic questions scored >= 0.34 on both eval corpora, off-topic <= 0.33), else off.
    min_similarity: float = -1.0


@dataclass
class ChatConfig:
    provider: str = ""  # "" = automatic from the environment | openai | dashscope | offline
    model: str = ""  # empty: gpt-4o-mini (openai) or qwen-plus (dashscope)
    api_key: str = ""
    base_url: str = ""  # OpenAI-compatible server (Ollama, vLLM, llama.cpp) or DashScope HTTP base
    fallback_model: str = ""  # tried on the same backend when the main model keeps failing
    timeout_s: float = 60.0  # per call; for streams, the longest wait between two pieces
    max_retries: int = 3  # on 429 / 5xx / timeouts, with exponential backoff honouring Retry-After
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    temperature: float = 0.2
    max_tokens: int = 1200
    tools: bool = True  # let the Coding assistant call bounded search tools when the model supports them
    max_tool_calls: int = 3
    corpus_language: str = "English"  # retrieval queries are rewritten into it when a model is available
    kb: str = ""  # the one knowledge base the chat reads; empty: every indexed KB (an assistant's `kbs` narrows it)
    history_turns: int = 6  # earlier messages given to the model and the condenser
    max_message_chars: int = 20_000  # longer messages are refused with a clear sentence


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""  # "user:password" for the web UI
    api_token: str = ""  # bearer token for /v1/*; empty = no token (fine on loopback)
    max_request_bytes: int = 1_000_000
    chat_threads: int = 64  # API turns answered at once; each waits on its model on a thread of its own
    # Streamed API answers are written at most this often; what arrives in between goes out as one
    # chunk (clients parse fewer events, the server makes fewer writes). 0: every piece as it comes.
    stream_pace_ms: int = 30
    allowed_roots: list[str] = field(default_factory=list)  # folders the UI may index
    # The address clients reach the server at (e.g. https://copilot.example.com behind a proxy): the
    # API's citation links to the source viewer are built on it. Empty: the address each request came to.
    public_url: str = ""
    workers: int = 0  # `serve` processes behind the port; 0: one per CPU core
    # Conversations, feedback and usage figures in a PostgreSQL database that several servers share
    # ("postgresql://user:password@host:5432/devcopilot"); empty: SQLite and a file in the data dir.
    database_url: str = ""


@dataclass
class SyncConfig:
    # `serve` re-syncs every source this often (git fetch, folder and package rescan): "1h", "30m"; "" = never
    every: str = ""

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
class BudgetConfig:
    limit_usd: float = 0.0  # 0 = no budget; model calls are refused once spending reaches it
    warn_ratio: float = 0.8


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
    prices: dict[str, Any] = field(default_factory=dict)  # model -> {input, output} USD per million tokens
    assistants: list[dict[str, Any]] = field(default_factory=list)  # [[assistants]] tables, see copilot/assistants.py
    extra: dict[str, Any] = field(default_factory=dict)  # tables other parts own (e.g. chat, assistants)

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


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            if obj.__class__ is Config:
                obj.extra[key] = value
                continue
            raise ConfigError(f"Unknown setting '{where}{key}' in the configuration; remove it or check its spelling.")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"Setting '{where}{key}' must be a table of settings.")
            _apply(current, value, f"{where}{key}.")
        elif isinstance(current, Path):
            setattr(obj, key, Path(str(value)).expanduser())
        elif isinstance(current, bool):
            setattr(obj, key, value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes"))
        elif isinstance(current, (int, float)) and not isinstance(value, (int, float)):
            try:
                setattr(obj, key, type(current)(value))
            except ValueError:
                raise ConfigError(f"Setting '{where}{key}' must be a number, not {value!r}.") from None
        else:
            setattr(obj, key, value)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config. `env` defaults to the process environment (read here, only here)."""
    env = os.environ if env is None else env
    cfg = Config()
    path = path or env.get("DEVCOPILOT_CONFIG")
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"Configuration file '{p}' does not exist; create it or drop --config.")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"Configuration file '{p}' is not valid TOML ({e}); fix it and try again.") from None
        _apply(cfg, _moved(data), "")
    for var, (section, key) in ENV_MAP.items():
        if env.get(var):
            _apply(cfg, {section: {key: env[var]}} if section else {key: env[var]}, "")
    # Provider keys from their usual variables, so `export OPENAI_API_KEY=...` just works.
    if cfg.embedding.provider == "openai" and not cfg.embedding.api_key:
        cfg.embedding.api_key = env.get("OPENAI_API_KEY", "")
    if cfg.embedding.provider == "dashscope" and not cfg.embedding.api_key:
        cfg.embedding.api_key = env.get("DASHSCOPE_API_KEY", "")
    _auto_chat(cfg.chat, env)
    if overrides:
        _apply(cfg, {k: v for k, v in overrides.items() if v is not None}, "")
    if cfg.store.kind not in STORE_KINDS:
        raise ConfigError(unknown_store(cfg.store.kind))
    if cfg.embedding.provider not in EMBEDDING_PROVIDERS:
        raise ConfigError(unknown_provider(cfg.embedding.provider))
    if cfg.embedding.runtime not in RUNTIMES:
        raise ConfigError(unknown_runtime(cfg.embedding.runtime))
    if not isinstance(cfg.store.ef_search, int) or cfg.store.ef_search < 1:
        raise ConfigError(f"Setting 'store.ef_search' must be a whole number of at least 1, not "
                          f"{cfg.store.ef_search!r}.")
    if cfg.sync.every and cfg.sync.seconds < 1:
        raise ConfigError(f"Setting 'sync.every' ({cfg.sync.every!r}) must be at least one second.")
    if cfg.server.database_url:
        check_database_url(cfg.server.database_url)
    if cfg.search.fusion not in ("score", "rrf"):
        raise ConfigError(f"Unknown search fusion '{cfg.search.fusion}'; use score or rrf.")
    return cfg


def _auto_chat(chat: ChatConfig, env: Mapping[str, str]) -> None:
    """Pick the chat backend from the usual variables when the configuration leaves it open."""
    if chat.provider == "":
        if chat.api_key or chat.base_url or env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
            chat.provider = "openai"
        elif env.get("DASHSCOPE_API_KEY"):
            chat.provider = "dashscope"
        else:
            chat.provider = "offline"
    if chat.provider == "openai":
        chat.api_key = chat.api_key or env.get("OPENAI_API_KEY", "")
        chat.base_url = chat.base_url or env.get("OPENAI_BASE_URL", "")
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
