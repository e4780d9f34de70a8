# DuoNiche: `make run` serves a local instance with nothing configured; `make test` is what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STARTER_BANK := exercises/fixtures/starter_bank.json

.PHONY: run run-stack test lint typecheck pytest messages schema clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "DuoNiche needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

# Local development defaults; real environment variables (or .env) win.
run run-stack: export DJANGO_DEBUG ?= true

# Prepare a database: migrations, translations (the compiled catalogs are committed, so gettext
# is optional), the starter bank (idempotent) and the development superuser.
define prepare
	$(BIN)/python manage.py migrate --noinput
	@if command -v msgfmt >/dev/null; then $(BIN)/python manage.py compilemessages --ignore=.venv -v0; \
	 else echo "gettext not installed: using the committed compiled catalogs"; fi
	$(BIN)/python manage.py import_exercises $(STARTER_BANK)
	@$(BIN)/python manage.py shell -v 0 -c "from exercises.models import Exercise; print(f'Exercise bank: {Exercise.objects.count()} exercises')"
	$(BIN)/python manage.py ensure_admin
endef

run: $(VENV)/.installed
	$(prepare)
	@echo "API http://127.0.0.1:8000/api/v1/  admin http://127.0.0.1:8000/admin/  docs http://127.0.0.1:8000/api/docs/"
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# The full stack against real services: web (gunicorn), a Celery worker and beat; Ctrl-C stops all.
run-stack: $(VENV)/.installed
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "Set DATABASE_URL and REDIS_URL first."; exit 1; }
	$(prepare)
	$(BIN)/python manage.py collectstatic --noinput -v0
	@trap 'kill 0' INT TERM EXIT; \
	  $(BIN)/gunicorn duoniche.wsgi:application --bind 127.0.0.1:8000 --workers 2 --access-logfile - & \
	  $(BIN)/celery -A duoniche worker -Q duoniche --loglevel INFO & \
	  $(BIN)/celery -A duoniche beat --loglevel INFO & \
	  wait

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy .

# PostgreSQL from TEST_DATABASE_URL (default: the local server) and Redis from REDIS_URL.
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

test: lint typecheck pytest

# Regenerate the gettext catalogs after changing duoniche/texts.py, then translate and compile.
messages: $(VENV)/.installed-dev
	DJANGO_DEBUG=true $(BIN)/python manage.py makemessages --ignore=.venv --ignore=tests -l en -l ru -l uk -l bg -l sr -l tr
	DJANGO_DEBUG=true $(BIN)/python manage.py compilemessages --ignore=.venv

schema: $(VENV)/.installed
	DJANGO_DEBUG=true $(BIN)/python manage.py spectacular --validate --file schema.yml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles
