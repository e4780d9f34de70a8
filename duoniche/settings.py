"""The only settings module. Everything comes from the environment (docs/configuration.md).

Only DATABASE_URL is always required (PostgreSQL; `make run` starts one and writes it to `.env`);
without Redis the cache is local memory and Celery runs eagerly, and LLM, TTS and S3 switch on by
presence. With `DJANGO_DEBUG=false`, missing production settings stop
the process here with `ImproperlyConfigured`, naming the variables but never their values.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from botocore.config import Config as BotocoreConfig
from django.core.exceptions import ImproperlyConfigured

from duoniche.durations import parse_duration_setting

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
#: The env file read at start (`make run` writes `.env`); real environment variables win over it.
#: DJANGO_ENV_FILE names another file, or none when empty (the tests' processes).
ENV_FILE = os.environ.get("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    env.read_env(ENV_FILE, overwrite=False)

#: Previous-service variable names that were read because the new name was unset.
DEPRECATED_ENV_ALIASES_USED: list[tuple[str, str]] = []


def _aliased(name: str, alias: str) -> str:
    """The variable to read: `name`, or its previous name `alias` when only that one is set."""
    if env.str(name, default="") == "" and env.str(alias, default="") != "":
        DEPRECATED_ENV_ALIASES_USED.append((alias, name))
        return alias
    return name


def _seconds(name: str, default: str) -> timedelta:
    try:
        return parse_duration_setting(env.str(name, default=default))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} must be an ISO-8601 duration (PT3H) or a number of seconds."
        ) from exc


def _json(name: str, default: Any, expect: type) -> Any:
    raw = env.str(name, default="")
    if raw.strip() == "":
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON.") from exc
    if not isinstance(value, expect):
        raise ImproperlyConfigured(f"{name} must be a JSON {expect.__name__}.")
    return value


# --- Django core ------------------------------------------------------------------------------

DEBUG = env.bool(_aliased("DJANGO_DEBUG", "DEBUG"), default=False)
DEVELOPMENT_SECRET_KEY = "django-insecure-duoniche-development-key-not-for-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (DEVELOPMENT_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "duoniche.apps.DuonicheConfig",
    "exercises.apps.ExercisesConfig",
    "learning.apps.LearningConfig",
    "payments.apps.PaymentsConfig",
    "notifications.apps.NotificationsConfig",
]

MIDDLEWARE = [
    # The HTTP metrics (http_metrics.py); django-prometheus' own request middleware would record
    # the same requests again under other names, at about 4 % of a bot call's CPU.
    "duoniche.http_metrics.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The admin's middleware, skipped on the bot API, /healthz and /metrics (admin_only.py).
    "duoniche.admin_only.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "duoniche.admin_only.CsrfViewMiddleware",
    "duoniche.admin_only.AuthenticationMiddleware",
    "duoniche.admin_only.OTPMiddleware",
    "duoniche.admin_only.MessageMiddleware",
    "duoniche.admin_only.StaffTwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out admin login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Django's CSRF check (security.W003) looks for the middleware by name; ours wraps it so that the
# bot API skips it, and `duoniche.W010` checks that the admin still gets it.
SILENCED_SYSTEM_CHECKS = ["security.W003"]

ROOT_URLCONF = "duoniche.urls"
WSGI_APPLICATION = "duoniche.wsgi.application"
ASGI_APPLICATION = "duoniche.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

_POSTGRES_SCHEMES = ("postgres://", "postgresql://", "pgsql://", "postgresql+asyncpg://")


def database_config(url: str) -> dict[str, Any]:
    """A DATABASES entry for the PostgreSQL server at `url`, instrumented for Prometheus.

    PostgreSQL is the only database: the hot paths are written for it, and what `make run`
    serves is what production runs.
    """
    if not url.strip():
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. It must name a PostgreSQL database, e.g. "
            "postgres://user:password@host:5432/duoniche; `make run` starts a local one and "
            "writes its URL to .env."
        )
    if not url.startswith(_POSTGRES_SCHEMES):
        scheme = url.partition("://")[0] if "://" in url else "(no scheme)"
        raise ImproperlyConfigured(
            f"DATABASE_URL must name a PostgreSQL database (postgres://...), not {scheme}: "
            "PostgreSQL is the only database DuoNiche runs on."
        )
    # The previous service's SQLAlchemy scheme means the same server.
    url = url.replace("postgresql+asyncpg://", "postgres://", 1)
    config = env.db_url_config(url)
    config["ENGINE"] = "duoniche.postgresql"
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # No `SELECT 1` before every request's first query: a connection the server dropped fails
    # that request with the JSON 503 and is closed at its end, and the next request reconnects.
    config["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    # Parameters bound by the server, and a statement run 5 times on a connection prepared
    # there: the hot statements skip planning, which cost more than executing them.
    prepared = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
    # A server that accepts the connection and never answers must not hold a worker: the
    # connection attempt gives up after DATABASE_CONNECT_TIMEOUT seconds (libpq and psycopg
    # treat anything under 2 as 2), /healthz then answers 503 and API calls a JSON 503.
    config.setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=5 if prepared else None,
        connect_timeout=env.int("DATABASE_CONNECT_TIMEOUT", default=2),
    )
    # A limit on every statement of the process's connections, set once at connect (no SET per
    # request). Off by default: migrations and jobs share these settings; set it on web replicas.
    statement_timeout = env.float("DATABASE_STATEMENT_TIMEOUT", default=0.0)
    if statement_timeout > 0:
        config["OPTIONS"]["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    return config


DATABASES = {"default": database_config(env.str("DATABASE_URL", default=""))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
#: The bot's per-request bookkeeping (validate's attempt and counters, next-action's profile
#: update) commits without waiting for the disk; a crash of the database server can lose the last
#: ~0.6 s of it (duoniche/rows.py says exactly what). false: every commit waits for the disk.
DATABASE_ASYNC_BOOKKEEPING_COMMIT = env.bool("DATABASE_ASYNC_BOOKKEEPING_COMMIT", default=True)

# --- Redis, cache, Celery ---------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
#: The cache answers as an empty cache while Redis is unreachable (duoniche/cache.py): a call
#: waits at most these many seconds to connect and for a reply, and after a failure Redis is left
#: alone for REDIS_OUTAGE_RETRY_SECONDS before one call tries again.
REDIS_SOCKET_CONNECT_TIMEOUT = env.float("REDIS_SOCKET_CONNECT_TIMEOUT", default=0.25)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
REDIS_OUTAGE_RETRY_SECONDS = env.float("REDIS_OUTAGE_RETRY_SECONDS", default=1.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "duoniche.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "duoniche",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "duoniche",
        }
    }

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="duoniche")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that publishes a task (latest-detailed) must fail fast when the broker is down or
# hangs, never hold a web worker: bounded connect and socket timeouts and a short publish retry
# (worst case about 3 x CELERY_BROKER_SOCKET_TIMEOUT). The socket timeout stays above kombu's
# 1 s BRPOP poll so that idle workers are not disturbed.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=1.0)
CELERY_BROKER_SOCKET_TIMEOUT = env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=2.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": env.int("CELERY_TASK_PUBLISH_MAX_RETRIES", default=2),
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BEAT_SCHEDULER = "duoniche.beat:DuonicheScheduler"  # django-celery-beat, restart-safe
#: Beat touches this file every few seconds (empty: never); a healthcheck reads its age.
BEAT_HEARTBEAT_FILE = env.str("BEAT_HEARTBEAT_FILE", default="")
#: Periodic jobs, in code; synced into django-celery-beat (the jobs issue fills it).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {}
NOTIFICATION_TASKS_QUEUE_NAME = env.str(
    "NOTIFICATION_TASKS_QUEUE_NAME", default="notification_tasks_default"
)

# --- API, security, observability -------------------------------------------------------------

API_TOKENS = [token.strip() for token in env.list("API_TOKENS", default=[]) if token.strip()]
API_ALLOW_ANONYMOUS = env.bool("API_ALLOW_ANONYMOUS", default=False)
API_DOCS_ENABLED = env.bool("API_DOCS_ENABLED", default=True)
# Largest request body read into memory (bot API bodies, admin forms; file uploads excepted).
# A larger body answers 413 `request_too_large` before anything parses it.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
#: A Celery worker serves its host's metrics on this port (0: off); needs PROMETHEUS_MULTIPROC_DIR.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
PROMETHEUS_EXPORT_MIGRATIONS = False
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.1)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "duoniche.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DuoNiche API",
    "DESCRIPTION": "HTTP API v1 used by the DuoNiche language bots and the Notifier.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "OAS_VERSION": "3.1.0",  # Pydantic emits JSON Schema 2020-12 (`type: null`)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["duoniche.api.routing.keep_canonical_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "duoniche.api.schema.add_error_components",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # The bots, the Notifier, Prometheus and orchestrators call over the private network: only
    # the admin (staff in browsers) goes to HTTPS.
    SECURE_REDIRECT_EXEMPT = [r"^(?!admin(/|$))"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Staff sign-in: django-axes locks an admin login out after repeated failures, counted per
# username and, separately, per client address (docs/configuration.md). The bot API's token
# auth never goes through Django's authenticate(), so it is not counted.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failed sign-in, kept for the audit trail
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "duoniche.staff_auth.client_ip"
#: Reverse proxies in front of the web process that append to X-Forwarded-For (0: none).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Two-factor sign-in (django-otp, TOTP; duoniche.two_factor): optional for every staff member,
# required for the members of these groups (e.g. "moderator,support").
STAFF_TWO_FACTOR_GROUPS = env.list("STAFF_TWO_FACTOR_GROUPS", default=[])
OTP_TOTP_ISSUER = "DuoNiche"

# --- Internationalisation ---------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("ru", "Russian"),
    ("uk", "Ukrainian"),
    ("bg", "Bulgarian"),
    ("sr", "Serbian (Latin)"),
    ("tr", "Turkish"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# --- Static and media -------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = env.str("MEDIA_URL", default="/media/")

AWS_ACCESS_KEY_ID = env.str(
    _aliased("AWS_ACCESS_KEY_ID", "CLOUDFLARE_R2_ACCESS_KEY_ID"), default=""
)
AWS_SECRET_ACCESS_KEY = env.str(
    _aliased("AWS_SECRET_ACCESS_KEY", "CLOUDFLARE_R2_SECRET_ACCESS_KEY"), default=""
)
AWS_STORAGE_BUCKET_NAME = env.str(
    _aliased("AWS_STORAGE_BUCKET_NAME", "CLOUDFLARE_R2_BUCKET_NAME"), default="duoniche"
)
CLOUDFLARE_R2_ACCOUNT_ID = env.str("CLOUDFLARE_R2_ACCOUNT_ID", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or (
    f"https://{CLOUDFLARE_R2_ACCOUNT_ID}.r2.cloudflarestorage.com"
    if CLOUDFLARE_R2_ACCOUNT_ID
    else None  # None, not "": boto3 refuses an empty endpoint
)
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="auto")
AWS_S3_SIGNATURE_VERSION = env.str("AWS_S3_SIGNATURE_VERSION", default="s3v4")
AWS_S3_CUSTOM_DOMAIN = env.str("AWS_S3_CUSTOM_DOMAIN", default="") or None
CLOUDFLARE_R2_PUBLIC_URL_PREFIX = env.str("CLOUDFLARE_R2_PUBLIC_URL_PREFIX", default="")
AWS_LOCATION = env.str("AWS_LOCATION", default="")
AWS_DEFAULT_ACL = None
AWS_S3_FILE_OVERWRITE = False
AWS_QUERYSTRING_AUTH = False
# django-storages uses this client config as a whole, so the signature version lives in it too.
# Checksums only when required: R2 and other S3-compatible stores reject the newer defaults.
AWS_S3_CLIENT_CONFIG = BotocoreConfig(
    signature_version=AWS_S3_SIGNATURE_VERSION,
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)
USE_S3_STORAGE = bool(AWS_ACCESS_KEY_ID)

STORAGES: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage"}
        if USE_S3_STORAGE
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- LLM, TTS, Telegram -----------------------------------------------------------------------

# The LangChain chat model provider (`init_chat_model`): "openai" (also for OpenAI-compatible
# servers through OPENAI_BASE_URL) or another one whose langchain-<provider> package is installed.
# A model name may name its own provider too: "anthropic:claude-sonnet-4-5".
LLM_PROVIDER = (
    env.str("LLM_PROVIDER", default="openai").strip().lower().replace("-", "_") or "openai"
)
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_MAIN_MODEL_NAME = env.str("OPENAI_MAIN_MODEL_NAME", default="")
OPENAI_GENERATION_MODEL_NAME = env.str("OPENAI_GENERATION_MODEL_NAME", default="")
OPENAI_VALIDATION_MODEL_NAME = env.str("OPENAI_VALIDATION_MODEL_NAME", default="")
OPENAI_ASSESSOR_MODEL_NAME = env.str("OPENAI_ASSESSOR_MODEL_NAME", default="")
OPENAI_TRANSLATOR_MODEL_NAME = env.str("OPENAI_TRANSLATOR_MODEL_NAME", default="")
OPENAI_REPORTS_MODEL_NAME = env.str("OPENAI_REPORTS_MODEL_NAME", default="")
OPENAI_TEST_MODEL_NAME = env.str("OPENAI_TEST_MODEL_NAME", default="")
_temperature = env.str("OPENAI_TEMPERATURE", default="0.3")
OPENAI_TEMPERATURE = float(_temperature) if _temperature.strip() else None
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
OPENAI_REQUEST_TIMEOUT = env.float("OPENAI_REQUEST_TIMEOUT", default=60.0)
LLM_STRUCTURED_OUTPUT_METHOD = env.str("LLM_STRUCTURED_OUTPUT_METHOD", default="json_schema")
if LLM_STRUCTURED_OUTPUT_METHOD not in ("json_schema", "json_mode", "function_calling"):
    raise ImproperlyConfigured(
        "LLM_STRUCTURED_OUTPUT_METHOD must be json_schema, json_mode or function_calling."
    )
LLM_PRICES_JSON: dict[str, Any] = _json("LLM_PRICES_JSON", {}, dict)
for _model, _price in LLM_PRICES_JSON.items():
    if not (isinstance(_price, dict) and {"input", "output"} <= _price.keys()):
        raise ImproperlyConfigured(
            'LLM_PRICES_JSON must map each model to {"input": <USD>, "output": <USD>}.'
        )
LLM_DAILY_BUDGET_USD = env.float("LLM_DAILY_BUDGET_USD", default=0.0)

# The language check (exercises/language_check.py): Hunspell dictionaries looked up in these
# folders, in order; a language whose dictionaries are missing is reported and not checked.
LANGUAGE_CHECK = env.bool("LANGUAGE_CHECK", default=True)
HUNSPELL_DIRS = env.list("HUNSPELL_DIRS", default=["/usr/share/hunspell"])

GENERATE_AUDIO = env.bool("GENERATE_AUDIO", default=True)
GOOGLE_APPLICATION_CREDENTIALS = env.str("GOOGLE_APPLICATION_CREDENTIALS", default="")
TTS_VOICES_JSON: dict[str, list[str]] = _json("TTS_VOICES_JSON", {}, dict)
if not all(
    isinstance(voices, list) and all(isinstance(v, str) for v in voices)
    for voices in TTS_VOICES_JSON.values()
):
    raise ImproperlyConfigured("TTS_VOICES_JSON must map each bot id to a list of voice names.")
TTS_COOLDOWN_SECONDS = env.int("TTS_COOLDOWN_SECONDS", default=3600)
#: Cloud Text-to-Speech endpoint override (REST); empty means Google's. Tests use a loopback fake.
GOOGLE_TTS_ENDPOINT = env.str("GOOGLE_TTS_ENDPOINT", default="")
#: The Bulgarian dictionary page that redirects to a random stressed headword.
ACCENT_DICTIONARY_RANDOM_URL = env.str(
    "ACCENT_DICTIONARY_RANDOM_URL", default="https://rechnik.chitanka.info/random"
)

TELEGRAM_BOT_TOKENS_JSON: dict[str, str] = _json(
    _aliased("TELEGRAM_BOT_TOKENS_JSON", "TELEGRAM_UPLOAD_BOT_TOKENS_JSON"), {}, dict
)
if not all(isinstance(token, str) for token in TELEGRAM_BOT_TOKENS_JSON.values()):
    raise ImproperlyConfigured("TELEGRAM_BOT_TOKENS_JSON must map each bot id to a token string.")
TELEGRAM_UPLOAD_CHAT_ID = env.str(
    _aliased("TELEGRAM_UPLOAD_CHAT_ID", "TELEGRAM_UPLOAD_BOT_CHAT_ID"), default=""
)
TELEGRAM_API_BASE_URL = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org").rstrip(
    "/"
)
TELEGRAM_REQUEST_TIMEOUT = env.float("TELEGRAM_REQUEST_TIMEOUT", default=20.0)

# --- Payments ---------------------------------------------------------------------------------

PAYMENTS_PAYLOAD_SECRET = env.str("PAYMENTS_PAYLOAD_SECRET", default="")
PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS = env.bool("PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS", default=False)
PAYMENTS_ACCEPT_ANY_AMOUNT = env.bool("PAYMENTS_ACCEPT_ANY_AMOUNT", default=False)
REPORT_DONATION_AMOUNT_XTR = env.int("REPORT_DONATION_AMOUNT_XTR", default=50)

# --- Learning rules ---------------------------------------------------------------------------

EXERCISES_IN_SET = env.int("EXERCISES_IN_SET", default=5)
SETS_IN_SESSION = env.int("SETS_IN_SESSION", default=3)
DELTA_BETWEEN_SESSIONS = _seconds("DELTA_BETWEEN_SESSIONS", "PT3H")
MAX_SESSIONS_LENGTH = _seconds("MAX_SESSIONS_LENGTH", "PT3H")
DEFAULT_LANGUAGE_LEVEL = env.str("DEFAULT_LANGUAGE_LEVEL", default="A2")
DEFAULT_USER_LANGUAGE = env.str("DEFAULT_USER_LANGUAGE", default="en")
DEFAULT_BOT_MESSAGE_LANGUAGE = env.str("DEFAULT_BOT_MESSAGE_LANGUAGE", default="en")
DEFAULT_TARGET_LANGUAGE = env.str("DEFAULT_TARGET_LANGUAGE", default="Bulgarian")
ASYNC_TASK_CACHE_TTL = env.int("ASYNC_TASK_CACHE_TTL", default=120)
# Spaced review (docs/learning.md): mistakes come back when FSRS says they are about to be
# forgotten, at most REVIEWS_IN_SET of each set; SPACED_REVIEW=false restores the old order.
SPACED_REVIEW = env.bool("SPACED_REVIEW", default=True)
REVIEWS_IN_SET = env.int("REVIEWS_IN_SET", default=2)
REVIEW_DESIRED_RETENTION = env.float("REVIEW_DESIRED_RETENTION", default=0.9)
REVIEW_RELEARN_MINUTES = env.int("REVIEW_RELEARN_MINUTES", default=10)
# The level policy: promote at >= LEVEL_PROMOTE_SHARE right of the last LEVEL_WINDOW answers at
# the level, demote at <= LEVEL_DEMOTE_SHARE, counting only answers since the last change; back to
# a level the learner was moved down from within LEVEL_RETURN_DAYS takes LEVEL_RETURN_SHARE.
ADAPTIVE_LEVEL = env.bool("ADAPTIVE_LEVEL", default=True)
LEVEL_WINDOW = env.int("LEVEL_WINDOW", default=30)
LEVEL_PROMOTE_SHARE = env.float("LEVEL_PROMOTE_SHARE", default=0.85)
LEVEL_DEMOTE_SHARE = env.float("LEVEL_DEMOTE_SHARE", default=0.6)
LEVEL_RETURN_SHARE = env.float("LEVEL_RETURN_SHARE", default=0.95)
LEVEL_RETURN_DAYS = env.int("LEVEL_RETURN_DAYS", default=28)
# Streak freezes: one earned per STREAK_FREEZE_EVERY_DAYS days of streak, at most
# STREAK_FREEZES_MAX held (0 turns them off).
STREAK_FREEZE_EVERY_DAYS = env.int("STREAK_FREEZE_EVERY_DAYS", default=7)
STREAK_FREEZES_MAX = env.int("STREAK_FREEZES_MAX", default=2)
if EXERCISES_IN_SET < 1 or SETS_IN_SESSION < 1:
    raise ImproperlyConfigured("EXERCISES_IN_SET and SETS_IN_SESSION must be at least 1.")
if (
    REVIEWS_IN_SET < 0
    or REVIEW_RELEARN_MINUTES < 0
    or LEVEL_WINDOW < 1
    or STREAK_FREEZE_EVERY_DAYS < 1
    or STREAK_FREEZES_MAX < 0
):
    raise ImproperlyConfigured(
        "REVIEWS_IN_SET, REVIEW_RELEARN_MINUTES and STREAK_FREEZES_MAX must be 0 or more; "
        "LEVEL_WINDOW and STREAK_FREEZE_EVERY_DAYS at least 1."
    )
if not 0.7 <= REVIEW_DESIRED_RETENTION < 1:
    raise ImproperlyConfigured("REVIEW_DESIRED_RETENTION must be at least 0.7 and below 1.")
if not 0 <= LEVEL_DEMOTE_SHARE < LEVEL_PROMOTE_SHARE <= LEVEL_RETURN_SHARE <= 1:
    raise ImproperlyConfigured(
        "Need 0 <= LEVEL_DEMOTE_SHARE < LEVEL_PROMOTE_SHARE <= LEVEL_RETURN_SHARE <= 1."
    )
if LEVEL_RETURN_DAYS < 0:
    raise ImproperlyConfigured("LEVEL_RETURN_DAYS must be 0 or more.")
if DEFAULT_LANGUAGE_LEVEL not in ("A1", "A2", "B1", "B2", "C1", "C2"):
    raise ImproperlyConfigured("DEFAULT_LANGUAGE_LEVEL must be one of A1, A2, B1, B2, C1, C2.")

#: The bots and their languages (see duoniche/languages.py); checked at startup.
LANGUAGES_FILE = BASE_DIR / "duoniche" / "languages.yml"

# --- Exercise bank and quality ----------------------------------------------------------------

MIN_EXERCISE_COUNT_TO_GENERATE_NEW = env.int("MIN_EXERCISE_COUNT_TO_GENERATE_NEW", default=5)
EXERCISE_REFILL_INTERVAL = env.int("EXERCISE_REFILL_INTERVAL", default=600)
CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = env.float(
    "CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC", default=0.5
)
GENERATION_CONCURRENCY = env.int("GENERATION_CONCURRENCY", default=5)
QUALITY_MONITOR_INTERVAL_SECONDS = env.int("QUALITY_MONITOR_INTERVAL_SECONDS", default=7200)
QUALITY_MIN_WEIGHTED_ATTEMPTS = env.float("QUALITY_MIN_WEIGHTED_ATTEMPTS", default=7.0)
QUALITY_ERROR_RATE_THRESHOLD = env.float("QUALITY_ERROR_RATE_THRESHOLD", default=0.5)
QUALITY_MIN_HOURS_SINCE_UPDATE = env.int("QUALITY_MIN_HOURS_SINCE_UPDATE", default=24)
QUALITY_DEFAULT_RATING = env.float("QUALITY_DEFAULT_RATING", default=0.1)
REVIEW_PROCESSOR_INTERVAL_SECONDS = env.int("REVIEW_PROCESSOR_INTERVAL_SECONDS", default=10800)
REVIEW_PROCESSOR_BATCH_SIZE = env.int("REVIEW_PROCESSOR_BATCH_SIZE", default=10)

# --- Notifications and reports ----------------------------------------------------------------

NOTIFICATION_SCHEDULER_INTERVAL_SECONDS = env.int(
    "NOTIFICATION_SCHEDULER_INTERVAL_SECONDS", default=300
)
# A notification whose publish failed (broker down) is retried with exponential back-off: the
# first retry after NOTIFICATION_RETRY_BASE_SECONDS, doubling up to NOTIFICATION_RETRY_MAX_DELAY_
# SECONDS. It is given up only when no longer relevant (notifications/relevance.py) or older than
# NOTIFICATION_RETRY_MAX_AGE_SECONDS, never after a number of attempts.
NOTIFICATION_RETRY_BASE_SECONDS = env.int("NOTIFICATION_RETRY_BASE_SECONDS", default=300)
NOTIFICATION_RETRY_MAX_DELAY_SECONDS = env.int("NOTIFICATION_RETRY_MAX_DELAY_SECONDS", default=3600)
NOTIFICATION_RETRY_MAX_AGE_SECONDS = env.int("NOTIFICATION_RETRY_MAX_AGE_SECONDS", default=86400)
NOTIFICATION_RETRY_BATCH_SIZE = env.int("NOTIFICATION_RETRY_BATCH_SIZE", default=1000)
# Publishing to the Notifier's broker fails fast: socket connect/read timeout (seconds) and the
# number of publish retries per message.
NOTIFICATION_PUBLISH_TIMEOUT_SECONDS = env.float(
    "NOTIFICATION_PUBLISH_TIMEOUT_SECONDS", default=3.0
)
NOTIFICATION_PUBLISH_MAX_RETRIES = env.int("NOTIFICATION_PUBLISH_MAX_RETRIES", default=1)
SESSION_REMINDER_LOOKBACK_SECONDS = env.int("SESSION_REMINDER_LOOKBACK_SECONDS", default=900)
LONG_BREAK_REMINDERS_COOLDOWN_HOURS = env.int("LONG_BREAK_REMINDERS_COOLDOWN_HOURS", default=47)
LONG_BREAK_REMINDER_TIME_WINDOW_SECONDS = env.int(
    "LONG_BREAK_REMINDER_TIME_WINDOW_SECONDS", default=1800
)
_LONG_BREAK_STEPS = ["1d", "3d", "5d", "8d", "13d", "21d", "30d", "90d"]
LONG_BREAK_REMINDER_SEQUENCE: list[str] = _json(
    "LONG_BREAK_REMINDER_SEQUENCE", list(_LONG_BREAK_STEPS), list
)
if not all(step in _LONG_BREAK_STEPS for step in LONG_BREAK_REMINDER_SEQUENCE):
    raise ImproperlyConfigured(
        "LONG_BREAK_REMINDER_SEQUENCE must be a JSON list of steps from "
        + ", ".join(_LONG_BREAK_STEPS)
    )
_long_break_intervals: dict[str, Any] = _json(
    "LONG_BREAK_REMINDER_INTERVALS", {step: f"P{step[:-1]}D" for step in _LONG_BREAK_STEPS}, dict
)
try:
    LONG_BREAK_REMINDER_INTERVALS: dict[str, timedelta] = {
        step: parse_duration_setting(str(value)) for step, value in _long_break_intervals.items()
    }
except ValueError as _exc:
    raise ImproperlyConfigured(
        "LONG_BREAK_REMINDER_INTERVALS must map steps to ISO-8601 durations or seconds."
    ) from _exc
if not set(LONG_BREAK_REMINDER_SEQUENCE) <= LONG_BREAK_REMINDER_INTERVALS.keys():
    raise ImproperlyConfigured(
        "LONG_BREAK_REMINDER_INTERVALS must give an interval for every step of the sequence."
    )
MIN_ATTEMPTS_FOR_WEEKLY_REPORT = env.int("MIN_ATTEMPTS_FOR_WEEKLY_REPORT", default=15)
REPORT_NOTIFICATION_BATCH_SIZE = env.int("REPORT_NOTIFICATION_BATCH_SIZE", default=10)
REPORT_NOTIFICATION_BATCH_DELAY_SECONDS = env.float(
    "REPORT_NOTIFICATION_BATCH_DELAY_SECONDS", default=1.0
)
FULL_WEEKLY_REPORT_SENDING_DELAY = env.int("FULL_WEEKLY_REPORT_SENDING_DELAY", default=600)
REPORT_GENERATION_STALE_MINUTES = env.int("REPORT_GENERATION_STALE_MINUTES", default=30)
# The generation outbox: a detailed report whose job the broker refused waits (GENERATING) for
# the sweep, which queues at most REPORT_GENERATION_SWEEP_BATCH of them per run, oldest first.
REPORT_GENERATION_SWEEP_INTERVAL_SECONDS = env.int(
    "REPORT_GENERATION_SWEEP_INTERVAL_SECONDS", default=60
)
REPORT_GENERATION_SWEEP_BATCH = env.int("REPORT_GENERATION_SWEEP_BATCH", default=200)

UPDATE_USER_METRICS_INTERVAL = env.int("UPDATE_USER_METRICS_INTERVAL", default=60)
#: Days a job run is kept in the admin before the weekly `job_runs_prune` deletes it.
JOB_RUN_RETENTION_DAYS = env.int("JOB_RUN_RETENTION_DAYS", default=30)
SESSION_TTL_SINCE_LAST_EXERCISE = env.int("SESSION_TTL_SINCE_LAST_EXERCISE", default=300)

# --- Local bootstrap --------------------------------------------------------------------------

DJANGO_SUPERUSER_USERNAME = env.str("DJANGO_SUPERUSER_USERNAME", default="admin")
DJANGO_SUPERUSER_PASSWORD = env.str("DJANGO_SUPERUSER_PASSWORD", default="admin" if DEBUG else "")
DJANGO_SUPERUSER_EMAIL = env.str("DJANGO_SUPERUSER_EMAIL", default="admin@localhost")

# --- Logging ----------------------------------------------------------------------------------

DJANGO_LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="DEBUG" if DEBUG else "INFO").upper()
DJANGO_LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="text")
if DJANGO_LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT must be text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "duoniche.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": DJANGO_LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": DJANGO_LOG_LEVEL},
    "loggers": {
        # SQL at DEBUG is too loud even in development.
        "django.db.backends": {"level": "INFO"},
        # One line per request: the server's access line. Django would add a warning for every
        # 4xx (a bot's routine 404 included); a 5xx still logs its error, once, with the cause.
        "django.request": {"level": "ERROR"},
    },
}

# --- Production requirements: fail fast -------------------------------------------------------

if not DEBUG:
    _missing: list[str] = []
    if len(SECRET_KEY) < 32:
        _missing.append("DJANGO_SECRET_KEY (at least 32 characters)")
    if not ALLOWED_HOSTS:
        _missing.append("DJANGO_ALLOWED_HOSTS")
    if not API_TOKENS and not API_ALLOW_ANONYMOUS:
        _missing.append("API_TOKENS (or API_ALLOW_ANONYMOUS=true on a private network)")
    if _missing:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is false, so these settings are required: " + "; ".join(_missing) + "."
        )

if DEBUG and not env.str("DJANGO_SECRET_KEY", default="") and os.environ.get("RUN_MAIN") != "true":
    # Once a process tree: runserver's reloaded child (RUN_MAIN) does not repeat it.
    logging.getLogger("duoniche.settings").warning(
        "DJANGO_SECRET_KEY is not set; using the fixed development key "
        "(the .env that `make run` writes sets a random one)."
    )

if SENTRY_DSN:
    from duoniche.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
