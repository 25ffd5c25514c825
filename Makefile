# Warden — developer entry points. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test demo bench lint format clean cedar-wasm

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## Serve on the embedded SQLite default in ./.warden with a dev trust domain, example agent and policies
run: install
	$(BIN)/warden serve --dev

## The whole test suite (PostgreSQL tests skip with a reason when no server is reachable)
test: install
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

## End-to-end story against a real server process
demo: install
	$(BIN)/warden demo

## The official Cedar validator (npm) the schema tests use; .ci/run installs it too
cedar-wasm:
	npm ci --no-audit --no-fund --prefix tools/cedar-wasm

## Benchmarks: each prints its figures and `Pn: ... ratio=... target=...`
bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .warden .pytest_cache .mypy_cache .ruff_cache
