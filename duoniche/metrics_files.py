"""Prometheus multi-process mode: how the web and Celery processes of a host add up their samples.

With PROMETHEUS_MULTIPROC_DIR set, every process writes its samples to files in that directory and
a scrape adds them up, so counters are totals across gunicorn workers, Celery workers and restarts
(a process that exited leaves its counts behind). The Prometheus client names the files after the
process id; the containers of one host share the directory but each numbers its processes from 1,
so here the files are named after the host name and the process id instead (`install`, run first
thing in every process: `duoniche/__init__.py`).

A worker host without a web process exports its own files on WORKER_METRICS_PORT
(`worker_exporter_start`, run when a Celery worker starts): job runs, LLM calls, notifications.
"""

from __future__ import annotations

import logging
import os
import socket

from prometheus_client import CollectorRegistry, multiprocess, start_http_server, values

logger = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"


def process_identifier() -> str:
    """`<host>-<pid>`: unique among the processes sharing the directory (no `_`: the client
    splits file names on it)."""
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


def install() -> None:
    """Name this process's sample files by host and pid (before any metric is created)."""
    if os.environ.get(ENV):
        values.ValueClass = values.MultiProcessValue(process_identifier)


def worker_exporter_start(port: int) -> bool:
    """Serve this host's multi-process samples on `port` (all interfaces); False when off."""
    directory = os.environ.get(ENV)
    if not port:
        return False
    if not directory:
        logger.warning("WORKER_METRICS_PORT is set but %s is not: no worker metrics served", ENV)
        return False
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    start_http_server(port, registry=registry)
    logger.info("worker metrics on port %s (from %s)", port, directory)
    return True
