# notify — developer commands. `make dev` runs everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install dev test lint format types bench all clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install notify with its dev tools

dev: $(STAMP) ## Run API + worker with embedded PostgreSQL, Redis and AWS
	$(BIN)/notify dev

test: $(STAMP) ## Run the whole test suite (embedded servers, nothing else needed)
	$(BIN)/pytest

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check src tests alembic
	$(BIN)/ruff format --check src tests alembic

format: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format src tests alembic
	$(BIN)/ruff check --fix src tests alembic

types: $(STAMP) ## mypy --strict
	$(BIN)/mypy

bench: $(STAMP) ## Benchmarks of DESIGN §10 (prints figures, never fails on speed)
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || echo "wrk unavailable: the bench uses its own load generator"
	$(BIN)/notify bench all

all: lint types test ## Everything CI cares about

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
