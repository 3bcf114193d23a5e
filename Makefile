# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/trw-platform serve

# The browser test drives Debian's Chromium; install it once, as root.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: $(VENV)/.installed-test $(CHROMIUM)
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

bench: $(VENV)/.installed-test
	$(BIN)/python bench/telemetry_ingest.py
