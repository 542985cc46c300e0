# `make run` starts the portal with devcloud; `make test` runs every check and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck pytest bench assets chromium messages gettext clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps: packages are reinstalled only when a requirements file changed.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# Front-end assets, built from npm packages into static/dist/ when the project has any.
assets:
	@if [ -f package.json ]; then \
	  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi; \
	  npm run --silent build; \
	fi

chromium:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Translations: locale/<lang>/LC_MESSAGES/*.po from the code's strings, then the .mo files Django
# reads (committed: running the portal needs no gettext; tests/portal/test_translations.py checks
# that they match the .po files). Only changing translations needs gettext's tools.
gettext:
	@command -v msgfmt >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq gettext >/dev/null; }

I18N_IGNORE := --ignore=.venv --ignore=node_modules --ignore=static/dist --ignore=devcloud --ignore=bench --ignore=tests --ignore=var
messages: $(VENV)/.runtime gettext
	DEBUG=true $(BIN)/python manage.py makemessages --all --no-obsolete $(I18N_IGNORE)
	DEBUG=true $(BIN)/python manage.py makemessages --all --no-obsolete -d djangojs $(I18N_IGNORE)
	DEBUG=true $(BIN)/python manage.py compilemessages $(I18N_IGNORE)

run: $(VENV)/.runtime assets
	$(BIN)/python scripts/run.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	DEBUG=true $(BIN)/mypy core portal tenants identity integrations devcloud chat

# Test processes (pytest-xdist), each with its own database and Redis databases (tests/parallel.py);
# a file's tests stay in one process, which starts its servers once.
PYTEST_WORKERS ?= 2

pytest: $(VENV)/.dev assets chromium
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile
	@# Again on SQLite (development's database): the sync's generic writes and the database rules.
	mkdir -p var && TEST_DATABASE_URL=sqlite:///$(CURDIR)/var/tests.sqlite3 $(BIN)/pytest -m both_databases

test: lint typecheck pytest

# Benchmarks: each prints its figures, the last line as JSON.
bench: $(VENV)/.dev
	$(BIN)/python bench/acs_token.py
	$(BIN)/python bench/graph_tenant.py --with-limits
	$(BIN)/python bench/chat_sync.py
	$(BIN)/python bench/chat_page.py
	$(BIN)/python bench/chat_search.py
	$(BIN)/python bench/freshness.py

clean:
	rm -rf $(VENV) node_modules static/dist var
