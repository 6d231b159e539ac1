# rolechain developer commands. `make demo` and `make test` create and reuse .venv by themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# SAM CLI and the AWS CLI live in their own venv: their pins must not constrain the project's.
SAM_VENV ?= .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
# checkov too: it pins dozens of packages (boto3 among them), so it lives apart as well.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# The unit + integration tiers again against the lowest versions pyproject.toml allows (uv resolves them).
LOWEST_VENV ?= .venv-lowest
# JUnit reports of the test runs: .ci/tiers.py prints each tier's counts from them.
REPORTS ?= .reports

.PHONY: demo test test-lowest unit integration e2e lint format bench bench-sam bench-cold-start bench-mutation sam checkov chromium build python313 clean

$(STAMP): pyproject.toml dev/pyproject.toml layers/rolechain/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]" -e ./dev
	@touch $(STAMP)

$(SAM_STAMP):
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli awscli
	@touch $(SAM_STAMP)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov
	@touch $(CHECKOV_STAMP)

## checkov: install checkov into .venv-checkov (the template tests run it over both templates)
checkov: $(CHECKOV_STAMP)

## chromium: the headless browser the HTML report's test renders the report in (Debian's package, as root)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "make chromium: chromium is missing; install it (apt-get install chromium) as root" >&2; fi; }
	@command -v chromium >/dev/null 2>&1 && chromium --version 2>/dev/null || true

## sam: install SAM CLI (and the AWS CLI) into .venv-sam
sam: $(SAM_STAMP)

## demo: run the main job against the embedded multi-account AWS emulator
demo: $(STAMP) $(SAM_STAMP)
	$(BIN)/python -m rolechain_dev.demo

## test: lint, type-check and every test tier (e2e needs Docker; it says why it skips without)
test: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP) lint
	$(BIN)/python -m pytest --junitxml=$(REPORTS)/junit.xml

## test-lowest: the unit and integration tiers with every direct dependency at its lowest allowed version
test-lowest: $(STAMP) $(SAM_STAMP)
	rm -rf $(LOWEST_VENV)
	$(BIN)/uv venv --quiet --seed --python $(PYTHON) $(LOWEST_VENV)  # --seed: pip, which the plugin tests use
	$(BIN)/uv pip install --quiet --python $(LOWEST_VENV)/bin/python --resolution lowest-direct -e ".[test]" -e ./dev
	$(BIN)/uv pip list --python $(LOWEST_VENV)/bin/python 2>/dev/null \
	  | grep -iE '^(boto3|pydantic|pyyaml|rich|aws-lambda-powertools|moto|pytest|cfn-lint) ' | tr -s ' ' | paste -sd ',' -
	$(LOWEST_VENV)/bin/python -m pytest -p no:cacheprovider --junitxml=$(REPORTS)/junit-lowest.xml tests/unit tests/integration

## python313: the interpreter `sam build` needs (PATH, then pyenv's versions), or what to install
python313: $(STAMP)
	@$(BIN)/python -m rolechain_dev.local python313

## build: sam build of the hub stack (the layer and the four functions)
build: python313 $(SAM_STAMP)
	$(BIN)/python -m rolechain_dev.local build

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

e2e: $(STAMP) $(SAM_STAMP) python313
	$(BIN)/python -m pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check layers dev functions tests benchmarks .ci
	$(BIN)/ruff format --check layers dev functions tests benchmarks .ci
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format layers dev functions tests benchmarks .ci
	$(BIN)/ruff check --fix layers dev functions tests benchmarks .ci

## bench: the benchmarks (prints tables; see benchmarks/README.md); bench-sam needs Docker
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sessions.py
	$(BIN)/python benchmarks/bench_runner.py

## bench-mutation: mutation testing of the core modules and hub/ (hours; see benchmarks/README.md)
bench-mutation: $(STAMP)
	$(BIN)/python benchmarks/mutation.py --all

bench-sam: $(STAMP) $(SAM_STAMP)
	$(BIN)/python benchmarks/bench_sam_local.py

## bench-cold-start: each handler's import against a bare `import boto3`, host and Lambda container
bench-cold-start: $(STAMP) $(SAM_STAMP) python313
	$(BIN)/python benchmarks/bench_cold_start.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(LOWEST_VENV) $(REPORTS) .aws-sam .pytest_cache .mypy_cache .ruff_cache
