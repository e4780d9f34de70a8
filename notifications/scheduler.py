"""The `notification_scheduler` job (docs/jobs.md): reminders and report deliveries.

Every 300 s, four parts, each producing its notifications through the producer:

* **A. Session reminders**: opted-in profiles whose freeze ended within the lookback (three
  cycles), once per freeze (`session_reminder:<profile>:<frozen_until unix>`).
* **B. Long-break reminders**: the ladder `1d … 90d` at about the UTC time of day of the last
  practice (modulo 24 h, so across midnight too), with a 47 h cooldown; after a successful
  enqueue only the two reminder fields are written, and only if `last_exercise_at` is still the
  value read (an exercise served meanwhile wins).
* **C. Detailed-report delivery**: `GENERATED` reports past `FULL_WEEKLY_REPORT_SENDING_DELAY`
  are sent with the donation button and moved to `SENT` after the enqueue.
* **D. Short-report catch-up**: reports of the last two days never announced (a crash between the
  weekly job's creation and notification). Skipped while `weekly_reports` holds its lock, so the
  weekly job's own batches are not overtaken.

Each part reads its candidates in one query, inserts its log rows in one transaction
(`notification_prepare_many`), sends them after commit and writes its follow-up with set-based
conditional UPDATEs: the number of queries does not grow with the number of candidates.
A second run changes nothing: dedupe keys, conditional updates. Before the parts, `pending`
rows left by a crashed sender are marked `failed`; a `failed` row whose back-off has passed is
re-sent by the part that produces its key again, and otherwise by part E:

* **E. Retries** (issue 10 item 17): `failed` rows due for a retry that are still relevant by the
  relevance rules are re-sent, whether or not they are still candidates, with their follow-up
  writes after the enqueue; rows no longer relevant, or older than
  `NOTIFICATION_RETRY_MAX_AGE_SECONDS`, are given up (`skipped`). A broker outage alone never
  gives a notification up.

One part's failure does not stop the others; the run then fails with the parts named, once all
have run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from duoniche.enums import NotificationStatus, NotificationType
from duoniche.models import JobLock
from learning.models import BotProfile, WeeklyReport
from learning.profiles import profiles_mark_long_break_sent
from learning.report_services import reports_mark_full_sent, reports_mark_short_notified
from notifications.drafts import (
    full_report_draft,
    long_break_draft,
    long_break_step,
    session_reminder_draft,
    short_report_draft,
)
from notifications.log_selectors import (
    notification_plan,
    notification_retries_due,
    retry_max_age,
    stuck_pending,
)
from notifications.models import NotificationLog
from notifications.producer import (
    NOT_RELEVANT,
    TOO_OLD,
    NotificationDraft,
    PreparedBatch,
    notification_fail_stuck,
    notification_give_up,
    notification_prepare_many,
    notification_retry_many,
)
from notifications.relevance import notification_log_is_relevant, notification_report_id
from notifications.selectors import (
    LongBreakCandidate,
    profiles_due_for_long_break,
    profiles_due_for_session_reminder,
    reports_due_for_full_delivery,
    reports_due_for_short_catch_up,
)

logger = logging.getLogger(__name__)

#: The job whose lock pauses the short-report catch-up (it sends those notifications itself).
WEEKLY_REPORTS_JOB = "weekly_reports"
#: Dedupe keys listed in a dry run's stats, per part.
DRY_RUN_SAMPLE = 20


class NotificationSchedulerError(RuntimeError):
    """Some parts failed (the others ran); raised at the end so the run is recorded as failed."""


def _count_outcomes(stats: dict[str, Any], batch: PreparedBatch) -> None:
    """A part's stats after its send: how many rows were enqueued, failed or skipped."""
    for status in (
        NotificationStatus.ENQUEUED,
        NotificationStatus.FAILED,
        NotificationStatus.SKIPPED,
    ):
        stats[status.value] = batch.count(status)


# --- producing ----------------------------------------------------------------------------------


def _deliver(
    *,
    drafts: list[NotificationDraft],
    now: datetime,
    dry_run: bool,
    stats: dict[str, Any],
    on_enqueued: Callable[[list[str]], int] | None = None,
) -> dict[str, Any]:
    """Produce `drafts` in one transaction; sent on commit, then `on_enqueued` (follow-up)."""
    if dry_run:
        plan = notification_plan(drafts, now=now)
        sample = [draft.dedupe_key for draft in plan.new] + plan.retry_keys
        stats.update(
            would_send=len(plan.new) + len(plan.retry_ids),
            new=len(plan.new),
            retries=len(plan.retry_ids),
            duplicates=plan.duplicates,
            sample=sample[:DRY_RUN_SAMPLE],
        )
        return stats
    stats.update(enqueued=0, failed=0, skipped=0)
    if on_enqueued is not None:
        stats["written"] = 0

    def written(keys: list[str]) -> None:
        assert on_enqueued is not None
        stats["written"] += on_enqueued(keys)

    if not drafts:
        stats.update(new=0, retried=0, duplicates=0)
        return stats
    with transaction.atomic():
        batch = notification_prepare_many(
            drafts=drafts,
            now=now,
            on_enqueued=written if on_enqueued is not None else None,
            on_sent=partial(_count_outcomes, stats),
        )
    stats.update(new=len(batch.new), retried=len(batch.retried), duplicates=batch.duplicates)
    return stats


