"""Servers a chaos test starts and kills itself: its own `redis-server`, and a TCP black hole.

Both listen on 127.0.0.1 on a free port, and both are stopped when their block ends, whatever the
test did to them in between.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A port nothing listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A `redis-server` subprocess without persistence, which can be stopped and started again.

    It keeps its port across restarts, so clients configured with `url` reconnect by themselves.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._directory = tempfile.mkdtemp(prefix="duoniche-redis-")

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:  # pragma: no cover - the test environment has it
            raise RuntimeError("redis-server is not installed")
        self._process = subprocess.Popen(
            [
                binary,
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
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Kill the server (SIGKILL: like a crash, nothing is saved) and wait for it to exit."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            self._process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started `RedisServer`; killed and its directory removed when the block ends."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@contextmanager
def black_hole() -> Iterator[int]:
    """Yield the port of a listener that accepts TCP connections and never sends a byte.

    Like a server that hangs (a database behind a broken network path, a frozen Redis): the
    connection succeeds, every read waits. Accepted sockets are held open until the block ends.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        thread.join(timeout=5)
        listener.close()
        for conn in held:
            conn.close()
