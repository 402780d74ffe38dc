# The two set-up commands of the README: `make demo` and `make test`. Each creates the virtual
# environment it needs on first use (Python >= 3.11 required).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck check e2e bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "callback-bridge needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-local

demo: $(VENV)/.installed-local   ## the whole pipeline on the embedded local AWS
	$(BIN)/callback-bridge demo

test: $(VENV)/.installed-test    ## the whole suite: unit, functional, e2e, infra
	$(BIN)/python -m pytest $(PYTEST_ARGS)

e2e: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bridge consumers tests benchmarks
	$(BIN)/ruff format --check bridge consumers tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy bridge consumers benchmarks

check: lint typecheck test

bench: $(VENV)/.installed-test   ## embedded SQS cost with queue depth (minutes; see benchmarks/)
	$(BIN)/python -m benchmarks.sqs_depth

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .callback-bridge
