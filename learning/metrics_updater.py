"""The `metrics_updater` job body (docs/jobs.md): session metrics, every minute.

It reads the profiles that practised within `SESSION_TTL_SINCE_LAST_EXERCISE +
UPDATE_USER_METRICS_INTERVAL` (one query, with their users) and writes nothing to the database:

* a session has **ended** when it is frozen (`session_frozen_until` set) or its last exercise is
  more than `SESSION_TTL_SINCE_LAST_EXERCISE` seconds old. An ended session is observed into
  `backend_user_session_length_seconds` and `backend_exercises_per_session` **once**:
  the cache key `metrics:session_observed:<profile id>:<session start, unix>` is added
  atomically (TTL 1 h) and only the run that adds it observes;
* the other sessions are counted per label tuple into `backend_active_users_total`, published to the
  cache (`duoniche.metrics_collector`) so that the web's `/metrics` exports it whichever worker ran
  this. Tuples active before but not now are published as 0 (kept for a day after they were last
  active); the tuples and when they were last active live in `metrics:active_label_sets`.

Labels are U: cohort, plan, target_language (the bot), user_language, language_level; a missing
value is exported as "". The histograms are process metrics of the worker that observes them.

`dry_run` only reports: it neither observes, nor marks sessions observed, nor publishes (a session
marked observed by a dry run in a short-lived process would never be observed by a worker).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache

from duoniche import metrics
from duoniche.metrics_collector import ACTIVE_USERS, cached_gauge_publish
from learning.models import BotProfile

logger = logging.getLogger(__name__)

OBSERVED_KEY = "metrics:session_observed:{profile_id}:{started}"
OBSERVED_TTL_SECONDS = 3600
LABEL_SETS_KEY = "metrics:active_label_sets"
#: A label tuple keeps being exported as 0 for this long after its last active session.
LABEL_SET_RETENTION_SECONDS = 24 * 3600
#: The published gauge outlives a few missed runs, then disappears (a stopped worker shows).
GAUGE_TTL_RUNS = 5


def _labels(profile: BotProfile) -> tuple[str, ...]:
    values = metrics.user_labels(
        cohort=profile.user.cohort,
        plan=profile.user.plan,
        target_language=profile.bot_id,
        user_language=profile.user_language or "",
        level=profile.language_level or "",
    )
    return tuple(values[name] for name in metrics.U)


def session_ended(profile: BotProfile, *, now: datetime) -> bool:
    """Frozen, or idle for longer than the session TTL (docs/jobs.md)."""
    if profile.session_frozen_until is not None:
        return True
    if profile.last_exercise_at is None:  # never practised: no session to end
        return False
    idle = (now - profile.last_exercise_at).total_seconds()
    return idle > int(settings.SESSION_TTL_SINCE_LAST_EXERCISE)


def _observe_once(profile: BotProfile, labels: tuple[str, ...]) -> bool:
    """Observe the ended session unless some run already did; True if this call observed it."""
    started = profile.session_started_at
    last = profile.last_exercise_at
    if started is None or last is None:
        return False
    key = OBSERVED_KEY.format(profile_id=profile.pk, started=int(started.timestamp()))
    if not cache.add(key, 1, OBSERVED_TTL_SECONDS):
        return False
    by_name = dict(zip(metrics.U, labels, strict=True))
    length = (last - started).total_seconds()
    if length >= 0:
        metrics.user_session_length.labels(**by_name).observe(length)
    metrics.exercises_per_session.labels(**by_name).observe(profile.exercises_get_in_session)
    return True


def _label_sets(
    active: Counter[tuple[str, ...]], *, now: datetime
) -> tuple[dict[tuple[str, ...], float], dict[str, float]]:
    """Samples to publish (active counts, 0 for recently active tuples) and the kept tuples."""
    stored = cache.get(LABEL_SETS_KEY) or {}
    cutoff = now.timestamp() - LABEL_SET_RETENTION_SECONDS
    kept: dict[str, float] = {
        key: float(seen) for key, seen in stored.items() if float(seen) >= cutoff
    }
    for labels in active:
        kept[json.dumps(list(labels))] = now.timestamp()
    samples: dict[tuple[str, ...], float] = {tuple(json.loads(key)): 0.0 for key in kept}
    samples.update({labels: float(count) for labels, count in active.items()})
    return samples, kept


def metrics_updater(*, now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Observe ended sessions once and publish the active users (docs/jobs.md)."""
    ttl = int(settings.SESSION_TTL_SINCE_LAST_EXERCISE)
    interval = int(settings.UPDATE_USER_METRICS_INTERVAL)
    profiles = (
        BotProfile.objects.filter(last_exercise_at__gte=now - timedelta(seconds=ttl + interval))
        .select_related("user")
        .only(
            "id",
            "bot_id",
            "user_language",
            "language_level",
            "last_exercise_at",
            "session_started_at",
            "session_frozen_until",
            "exercises_get_in_session",
            "user__cohort",
            "user__plan",
        )
    )
    active: Counter[tuple[str, ...]] = Counter()
    ended = observed = 0
    for profile in profiles:
        labels = _labels(profile)
        if not session_ended(profile, now=now):
            active[labels] += 1
            continue
        ended += 1
        if not dry_run and _observe_once(profile, labels):
            observed += 1

    stats: dict[str, Any] = {
        "dry_run": dry_run,
        "active_users": sum(active.values()),
        "ended_sessions": ended,
        "observed_sessions": observed,
        "label_sets": len(active),
    }
    if dry_run:
        return stats
    samples, kept = _label_sets(active, now=now)
    cached_gauge_publish(
        ACTIVE_USERS, samples, now=now, ttl_seconds=max(GAUGE_TTL_RUNS * interval, ttl)
    )
    cache.set(LABEL_SETS_KEY, kept, LABEL_SET_RETENTION_SECONDS)
    stats["label_sets"] = len(samples)
    return stats
