# Billing Access. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_ENV := DEBUG=true
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run test lint fmt typecheck bench bench-test e2e migrate check-python venv clean lock

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null || { \
	  echo "Billing Access needs Python 3.12 or newer (Django 6.1); '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
	  echo "Install Python 3.12+, or run: make PYTHON=/path/to/python3.12 ..."; exit 1; }

# The venv installs the dev lock (every package pinned with its hashes; pip refuses anything
# else); `make lock` writes the locks from pyproject.toml.
$(STAMP): requirements-dev.txt | check-python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the locked dependencies (requirements-dev.txt)

# Both locks resolve for every platform and Python 3.12+ from the package registry alone (uv reads
# no pip configuration), every dependency at the newest version pyproject.toml allows; the dev
# lock keeps the runtime lock's versions.
LOCK_FLAGS := --universal --python-version 3.12 --generate-hashes --upgrade --quiet \
	--custom-compile-command "make lock"
lock: venv ## Re-resolve requirements.txt and requirements-dev.txt from pyproject.toml (uv)
	@$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.txt
	@$(VENV)/bin/uv pip compile pyproject.toml --extra dev -c requirements.txt $(LOCK_FLAGS) \
	  -o requirements-dev.txt
	@bin/requirements --check && echo "Locked: requirements.txt, requirements-dev.txt."

migrate: venv ## Apply database migrations (DATABASE_URL, else var/db.sqlite3)
	@mkdir -p var
	@$(DEV_ENV) $(PY) manage.py migrate --no-input -v0

run: migrate ## Serve the portal on 127.0.0.1:8000 with demo data, and the outbox worker beside it
	@$(DEV_ENV) $(PY) manage.py seed_demo
	@echo "Open http://$(HOST):$(PORT)/ and sign in with the details above."
	@$(DEV_ENV) $(PY) manage.py deliver --no-reload -v0 & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT; \
	  $(DEV_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

lint: venv ## Locks, ruff, import contracts, Dockerfile and compose checks, mypy, migrations, system checks
	@mkdir -p var
	@bin/requirements --check
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache --no-logo
	@$(VENV)/bin/hadolint Dockerfile
	@$(PY) -m pytest -q tests/ops/test_container.py
	@$(MAKE) --no-print-directory typecheck
	@$(DEV_ENV) $(PY) manage.py makemigrations --check --dry-run -v1 >/dev/null || { echo "A model change has no migration (or the check failed): run makemigrations."; exit 1; }
	@$(DEV_ENV) $(PY) manage.py check --fail-level WARNING

fmt: venv ## Format the code with ruff
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

# The suite runs on PYTEST_WORKERS pytest-xdist workers (one per core, at most 4: each worker
# collects the suite and builds its own test database, and the browser and server groups, kept
# on one worker each by tests/conftest.py, bound the time anyway). PYTEST_WORKERS=0 runs it in
# one process. PYTEST_ARGS narrows the run (PYTEST_ARGS=tests/roles, PYTEST_ARGS="-m e2e"); "no
# test selected" (pytest's exit code 5) is then not a failure.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n > 4 ? 4 : n )))
XDIST = $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadgroup)
pytest = rc=0; bin/with-postgres $(PY) -m pytest $(1) || rc=$$?; \
	$(if $(strip $(PYTEST_ARGS)),if [[ $$rc == 5 ]]; then echo "No test matched PYTEST_ARGS."; rc=0; fi;) \
	exit $$rc

test: lint ## Lint, the whole suite (unit, PostgreSQL, browser) in parallel, then the bench self-check
	@$(call pytest,$(XDIST) $(PYTEST_ARGS))
	@$(if $(strip $(PYTEST_ARGS)),echo "The bench self-check runs with the whole suite only (make bench-test).",$(MAKE) --no-print-directory bench-test)

e2e: venv ## Only the browser tests
	@$(call pytest,-m e2e $(PYTEST_ARGS))

bench-test: venv ## Only the bench harness self-check (tests/test_bench.py), once, as make test does
	@bin/with-postgres $(PY) -m pytest -m bench tests/test_bench.py

typecheck: venv ## mypy on the typed modules
	@$(PY) -m mypy roles/resolver.py roles/permissions.py portal/navigation.py roles/middleware.py \
	  audit/services.py security/middleware.py security/stepup.py accounts/middleware.py accounts/users.py \
	  ops/middleware.py ops/endpoints.py ops/readiness.py ops/metrics.py ops/cache.py

bench: venv ## Benchmarks against a dedicated PostgreSQL database; figures under var/bench/
	@TEST_DB_NAME=billing_access_bench bin/with-postgres $(PY) -m tests.bench

clean: ## Remove the venv and local data
	rm -rf $(VENV) var
