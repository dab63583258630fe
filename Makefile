# Two commands on a fresh machine:
#   make run        set up .venv, index this repository if nothing is indexed, serve the web chat
#   make test       set up .venv (and Chromium for the browser tests, PostgreSQL for the shared-store tests),
#                   check the style with ruff, run every test (what .ci/run calls)
# and one while you work:
#   make test-fast  set up .venv, ruff, then every test but those marked browser, postgres or slow (markers in
#                   pyproject.toml): no Chromium, no PostgreSQL, no server killed and restarted; a few minutes
# Set-up is idempotent: it re-runs only when pyproject.toml changes. ARGS go to pytest (or to serve).

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: run test test-fast setup browser postgres lint bench

run: setup
	$(VENV)/bin/devcopilot serve $(ARGS)

test: setup browser postgres lint
	$(PY) -m pytest -q $(ARGS)

test-fast: setup lint
	$(PY) -m pytest -q -m "not browser and not postgres and not slow" $(ARGS)

setup: $(STAMP)

# torch first, from the CPU wheel, so nothing pulls the multi-GB CUDA build. Then the embedding model
# is exported to ONNX once (indexes/onnx_export.py), so the first search does not wait for it.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m indexes.onnx_embedder
	touch $(STAMP)

# Debian's Chromium for the headless browser tests (Playwright drives it; its own download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL for the shared conversation store's tests, which start a server of their own in a
# temporary folder (the package's own cluster is not used).
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Style is part of the tests: `make test` fails on a ruff finding.
lint: setup
	$(VENV)/bin/ruff check devcopilot.py copilot ingest indexes ui tests bench

bench: setup
	$(PY) bench/run_all.py
