# DuoNiche backend image: one image for the web (gunicorn), the Celery worker and Celery beat.
# The command picks the role; see docker/entrypoint.sh and docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Non-root runtime user owning /app (uid/gid 1000).
RUN groupadd --gid 1000 duoniche \
    && useradd --uid 1000 --gid duoniche --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin duoniche

WORKDIR /app
RUN chown duoniche:duoniche /app

# The language check (docs/language-check.md): Debian's Hunspell dictionaries and library.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhunspell-1.7-0 \
        hunspell-bg hunspell-sr hunspell-ru hunspell-hr hunspell-bs \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so code changes do not reinstall them. psycopg[binary] needs no system libs;
# the Hunspell binding compiles against libhunspell, so its compiler is removed once it is built.
COPY requirements.txt requirements-language.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libhunspell-dev \
    && pip install --no-cache-dir -r requirements-language.txt -c constraints.txt \
    && apt-get purge -y --auto-remove gcc libc6-dev libhunspell-dev \
    && rm -rf /var/lib/apt/lists/*

COPY --chown=duoniche:duoniche . .
RUN chmod 0755 /app/docker/entrypoint.sh

USER duoniche

# Static files are collected at build time (served by whitenoise). The production settings demand a
# secret key, API tokens and a database URL (never connected to here), so this one command gets
# throwaway build-only values; they are NOT part of the image's runtime environment. media/ is
# and metrics/ are created so the named volumes mounted there inherit the duoniche owner.
RUN DJANGO_DEBUG=false \
    DJANGO_SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime \
    DJANGO_ALLOWED_HOSTS=localhost \
    API_ALLOW_ANONYMOUS=true \
    DATABASE_URL=postgres://build-only@127.0.0.1:1/none \
    REDIS_URL= \
    SENTRY_DSN= \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/media /app/metrics

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
# The entrypoint migrates first (web only) and adds `--workers ${GUNICORN_WORKERS:-3}` when the
# command does not choose a worker count itself.
CMD ["gunicorn", "duoniche.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
