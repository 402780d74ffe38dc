# The two set-up commands of the README: `make demo` and `make test`. Each creates the virtual
# environment it needs on first use (Python >= 3.11 required).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

# Deployment artifacts (infra/README.md, "Artifacts"): the Lambda zip for the completion and
# dead-letter functions, and the wheels the EC2 workers install. Defaults match the Terraform
# modules (python3.12, x86_64); e.g. `make lambda LAMBDA_ARCH=arm64`,
# `make wheels HANDLER_PACKAGES="../mypackage"` (project directories or pinned requirements).
LAMBDA_ARCH      ?= x86_64
LAMBDA_PYTHON    ?= 3.12
WORKER_ARCH      ?= x86_64
WORKER_PYTHON    ?= 3.12
HANDLER_PACKAGES ?=

.PHONY: demo test lint typecheck check e2e bench clean lambda wheels

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

lambda: | $(BIN)/python          ## dist/callback-bridge-lambda.zip (reproducible: same sources, same sha256)
	$(BIN)/python -m tools.build_artifacts lambda --architecture $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

wheels: | $(BIN)/python          ## dist/wheels/*.whl for the workers: aws s3 sync dist/wheels s3://BUCKET/PREFIX/
	rm -rf dist/wheels
	$(BIN)/python -m tools.build_artifacts wheels --architecture $(WORKER_ARCH) --python-version $(WORKER_PYTHON) $(HANDLER_PACKAGES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .callback-bridge