def _drafts_of(
    candidates: list[Any], build: Callable[[Any], NotificationDraft | None], stats: dict[str, Any]
) -> list[NotificationDraft]:
    """Build each candidate's draft; one candidate's failure is logged and counted, not raised."""
    drafts: list[NotificationDraft] = []
    errors = 0
    for candidate in candidates:
        try:
            draft = build(candidate)
        except SoftTimeLimitExceeded:
            raise
        except Exception:
            errors += 1
            logger.exception("notification for %r could not be built", candidate)
            continue
        if draft is not None:
            drafts.append(draft)
    stats["candidates"] = len(candidates)
    if errors:
        stats["errors"] = errors
    return drafts


# --- the parts ----------------------------------------------------------------------------------


def session_reminders_send(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """A. One reminder per freeze, within the lookback; the profile is not written (Compat)."""
    stats: dict[str, Any] = {}
    candidates = profiles_due_for_session_reminder(now=now)
    drafts = _drafts_of(candidates, session_reminder_draft, stats)
    return _deliver(drafts=drafts, now=now, dry_run=dry_run, stats=stats)


def long_break_reminders_deliver(
    *, candidates: list[LongBreakCandidate], now: datetime, dry_run: bool
) -> dict[str, Any]:
    """B. The reminders due for `candidates` (as read by the selector, possibly stale)."""
    stats: dict[str, Any] = {}
    due: dict[str, tuple[int, datetime, str]] = {}

    def build(candidate: LongBreakCandidate) -> NotificationDraft | None:
        step = long_break_step(
            now=now,
            last_exercise_at=candidate.last_exercise_at,
            last_type_sent=candidate.last_long_break_reminder_type_sent,
            last_sent_at=candidate.last_long_break_reminder_sent_at,
        )
        if step is None:
            return None
        draft = long_break_draft(candidate, step=step, now=now)
        due[draft.dedupe_key] = (candidate.profile_id, candidate.last_exercise_at, step)
        return draft

    drafts = _drafts_of(candidates, build, stats)
    stats["due"] = len(drafts)
    by_step: dict[str, int] = defaultdict(int)
    for _, _, step in due.values():
        by_step[step] += 1
    stats["steps"] = dict(sorted(by_step.items()))

    def follow_up(keys: list[str]) -> int:
        return profiles_mark_long_break_sent(sent=[due[key] for key in keys], now=now)

    return _deliver(drafts=drafts, now=now, dry_run=dry_run, stats=stats, on_enqueued=follow_up)


def long_break_reminders_send(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """B. Long-break reminders of the profiles due now."""
    return long_break_reminders_deliver(
        candidates=profiles_due_for_long_break(now=now), now=now, dry_run=dry_run
    )


def full_reports_send(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """C. Detailed reports past the sending delay; `GENERATED → SENT` after the enqueue."""
    stats: dict[str, Any] = {}
    candidates = reports_due_for_full_delivery(now=now)
    drafts = _drafts_of(candidates, full_report_draft, stats)
    report_ids = {draft.dedupe_key: draft.context["report_id"] for draft in drafts}

    def mark_sent(keys: list[str]) -> int:
        return reports_mark_full_sent(report_ids=[report_ids[key] for key in keys], now=now)

    return _deliver(drafts=drafts, now=now, dry_run=dry_run, stats=stats, on_enqueued=mark_sent)


def short_reports_catch_up(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """D. Short reports never announced; `short_notified_at` set after the enqueue."""
    if JobLock.objects.filter(name=WEEKLY_REPORTS_JOB, locked_until__gt=now).exists():
        return {"paused": f"{WEEKLY_REPORTS_JOB} is running"}
    stats: dict[str, Any] = {}
    candidates = reports_due_for_short_catch_up(now=now)
    drafts = _drafts_of(candidates, short_report_draft, stats)
    report_ids = {draft.dedupe_key: draft.context["report_id"] for draft in drafts}

    def mark_notified(keys: list[str]) -> int:
        return reports_mark_short_notified(report_ids=[report_ids[key] for key in keys], now=now)

    return _deliver(drafts=drafts, now=now, dry_run=dry_run, stats=stats, on_enqueued=mark_notified)


def failed_notifications_retry(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """E. Re-send `failed` rows whose back-off has passed, if still relevant (issue 10 item 17).

    Parts A–D re-send a failed row only while its item is still a candidate, which a long broker
    outage outlasts (a session reminder's lookback is 15 minutes, the long-break window 30). This
    part takes the due rows themselves (at most `NOTIFICATION_RETRY_BATCH_SIZE`, in a constant
    number of queries): a row older than `NOTIFICATION_RETRY_MAX_AGE_SECONDS` is given up as
    "too old", a row no longer relevant by the relevance rules as "no longer relevant", and the
    rest are sent again (same row, same task id, the message stamped with this attempt's time).
    The follow-up writes of each kind happen after the enqueue, as in the parts.
    """
    logs = notification_retries_due(
        now=now, limit=max(int(settings.NOTIFICATION_RETRY_BATCH_SIZE), 1)
    )
    stats: dict[str, Any] = {"due": len(logs)}
    if not logs:
        return stats
    profiles = {
        (profile.user_id, profile.bot_id): profile
        for profile in BotProfile.objects.filter(
            user_id__in={log.user_id for log in logs}, bot_id__in={log.bot_id for log in logs}
        )
    }
    report_ids = {
        report_id
        for log in logs
        if log.notification_type == NotificationType.WEEKLY_REPORT
        and (report_id := notification_report_id(log)) is not None
    }
    reports = WeeklyReport.objects.in_bulk(list(report_ids)) if report_ids else {}
    oldest = now - retry_max_age()
    too_old: list[int] = []
    irrelevant: list[int] = []
    resend: dict[str, NotificationLog] = {}
    for log in logs:
        report_id = notification_report_id(log)
        if log.created_at < oldest:
            too_old.append(log.pk)
        elif notification_log_is_relevant(
            log=log,
            profile=profiles.get((log.user_id, log.bot_id)),
            report=reports.get(report_id) if report_id is not None else None,
            now=now,
            before_send=True,
        ):
            resend[log.dedupe_key] = log
        else:
            irrelevant.append(log.pk)
    stats.update(too_old=len(too_old), not_relevant=len(irrelevant))
    if dry_run:
        stats["would_send"] = len(resend)
        return stats
    stats["given_up"] = notification_give_up(log_ids=too_old, reason=TOO_OLD)
    stats["given_up"] += notification_give_up(log_ids=irrelevant, reason=NOT_RELEVANT)
    stats.update(enqueued=0, failed=0, skipped=0, written=0)

    def follow_up(keys: list[str]) -> None:
        stats["written"] += _retry_follow_up(
            sent=[resend[key] for key in keys], profiles=profiles, now=now
        )

    if resend:
        with transaction.atomic():
            batch = notification_retry_many(
                log_ids=[log.pk for log in resend.values()],
                now=now,
                on_enqueued=follow_up,
                on_sent=partial(_count_outcomes, stats),
            )
        stats["retried"] = len(batch.retried)
    return stats


def _retry_follow_up(
    *,
    sent: list[NotificationLog],
    profiles: dict[tuple[int, str], BotProfile],
    now: datetime,
) -> int:
    """The follow-up writes of re-sent rows, per kind, as the parts write them."""
    long_breaks: list[tuple[int, datetime, str]] = []
    full: list[int] = []
    short: list[int] = []
    for log in sent:
        if log.notification_type == NotificationType.LONG_BREAK_REMINDER:
            profile = profiles.get((log.user_id, log.bot_id))
            step = (log.metadata or {}).get("reminder_type")
            if profile is not None and profile.last_exercise_at is not None and step:
                # The relevance check found `last_exercise_at` as the row's context.
                long_breaks.append((profile.pk, profile.last_exercise_at, str(step)))
        elif log.notification_type == NotificationType.WEEKLY_REPORT:
            report_id = notification_report_id(log)
            if report_id is not None:
                (full if log.is_full_report else short).append(report_id)
    written = profiles_mark_long_break_sent(sent=long_breaks, now=now)
    if full:
        written += reports_mark_full_sent(report_ids=full, now=now)
    if short:
        written += reports_mark_short_notified(report_ids=short, now=now)
    return written


PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "session_reminders": session_reminders_send,
    "long_break_reminders": long_break_reminders_send,
    "full_reports": full_reports_send,
    "short_report_catch_up": short_reports_catch_up,
    # After the parts: a row a part has just re-sent or failed again is not due here.
    "retries": failed_notifications_retry,
}


# --- the job ------------------------------------------------------------------------------------


def notification_scheduler(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """The job body (docs/jobs.md): stuck rows, then parts A–D; their stats."""
    stats: dict[str, Any] = {}
    if dry_run:
        stats["stuck_pending"] = NotificationLog.objects.filter(stuck_pending(now=now)).count()
    else:
        stats["stuck_marked_failed"] = notification_fail_stuck(now=now)
    failures: dict[str, str] = {}
    for name, part in PARTS.items():
        try:
            stats[name] = part(now=now, dry_run=dry_run)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
            stats[name] = {"error": failures[name]}
            logger.exception("notification_scheduler: part %s failed", name)
            import sentry_sdk  # only when reporting: importing it costs every process 0.15 s

            sentry_sdk.capture_exception(exc)
    logger.info("notification_scheduler at %s: %s", now.isoformat(), stats)
    if failures:
        raise NotificationSchedulerError(
            "; ".join(f"{name}: {error}" for name, error in failures.items())
        )
    return stats
