"""Reads behind the weekly reports: the numbers of a week, the Monday candidates, the context.

* `period_summary`: a learner's attempts in one bot over one window (what every report shows);
* `weekly_report_candidates`: the (user, bot) pairs owed a Monday short report, one grouped query;
* `detailed_report_context`: what the detailed report's writer may use (two weeks and mistakes).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate

from duoniche.enums import ExerciseStatus, ExerciseType, ProfileStatus
from duoniche.texts import render
from exercises.answers import answered_text
from exercises.content import BLANK
from exercises.models import ExerciseAnswer
from learning.models import ExerciseAttempt, WeeklyReport

INCORRECT_ATTEMPTS_FOR_LLM_NUMBER = 15
TOP_TAGS_COUNT = 7
NOT_AVAILABLE = "N/A"
REPORT_WEEK = timedelta(days=7)


# --- period summary -----------------------------------------------------------------------------


def _tag_list(value: Any) -> list[str]:
    """A tag list as stored; a bare string (imported legacy data) is a one-element list."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item.strip()]
    return []


def _tags(tags: Any, key: str) -> list[str]:
    return _tag_list(tags.get(key)) if isinstance(tags, dict) else []


def top_tags(counts: dict[str, int], limit: int = TOP_TAGS_COUNT) -> list[tuple[str, int]]:
    """The `limit` most frequent tags with counts; ties by name, so the order is stable."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass(frozen=True)
class PeriodSummary:
    """A learner's attempts in one bot over one window (the numbers behind every report)."""

    active_days: int = 0
    total_attempts: int = 0
    correct_attempts: int = 0
    grammar_tags: dict[str, int] = field(default_factory=dict)
    vocab_tags: dict[str, int] = field(default_factory=dict)
    error_grammar_tags: dict[str, int] = field(default_factory=dict)
    error_vocab_tags: dict[str, int] = field(default_factory=dict)
    # Grammar of the exercises answered wrong: what spaced review brings back (docs/learning.md).
    missed_grammar_tags: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Share of correct attempts in percent (0 for an empty window)."""
        if not self.total_attempts:
            return 0.0
        return self.correct_attempts / self.total_attempts * 100

    @property
    def error_tags(self) -> dict[str, int]:
        """Grammar and vocabulary error tags together."""
        return dict(Counter(self.error_grammar_tags) + Counter(self.error_vocab_tags))

    def describe(self) -> str:
        """English sentences with the numbers and the top-7 tags; "" when empty."""
        if not self.total_attempts:
            return ""
        lines = [
            f"active {self.active_days} days, {self.total_attempts} exercises, "
            f"{percent(self.accuracy)} % accuracy"
        ]
        for label, counts in (
            ("focused grammar", self.grammar_tags),
            ("focused vocabulary", self.vocab_tags),
            ("most common grammar errors", self.error_grammar_tags),
            ("most common vocabulary errors", self.error_vocab_tags),
            ("grammar of missed exercises, to review", self.missed_grammar_tags),
        ):
            if counts:
                listed = ", ".join(f"{tag} ({count})" for tag, count in top_tags(counts))
                lines.append(f"{label}: {listed}")
        return "\n".join(lines)


def percent(value: float) -> int:
    """A percentage rounded to 0 decimals, halves up (not banker's rounding)."""
    return math.floor(value + 0.5)


def period_summary(*, user_id: int, bot_id: str, start: datetime, end: datetime) -> PeriodSummary:
    """The user's attempts on `bot_id` exercises with `created_at` in [start, end)."""
    attempts = ExerciseAttempt.objects.filter(
        user_id=user_id,
        exercise__exercise_language=bot_id,
        created_at__gte=start,
        created_at__lt=end,
    )
    totals = attempts.aggregate(
        total=Count("pk"),
        correct=Count("pk", filter=Q(is_correct=True)),
        active_days=Count(TruncDate("created_at", tzinfo=UTC), distinct=True),
    )
    if not totals["total"]:
        return PeriodSummary()
    grammar: Counter[str] = Counter()
    vocab: Counter[str] = Counter()
    error_grammar: Counter[str] = Counter()
    error_vocab: Counter[str] = Counter()
    missed_grammar: Counter[str] = Counter()
    for is_correct, exercise_tags, error_tags in attempts.values_list(
        "is_correct", "exercise__grammar_tags", "error_tags"
    ):
        grammar.update(_tags(exercise_tags, "grammar"))
        vocab.update(_tags(exercise_tags, "vocabulary"))
        if not is_correct:
            error_grammar.update(_tags(error_tags, "grammar"))
            error_vocab.update(_tags(error_tags, "vocabulary"))
            missed_grammar.update(_tags(exercise_tags, "grammar"))
    return PeriodSummary(
        active_days=totals["active_days"],
        total_attempts=totals["total"],
        correct_attempts=totals["correct"],
        grammar_tags=dict(grammar),
        vocab_tags=dict(vocab),
        error_grammar_tags=dict(error_grammar),
        error_vocab_tags=dict(error_vocab),
        missed_grammar_tags=dict(missed_grammar),
    )


# --- the Monday short reports ------------------------------------------------------------------


def weekly_report_week_start(now: datetime) -> date:
    """The week a run at `now` reports: the Monday before the Monday of `now`'s week (UTC).

    A late run within the same week (Tuesday, Sunday...) still reports the previous week.
    """
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday()) - REPORT_WEEK


