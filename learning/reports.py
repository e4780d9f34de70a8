"""Weekly reports: the Monday short reports, the latest-detailed request and the detailed report.

See docs/api.md (latest-detailed) and docs/jobs.md (the jobs):

* `weekly_reports_create` (called by the `weekly_reports` job in `notifications`) makes the PENDING
  short reports of the previous week: candidates and their numbers come from one grouped query,
  the reports are bulk-inserted (the unique (user, bot, week) makes re-runs no-ops) and the
  profiles' `last_report_generated_at` is set with one UPDATE;
* `report_request_detailed` moves the latest report atomically to GENERATING and then enqueues
  one generation job (concurrent presses enqueue one job, FAILED is retried); the same
  UPDATE records that the job is still to be queued (a transactional outbox), so when the broker
  is unreachable the request still answers GENERATING and the `report_generation_sweep` job
  queues the job once the broker is back; the job acts once per request however often it is
  delivered;
* `report_generate_detailed` (the job's service) writes the detailed report of exactly the report
  it was given, from that report's week: with the `reports` LLM when it is available, else from
  message templates.
"""

from __future__ import annotations

import html
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from kombu.exceptions import OperationalError as BrokerOperationalError

from duoniche import llm
from duoniche.api.errors import ApplicationError
from duoniche.enums import ExerciseStatus, ExerciseType, LLMPurpose, ProfileStatus, ReportStatus
from duoniche.telegram_html import clean_telegram_html, truncate_visible, visible_length
from duoniche.texts import render
from exercises.answers import answered_text
from exercises.content import BLANK
from exercises.models import ExerciseAnswer
from exercises.prompts import language_name
from learning.models import BotProfile, ExerciseAttempt, WeeklyReport
from learning.prompts.report import (
    FIRST_LENGTH_TARGET,
    RETRY_LENGTH_TARGETS,
    WRITE_DETAILED_REPORT,
    data_tag,
    length_rule,
)
from learning.services import profile_not_found

logger = logging.getLogger(__name__)

#: What publishing a task raises when the broker is unreachable (after the bounded publish retry
#: policy of settings.CELERY_TASK_PUBLISH_RETRY_POLICY).
BROKER_ERRORS = (BrokerOperationalError, OSError)

INCORRECT_ATTEMPTS_FOR_LLM_NUMBER = 15
TOP_TAGS_COUNT = 7
MAX_LENGTH_FULL_REPORT = 3996  # visible characters; leaves room under Telegram's 4096
MAX_RETRIES_FULL_REPORT_GENERATION = 2  # length retries of the LLM writer (up to 3 requests)
ELLIPSIS = "…"
NOT_AVAILABLE = "N/A"
REPORT_WEEK = timedelta(days=7)

#: The generation task's time limits in seconds (learning/tasks.py).
GENERATION_SOFT_TIME_LIMIT = 300
GENERATION_TIME_LIMIT = 360
#: How long a worker's claim on a report holds: past the task's hard limit its worker is gone,
#: and a later message for the report may claim it again.
GENERATION_RUN_SECONDS = GENERATION_TIME_LIMIT + 60

#: Statuses the endpoint may move to GENERATING without looking at the clock.
_CLAIMABLE = (ReportStatus.PENDING, ReportStatus.FAILED)


def report_not_found(user_id: Any, bot_id: str, *, status: int = 404) -> ApplicationError:
    return ApplicationError(
        f"User {user_id} has no weekly report for the {bot_id} bot.",
        code="report_not_found",
        status=status,
    )


# --- the request (docs/api.md) ------------------------------------------------------------------


