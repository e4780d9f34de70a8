"""Settings: production fails fast on missing requirements; a production-like env passes
`check --deploy`; migrations and the OpenAPI schema are in order."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from duoniche.durations import parse_duration_setting

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x7Hq2LzP9vRt4WmN8sKd3JfB6gYc1Ue5AoZiQwEr0TyUpMnBvL4kD2sF",
    "DJANGO_ALLOWED_HOSTS": "api.duoniche.example",
    "API_TOKENS": "bot-token-1,bot-token-2",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "PAYMENTS_PAYLOAD_SECRET": "payload-secret",
    "METRICS_TOKEN": "metrics-token",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
}


def manage(*args, **env):
    """Run manage.py in a fresh process with exactly the given environment."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # No env file: only what the test gives counts, whatever `.env` this checkout has.
        env={**base, "DJANGO_SETTINGS_MODULE": "duoniche.settings", "DJANGO_ENV_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


DEVELOPMENT_DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"


def test_development_needs_only_a_database():
    result = manage(
        "check", "--fail-level", "WARNING", DJANGO_DEBUG="true", DATABASE_URL=DEVELOPMENT_DATABASE
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("debug", ["true", "false"])
@pytest.mark.parametrize("database_url", [None, "", "   "])
def test_no_database_url_fails_fast_naming_it(debug, database_url):
    env = {**PRODUCTION_ENV, "DJANGO_DEBUG": debug}
    env.pop("DATABASE_URL")
    if database_url is not None:
        env["DATABASE_URL"] = database_url

    result = manage("check", **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL is not set" in result.stderr
    assert "KeyError" not in result.stderr


@pytest.mark.parametrize(
    "database_url", ["sqlite:///db.sqlite3", "mysql://root@127.0.0.1/duoniche", "nonsense"]
)
def test_only_postgresql_is_accepted(database_url):
    result = manage("check", **{**PRODUCTION_ENV, "DATABASE_URL": database_url})

    assert result.returncode != 0
    assert "DATABASE_URL must name a PostgreSQL database" in result.stderr


def test_the_development_key_warning_names_the_fix_and_is_not_repeated_by_the_reloader():
    first = manage("check", DJANGO_DEBUG="true", DATABASE_URL=DEVELOPMENT_DATABASE)
    reloaded = manage(
        "check", DJANGO_DEBUG="true", DATABASE_URL=DEVELOPMENT_DATABASE, RUN_MAIN="true"
    )
    configured = manage(
        "check",
        DJANGO_DEBUG="true",
        DATABASE_URL=DEVELOPMENT_DATABASE,
        DJANGO_SECRET_KEY=PRODUCTION_ENV["DJANGO_SECRET_KEY"],
    )

    assert first.stderr.count("DJANGO_SECRET_KEY is not set") == 1
    assert "make run" in first.stderr
    assert "DJANGO_SECRET_KEY is not set" not in reloaded.stderr
    assert "DJANGO_SECRET_KEY is not set" not in configured.stderr


def test_settings_read_the_env_file_it_names_and_real_variables_win(tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text(
        f"DJANGO_DEBUG=true\nDATABASE_URL={DEVELOPMENT_DATABASE}\nDJANGO_LOG_LEVEL=ERROR\n"
    )
    script = "from django.conf import settings as s; print(s.DEBUG, s.DJANGO_LOG_LEVEL)"

    from_file = manage("shell", "-v", "0", "-c", script, DJANGO_ENV_FILE=str(env_file))
    overridden = manage(
        "shell", "-v", "0", "-c", script, DJANGO_ENV_FILE=str(env_file), DJANGO_LOG_LEVEL="INFO"
    )
    without_file = manage("shell", "-v", "0", "-c", script)

    assert from_file.stdout.strip() == "True ERROR", from_file.stderr
    assert overridden.stdout.strip() == "True INFO", overridden.stderr
    assert without_file.returncode != 0
    assert "DATABASE_URL is not set" in without_file.stderr


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY"),
        ("DJANGO_ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS"),
        ("API_TOKENS", "API_TOKENS"),
    ],
)
def test_production_without_a_required_setting_fails_fast(missing, named):
    env = {**PRODUCTION_ENV, missing: ""}

    result = manage("check", **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "AppRegistryNotReady" not in result.stderr  # the real reason, not a later symptom
    assert named in result.stderr
    assert "x7Hq2LzP9vRt" not in result.stderr  # never the values


def test_a_short_secret_key_is_refused_in_production():
    result = manage("check", **{**PRODUCTION_ENV, "DJANGO_SECRET_KEY": "too-short"})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY (at least 32 characters)" in result.stderr


def test_malformed_json_variable_is_named_but_not_echoed():
    result = manage(
        "check",
        DJANGO_DEBUG="true",
        DATABASE_URL=DEVELOPMENT_DATABASE,
        TELEGRAM_BOT_TOKENS_JSON="{secret-token",
    )

    assert result.returncode != 0
    assert "TELEGRAM_BOT_TOKENS_JSON is not valid JSON" in result.stderr
    assert "secret-token" not in result.stderr


def test_production_like_env_passes_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deprecated_aliases_are_read_and_warned_about():
    result = manage(
        "check",
        "--fail-level",
        "WARNING",
        DEBUG="true",
        DATABASE_URL=DEVELOPMENT_DATABASE,
        TELEGRAM_UPLOAD_BOT_CHAT_ID="-100123",
    )

    assert result.returncode != 0
    assert "TELEGRAM_UPLOAD_BOT_CHAT_ID is a deprecated name; set TELEGRAM_UPLOAD_CHAT_ID" in (
        result.stderr + result.stdout
    )
    assert "DEBUG is a deprecated name; set DJANGO_DEBUG" in result.stderr + result.stdout


def test_risky_options_are_warned_about():
    result = manage(
        "check",
        **{
            **PRODUCTION_ENV,
            "API_TOKENS": "",
            "API_ALLOW_ANONYMOUS": "true",
            "PAYMENTS_ACCEPT_ANY_AMOUNT": "true",
        },
    )

    output = result.stdout + result.stderr
    assert "duoniche.W002" in output
    assert "duoniche.W003" in output


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "eager=True cache=LocMemCache db=postgresql"),
        (
            {"REDIS_URL": "redis://127.0.0.1:6379/15"},
            "eager=False cache=RedisCache db=postgresql",
        ),
        (
            {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"},
            "eager=True cache=LocMemCache db=postgresql",
        ),
    ],
)
def test_integrations_switch_on_by_presence(env, expected):
    script = (
        "from django.conf import settings as s; import django.db; "
        'print(f"eager={s.CELERY_TASK_ALWAYS_EAGER} '
        "cache={s.CACHES['default']['BACKEND'].rsplit('.', 1)[1]} "
        "db={s.DATABASES['default']['ENGINE'].rsplit('.', 1)[1]}\")"
    )

    result = manage(
        "shell",
        "-v",
        "0",
        "-c",
        script,
        DJANGO_DEBUG="true",
        **{"DATABASE_URL": DEVELOPMENT_DATABASE, **env},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "True 5"), ({"DATABASE_PREPARED_STATEMENTS": "false"}, "True None")],
)
def test_postgresql_binds_on_the_server_and_prepares_repeated_statements(env, expected):
    script = (
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS']; "
        "print(o['server_side_binding'], o['prepare_threshold'])"
    )
    database = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"}

    result = manage("shell", "-v", "0", "-c", script, DJANGO_DEBUG="true", **database, **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "0 done"), ({"DATABASE_STATEMENT_TIMEOUT": "0.2"}, "200ms OperationalError")],
)
def test_a_statement_timeout_is_set_at_connect_when_asked_for(env, expected):
    script = (
        "from django.db import connection, OperationalError\n"
        "c = connection.cursor(); c.execute('SHOW statement_timeout'); shown = c.fetchone()[0]\n"
        "try:\n    c.execute('SELECT pg_sleep(0.5)'); outcome = 'done'\n"
        "except OperationalError: outcome = 'OperationalError'\n"
        "print(shown, outcome)"
    )

    result = manage("shell", "-v", "0", "-c", script, DJANGO_DEBUG="true",
                    DATABASE_URL=DEVELOPMENT_DATABASE, **env)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("value", "seconds"), [("PT3H", 10800), ("10800", 10800), ("P1D", 86400), ("90.5", 90.5)]
)
def test_durations_accept_iso_8601_or_seconds(value, seconds):
    assert parse_duration_setting(value).total_seconds() == seconds


def test_durations_reject_garbage():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_setting("three hours")


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_openapi_schema_validates(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert "openapi: 3" in (tmp_path / "s.yml").read_text()


def test_the_deploy_check_warns_about_an_open_metrics_endpoint():
    result = manage("check", "--deploy", **{**PRODUCTION_ENV, "METRICS_TOKEN": ""})

    assert "duoniche.W007" in result.stdout + result.stderr
    assert "/metrics answers anyone" in result.stdout + result.stderr


@pytest.mark.django_db
def test_the_deploy_check_warns_while_the_development_login_works(django_user_model):
    from duoniche.checks import check_deploy_exposure

    def warnings() -> set[str]:
        return {message.id for message in check_deploy_exposure()}

    assert "duoniche.W008" not in warnings()
    user = django_user_model.objects.create_superuser("admin", password="admin")
    hashed = user.password
    assert "duoniche.W008" in warnings()
    django_user_model.objects.filter(pk=user.pk).update(is_active=False)
    assert "duoniche.W008" not in warnings()

    user.is_active = True
    user.set_password("a-real-password-at-last")
    user.save()
    assert "duoniche.W008" not in warnings()
    assert hashed != user.password
