"""End to end: a real Celery worker runs `notification_scheduler`, the Notifier queue gets the
messages of the contract (docs/notifier.md), byte-compatible with the previous service.

The worker is `celery -A duoniche worker` in a subprocess (as in tests/duoniche/
test_celery_worker.py), with the production settings module, on this test's PostgreSQL database
and Redis, consuming only its own default queue. The test sends
`notifications.notification_scheduler` by name, as beat does, and waits (bounded) for the run.
Then it plays the external Notifier: a separate kombu consumer bound to the Notifier queue reads
the raw messages and checks every field. Both queue names are unique to the run, so parallel test
sessions on the same Redis do not take each other's messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from duoniche.celery import app
from duoniche.enums import JobRunStatus, NotificationStatus, ReportStatus
from duoniche.models import JobLock, JobRun
from duoniche.texts import render
from learning.models import BotProfile, WeeklyReport
from notifications.models import NotificationLog
from tests.celery_worker import ROOT, current_database_url, worker_env
from tests.learning.factories import BotProfileFactory, TelegramUserFactory, WeeklyReportFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

WAIT_SECONDS = 60
TASK_DICT_KEYS = [
    "task_id",
    "bot_id",
    "user_id",
    "text",
    "notification_type",
    "payload",
    "metadata",
    "scheduled_at",
    "created_at",
]


def _start_worker(*, default_queue: str, notifier_queue: str, log_path: Path) -> subprocess.Popen:
    # The production settings module, not `settings_test` (which forces eager mode, and with it
    # the producer off): the worker talks to Redis as in production, on the test database.
    env = {
        **worker_env(),
        "DJANGO_SETTINGS_MODULE": "duoniche.settings",
        "DATABASE_URL": current_database_url(),
        "DJANGO_DEBUG": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": default_queue,
        "NOTIFICATION_TASKS_QUEUE_NAME": notifier_queue,
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "duoniche",
        "worker",
        "-Q",
        default_queue,
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
        "-n",
        f"notify-test-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)


def _consume(queue_name: str) -> list[Any]:
    """The external Notifier's side: every raw message on its queue (acknowledged)."""
    messages = []
    with Connection(settings.CELERY_BROKER_URL) as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            while True:
                try:
                    message = queue.get(block=True, timeout=1)
                except queue.Empty:
                    break
                message.ack()
                messages.append(message)
        finally:
            queue.clear()
            queue.queue.delete()
            queue.close()
    return messages


def _due_everywhere(now: datetime) -> dict[str, Any]:
    """One item due in each part of the scheduler, relative to the real clock."""
    long_break = BotProfileFactory(
        user=TelegramUserFactory(telegram_id="123456789"),
        user_language="bg",
        last_exercise_at=now - timedelta(days=3, minutes=2),
        last_long_break_reminder_type_sent="1d",
        last_long_break_reminder_sent_at=now - timedelta(hours=48),
    )
    session = BotProfileFactory(
        user=TelegramUserFactory(telegram_id="223456789"),
        session_frozen_until=now - timedelta(minutes=1),
        wants_session_reminders=True,
    )
    full_profile = BotProfileFactory(user=TelegramUserFactory(telegram_id="323456789"))
    full = WeeklyReportFactory(
        user=full_profile.user,
        bot_id=full_profile.bot_id,
        status=ReportStatus.GENERATED,
        full_report="<b>Detailed</b> report",
        full_generated_at=now - timedelta(minutes=11),
        short_notified_at=now - timedelta(days=1),
    )
    short_profile = BotProfileFactory(
        user=TelegramUserFactory(telegram_id="423456789"), bot_id="Serbian", user_language="sr"
    )
    short = WeeklyReportFactory(
        user=short_profile.user,
        bot_id="Serbian",
        short_report="Your week in numbers",
        generated_at=now - timedelta(hours=1),
    )
    return {"long_break": long_break, "session": session, "full": full, "short": short}


def _expected_args(log: NotificationLog, telegram_id: int) -> list[dict[str, Any]]:
    created_at = log.created_at.astimezone(UTC).isoformat()
    return [
        {
            "task_id": str(log.task_id),
            "bot_id": log.bot_id,
            "user_id": log.user_id,
            "text": log.text,
            "notification_type": log.notification_type,
            "payload": {
                "telegram_id": telegram_id,
                "parse_mode": "HTML",
                "reply_markup": log.reply_markup,
                "disable_web_page_preview": True,
            },
            "metadata": log.metadata,
            "scheduled_at": None,
            "created_at": {"__type__": "datetime", "__value__": created_at},
        }
    ]