def report_request_detailed(*, user_id: int, bot_id: str, now: datetime) -> str:
    """Ask for the detailed version of the latest weekly report; return its status afterwards.

    PENDING, FAILED and a stale GENERATING report move to GENERATING with one conditional UPDATE,
    so of concurrent requests exactly one changes the row and queues the job. The same UPDATE
    records that the job is still to be queued (`generation_queued_at` NULL: the outbox), so a
    broker that is down loses nothing: the request tries to publish once, and when the broker
    refuses it still answers GENERATING; `report_generation_sweep` queues the job later.
    """
    if not BotProfile.objects.filter(user_id=user_id, bot_id=bot_id).exists():
        raise profile_not_found(user_id, bot_id)
    latest = (
        WeeklyReport.objects.filter(user_id=user_id, bot_id=bot_id)
        .order_by("-week_start_date")
        .values("pk", "status", "status_changed_at")
        .first()
    )
    if latest is None:
        raise report_not_found(user_id, bot_id)

    stale_before = now - timedelta(minutes=settings.REPORT_GENERATION_STALE_MINUTES)
    claimable = Q(status__in=_CLAIMABLE) | Q(
        status=ReportStatus.GENERATING, status_changed_at__lt=stale_before
    )
    is_claimable = latest["status"] in _CLAIMABLE or (
        latest["status"] == ReportStatus.GENERATING and latest["status_changed_at"] < stale_before
    )
    if not is_claimable:
        return str(latest["status"])

    report_id = latest["pk"]
    changed = WeeklyReport.objects.filter(claimable, pk=report_id).update(
        status=ReportStatus.GENERATING,
        status_changed_at=now,
        generation_queued_at=None,
        generation_started_at=None,
    )
    if changed:
        # Published after the transition committed (autocommit), so the job sees GENERATING.
        if report_generation_enqueue(report_id=report_id, changed_at=now, now=now):
            logger.info("detailed report %s requested; generation queued", report_id)
        return ReportStatus.GENERATING.value
    # A concurrent request won the transition: answer with what the report is now.
    return str(WeeklyReport.objects.values_list("status", flat=True).get(pk=report_id))


# --- the outbox: queueing the generation job ----------------------------------------------------


def report_generation_enqueue(*, report_id: int, changed_at: datetime, now: datetime) -> bool:
    """Publish the generation job of a waiting report once; False when the broker refused it.

    The publish is bounded (broker timeouts and CELERY_TASK_PUBLISH_RETRY_POLICY in settings).
    After it, the report is marked queued, only if it is still the same request (GENERATING since
    `changed_at`) and nothing marked it meanwhile (a worker that already claimed it). A crash
    between the publish and the mark leaves it waiting: the sweep publishes it again and the job
    runs once (see `_report_claim_generation`).
    """
    # Imported here: the task module imports this one (the task calls our generation service).
    from learning.tasks import generate_detailed_report

    try:
        generate_detailed_report.delay(report_id)
    except BROKER_ERRORS as exc:
        logger.warning(
            "detailed report %s: the job could not be queued (%s: %s); "
            "the report waits for the generation sweep",
            report_id,
            type(exc).__name__,
            exc,
        )
        return False
    WeeklyReport.objects.filter(
        pk=report_id,
        status=ReportStatus.GENERATING,
        status_changed_at=changed_at,
        generation_queued_at__isnull=True,
    ).update(generation_queued_at=now)
    return True


