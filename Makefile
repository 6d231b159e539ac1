# rolechain developer commands. `make demo` and `make test` create and reuse .venv by themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SAM CLI and the AWS CLI live in their own venv: their pins must not constrain the project's.
SAM_VENV ?= .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed

.PHONY: demo test unit integration e2e lint format bench bench-sam sam clean

$(STAMP): pyproject.toml layers/rolechain/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $(STAMP)

$(SAM_STAMP):
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli awscli
	@touch $(SAM_STAMP)

## sam: install SAM CLI (and the AWS CLI) into .venv-sam
sam: $(SAM_STAMP)

## demo: run the main job against the embedded multi-account AWS emulator
demo: $(STAMP) $(SAM_STAMP)
	$(BIN)/python -m rolechain.demo

## test: lint, type-check and every test tier (e2e needs Docker; it says why it skips without)
test: $(STAMP) $(SAM_STAMP) lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

e2e: $(STAMP) $(SAM_STAMP)
	$(BIN)/python -m pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check layers functions tests benchmarks
	$(BIN)/ruff format --check layers functions tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format layers functions tests benchmarks
	$(BIN)/ruff check --fix layers functions tests benchmarks

## bench: the benchmarks (prints tables; see benchmarks/README.md); bench-sam needs Docker
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sessions.py
	$(BIN)/python benchmarks/bench_runner.py

bench-sam: $(STAMP) $(SAM_STAMP)
	$(BIN)/python benchmarks/bench_sam_local.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
