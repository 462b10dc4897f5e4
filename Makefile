# Two commands set everything up: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo sandbox sandbox-down test lint fmt ui bench bqemu bqemu-stop clean
CLIENTS ?= 30

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lorchestra_dagster.demo --clients $(CLIENTS)

# The synthetic practice's vendor APIs in the background; prints the line to source.
sandbox: $(STAMP)
	$(BIN)/lorchestra sandbox up --clients $(CLIENTS)

sandbox-down: $(STAMP)
	$(BIN)/lorchestra sandbox down

test: $(STAMP)
	bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ui: $(STAMP)
	bash scripts/ui.sh

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bench_upsert.py
	$(BIN)/python bench/bench_generator.py

# The BigQuery emulator on loopback (own Python 3.13 venv, .venv-bqemu); prints its URL.
bqemu:
	bash scripts/bqemu.sh setup
	bash scripts/bqemu.sh start $(or $(PORT),9050)

bqemu-stop:
	bash scripts/bqemu.sh stop

clean:
	rm -rf .lorchestra tests/artifacts