def report_generation_sweep(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """The `report_generation_sweep` job: queue the jobs of reports that are still waiting.

    Waiting means GENERATING with `generation_queued_at` NULL (the request could not publish).
    At most `REPORT_GENERATION_SWEEP_BATCH` reports per run, oldest request first; the run stops
    at the first broker error (the next run goes on). Beat needs the broker too, so in practice
    the sweep runs once the broker is back.
    """
    waiting = list(
        WeeklyReport.objects.filter(
            status=ReportStatus.GENERATING, generation_queued_at__isnull=True
        )
        .order_by("status_changed_at", "pk")
        .values_list("pk", "status_changed_at")[: settings.REPORT_GENERATION_SWEEP_BATCH]
    )
    if dry_run:
        return {"waiting": len(waiting), "queued": 0}
    queued = 0
    for report_id, changed_at in waiting:
        if not report_generation_enqueue(report_id=report_id, changed_at=changed_at, now=now):
            break
        queued += 1
    if waiting:
        logger.info("generation sweep: %d of %d waiting reports queued", queued, len(waiting))
    return {"waiting": len(waiting), "queued": queued}


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
    for is_correct, exercise_tags, error_tags in attempts.values_list(
        "is_correct", "exercise__grammar_tags", "error_tags"
    ):
        grammar.update(_tags(exercise_tags, "grammar"))
        vocab.update(_tags(exercise_tags, "vocabulary"))
        if not is_correct:
            error_grammar.update(_tags(error_tags, "grammar"))
            error_vocab.update(_tags(error_tags, "vocabulary"))
    return PeriodSummary(
        active_days=totals["active_days"],
        total_attempts=totals["total"],
        correct_attempts=totals["correct"],
        grammar_tags=dict(grammar),
        vocab_tags=dict(vocab),
        error_grammar_tags=dict(error_grammar),
        error_vocab_tags=dict(error_vocab),
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


@dataclass(frozen=True)
class WeeklyReportsCreated:
    week_start: date
    candidates: int
    profiles_updated: int


#: Rows per INSERT of the weekly reports.
WEEKLY_REPORT_INSERT_BATCH = 1000


def weekly_reports_create(*, now: datetime) -> WeeklyReportsCreated:
    """Create the PENDING short reports of the week before `now`'s week.

    Idempotent: the candidates skip pairs that already have a report, and the insert ignores a
    conflict on `uniq_report_user_bot_week`, so a re-run (or a racing one) adds nothing. Only the
    profiles whose report this call inserted (`generated_at = now`) get `last_report_generated_at`,
    with one set-based UPDATE of that field alone. The query count does not depend on the number
    of learners (one INSERT per 1000 reports).
    """
    week_start = weekly_report_week_start(now)
    candidates = weekly_report_candidates(week_start=week_start)
    reports = [
        WeeklyReport(
            user_id=candidate.user_id,
            bot_id=candidate.bot_id,
            week_start_date=week_start,
            short_report=candidate.short_report(),
            status=ReportStatus.PENDING,
            status_changed_at=now,
            generated_at=now,
        )
        for candidate in candidates
    ]
    profiles_updated = 0
    if reports:
        created_now = WeeklyReport.objects.filter(
            user_id=OuterRef("user_id"),
            bot_id=OuterRef("bot_id"),
            week_start_date=week_start,
            generated_at=now,
        )
        with transaction.atomic():
            WeeklyReport.objects.bulk_create(
                reports, batch_size=WEEKLY_REPORT_INSERT_BATCH, ignore_conflicts=True
            )
            profiles_updated = BotProfile.objects.filter(Exists(created_now)).update(
                last_report_generated_at=now
            )
    logger.info(
        "weekly reports for the week of %s: %d candidates, %d profiles updated",
        week_start,
        len(candidates),
        profiles_updated,
    )
    return WeeklyReportsCreated(
        week_start=week_start, candidates=len(candidates), profiles_updated=profiles_updated
    )


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


# --- the deterministic report -------------------------------------------------------------------


def _escape(text: str) -> str:
    """Data inserted into Telegram HTML: `&`, `<` and `>` escaped."""
    return html.escape(text, quote=False)


def _topics(tags: list[tuple[str, int]]) -> str:
    return ", ".join(_escape(tag) for tag, _ in tags)


def deterministic_detailed_report(context: DetailedReportContext, language: str | None) -> str:
    """The detailed report from message templates (no LLM), valid Telegram HTML.

    Message texts are Telegram-HTML already (catalogue rule); only the data we insert (tags) is
    escaped here. The only tag used is `<b>`, for the heading.
    """
    current = context.current
    parts = [
        f"<b>{render('detailed_report_heading', language)}</b>",
        render(
            "detailed_report_progress",
            language,
            total_attempts=current.total_attempts,
            accuracy=percent(current.accuracy),
            active_days=current.active_days,
        ),
    ]
    grammar = _topics(top_tags(current.grammar_tags, 3))
    vocabulary = _topics(top_tags(current.vocab_tags, 3))
    if grammar or vocabulary:
        parts.append(
            render(
                "detailed_report_focus",
                language,
                grammar_topics=grammar or "—",
                vocabulary_topics=vocabulary or "—",
            )
        )
    errors = top_tags(current.error_tags, 3)
    if errors:
        parts.append(render("detailed_report_challenges", language, error_topics=_topics(errors)))
    else:
        parts.append(render("detailed_report_no_challenges", language))
    previous = context.previous
    if previous.total_attempts:
        parts.append(
            render(
                "detailed_report_comparison",
                language,
                prev_total_attempts=previous.total_attempts,
                prev_accuracy=percent(previous.accuracy),
            )
        )
    for tag, _ in errors[:2]:
        parts.append(render("detailed_report_recommendation", language, topic=_escape(tag)))
    return "\n\n".join(parts)


# --- the LLM writer ----------------------------------------------------------------------------


def _tag_line(tags: dict[str, list[str]]) -> str:
    parts = [f"{kind}: {', '.join(values)}" for kind, values in tags.items() if values]
    return "; ".join(parts) or "none"


def _mistakes_text(mistakes: list[IncorrectAttempt]) -> str:
    if not mistakes:
        return "There were no incorrect answers this week."
    blocks = []
    for number, mistake in enumerate(mistakes, 1):
        blocks.append(
            "\n".join(
                (
                    f"Mistake {number} (exercise type: {mistake.exercise_type})",
                    f"Task as the learner answered it: {mistake.exercise_text}",
                    f"Learner's answer: {mistake.user_answer}",
                    f"Correct answer: {mistake.correct_answer}",
                    f"Feedback given: {mistake.feedback}",
                    f"Exercise tags: {_tag_line(mistake.exercise_tags)}",
                    f"Error tags: {_tag_line(mistake.error_tags)}",
                )
            )
        )
    return "\n\n".join(blocks)


def report_writer_values(
    context: DetailedReportContext, language: str | None, *, target: int, retry: bool
) -> dict[str, str]:
    """The prompt's values: the two weeks' summaries, the mistakes and the length instruction."""
    return {
        "target_language": context.bot_id,
        "user_language": language_name(language or settings.DEFAULT_USER_LANGUAGE),
        "length_rule": length_rule(target, retry=retry),
        "previous_week": data_tag(
            "previous_week", context.previous.describe() or "No exercises that week."
        ),
        "this_week": data_tag("this_week", context.current.describe() or "No exercises."),
        "mistakes": data_tag("mistakes", _mistakes_text(context.incorrect_attempts)),
    }


def report_write_llm(context: DetailedReportContext, language: str | None) -> str | None:
    """The report written by the `reports` LLM, cleaned; None when the deterministic one is due.

    Up to 1 + 2 requests (`MAX_RETRIES_FULL_REPORT_GENERATION`): when the cleaned answer is longer
    than 3996 visible characters, ask again with the next shorter target in the prompt. Returns
    the first answer that fits, else the shortest one (the caller truncates it safely). None when
    the purpose is disabled (no LLM, no model, budget exhausted) or the first request fails; a
    failed length retry keeps the answer already received.
    """
    reason = llm.disabled_reason(LLMPurpose.REPORTS)
    if reason is not None:
        logger.info("detailed report %s: LLM writer disabled (%s)", context.report_id, reason)
        return None
    best: str | None = None
    best_length = 0
    targets = (FIRST_LENGTH_TARGET, *RETRY_LENGTH_TARGETS[:MAX_RETRIES_FULL_REPORT_GENERATION])
    for attempt_no, target in enumerate(targets, 1):
        values = report_writer_values(context, language, target=target, retry=attempt_no > 1)
        failure: llm.LLMError | None = None
        try:
            answer = llm.text_call(
                purpose=LLMPurpose.REPORTS,
                prompt=WRITE_DETAILED_REPORT,
                values=values,
                subject=f"report:{context.report_id}",
                attempt_no=attempt_no,
            )
        except llm.LLMError as exc:
            answer, failure = "", exc
        text = clean_telegram_html(answer)
        if not text:
            if best is None:
                logger.warning(
                    "detailed report %s: LLM writer failed (%s); using the template report",
                    context.report_id,
                    type(failure).__name__ if failure else "empty after cleaning",
                )
                return None
            logger.warning(
                "detailed report %s: length retry %d failed; keeping the longer answer",
                context.report_id,
                attempt_no - 1,
            )
            return best
        length = visible_length(text)
        if length <= MAX_LENGTH_FULL_REPORT:
            return text
        if best is None or length < best_length:
            best, best_length = text, length
        logger.info(
            "detailed report %s: answer %d has %d visible characters (limit %d)",
            context.report_id,
            attempt_no,
            length,
            MAX_LENGTH_FULL_REPORT,
        )
    return best


def report_write(context: DetailedReportContext, language: str | None) -> str:
    """Step 3: the LLM's report when it is available and answers, else the template report."""
    written = report_write_llm(context, language)
    if written is not None:
        return written
    return deterministic_detailed_report(context, language)


# --- cleaning and length -----------------------------------------------------------------------


def report_text_finish(text: str) -> str:
    """Steps 3-4 after writing: cleaned to the Telegram-HTML subset, capped at 3996 visible.

    The cap cuts at a word boundary, never inside a tag or an entity, closes open tags and ends
    with `…`. (The LLM writer retries with a shorter target before relying on this cut.)
    """
    return truncate_visible(clean_telegram_html(text), MAX_LENGTH_FULL_REPORT, ellipsis=ELLIPSIS)


# --- generation ---------------------------------------------------------------------------------


@transaction.atomic
def _report_claim_generation(report_id: int, *, now: datetime) -> WeeklyReport | None:
    """Step 1: the locked report if this message may write it, attempt counted; else None.

    Only a GENERATING report that no worker claimed within `GENERATION_RUN_SECONDS`: a second
    message for the same request (the request's publish and a sweep, or a redelivery while the
    first run is alive) does nothing; a redelivery after a killed run claims it again. The claim
    also marks the report queued, so the sweep does not publish it after its job arrived.
    """
    report = WeeklyReport.objects.select_for_update().filter(pk=report_id).first()
    if report is None or report.status != ReportStatus.GENERATING:
        logger.info(
            "detailed report %s not generated: %s",
            report_id,
            "missing" if report is None else f"status is {report.status}",
        )
        return None
    started = report.generation_started_at
    if started is not None and started > now - timedelta(seconds=GENERATION_RUN_SECONDS):
        logger.info(
            "detailed report %s not generated: a worker claimed it at %s",
            report_id,
            started.isoformat(),
        )
        return None
    report.generation_attempts += 1
    report.generation_started_at = now
    report.generation_queued_at = report.generation_queued_at or now
    report.save(
        update_fields=["generation_attempts", "generation_started_at", "generation_queued_at"]
    )
    return report


def _report_language(report: WeeklyReport) -> str | None:
    return (
        BotProfile.objects.filter(user_id=report.user_id, bot_id=report.bot_id)
        .values_list("user_language", flat=True)
        .first()
    )


def _failure_reason(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:500]


def report_generate_detailed(*, report_id: int, now: datetime) -> None:
    """Write the detailed report of exactly `report_id` (the job behind latest-detailed).

    1. lock the report; act only on GENERATING (a duplicate delivery stops here); count the attempt;
    2. build the context from this report's week and the week before;
    3. write the report with the `reports` LLM, asking again with a shorter target
       while it is too long; without an LLM, with the budget exhausted, or when the first request
       fails, from message templates; cleaned to the Telegram-HTML subset;
    4. cap the length at 3996 visible characters (word boundary, tags balanced, `…`);
    5. save it as GENERATED; 6. on any exception, FAILED with the reason (the bot may ask again).

    Never raises for a missing report; no transaction is held while the report is written (the
    LLM requests run between the claim and the final conditional UPDATE).
    """
    report = _report_claim_generation(report_id, now=now)
    if report is None:
        return
    generating = WeeklyReport.objects.filter(pk=report_id, status=ReportStatus.GENERATING)
    try:
        context = detailed_report_context(report)
        text = report_text_finish(report_write(context, _report_language(report)))
        if not text.strip():
            raise ValueError("the detailed report came out empty")
        saved = generating.update(
            full_report=text,
            status=ReportStatus.GENERATED,
            full_generated_at=now,
            status_changed_at=now,
            failure_reason="",
        )
    except Exception as exc:
        logger.exception("detailed report %s failed", report_id)
        generating.update(
            status=ReportStatus.FAILED, failure_reason=_failure_reason(exc), status_changed_at=now
        )
        return
    if saved:
        logger.info("detailed report %s generated (%d characters)", report_id, len(text))
    else:
        logger.info("detailed report %s left GENERATING meanwhile; result dropped", report_id)
