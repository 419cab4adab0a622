# Webhook Inbox: the commands of the README.
#   make run    start the demo project on http://127.0.0.1:8000 (SQLite, in-memory channel layer)
#               with a live demo: staff user, demo endpoints, a sender posting signed samples
#   make test   lint, type-check and run the whole suite (SQLite, PostgreSQL, and Django 6 on Python 3.12)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The second supported line: Django 6.x needs Python 3.12+. pyenv's own builds are tried
# first (its shims answer even when that version is not enabled), then PATH.
PYTHON312 ?= $(shell for p in $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null) $$(command -v python3.12 python3.13 2>/dev/null); do "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && echo "$$p" && break; done)
VENV6 ?= .venv-dj6
PORT ?= 8000

.PHONY: run test lint test-sqlite test-postgres test-django6 test-browser chromium venv clean

$(BIN)/.installed: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or newer, or pass PYTHON=/path/to/python3"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --group test --group lint
	@touch $@

venv: $(BIN)/.installed

# The demo: a staff user, one endpoint per provider and a sender posting signed samples
# every few seconds (WEBHOOKS_DEMO=0 leaves the sender out). Ctrl-C stops it all.
run: $(BIN)/.installed
	@$(BIN)/python -c 'import socket, sys; s = socket.socket(); r = s.connect_ex(("127.0.0.1", $(PORT))); s.close(); sys.exit("Port $(PORT) is in use: stop what runs there, or make run PORT=8001" if r == 0 else 0)'
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py demo --port $(PORT)

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy  # -m: the project's own tests package first on the path
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run

# The browser and make-run tests run once, in their own lane (test-browser); the others
# run per database and Django line. The SQLite lane runs in shuffled order
# (pytest-randomly prints its seed; --randomly-seed=N replays that order).
test-sqlite: $(BIN)/.installed-test
	$(BIN)/python -m pytest -m "not browser and not demo and not install" -p randomly

test-postgres: $(BIN)/.installed-test
	$(BIN)/python -m pytest -m "not browser and not demo and not install" --ds=tests.settings_postgres

# Debian's Chromium, never a browser downloaded by a test tool.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@test -x /usr/bin/chromium || { echo "Chromium is required for the browser test: apt-get install chromium"; exit 1; }

test-browser: $(BIN)/.installed-test chromium
	$(BIN)/python -m pytest -m "browser or demo or install" -p no:randomly

$(VENV6)/.installed: requirements.txt pyproject.toml
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found: install it (pyenv install 3.12) or pass PYTHON312=/path/to/python3.12"; exit 1; }
	$(PYTHON312) -m venv $(VENV6)
	$(VENV6)/bin/python -m pip install --quiet --upgrade pip
	$(VENV6)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV6)/bin/python -m pip install --quiet --group test
	@touch $@

test-django6: $(VENV6)/.installed
	$(VENV6)/bin/python -c 'import django; print("Django", django.get_version()); assert django.VERSION >= (6,)'
	$(VENV6)/bin/python -m pytest -m "not browser and not demo and not install"
	$(VENV6)/bin/python -m pytest -m "not browser and not demo and not install" --ds=tests.settings_postgres

test: lint test-sqlite test-postgres test-browser test-django6

clean:
	rm -rf $(VENV) $(VENV6) build dist .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (bench/RESULTS.md): the bench dependency group, Debian's wrk (and
# redis-server for the full run's Redis layer), PostgreSQL at 127.0.0.1:5432.
# make bench-quick takes a few minutes; make bench, with the store at 1,000,000 events
# and 100,000 deliveries for memory, aims at 20 minutes on two idle cores
# (bench/RESULTS.md gives each scenario's duration).
.PHONY: bench bench-quick

$(BIN)/.installed-bench: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet --group bench
	@touch $@

bench: $(BIN)/.installed-bench
	@command -v wrk >/dev/null && command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk redis-server; }
	$(BIN)/python -m bench.run

bench-quick: $(BIN)/.installed-bench
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run --quick

# The soak, not part of make test or make bench: 100,000 deliveries with 100 dashboards
# open, RSS of the server and the worker sampled; lost and duplicated counts (about 15
# minutes), written as the last section of bench/RESULTS.md (a bench run keeps it).
# make soak SOAK_ARGS="--deliveries 20000" for a shorter one.
.PHONY: soak
soak: $(BIN)/.installed-bench
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	$(BIN)/python -m bench.soak $(SOAK_ARGS)
