# rolechain developer commands. `make demo` and `make test` create and reuse .venv by themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration e2e lint format bench clean

$(STAMP): pyproject.toml layers/rolechain/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $(STAMP)

## demo: run the main job against the embedded multi-account AWS emulator
demo: $(STAMP)
	$(BIN)/python -m rolechain.demo

## test: lint, type-check and every test tier
test: $(STAMP) lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

lint: $(STAMP)
	$(BIN)/ruff check layers functions tests benchmarks
	$(BIN)/ruff format --check layers functions tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format layers functions tests benchmarks
	$(BIN)/ruff check --fix layers functions tests benchmarks

## bench: the benchmarks (prints tables; see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sessions.py
	$(BIN)/python benchmarks/bench_runner.py

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
