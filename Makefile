# The two commands a newcomer needs:
#   make run   - set up everything and run the product on its embedded default (SQLite, no Redis)
#   make test  - set up everything and run the whole test suite (PostgreSQL from DATABASE_URL,
#                default postgres://postgres@127.0.0.1:5432/pncp_mirror)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pncp_mirror
PORT ?= 8000

.PHONY: run test setup lint check-migrations demo-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py runserver 0.0.0.0:$(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-migrations: setup
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python manage.py makemigrations --check --dry-run

test: setup lint check-migrations
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/pytest
