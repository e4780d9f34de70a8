"""Slow clients and the buffering proxy (issue 13 item 4), measured on real processes.

One gunicorn sync worker serves this test's database. Three clients open a request and trickle
its body in, a byte a second. Straight to gunicorn, they hold its only worker: a plain `/healthz`
gets no answer within 3 s. Through nginx with `docker/nginx.conf` (its upstream pointed at that
gunicorn), nginx waits for the bodies itself and `/healthz` answers at once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.celery_worker import worker_env

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx-light)"),
    pytest.mark.django_db(transaction=True),  # the server reads this test's database
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers_within(url: str, seconds: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=seconds) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if answers_within(url, 2):
            return
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def gunicorn(tmp_path) -> Iterator[int]:
    port = free_port()
    env = {**worker_env(), "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "duoniche.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def nginx(tmp_path, gunicorn) -> Iterator[int]:
    port = free_port()
    conf = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    conf = conf.replace("server backend:8000;", f"server 127.0.0.1:{gunicorn};")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    path = tmp_path / "nginx.conf"
    path.write_text(conf, encoding="utf-8")
    process = subprocess.Popen(
        [str(NGINX), "-c", str(path), "-p", str(tmp_path),
         "-g", f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def slow_clients(port: int, count: int = 3) -> list[socket.socket]:
    """Clients that send a request's head and the first byte of a 1,000-byte body, then stall
    (a phone on a bad network)."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(
            # A bot call with its token: the view reads the body before it can answer.
            b"PUT /api/v1/users/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer test-token\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        clients.append(client)
    time.sleep(0.5)  # let them reach the server
    return clients


def test_slow_clients_hold_a_bare_sync_worker(gunicorn):
    clients = slow_clients(gunicorn)
    try:
        assert not answers_within(f"http://127.0.0.1:{gunicorn}/healthz", 3)
    finally:
        for client in clients:
            client.close()


def test_behind_nginx_slow_clients_hold_nothing(nginx):
    clients = slow_clients(nginx)
    try:
        started = time.monotonic()
        assert answers_within(f"http://127.0.0.1:{nginx}/healthz", 3)
        assert time.monotonic() - started < 1
    finally:
        for client in clients:
            client.close()
