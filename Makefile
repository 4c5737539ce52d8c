# LeadOps escalation. `make run` installs and runs the demo; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run test lint install install-dev demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Install, migrate, load the demo org and leads, then run the web app and the scheduler
## (django-q2 cluster) together in the foreground; Ctrl-C stops both.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	@echo "Admin: http://localhost:$(PORT)/admin/  (logins above)"
	$(BIN)/python manage.py serve --port $(PORT)

## Run the linters and the whole test suite (SQLite by default; set DATABASE_URL / REDIS_URL for
## real servers).
test: lint
	$(BIN)/pytest -q

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install-dev
	$(BIN)/python manage.py bench calendar
	$(BIN)/python manage.py bench sweep --open 100000 --due 10000

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm
