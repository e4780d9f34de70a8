"""Local servers: the test run's fallback when nothing answers, `make run`'s database .env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from duoniche.local_servers import EmbeddedPostgres, answers, dev_env, free_port, with_port

ROOT = Path(__file__).resolve().parents[2]


def test_with_port_keeps_everything_but_the_address():
    assert (
        with_port("postgres://user:secret@db.example:5432/duoniche?sslmode=disable", 6000)
        == "postgres://user:secret@127.0.0.1:6000/duoniche?sslmode=disable"
    )
    assert with_port("redis://10.0.0.5:6379/15", 7000) == "redis://127.0.0.1:7000/15"


def test_the_test_run_starts_its_own_servers_when_none_answers_and_removes_them():
    closed_database = f"postgres://postgres@127.0.0.1:{free_port()}/duoniche"
    closed_redis = f"redis://127.0.0.1:{free_port()}/15"
    script = (
        "import json, os, psycopg, redis;"
        "from duoniche.local_servers import ensure_test_services;"
        "ensure_test_services();"
        "db, cache = os.environ['TEST_DATABASE_URL'], os.environ['REDIS_URL'];"
        "version = psycopg.connect(db.rsplit('/', 1)[0] + '/postgres')"
        ".execute('SHOW server_version').fetchone()[0];"
        "pong = redis.Redis.from_url(cache).ping();"
        "print(json.dumps({'db': db, 'redis': cache, 'version': version, 'pong': pong}))"
    )
    env = {
        **{key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ},
        "TEST_DATABASE_URL": closed_database,
        "REDIS_URL": closed_redis,
    }

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["db"] != closed_database
    assert seen["db"].endswith("/duoniche")
    assert seen["version"].startswith("18")
    assert seen["pong"] is True
    assert seen["redis"].endswith("/15")
    assert "started PostgreSQL" in result.stderr
    assert "started redis-server" in result.stderr
    # Both are gone once the process that started them has exited.
    assert not answers(seen["db"])
    assert not answers(seen["redis"])


def test_the_test_run_uses_servers_that_answer(settings):
    # This very run: the configured servers (CI's, this machine's or the run's own) answered.
    assert answers(os.environ["TEST_DATABASE_URL"])
    assert answers(settings.REDIS_URL)


@pytest.fixture
def dev_dirs(tmp_path, monkeypatch) -> Iterator[tuple[Path, Path]]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    yield tmp_path / ".env", tmp_path / "postgres"
    if (tmp_path / "postgres" / "PG_VERSION").exists():
        EmbeddedPostgres(tmp_path / "postgres").stop()


def test_first_make_run_writes_env_and_the_second_reuses_the_database(dev_dirs):
    env_file, data_dir = dev_dirs

    url = dev_env(env_file, data_dir)
    written = env_file.read_text()
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE kept (id int)")
    EmbeddedPostgres(data_dir).stop()
    again = dev_env(env_file, data_dir)  # starts the stopped server, writes nothing

    assert again == url
    assert env_file.read_text() == written
    assert f"DATABASE_URL={url}\n" in written
    assert "DJANGO_DEBUG=true\n" in written
    secret = next(line for line in written.splitlines() if line.startswith("DJANGO_SECRET_KEY="))
    assert len(secret.partition("=")[2]) >= 50
    with psycopg.connect(again) as connection:
        assert connection.execute("SELECT to_regclass('kept')").fetchone() == ("kept",)


def test_an_env_file_of_ones_own_gets_only_the_database_line(dev_dirs):
    env_file, data_dir = dev_dirs
    env_file.write_text("DJANGO_DEBUG=true\nOPENAI_API_KEY=mine\n")

    url = dev_env(env_file, data_dir)

    assert env_file.read_text().startswith("DJANGO_DEBUG=true\nOPENAI_API_KEY=mine\n")
    assert env_file.read_text().count("DATABASE_URL=") == 1
    assert env_file.read_text().endswith(f"DATABASE_URL={url}\n")


def test_a_configured_database_starts_nothing(dev_dirs, monkeypatch):
    env_file, data_dir = dev_dirs
    env_file.write_text("DATABASE_URL=postgres://me@db.example/mine\n")

    from_file = dev_env(env_file, data_dir)
    monkeypatch.setenv("DATABASE_URL", "postgres://me@other.example/theirs")
    from_environment = dev_env(env_file, data_dir)

    assert from_file == "postgres://me@db.example/mine"
    assert from_environment == "postgres://me@other.example/theirs"
    assert not data_dir.exists()
    assert env_file.read_text() == "DATABASE_URL=postgres://me@db.example/mine\n"