@dataclass(frozen=True)
class WeeklyCandidate:
    """An active profile with enough attempts in the week, with the week's numbers."""

    user_id: int
    bot_id: str
    user_language: str
    total_attempts: int
    correct_attempts: int
    active_days: int

    @property
    def accuracy(self) -> float:
        return self.correct_attempts / self.total_attempts * 100 if self.total_attempts else 0.0

    def short_report(self) -> str:
        """The `weekly_report` message in the profile's language (days capped at 7)."""
        return render(
            "weekly_report",
            self.user_language,
            active_days=min(self.active_days, 7),
            total_attempts=self.total_attempts,
            accuracy=percent(self.accuracy),
        )


def weekly_report_candidates(*, week_start: date) -> list[WeeklyCandidate]:
    """(user, bot) pairs owed a short report for `week_start`: one grouped query.

    Attempts in the week's window, joined to their exercises and to the user's **active** profile
    of the exercise's language, grouped by (user, language), keeping groups with at least
    `MIN_ATTEMPTS_FOR_WEEKLY_REPORT` attempts and no report for that week yet. The same query
    counts what the short report shows (the period totals), so there is no per-profile summary.
    """
    start, end = report_window(week_start)
    existing = WeeklyReport.objects.filter(
        user_id=OuterRef("user_id"),
        bot_id=OuterRef("exercise__exercise_language"),
        week_start_date=week_start,
    )
    rows = (
        ExerciseAttempt.objects.filter(
            created_at__gte=start,
            created_at__lt=end,
            # One filter() call: both conditions apply to the same (unique per bot) profile row.
            user__profiles__bot_id=F("exercise__exercise_language"),
            user__profiles__status=ProfileStatus.ACTIVE,
        )
        .filter(~Exists(existing))
        .values("user_id", "exercise__exercise_language", "user__profiles__user_language")
        .annotate(
            total=Count("pk"),
            correct=Count("pk", filter=Q(is_correct=True)),
            active_days=Count(TruncDate("created_at", tzinfo=UTC), distinct=True),
        )
        .filter(total__gte=settings.MIN_ATTEMPTS_FOR_WEEKLY_REPORT)
        .order_by("user_id", "exercise__exercise_language")
    )
    return [
        WeeklyCandidate(
            user_id=row["user_id"],
            bot_id=row["exercise__exercise_language"],
            user_language=row["user__profiles__user_language"],
            total_attempts=row["total"],
            correct_attempts=row["correct"],
            active_days=row["active_days"],
        )
        for row in rows
    ]


# --- the detailed report's context -------------------------------------------------------------


