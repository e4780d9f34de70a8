"""Container files: docker-compose.yml, Dockerfile, entrypoint, .dockerignore, .env.example.

No Docker engine is needed: the files are parsed, and the entrypoint runs under `sh` with fake
`python`, `gunicorn` and `celery` commands on PATH that record how they were called.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.settings_env import settings_variables

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ("backend", "worker", "beat")


# --- helpers ----------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, Any]:
    return load_compose()["services"]


def as_argv(command: str | list[str]) -> list[str]:
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def healthcheck_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL"), test
        return " ".join(str(part) for part in test[1:])
    return str(test)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends with a line continuation"
    return instructions


def dockerfile_args(keyword: str) -> list[str]:
    return [args for key, args in dockerfile_instructions() if key == keyword]


def read_dotenv(path: Path) -> dict[str, str]:
    """Active KEY=value lines (as django-environ reads them: single quotes stripped)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\A([A-Za-z_0-9]+)=(.*)\Z", line)
        if match:
            key, value = match.groups()
            assert key not in values, f"{key} is set twice in {path.name}"
            quoted = re.match(r"\A'(.*)'\Z", value)
            values[key] = quoted.group(1) if quoted else value
    return values


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_defines_the_services():
    assert set(services()) == {
        "postgres",
        "redis",
        "pgbouncer",
        "proxy",
        "backend",
        "worker",
        "beat",
    }
    assert services()["pgbouncer"]["profiles"] == ["pgbouncer"]  # only on request


def test_compose_images_of_the_backing_services():
    svc = services()
    assert svc["postgres"]["image"] == "postgres:16-alpine"
    assert svc["redis"]["image"] == "redis:7-alpine"


def test_app_services_build_the_same_image_from_the_repo_root():
    svc = services()
    contexts = set()
    for name in APP_SERVICES:
        build = svc[name]["build"]
        contexts.add(build if isinstance(build, str) else build["context"])
    assert contexts == {"."}
    assert len({svc[name].get("image") for name in APP_SERVICES}) == 1


def test_backend_runs_the_image_default_command_behind_the_proxy():
    svc = services()
    backend = svc["backend"]
    # The image CMD (gunicorn) is what makes the entrypoint migrate.
    assert "command" not in backend or as_argv(backend["command"])[0] == "gunicorn"
    assert "ports" not in backend  # only nginx is published
    assert [str(port) for port in svc["proxy"]["ports"]] == ["8000:8080"]
    assert svc["proxy"]["depends_on"]["backend"] == {"condition": "service_healthy"}
    assert "./docker/nginx.conf:/etc/nginx/nginx.conf:ro" in svc["proxy"]["volumes"]


