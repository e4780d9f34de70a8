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

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from kombu.exceptions import OperationalError as BrokerOperationalError

from duoniche.enums import ReportStatus
from learning.errors import profile_not_found, report_id_not_found, report_not_found
from learning.models import BotProfile, WeeklyReport
from learning.profiles import profiles_mark_report_generated
from learning.report_selectors import (
    detailed_report_context,
    weekly_report_candidates,
    weekly_report_week_start,
)
from learning.report_writer import report_text_finish, report_write

logger = logging.getLogger(__name__)

#: What publishing a task raises when the broker is unreachable (after the bounded publish retry
#: policy of settings.CELERY_TASK_PUBLISH_RETRY_POLICY).
BROKER_ERRORS = (BrokerOperationalError, OSError)

#: The generation task (learning/tasks.py), published by name: the task module imports this one.
GENERATION_TASK = "learning.generate_detailed_report"
#: The generation task's time limits in seconds (learning/tasks.py).
GENERATION_SOFT_TIME_LIMIT = 300
GENERATION_TIME_LIMIT = 360
#: How long a worker's claim on a report holds: past the task's hard limit its worker is gone,
#: and a later message for the report may claim it again.
GENERATION_RUN_SECONDS = GENERATION_TIME_LIMIT + 60

#: Statuses the endpoint may move to GENERATING without looking at the clock.
_CLAIMABLE = (ReportStatus.PENDING, ReportStatus.FAILED)


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
    try:
        # By name: the task module imports this one. A process that registered the task (the
        # worker, and the web process through the interfaces that enqueue) runs it as Celery
        # would run `delay` (eagerly in tests); otherwise the message is sent by name.
        current_app.signature(GENERATION_TASK, args=(report_id,)).delay()
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
        with transaction.atomic():
            WeeklyReport.objects.bulk_create(
                reports, batch_size=WEEKLY_REPORT_INSERT_BATCH, ignore_conflicts=True
            )
            profiles_updated = profiles_mark_report_generated(week_start=week_start, now=now)
    logger.info(
        "weekly reports for the week of %s: %d candidates, %d profiles updated",
        week_start,
        len(candidates),
        profiles_updated,
    )
    return WeeklyReportsCreated(
        week_start=week_start, candidates=len(candidates), profiles_updated=profiles_updated
    )


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


# --- delivery (the notification jobs record what they sent) ---------------------------------------


def reports_mark_full_sent(*, report_ids: list[int], now: datetime) -> int:
    """After the detailed report's enqueue: `GENERATED → SENT` (conditional); the rows written."""
    return WeeklyReport.objects.filter(pk__in=report_ids, status=ReportStatus.GENERATED).update(
        status=ReportStatus.SENT, full_sent_at=now, status_changed_at=now
    )


def reports_mark_short_notified(*, report_ids: list[int], now: datetime) -> int:
    """After the short report's enqueue: `short_notified_at = now` where it is still null."""
    return WeeklyReport.objects.filter(pk__in=report_ids, short_notified_at__isnull=True).update(
        short_notified_at=now
    )


# --- staff (admin) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regeneration:
    """What `report_staff_regenerate` did: `outcome` is one of the values below."""

    report_id: int
    #: "queued"; "waiting" (broker down: the sweep queues it); refused: "busy" (being written),
    #: "sent" (delivered already), "not_requested" (the learner never asked for it)
    outcome: str
    status: str


def report_staff_regenerate(*, report_id: int, now: datetime) -> Regeneration:
    """Staff ask for a new detailed report: queue its generation again, whatever it holds now.

    A FAILED or GENERATED report (and a GENERATING one whose request went stale) moves to
    GENERATING through the same outbox as the bot's request, so the job writes a new text even
    when one exists; the old text stays until the new one replaces it. Refused (nothing written)
    while a fresh generation is running ("busy"), once the detailed report was delivered ("sent":
    the learner has it, a new text would never be sent) and while the learner has not asked for
    it ("not_requested": a PENDING report; a text made now would be sent unasked). The job is
    published after the transition commits, never inside a transaction; the LLM runs in the
    worker.
    """
    report = WeeklyReport.objects.filter(pk=report_id).values("status", "status_changed_at").first()
    if report is None:
        raise report_id_not_found(report_id)
    status = report["status"]
    if status in (ReportStatus.SENT, ReportStatus.PENDING):
        refused = "sent" if status == ReportStatus.SENT else "not_requested"
        return Regeneration(report_id=report_id, outcome=refused, status=status)
    stale_before = now - timedelta(minutes=settings.REPORT_GENERATION_STALE_MINUTES)
    movable = Q(status__in=(ReportStatus.FAILED, ReportStatus.GENERATED)) | Q(
        status=ReportStatus.GENERATING, status_changed_at__lt=stale_before
    )
    changed = WeeklyReport.objects.filter(movable, pk=report_id).update(
        status=ReportStatus.GENERATING,
        status_changed_at=now,
        generation_queued_at=None,
        generation_started_at=None,
        failure_reason="",
    )
    if not changed:
        current = WeeklyReport.objects.values_list("status", flat=True).get(pk=report_id)
        return Regeneration(report_id=report_id, outcome="busy", status=current)
    logger.info("detailed report %s: regeneration asked by staff", report_id)
    queued = report_generation_enqueue(report_id=report_id, changed_at=now, now=now)
    current = WeeklyReport.objects.values_list("status", flat=True).get(pk=report_id)
    return Regeneration(
        report_id=report_id, outcome="queued" if queued else "waiting", status=current
    )
