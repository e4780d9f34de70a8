"""For tests that make a request wait on a row another transaction holds, then let it go."""

from __future__ import annotations

import threading
import time

from django.db import connection


def wait_until_blocked(request: threading.Thread, timeout: float = 30) -> None:
    """Return once some session of this database waits for a lock (the `request` thread's, as the
    tests arrange it), or when `request` has ended or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline and request.is_alive():
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
