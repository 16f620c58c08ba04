# One-command set-up: `make run` starts the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
WORKERS ?= 4
export TRACKER_HOST := $(HOST)
export TRACKER_PORT := $(PORT)
export TRACKER_WORKERS := $(WORKERS)

.PHONY: run run-dev demo test test-sqlite lint translations extract-messages bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt requirements-fonts.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-fonts.txt
	touch $@

# axe-core (npm) for the accessibility tests, injected into pages by tests/test_a11y.py.
AXE := tests/a11y/node_modules/axe-core/axe.min.js
$(AXE): tests/a11y/package.json tests/a11y/package-lock.json
	npm ci --prefix tests/a11y --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

translations: $(VENV)/.runtime
	$(BIN)/pybabel compile -d tracker/translations >/dev/null

## Start the app on http://$(HOST):$(PORT): gunicorn ($(WORKERS) workers) and one scheduler process, until Ctrl+C
## (migrates and creates a first admin if needed).
run: $(VENV)/.runtime translations
	$(BIN)/flask --app app serve

## The same with Flask's development server (one process, the scheduler in a thread): for working on the code only.
run-dev: $(VENV)/.runtime translations
	$(BIN)/flask --app app serve --dev

## Load demo data (items of every kind, a bag, one user per role) into the local database.
demo: $(VENV)/.runtime translations
	$(BIN)/flask --app app bootstrap
	$(BIN)/flask --app app demo

## Run the whole suite (SQLite, PostgreSQL when a server can be started, and a real browser).
test: $(VENV)/.dev $(AXE) translations
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check tracker tests bench app.py migrations

extract-messages: $(VENV)/.dev
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _l -o tracker/translations/messages.pot .
	$(BIN)/pybabel update -N -i tracker/translations/messages.pot -d tracker/translations

clean:
	rm -rf $(VENV) .pytest_cache

## Benchmarks, as ratios in one run: labels (PDF against bare QR), the sweep (against hand-written SQL), requests
## through gunicorn (against a bare Flask app; needs wrk), the desk board and the CSV import (against their targets).
bench: $(VENV)/.dev
	$(BIN)/python bench/labels.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/requests.py
	$(BIN)/python bench/requests.py --postgres
	$(BIN)/python bench/board.py
	$(BIN)/python bench/csv_import.py