def test_nginx_buffers_requests_and_answers_and_passes_the_client_address():
    conf = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    for directive in (
        "proxy_request_buffering on;",
        "proxy_buffering on;",
        "server backend:8000;",
        "listen 8080;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert directive in conf
    for name in APP_SERVICES:
        assert services()[name]["environment"]["TRUSTED_PROXY_COUNT"] == (
            "${TRUSTED_PROXY_COUNT:-1}"
        )


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_accepts_the_configuration(tmp_path):
    conf = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    # Outside compose there is no `backend` host: point the upstream at this machine.
    (tmp_path / "nginx.conf").write_text(
        conf.replace("server backend:8000;", "server 127.0.0.1:8000;"), encoding="utf-8"
    )
    result = subprocess.run(
        [
            "nginx",
            "-t",
            "-c",
            str(tmp_path / "nginx.conf"),
            "-p",
            str(tmp_path),
            "-g",
            f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_worker_runs_a_celery_worker_on_the_duoniche_queue():
    argv = as_argv(services()["worker"]["command"])
    assert argv[:3] == ["celery", "-A", "duoniche"]
    assert "worker" in argv
    assert "beat" not in argv
    queue = argv[argv.index("-Q") + 1]
    assert queue.split(",") == ["duoniche"]


def test_beat_runs_celery_beat():
    argv = as_argv(services()["beat"]["command"])
    assert argv[:3] == ["celery", "-A", "duoniche"]
    assert "beat" in argv
    assert "worker" not in argv


def test_worker_and_beat_do_not_migrate():
    svc = services()
    for name in ("worker", "beat"):
        assert svc[name]["environment"].get("RUN_MIGRATIONS") == "false", name
        assert as_argv(svc[name]["command"])[0] != "gunicorn"


def test_healthchecks_of_postgres_redis_and_backend():
    svc = services()
    postgres = healthcheck_test(svc["postgres"])
    assert postgres.startswith("pg_isready -U ${POSTGRES_USER:-postgres}")
    assert healthcheck_test(svc["redis"]) == "redis-cli ping"
    backend = healthcheck_test(svc["backend"])
    assert backend.startswith("python -c ")
    assert "urllib.request" in backend
    assert "http://127.0.0.1:8000/healthz" in backend


def test_worker_and_beat_have_healthchecks_of_their_own():
    svc = services()
    worker = healthcheck_test(svc["worker"])
    assert "celery -A duoniche inspect ping --destination celery@$$HOSTNAME" in worker
    beat = healthcheck_test(svc["beat"])
    assert "/tmp/duoniche-beat.alive" in beat
    assert svc["beat"]["environment"]["BEAT_HEARTBEAT_FILE"] == "/tmp/duoniche-beat.alive"


def test_redis_keeps_an_append_only_file_on_a_volume():
    compose = load_compose()
    redis = compose["services"]["redis"]
    assert as_argv(redis["command"]) == [
        "redis-server",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
    ]
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data"
    assert volume in compose["volumes"]


def test_app_services_share_one_metrics_directory():
    compose = load_compose()
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/app/metrics", name
        assert "metrics:/app/metrics" in service["volumes"], name
    assert "metrics" in compose["volumes"]


def test_backend_waits_for_healthy_postgres_and_redis():
    depends_on = services()["backend"]["depends_on"]
    assert depends_on["postgres"] == {"condition": "service_healthy"}
    assert depends_on["redis"] == {"condition": "service_healthy"}


def test_worker_and_beat_wait_for_a_healthy_backend():
    svc = services()
    for name in ("worker", "beat"):
        assert svc[name]["depends_on"]["backend"] == {"condition": "service_healthy"}, name


def test_app_services_read_dotenv_and_get_the_stack_urls():
    svc = services()
    for name in APP_SERVICES:
        service = svc[name]
        env_file = service["env_file"]
        assert (env_file if isinstance(env_file, list) else [env_file]) == [".env"], name
        env = service["environment"]
        assert env["DATABASE_URL"] == (
            "postgres://${POSTGRES_USER:-postgres}:${POSTGRES_PASSWORD:-postgres}"
            "@${DATABASE_HOST:-postgres}:${DATABASE_PORT:-5432}/${POSTGRES_DB:-postgres}"
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        hosts = env["DJANGO_ALLOWED_HOSTS"]
        assert hosts.endswith(",backend"), hosts
        default = hosts.split(":-", 1)[1].split("}", 1)[0].split(",")
        assert {"localhost", "127.0.0.1"} <= set(default)


def test_backing_services_do_not_receive_the_app_secrets():
    svc = services()
    for name in ("postgres", "redis"):
        assert "env_file" not in svc[name], name
    assert svc["postgres"]["environment"] == {
        "POSTGRES_USER": "${POSTGRES_USER:-postgres}",
        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-postgres}",
        "POSTGRES_DB": "${POSTGRES_DB:-postgres}",
    }


def test_postgres_data_lives_in_a_named_volume():
    compose = load_compose()
    volume, _, target = compose["services"]["postgres"]["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_uses_the_slim_python_311_base():
    assert dockerfile_args("FROM") == ["python:3.11-slim"]


def test_dockerfile_sets_python_env_and_installs_without_pip_cache():
    env = " ".join(dockerfile_args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert any(
        "pip install --no-cache-dir -r requirements.txt" in args for args in dockerfile_args("RUN")
    )


def test_dockerfile_switches_to_a_non_root_user_before_it_runs():
    instructions = dockerfile_instructions()
    users = [args for key, args in instructions if key == "USER"]
    assert users
    assert users[-1] not in ("root", "0", "0:0")
    assert users[-1] == "duoniche"
    keywords = [key for key, _ in instructions]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert last_user < keywords.index("CMD")
    assert any("useradd --uid 1000" in args for args in dockerfile_args("RUN"))


def test_dockerfile_collects_static_files_with_build_only_values():
    runs = [args for args in dockerfile_args("RUN") if "collectstatic" in args]
    assert len(runs) == 1
    run = runs[0]
    assert "python manage.py collectstatic --noinput" in run
    assert "DJANGO_DEBUG=false" in run
    assert "API_ALLOW_ANONYMOUS=true" in run
    secret = re.search(r"DJANGO_SECRET_KEY=(\S+)", run)
    assert secret is not None
    assert secret.group(1).startswith("build-only")
    assert len(secret.group(1)) >= 32
    # The throwaway values are never part of the runtime environment.
    baked = " ".join(dockerfile_args("ENV") + dockerfile_args("ARG"))
    for name in ("DJANGO_SECRET_KEY", "API_ALLOW_ANONYMOUS", "API_TOKENS", "DJANGO_DEBUG"):
        assert name not in baked


def test_the_build_only_values_pass_the_settings():
    """The image build's collectstatic runs with exactly the RUN line's values (no database)."""
    (run,) = [args for args in dockerfile_args("RUN") if "collectstatic" in args]
    values = dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S*)", run.split("python manage.py")[0]))
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: value for key, value in os.environ.items() if key in keep}

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run", "-v", "0"],
        cwd=ROOT,
        env={**env, **values, "DJANGO_ENV_FILE": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "DATABASE_URL" in values
    assert result.returncode == 0, result.stderr


def test_dockerfile_entrypoint_cmd_port_and_healthcheck():
    assert json.loads(dockerfile_args("ENTRYPOINT")[-1]) == ["/app/docker/entrypoint.sh"]
    cmd = json.loads(dockerfile_args("CMD")[-1])
    assert cmd[:2] == ["gunicorn", "duoniche.wsgi:application"]
    assert cmd[cmd.index("--bind") + 1] == "0.0.0.0:8000"
    assert cmd[cmd.index("--access-logfile") + 1] == "-"
    assert dockerfile_args("EXPOSE") == ["8000"]
    healthcheck = dockerfile_args("HEALTHCHECK")[-1]
    assert "urllib.request" in healthcheck
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    assert "curl" not in healthcheck


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", ".local", "staticfiles", "media"} <= patterns
    for needed in ("docker", "docker/entrypoint.sh", "locale", "requirements.txt", "manage.py"):
        assert needed not in patterns


# --- docker/entrypoint.sh ---------------------------------------------------------------------

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def test_entrypoint_is_an_executable_posix_script():
    text = ENTRYPOINT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r"^set -eu$", text, re.MULTILINE)
    assert text.rstrip().endswith('exec "$@"')
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.fixture
def run_entrypoint(tmp_path):
    """Run the entrypoint with recording fakes of python, gunicorn and celery."""
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("python", "gunicorn", "celery"):
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n', encoding="utf-8")
        fake.chmod(0o755)

    def run(*argv: str, **extra_env: str) -> list[str]:
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra_env}
        subprocess.run([sh, str(ENTRYPOINT), *argv], env=env, check=True, capture_output=True)
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    return run


def test_entrypoint_migrates_then_starts_the_web(run_entrypoint):
    calls = run_entrypoint("gunicorn", "duoniche.wsgi:application", "--bind", "0.0.0.0:8000")
    assert calls == [
        f"python {ROOT}/manage.py migrate --noinput",
        "gunicorn duoniche.wsgi:application --bind 0.0.0.0:8000 --workers 3",
    ]


def test_entrypoint_takes_gunicorn_workers_from_the_env(run_entrypoint):
    calls = run_entrypoint("gunicorn", "duoniche.wsgi:application", GUNICORN_WORKERS="7")
    assert calls[-1] == "gunicorn duoniche.wsgi:application --workers 7"


def test_entrypoint_keeps_an_explicit_worker_count(run_entrypoint):
    calls = run_entrypoint("gunicorn", "duoniche.wsgi:application", "-w", "2")
    assert calls[-1] == "gunicorn duoniche.wsgi:application -w 2"


@pytest.mark.parametrize(
    "argv",
    [
        ("celery", "-A", "duoniche", "worker", "-Q", "duoniche", "--loglevel", "INFO"),
        ("celery", "-A", "duoniche", "beat", "--loglevel", "INFO"),
    ],
)
def test_entrypoint_does_not_migrate_for_worker_and_beat(run_entrypoint, argv):
    assert run_entrypoint(*argv, RUN_MIGRATIONS="false") == [" ".join(argv)]
    assert run_entrypoint(*argv)[-1] == " ".join(argv)
    assert not any("migrate" in call for call in run_entrypoint(*argv))


def test_entrypoint_migrates_any_command_on_request(run_entrypoint):
    calls = run_entrypoint("celery", "-A", "duoniche", "beat", RUN_MIGRATIONS="true")
    assert calls == [
        f"python {ROOT}/manage.py migrate --noinput",
        "celery -A duoniche beat",
    ]


# --- .env.example -----------------------------------------------------------------------------

ENV_EXAMPLE = ROOT / ".env.example"


def test_env_example_names_every_variable_the_settings_read():
    names = settings_variables().names
    assert len(names) > 100  # the scan really found the settings' reads
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    missing = [name for name in names if not re.search(rf"^(# )?{name}=", text, re.MULTILINE)]
    assert sorted(missing) == []


def test_env_example_holds_defaults_and_no_secrets():
    values = read_dotenv(ENV_EXAMPLE)
    for secret in (
        "DJANGO_SECRET_KEY",
        "API_TOKENS",
        "METRICS_TOKEN",
        "SENTRY_DSN",
        "OPENAI_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "PAYMENTS_PAYLOAD_SECRET",
        "TELEGRAM_UPLOAD_CHAT_ID",
    ):
        assert values[secret] == "", secret
    assert json.loads(values["TELEGRAM_BOT_TOKENS_JSON"]) == {}
    assert values["DJANGO_DEBUG"] == "false"
    assert values["API_ALLOW_ANONYMOUS"] == "false"
    assert values["DJANGO_ALLOWED_HOSTS"] == "localhost,127.0.0.1,[::1]"
    assert values["CELERY_TASK_DEFAULT_QUEUE"] == "duoniche"
    assert values["DELTA_BETWEEN_SESSIONS"] == "PT3H"
    assert values["POSTGRES_USER"] == values["POSTGRES_DB"] == "postgres"
    assert json.loads(values["LONG_BREAK_REMINDER_SEQUENCE"])[-1] == "90d"
    assert json.loads(values["LONG_BREAK_REMINDER_INTERVALS"])["90d"] == "P90D"
    # Computed defaults stay commented out: an empty value would not mean "default".
    for computed in ("DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER", "MEDIA_ROOT", "DJANGO_LOG_LEVEL"):
        assert computed not in values, computed


def _import_settings_with_env_example(debug: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import environ, os; "
        "environ.Env.read_env('.env.example'); "
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'duoniche.settings'; "
        "from django.conf import settings; "
        "print(settings.EXERCISES_IN_SET, settings.CELERY_TASK_ALWAYS_EAGER, "
        "settings.DATABASES['default']['ENGINE'])"
    )
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env["DJANGO_DEBUG"] = debug
    # The one value .env.example leaves to docker-compose; and no local `.env` besides it.
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/duoniche"
    env["DJANGO_ENV_FILE"] = ""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_env_example_values_load_in_development():
    result = _import_settings_with_env_example("true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "True", "duoniche.postgresql"]


def test_env_example_is_refused_in_production_until_secrets_are_set():
    result = _import_settings_with_env_example("false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "API_TOKENS" in result.stderr
