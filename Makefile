# quizbot — `make help` lists the targets.
# Every target runs inside the project virtual environment (.venv), created on first use,
# so a fresh machine needs only Python 3.11+ and make.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run play migrate revision check-migrations seed test test-fast lint format typecheck bench bench-compare bench-docs clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "quizbot needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install quizbot with its dev tools

run: install ## Migrate, seed on first use, then run the bot (DISCORD_TOKEN set) or a terminal quiz
	$(BIN)/quizbot start

play: install ## Play a quiz in the terminal
	$(BIN)/quizbot play

migrate: install ## Upgrade the database to the latest revision (embedded PostgreSQL without DATABASE_URL)
	$(BIN)/quizbot migrate

revision: install ## Autogenerate a migration: make revision m="add a column"
	@test -n "$(m)" || { echo 'usage: make revision m="what changed"'; exit 1; }
	$(BIN)/alembic upgrade head
	$(BIN)/alembic revision --autogenerate -m "$(m)"

check-migrations: install ## Fail when the models and the migrations disagree (alembic check)
	$(BIN)/alembic upgrade head
	$(BIN)/alembic check

seed: install ## Load the bundled question bank (idempotent)
	$(BIN)/quizbot seed

test: install ## Run the test suite against a real PostgreSQL
	$(BIN)/python -m pytest

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy (strict) on the quizbot package
	$(BIN)/mypy

bench: install ## Run the load benchmark: make bench scale=standard (default smoke)
	$(BIN)/quizbot bench --scale $(or $(scale),smoke)

bench-compare: install ## What a change buys on the answer burst: make bench-compare base=REV [runs=9] (against the working tree)
	$(BIN)/python -m bench.compare $(or $(base),HEAD) --runs $(or $(runs),9)

bench-docs: install ## Copy bench/results/bench-$(scale).md into docs/performance.md (default standard)
	$(BIN)/python -m bench.docs $(or $(scale),standard)

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
