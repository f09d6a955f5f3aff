# Billing Access. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_ENV := DEBUG=true
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run test lint fmt typecheck bench e2e migrate check-python venv clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null || { \
	  echo "Billing Access needs Python 3.12 or newer (Django 6.1); '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
	  echo "Install Python 3.12+, or run: make PYTHON=/path/to/python3.12 ..."; exit 1; }

$(STAMP): pyproject.toml | check-python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@bin/requirements --dev > $(VENV)/requirements.txt
	@$(PY) -m pip install --quiet -r $(VENV)/requirements.txt
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the pinned dependencies

migrate: venv ## Apply database migrations (DATABASE_URL, else var/db.sqlite3)
	@mkdir -p var
	@$(DEV_ENV) $(PY) manage.py migrate --no-input -v0

run: migrate ## Serve the portal on 127.0.0.1:8000 with demo data
	@$(DEV_ENV) $(PY) manage.py seed_demo
	@echo "Open http://$(HOST):$(PORT)/ and sign in with the details above."
	@$(DEV_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

lint: venv ## Ruff lint and format check, mypy on the typed modules, missing migrations, system checks
	@mkdir -p var
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(VENV)/bin/lint-imports --no-cache --no-logo
	@$(MAKE) --no-print-directory typecheck
	@$(DEV_ENV) $(PY) manage.py makemigrations --check --dry-run -v1 >/dev/null || { echo "A model change has no migration (or the check failed): run makemigrations."; exit 1; }
	@$(DEV_ENV) $(PY) manage.py check --fail-level WARNING

fmt: venv ## Format the code with ruff
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

test: lint ## Lint, then the whole suite (unit, PostgreSQL integration, browser) against PostgreSQL
	@bin/with-postgres $(PY) -m pytest $(PYTEST_ARGS)

e2e: venv ## Only the browser tests
	@bin/with-postgres $(PY) -m pytest -m e2e $(PYTEST_ARGS)

typecheck: venv ## mypy on the typed modules
	@$(PY) -m mypy roles/resolver.py roles/permissions.py portal/navigation.py roles/middleware.py \
	  audit/services.py security/middleware.py security/stepup.py accounts/middleware.py accounts/users.py

bench: venv ## Benchmarks against a dedicated PostgreSQL database; figures under var/bench/
	@TEST_DB_NAME=billing_access_bench bin/with-postgres $(PY) -m tests.bench

clean: ## Remove the venv and local data
	rm -rf $(VENV) var
