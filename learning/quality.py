"""The `quality_monitor` job body (docs/jobs.md): user ratings, then review candidates.

`learning` owns attempts and ratings, so it orchestrates; flagging is the exercises service
`exercise_change_status`. Set-based throughout: the query count does not grow with
the number of profiles or attempts, only with the number of exercises flagged.

**Skip**: with no attempt recorded since the previous successful run (its
`JobRun.started_at`), nothing can have changed and the run stops after one `EXISTS` query.

**Ratings**: one aggregate query over all attempts grouped by (user, exercise language):
distinct UTC days, total and correct attempts. `log_attempts = log10(1 + total)`; both the days and
`log_attempts` are min–max normalised across all groups, only when both ranges are positive;
`rating = round(0.4·days + 0.3·log_attempts + 0.3·correct_ratio, 4)`, written with one bulk update
of `rating` and `rating_last_calculated_at` only (batches of 1000).

**Candidates**: published exercises unchanged for `QUALITY_MIN_HOURS_SINCE_UPDATE` hours, attempted
since the previous successful run; only attempts after `last_reviewed_at` count (so a reviewed
exercise is not flagged again on old mistakes), each weighted by its author's rating in the
exercise's language (`COALESCE(rating, QUALITY_DEFAULT_RATING)`, the profile LEFT JOINed), in one
grouped query. A candidate has a weighted total ≥ `QUALITY_MIN_WEIGHTED_ATTEMPTS` and a weighted
error rate strictly above `QUALITY_ERROR_RATE_THRESHOLD`; it goes `published → pending_review`
(source `quality_monitor`) with its totals as the review's `stats`. Sums are rounded to 6 places
before the comparisons, so the boundaries do not depend on float summation order.

Idempotent: flagged exercises leave `published`, statistics restart after every review, and a rerun
rewrites the same ratings.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, FilteredRelation, FloatField, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from duoniche.enums import ExerciseStatus, JobRunStatus, ReviewSource
from duoniche.models import JobRun
from exercises.services import exercise_change_status
from learning.models import ExerciseAttempt
from learning.profiles import profiles_set_ratings

logger = logging.getLogger(__name__)

JOB_NAME = "quality_monitor"
ACTIVE_DAYS_WEIGHT = 0.4
LOG_ATTEMPTS_WEIGHT = 0.3
CORRECT_RATIO_WEIGHT = 0.3
RATING_PLACES = 4
#: Weighted sums are compared after rounding to this many places.
SUM_PLACES = 6


@dataclass(frozen=True)
class RatingGroup:
    """Attempt statistics of one user in one language."""

    user_id: int
    language: str
    active_days: int
    total: int
    correct: int


@dataclass(frozen=True)
class Candidate:
    exercise_id: int
    attempts: int
    weighted_total: float
    weighted_incorrect: float

    @property
    def error_rate(self) -> float:
        return round(self.weighted_incorrect / self.weighted_total, SUM_PLACES)

    def as_dict(self) -> dict[str, Any]:
        return {
            "exercise_id": self.exercise_id,
            "attempts": self.attempts,
            "weighted_total": self.weighted_total,
            "weighted_incorrect": self.weighted_incorrect,
            "error_rate": self.error_rate,
        }


def thresholds() -> dict[str, float]:
    return {
        "min_weighted_attempts": float(settings.QUALITY_MIN_WEIGHTED_ATTEMPTS),
        "error_rate_threshold": float(settings.QUALITY_ERROR_RATE_THRESHOLD),
        "min_hours_since_update": float(settings.QUALITY_MIN_HOURS_SINCE_UPDATE),
        "default_rating": float(settings.QUALITY_DEFAULT_RATING),
    }


# --- the previous run ---------------------------------------------------------------------------


def previous_success_at(*, now: datetime) -> datetime | None:
    """When the latest successful run (forced or not) before `now` started, if any."""
    started: datetime | None = (
        JobRun.objects.filter(job=JOB_NAME, status=JobRunStatus.SUCCEEDED, started_at__lt=now)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return started


# --- ratings ------------------------------------------------------------------------------------


def rating_groups() -> list[RatingGroup]:
    """Per (user, exercise language): distinct UTC days, attempts and correct ones (one query)."""
    rows = (
        ExerciseAttempt.objects.values("user_id", language=F("exercise__exercise_language"))
        .annotate(
            active_days=Count(TruncDate("created_at", tzinfo=UTC), distinct=True),
            total=Count("id"),
            correct=Count("id", filter=Q(is_correct=True)),
        )
        .order_by()
    )
    return [
        RatingGroup(
            user_id=row["user_id"],
            language=row["language"],
            active_days=row["active_days"],
            total=row["total"],
            correct=row["correct"],
        )
        for row in rows
    ]


def compute_ratings(groups: list[RatingGroup]) -> dict[tuple[int, str], float]:
    """The rating of each (user, language) group (docs/jobs.md)."""
    if not groups:
        return {}
    days = [group.active_days for group in groups]
    logs = [math.log10(1 + group.total) for group in groups]
    days_range = max(days) - min(days)
    logs_range = max(logs) - min(logs)
    normalise = days_range > 0 and logs_range > 0
    ratings: dict[tuple[int, str], float] = {}
    for group, active_days, log_attempts in zip(groups, days, logs, strict=True):
        norm_days = (active_days - min(days)) / days_range if normalise else 0.0
        norm_logs = (log_attempts - min(logs)) / logs_range if normalise else 0.0
        correct_ratio = group.correct / group.total if group.total else 0.0
        ratings[(group.user_id, group.language)] = round(
            ACTIVE_DAYS_WEIGHT * norm_days
            + LOG_ATTEMPTS_WEIGHT * norm_logs
            + CORRECT_RATIO_WEIGHT * correct_ratio,
            RATING_PLACES,
        )
    return ratings


# --- candidates ---------------------------------------------------------------------------------


def review_candidates(*, now: datetime, since: datetime | None) -> list[Candidate]:
    """Published exercises whose rating-weighted error rate is over the threshold (one query)."""
    limits = thresholds()
    # The author's profile in the exercise's language: one LEFT JOIN (unique per user and bot).
    profile = FilteredRelation(
        "user__profiles", condition=Q(user__profiles__bot_id=F("exercise__exercise_language"))
    )
    weight = Coalesce("profile__rating", Value(limits["default_rating"]), output_field=FloatField())
    attempts = (
        ExerciseAttempt.objects.annotate(profile=profile)
        .filter(
            exercise__status=ExerciseStatus.PUBLISHED,
            exercise__status_changed_at__lte=now
            - timedelta(hours=limits["min_hours_since_update"]),
        )
        .filter(
            Q(exercise__last_reviewed_at__isnull=True)
            | Q(created_at__gt=F("exercise__last_reviewed_at"))
        )
    )
    if since is not None:
        attempted = ExerciseAttempt.objects.filter(created_at__gte=since).values("exercise_id")
        attempts = attempts.filter(exercise_id__in=attempted)
    rows = (
        attempts.values("exercise_id")
        .annotate(
            weighted_total=Sum(weight),
            weighted_incorrect=Sum(weight, filter=Q(is_correct=False)),
            attempts_count=Count("id"),
        )
        # A prefilter only; the exact comparison is on the rounded sums below.
        .filter(weighted_total__gte=limits["min_weighted_attempts"] - 10**-SUM_PLACES)
        .order_by("exercise_id")
    )
    candidates = []
    for row in rows:
        candidate = Candidate(
            exercise_id=row["exercise_id"],
            attempts=row["attempts_count"],
            weighted_total=round(row["weighted_total"] or 0.0, SUM_PLACES),
            weighted_incorrect=round(row["weighted_incorrect"] or 0.0, SUM_PLACES),
        )
        if (
            candidate.weighted_total >= limits["min_weighted_attempts"]
            and candidate.weighted_total > 0
            and candidate.error_rate > limits["error_rate_threshold"]
        ):
            candidates.append(candidate)
    return candidates


def candidates_flag(*, candidates: list[Candidate], now: datetime) -> list[int]:
    """`published → pending_review` for each candidate still published; the ids flagged."""
    limits = thresholds()
    flagged = []
    for candidate in candidates:
        review = exercise_change_status(
            exercise_id=candidate.exercise_id,
            new_status=ExerciseStatus.PENDING_REVIEW,
            source=ReviewSource.QUALITY_MONITOR,
            now=now,
            note=(
                f"weighted error rate {candidate.error_rate:.2f} over "
                f"{candidate.weighted_total:.2f} weighted attempts"
            ),
            stats={**candidate.as_dict(), "thresholds": limits},
            expected_status=ExerciseStatus.PUBLISHED,
        )
        if review is not None:
            flagged.append(candidate.exercise_id)
    return flagged


# --- the job ------------------------------------------------------------------------------------


def quality_monitor(*, now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Ratings, then candidates (docs/jobs.md); `dry_run` computes both and writes nothing."""
    since = previous_success_at(now=now)
    stats: dict[str, Any] = {
        "dry_run": dry_run,
        "since": since,
        "skipped_reason": None,
        "rating_groups": 0,
        "ratings_normalised": False,
        "profiles_rated": 0,
        "candidates": [],
        "flagged": [],
        "thresholds": thresholds(),
    }
    if since is not None and not ExerciseAttempt.objects.filter(created_at__gte=since).exists():
        stats["skipped_reason"] = "no attempts since the previous successful run"
        logger.info("quality monitor: %s", stats["skipped_reason"])
        return stats

    groups = rating_groups()
    ratings = compute_ratings(groups)
    stats["rating_groups"] = len(groups)
    stats["ratings_normalised"] = len({g.active_days for g in groups}) > 1 and (
        len({g.total for g in groups}) > 1
    )
    if not dry_run:
        stats["profiles_rated"] = profiles_set_ratings(ratings=ratings, now=now)

    candidates = review_candidates(now=now, since=since)
    stats["candidates"] = [candidate.as_dict() for candidate in candidates]
    if not dry_run:
        stats["flagged"] = candidates_flag(candidates=candidates, now=now)
    logger.info(
        "quality monitor: %d ratings, %d candidates, %d flagged",
        len(ratings),
        len(candidates),
        len(stats["flagged"]),
    )
    return stats
