# Warden — developer entry points. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
BENCH_ARGS ?=
# The peers Warden is compared with live in their own venv, never in $(VENV); versions pinned so a
# run can be reproduced. The venv ignores itself in git (a `*` .gitignore, as venv does in 3.13).
PEERS_VENV  ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed-stamp
PEERS_PY    := agent-governance-toolkit-core==5.0.0 cedarpy==4.12.2 pycasbin==2.8.0
PEERS_NPM   := @cerbos/cerbos-linux-x64@0.55.0

.PHONY: install run test demo bench bench-peers peers-install lint format clean cedar-wasm

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

## Benchmarks: each prints its figures and `Pn: ... ratio=... target=...` (BENCH_ARGS=--quick)
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

$(PEERS_STAMP): Makefile
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	@echo '*' > $(PEERS_VENV)/.gitignore
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet $(PEERS_PY)
	npm install --silent --no-save --no-audit --no-fund --prefix $(PEERS_VENV)/cerbos $(PEERS_NPM)
	@touch $@

peers-install: $(PEERS_STAMP)

## Warden beside AGT, cedarpy, pycasbin (in-process) and Cerbos (HTTP) on equal rules (docs/benchmarks.md)
bench-peers: install $(PEERS_STAMP)
	$(BIN)/python -m bench.peers $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) $(PEERS_VENV) .warden .pytest_cache .mypy_cache .ruff_cache