@dataclass(frozen=True)
class IncorrectAttempt:
    """One mistake as the report writer may quote it."""

    exercise_type: str
    exercise_text: str  # the exercise as answered (the learner's words in the blanks)
    user_answer: str
    correct_answer: str
    feedback: str  # as given, or "N/A"
    exercise_tags: dict[str, list[str]]
    error_tags: dict[str, list[str]]


@dataclass(frozen=True)
class DetailedReportContext:
    report_id: int
    bot_id: str
    week_start: date
    current: PeriodSummary
    previous: PeriodSummary
    incorrect_attempts: list[IncorrectAttempt]


def report_window(week_start: date) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, +7 days) of a report's week."""
    start = datetime.combine(week_start, time.min, tzinfo=UTC)
    return start, start + REPORT_WEEK


def _answer_words(exercise_type: str, canonical: str) -> str:
    """A canonical answer text for display: fill words are stored joined with `;`."""
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return ", ".join(word for word in canonical.split(";") if word)
    return canonical


def _answered_text(exercise_type: str, data: Any, canonical: str) -> str:
    """The exercise text with the learner's answer in place."""
    if exercise_type != ExerciseType.FILL_IN_THE_BLANK:
        return canonical
    text = str(data.get("text_with_blanks") or "") if isinstance(data, dict) else ""
    return answered_text(text, [word for word in canonical.split(";") if word])


def _reference_from_data(exercise_type: str, data: Any) -> str:
    """The correct answer read off the stored data (correct options/words come first)."""
    if not isinstance(data, dict):
        return ""
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        blanks = str(data.get("text_with_blanks") or "").count(BLANK)
        return ";".join(str(word) for word in (data.get("words") or [])[:blanks])
    options = data.get("options") or []
    return str(options[0]) if options else ""


def _tag_map(tags: Any) -> dict[str, list[str]]:
    return {"grammar": _tags(tags, "grammar"), "vocabulary": _tags(tags, "vocabulary")}


def _incorrect_attempts(
    *, user_id: int, bot_id: str, start: datetime, end: datetime
) -> list[IncorrectAttempt]:
    reference = ExerciseAnswer.objects.filter(
        exercise=OuterRef("exercise_id"), is_reference=True
    ).values("answer_text")[:1]
    attempts = (
        ExerciseAttempt.objects.filter(
            user_id=user_id,
            is_correct=False,
            created_at__gte=start,
            created_at__lt=end,
            exercise__exercise_language=bot_id,
            exercise__status=ExerciseStatus.PUBLISHED,
        )
        .select_related("exercise")
        .annotate(reference_text=Subquery(reference))
        .order_by("-created_at", "-pk")[:INCORRECT_ATTEMPTS_FOR_LLM_NUMBER]
    )
    mistakes = []
    for attempt in attempts:
        exercise = attempt.exercise
        kind = exercise.exercise_type
        reference_text = attempt.reference_text or _reference_from_data(kind, exercise.data)
        mistakes.append(
            IncorrectAttempt(
                exercise_type=kind,
                exercise_text=_answered_text(kind, exercise.data, attempt.answer_text),
                user_answer=_answer_words(kind, attempt.answer_text),
                correct_answer=_answer_words(kind, reference_text),
                feedback=attempt.feedback or NOT_AVAILABLE,
                exercise_tags=_tag_map(exercise.grammar_tags),
                error_tags=_tag_map(attempt.error_tags),
            )
        )
    return mistakes


def detailed_report_context(report: WeeklyReport) -> DetailedReportContext:
    """What the writer may use: this report's week, the week before it, and its mistakes."""
    start, end = report_window(report.week_start_date)
    user_id, bot_id = report.user_id, report.bot_id
    return DetailedReportContext(
        report_id=report.pk,
        bot_id=bot_id,
        week_start=report.week_start_date,
        current=period_summary(user_id=user_id, bot_id=bot_id, start=start, end=end),
        previous=period_summary(
            user_id=user_id, bot_id=bot_id, start=start - REPORT_WEEK, end=start
        ),
        incorrect_attempts=_incorrect_attempts(
            user_id=user_id, bot_id=bot_id, start=start, end=end
        ),
    )
