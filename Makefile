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

# Every figure P1..P7 in one run, one JSON document (bench/README.md); ONLY=P5,P6 for a
# subset; sizes: CLIENTS_SMALL, CLIENTS_LARGE, P2_ROWS, P5_DOCS, P6_CLIENTS, P6_LATENCY_MS,
# P7_RAW (default 1000000: hours on 2 cores).
BENCH_ARGS = $(if $(ONLY),--only $(ONLY)) $(if $(CLIENTS_SMALL),--clients-small $(CLIENTS_SMALL)) \
	$(if $(CLIENTS_LARGE),--clients-large $(CLIENTS_LARGE)) $(if $(P2_ROWS),--p2-rows $(P2_ROWS)) \
	$(if $(P5_DOCS),--p5-docs $(P5_DOCS)) $(if $(P6_CLIENTS),--p6-clients $(P6_CLIENTS)) \
	$(if $(P6_LATENCY_MS),--p6-latency-ms $(P6_LATENCY_MS)) $(if $(P7_RAW),--p7-raw $(P7_RAW))
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The BigQuery emulator on loopback (own Python 3.13 venv, .venv-bqemu); prints its URL.
bqemu:
	bash scripts/bqemu.sh setup
	bash scripts/bqemu.sh start $(or $(PORT),9050)

bqemu-stop:
	bash scripts/bqemu.sh stop

clean:
	rm -rf .lorchestra tests/artifacts