def test_a_real_worker_runs_the_scheduler_and_the_notifier_gets_the_contract(tmp_path):
    assert settings.CELERY_BROKER_URL, "the end-to-end test needs Redis (REDIS_URL)"
    run_id = uuid.uuid4().hex[:10]
    default_queue = f"duoniche_e2e_{run_id}"
    notifier_queue = f"notification_tasks_e2e_{run_id}"
    items = _due_everywhere(timezone.now())
    log_path = tmp_path / "worker.log"

    worker = _start_worker(
        default_queue=default_queue, notifier_queue=notifier_queue, log_path=log_path
    )
    try:
        # An explicit connection: the app's configuration is read once per process, possibly
        # while an earlier test pointed the broker URL at a dead port.
        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            app.send_task(
                "notifications.notification_scheduler",
                kwargs={"sent_by": "test"},
                queue=default_queue,
                connection=connection,
            )
        run = None
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and worker.poll() is None:
            run = JobRun.objects.filter(
                job="notification_scheduler",
                status__in=[JobRunStatus.SUCCEEDED, JobRunStatus.FAILED],
            ).first()
            if run is not None:
                break
            time.sleep(0.2)
    finally:
        _stop(worker)
    output = log_path.read_text(errors="replace")
    messages = _consume(notifier_queue)

    # The job ran in the worker, under the runner.
    assert run is not None, f"no finished notification_scheduler run in {WAIT_SECONDS} s:\n{output}"
    assert run.status == JobRunStatus.SUCCEEDED, f"{run.error}\n{output}"
    assert run.forced is False
    assert not JobLock.objects.filter(name="notification_scheduler").exists()
    for part in ("session_reminders", "long_break_reminders", "full_reports"):
        assert run.stats[part]["enqueued"] == 1, (part, run.stats)
    assert run.stats["short_report_catch_up"]["enqueued"] == 1, run.stats

    # Every row enqueued, and the follow-up writes done.
    logs = {log.dedupe_key.split(":")[0]: log for log in NotificationLog.objects.all()}
    assert set(logs) == {
        "session_reminder",
        "long_break",
        "weekly_report_full",
        "weekly_report_short",
    }
    assert {log.status for log in logs.values()} == {NotificationStatus.ENQUEUED}
    profile = BotProfile.objects.get(pk=items["long_break"].pk)
    assert profile.last_long_break_reminder_type_sent == "3d"
    assert WeeklyReport.objects.get(pk=items["full"].pk).status == ReportStatus.SENT
    assert WeeklyReport.objects.get(pk=items["short"].pk).short_notified_at is not None

    # The Notifier's view: four raw messages on its queue, one per row.
    assert len(messages) == 4, output
    by_task_id = {message.headers["id"]: message for message in messages}
    assert set(by_task_id) == {str(log.task_id) for log in logs.values()}
    telegram_ids = {
        "long_break": 123456789,
        "session_reminder": 223456789,
        "weekly_report_full": 323456789,
        "weekly_report_short": 423456789,
    }
    for kind, log in logs.items():
        message = by_task_id[str(log.task_id)]
        # Celery protocol 2, JSON, the Notifier's task name, routed to its queue.
        assert message.headers["task"] == "src.notifier.tasks.send_notification"
        assert message.headers["id"] == str(log.task_id)
        assert message.headers["lang"] == "py"
        assert message.headers["eta"] is None
        assert message.headers["expires"] is None
        assert message.headers["retries"] == 0
        assert message.properties["correlation_id"] == str(log.task_id)
        assert message.delivery_info["routing_key"] == notifier_queue
        assert message.content_type == "application/json"
        assert message.content_encoding == "utf-8"
        # The raw body, without kombu's decoding hooks: [args, kwargs, embed].
        args, kwargs, embed = json.loads(message.body)
        assert kwargs == {}
        assert embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
        assert args == _expected_args(log, telegram_ids[kind]), kind
        assert list(args[0]) == TASK_DICT_KEYS
        assert list(args[0]["payload"]) == [
            "telegram_id",
            "parse_mode",
            "reply_markup",
            "disable_web_page_preview",
        ]
        # kombu's own decoding (what a Celery Notifier gets): an aware UTC datetime.
        decoded_args, _, _ = message.decode()
        created_at = decoded_args[0]["created_at"]
        assert isinstance(created_at, datetime)
        assert created_at.utcoffset() == timedelta(0)
        assert created_at == log.created_at

    # Payload fields per type (docs/notifier.md).
    long_break = json.loads(by_task_id[str(logs["long_break"].task_id)].body)[0][0]
    assert long_break["notification_type"] == "long_break_reminder"
    assert long_break["bot_id"] == "Bulgarian"
    assert long_break["user_id"] == items["long_break"].user_id
    assert long_break["text"] == render("long_break_3d", "bg") + "\n\n/next"
    assert long_break["metadata"] == {"reminder_type": "3d", "days_inactive": 3}
    assert long_break["payload"]["reply_markup"] is None

    session = json.loads(by_task_id[str(logs["session_reminder"].task_id)].body)[0][0]
    assert session["notification_type"] == "session_reminder"
    assert session["text"] == render("session_is_ready", "en") + "\n\n/next"
    assert session["metadata"] == {}

    full_id = items["full"].pk
    full = json.loads(by_task_id[str(logs["weekly_report_full"].task_id)].body)[0][0]
    assert full["notification_type"] == "weekly_report"
    assert full["text"] == "<b>Detailed</b> report"
    assert full["metadata"] == {"report_id": full_id, "is_full_report": True}
    assert full["payload"]["reply_markup"] == {
        "inline_keyboard": [
            [
                {
                    "text": render("report_donation_button_text", "en"),
                    "callback_data": f"initiate_payment:report_donation:{full_id}",
                }
            ]
        ]
    }

    short_id = items["short"].pk
    short = json.loads(by_task_id[str(logs["weekly_report_short"].task_id)].body)[0][0]
    assert short["notification_type"] == "weekly_report"
    assert short["bot_id"] == "Serbian"
    assert short["text"] == "Your week in numbers"
    assert short["metadata"] == {"report_id": short_id}
    assert short["payload"]["reply_markup"] == {
        "inline_keyboard": [
            [
                {
                    "text": render("weekly_report_detailed_button", "sr"),
                    "callback_data": f"full_weekly_report:yes:{short_id}",
                }
            ]
        ]
    }

    # The worker consumed only its own queue: the Notifier's task never ran here.
    assert "src.notifier.tasks.send_notification" not in output
