"""Business gauges computed at scrape time, whatever process produced them (docs/jobs.md).

A `prometheus_client.Gauge` lives in the memory of the process that sets it: `metrics_updater`
runs in a Celery worker, so without a shared multiprocess directory the web's `/metrics` never
saw the active-users gauge. The gauges below describe the whole service, not one process, so they
are exported by this collector instead, from shared state read when Prometheus scrapes:

* **cached gauges** (`backend_active_users_total`): the job that computes them publishes a snapshot
  of every sample to the Django cache (Redis in production) with `cached_gauge_publish`; the
  collector reads all snapshots in one round trip. A snapshot expires (its TTL) when its job stops
  running, so a dead worker shows up as missing series rather than frozen values.
* **the untouched stock** (`backend_untouched_exercises_total{exercise_language, exercise_type}`):
  counted from the database at scrape time with ONE grouped query (the refill job's own
  `untouched_stock`, registered by that app: `duoniche` does not import the apps), one sample
  per configured (bot, generated type), zeros included.

The collector is registered once, on the default registry, by `DuonicheConfig.ready()`.
It replaces the in-process gauges of the same names there, so each name is exported once. A failing
source (cache or database down) drops only its own family from the scrape; `/metrics` still answers.

Multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`): django-prometheus' view then builds a fresh registry
with only the multiprocess collector, so that view must also register `business_gauges` to export
these (see the module's `registry_add`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from duoniche import metrics
from duoniche.jobs import JOBS
from duoniche.languages import languages

logger = logging.getLogger(__name__)

ACTIVE_USERS = "backend_active_users_total"
UNTOUCHED_EXERCISES = "backend_untouched_exercises_total"
UNTOUCHED_LABELS = ("exercise_language", "exercise_type")
#: Counts untouched (published, never attempted) exercises per (language, type) in one query:
#: the exercises app registers its counter here from its `ready()` (`untouched_counter_register`).
UntouchedCounter = Callable[[], Mapping[tuple[str, str], int]]
_untouched_counter: list[UntouchedCounter] = []
CACHE_KEY_PREFIX = "metrics:gauge:"


@dataclass(frozen=True)
class CachedGauge:
    """A gauge whose samples a job publishes to the cache and the collector exports."""

    name: str
    documentation: str
    labelnames: tuple[str, ...]

    @property
    def cache_key(self) -> str:
        return f"{CACHE_KEY_PREFIX}{self.name}"


#: The cached gauges, by metric name.
CACHED_GAUGES: dict[str, CachedGauge] = {
    ACTIVE_USERS: CachedGauge(ACTIVE_USERS, "Users in a session", metrics.U),
}
UNTOUCHED_DOCUMENTATION = "Untouched published exercises"
#: Settings exported for the alert rules (ops/prometheus/alerts.yml) to compare against.
STOCK_TARGET = "backend_exercise_stock_target"
JOB_INTERVAL = "backend_job_interval_seconds"


def untouched_counter_register(counter: UntouchedCounter) -> None:
    """Set the function that counts the untouched stock (one per process; the last one wins)."""
    _untouched_counter[:] = [counter]


def cached_gauge_publish(
    name: str, samples: Mapping[tuple[str, ...], float], *, now: datetime, ttl_seconds: int
) -> None:
    """Replace the snapshot of the cached gauge `name` (label values in `labelnames` order)."""
    gauge = CACHED_GAUGES[name]
    rows: list[list[Any]] = []
    for labels, value in samples.items():
        if len(labels) != len(gauge.labelnames):
            raise ValueError(f"{name} takes {len(gauge.labelnames)} label values, not {labels!r}")
        rows.append([[str(label) for label in labels], float(value)])
    cache.set(gauge.cache_key, {"updated_at": now.timestamp(), "samples": rows}, ttl_seconds)


def cached_gauge_samples(name: str) -> dict[tuple[str, ...], float] | None:
    """The published samples of `name`, or None when there is no live snapshot."""
    snapshot = cache.get(CACHED_GAUGES[name].cache_key)
    return _samples(snapshot) if snapshot is not None else None


def _samples(snapshot: Any) -> dict[tuple[str, ...], float]:
    return {tuple(labels): float(value) for labels, value in snapshot["samples"]}


class BusinessGaugeCollector(Collector):
    """Exports the cached gauges and the untouched stock at scrape time."""

    def describe(self) -> Iterable[Metric]:
        """The families, without samples: the registry checks names and never collects here."""
        for gauge in CACHED_GAUGES.values():
            yield GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labelnames)
        yield GaugeMetricFamily(
            UNTOUCHED_EXERCISES, UNTOUCHED_DOCUMENTATION, labels=UNTOUCHED_LABELS
        )
        yield from self._settings()

    def collect(self) -> Iterator[Metric]:
        yield from self._settings()
        yield from self._cached()
        untouched = self._untouched()
        if untouched is not None:
            yield untouched

    def _settings(self) -> Iterator[Metric]:
        """The untouched-stock target and each interval job's interval, for the alert rules."""
        yield GaugeMetricFamily(
            STOCK_TARGET,
            "Untouched published exercises refill_stock keeps per language and type",
            value=float(settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW),
        )
        intervals = GaugeMetricFamily(
            JOB_INTERVAL, "How often each interval job is meant to run", labels=("job",)
        )
        for name, job in sorted(JOBS.items()):
            seconds = job.interval_seconds()
            if seconds is not None:
                intervals.add_metric([name], float(seconds))
        yield intervals

    def _cached(self) -> Iterator[Metric]:
        gauges = list(CACHED_GAUGES.values())
        try:
            snapshots = cache.get_many([gauge.cache_key for gauge in gauges])
        except Exception as exc:  # a scrape must not fail because the cache is down
            logger.warning("metrics: cached gauges unavailable: %s", type(exc).__name__)
            return
        for gauge in gauges:
            snapshot = snapshots.get(gauge.cache_key)
            if snapshot is None:
                continue
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labelnames)
            try:
                samples = _samples(snapshot)
            except (KeyError, TypeError, ValueError):
                logger.warning("metrics: malformed snapshot of %s ignored", gauge.name)
                continue
            for labels, value in sorted(samples.items()):
                family.add_metric(list(labels), value)
            yield family

    def _untouched(self) -> Metric | None:
        if not _untouched_counter:
            return None
        try:
            counts = _untouched_counter[0]()
        except Exception as exc:  # a scrape must not fail because the database is down
            logger.warning("metrics: untouched stock unavailable: %s", type(exc).__name__)
            return None
        family = GaugeMetricFamily(
            UNTOUCHED_EXERCISES, UNTOUCHED_DOCUMENTATION, labels=UNTOUCHED_LABELS
        )
        for bot_id, language in languages().items():
            for exercise_type in language.generated_types:
                family.add_metric([bot_id, exercise_type], counts.get((bot_id, exercise_type), 0))
        return family


business_gauges = BusinessGaugeCollector()


def registry_add(registry: CollectorRegistry) -> None:
    """Register the collector on `registry` (e.g. a multiprocess view's per-request registry)."""
    registry.register(business_gauges)


def install() -> None:
    """Export the business gauges from the default registry (once per process: `ready()`)."""
    with contextlib.suppress(ValueError):  # already registered
        REGISTRY.register(business_gauges)
