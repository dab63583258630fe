"""The configuration, under the name the rest of the product imports.

It is defined in indexes/config.py, one layer down, so the parts of indexes/ that stand alone
(the LlamaIndex retriever: `DevcopilotRetriever(data_dir)`) load the same settings as the CLI.
"""
from indexes.config import (  # noqa: F401 (re-exported)
    ENV_MAP,
    MOVED,
    BudgetConfig,
    ChatConfig,
    Config,
    ConfigError,
    EmbeddingConfig,
    IngestConfig,
    NetworkConfig,
    SearchConfig,
    ServerConfig,
    StoreConfig,
    SyncConfig,
    check_database_url,
    load_config,
    parse_duration,
    redact,
    redact_url,
)
