# The two set-up commands of the README: `make demo` and `make test`. Each creates the virtual
# environment it needs on first use (Python >= 3.11 required). DEVELOPMENT.md: which test
# command runs what.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist processes for the parallel runs (`auto`: one per CPU).
TEST_WORKERS ?= auto
XDIST        := -n $(TEST_WORKERS) --dist worksteal

# The production Python (the Lambdas' runtime, the workers' wheels): `make test-all` also runs
# the unit, functional and e2e tiers on it, in $(VENV312). PYTHON312 names the interpreter;
# otherwise tools/find_python.py looks on PATH, then in pyenv's and uv's installs.
PYTHON312 ?=
VENV312   ?= .venv312
FIND_PYTHON312 = $(if $(PYTHON312),echo $(PYTHON312),$(PYTHON) -m tools.find_python 3.12 2>/dev/null)

# Deployment artifacts (infra/README.md, "Artifacts"): the Lambda zip for the completion and
# dead-letter functions, and the wheels the EC2 workers install. Defaults match the Terraform
# modules (python3.12, x86_64); e.g. `make lambda LAMBDA_ARCH=arm64`,
# `make wheels HANDLER_PACKAGES="../mypackage"` (project directories or pinned requirements).
LAMBDA_ARCH      ?= x86_64
LAMBDA_PYTHON    ?= 3.12
WORKER_ARCH      ?= x86_64
WORKER_PYTHON    ?= 3.12
HANDLER_PACKAGES ?=

.PHONY: demo test test-all test-py312 lint typecheck check e2e bench clean lambda wheels

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "callback-bridge needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local,chaos]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-local

demo: $(VENV)/.installed-local   ## the whole pipeline on the embedded local AWS
	$(BIN)/callback-bridge demo

test: $(VENV)/.installed-test    ## the fast tier (< 3 min): every tier, tests marked slow left out
	$(BIN)/python -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

# Tests marked `serial` (the chaos campaign, the benchmarks: they load the machine themselves)
# run alone after the parallel run.
test-all: $(VENV)/.installed-test   ## everything, all markers (what CI runs), then the 3.12 run
	$(BIN)/python -m pytest -m "not serial" $(XDIST) $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m serial -p no:xdist $(PYTEST_ARGS)
	$(MAKE) test-py312

test-py312:                      ## unit, functional and e2e tiers on python3.12 (skipped without one)
	@python312="$$($(FIND_PYTHON312))"; \
	if [ -z "$$python312" ]; then \
	  echo "test-py312: no python3.12 found (set PYTHON312=...): the 3.12 run is skipped"; exit 0; \
	fi; \
	set -e; \
	if [ ! -x $(VENV312)/bin/python ]; then \
	  echo "$$python312 -m venv $(VENV312)"; "$$python312" -m venv $(VENV312); \
	  echo '*' > $(VENV312)/.gitignore; \
	  $(VENV312)/bin/python -m pip install --quiet --upgrade pip; \
	fi; \
	if [ ! -e $(VENV312)/.installed-test ] || [ pyproject.toml -nt $(VENV312)/.installed-test ]; then \
	  $(VENV312)/bin/python -m pip install --quiet -e '.[test]'; touch $(VENV312)/.installed-test; \
	fi; \
	$(VENV312)/bin/python -m pytest -m "not serial" $(XDIST) tests/unit tests/functional tests/e2e $(PYTEST_ARGS); \
	$(VENV312)/bin/python -m pytest -m serial -p no:xdist tests/unit tests/functional tests/e2e $(PYTEST_ARGS)

e2e: $(VENV)/.installed-test       ## the e2e tier, slow tests included
	$(BIN)/python -m pytest -m "e2e and not serial" $(XDIST) $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "e2e and serial" -p no:xdist $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bridge consumers tests benchmarks tools
	$(BIN)/ruff format --check bridge consumers tests benchmarks tools

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy bridge consumers benchmarks tools

check: lint typecheck test

bench: $(VENV)/.installed-test   ## embedded SQS cost with queue depth (minutes; see benchmarks/)
	$(BIN)/python -m benchmarks.sqs_depth

lambda: | $(BIN)/python          ## dist/callback-bridge-lambda-py3.12-x86_64.zip (reproducible: same sha256)
	$(BIN)/python -m tools.build_artifacts lambda --architecture $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

wheels: | $(BIN)/python          ## dist/wheels/*.whl for the workers: aws s3 sync dist/wheels s3://BUCKET/PREFIX/
	rm -rf dist/wheels
	$(BIN)/python -m tools.build_artifacts wheels --architecture $(WORKER_ARCH) --python-version $(WORKER_PYTHON) $(HANDLER_PACKAGES)

# A rehearsal of a deployment (infra/README.md): terraform apply of infra/examples/complete onto
# the embedded stack `callback-bridge local up` runs (start it first, in another terminal).
deploy-local: $(VENV)/.installed-local   ## terraform apply of the complete example onto 'local up'
	$(BIN)/callback-bridge local deploy

clean:
	rm -rf $(VENV) $(VENV312) .pytest_cache .mypy_cache .ruff_cache .callback-bridge
