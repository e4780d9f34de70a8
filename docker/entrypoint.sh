#!/bin/sh
# Container entrypoint for the DuoNiche image.
#
# - Web (the command starts with `gunicorn`), or RUN_MIGRATIONS=true: apply migrations first.
#   The Celery worker and beat never migrate (docker-compose sets RUN_MIGRATIONS=false for them),
#   so exactly one process, the web, migrates.
# - Web: `--workers ${GUNICORN_WORKERS:-3}` is added unless the command sets a worker count.
# - Then the command replaces this shell (`exec`), so it receives the container's signals.
set -eu

APP_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

is_web=false
if [ "${1:-}" = "gunicorn" ]; then
    is_web=true
fi

if [ "$is_web" = true ] || [ "${RUN_MIGRATIONS:-}" = "true" ]; then
    echo "entrypoint: applying database migrations" >&2
    python "$APP_DIR/manage.py" migrate --noinput
fi

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

if [ "$is_web" = true ]; then
    has_workers=false
    for arg in "$@"; do
        case "$arg" in
            -w | -w* | --workers | --workers=*) has_workers=true ;;
        esac
    done
    if [ "$has_workers" = false ]; then
        set -- "$@" --workers "${GUNICORN_WORKERS:-3}"
    fi
fi

exec "$@"
