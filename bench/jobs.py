"""Benchmarks of the periodic jobs at production scale; `--only` picks one.

`--only scheduler`: one `notification_scheduler` cycle over 1,000,000 bot profiles.

It creates a dedicated database (`duoniche_bench_jobs`), migrates it and bulk-loads, with
`INSERT ... SELECT generate_series` (no ORM loop), `--profiles` users with one profile each:

- 97 % active, 2 % blocked, 1 % inactive; six interface languages; two bots;
- `last_exercise_at` uniform over the last 120 days (5 % never practised), so about 2 % of the
  profiles practised within the ±15 min time-of-day window of `now`; half of them with an earlier
  long-break step sent up to 10 days ago (the cooldown and the ladder decide);
- 0.2 % whose session freeze ended in the last 20 min (half of those opted in to reminders);
- one weekly report per 500 profiles: half `GENERATED` detailed reports past the sending delay,
  half short reports of the last hour never announced (the catch-up).

Then it runs one cycle in-process, through the real runner (`job_run("notification_scheduler",
force=True)`), and prints the elapsed time (target ≤ 30 s), the SQL statements issued and what
was produced. Without `--redis-url` the Notifier is disabled (no broker: every row is `skipped`
and no follow-up write happens); with it, the messages are really published to a Notifier queue
of the run's own on that Redis (deleted afterwards) and the follow-up writes run.

    .venv/bin/python bench/jobs.py --only scheduler
    .venv/bin/python bench/jobs.py --only scheduler --redis-url redis://127.0.0.1:6379/8
    .venv/bin/python bench/jobs.py --only scheduler --profiles 100000 --keep

Needs the local PostgreSQL (and Redis with `--redis-url`). The database is dropped at the end
unless `--keep`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchdb import drop_database, reset_database  # a sibling module: the benches run as scripts

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/duoniche_bench_jobs"
#: A fixed moment, so every run draws the same profiles at the same time of day.
BENCH_NOW = datetime(2025, 7, 9, 12, 0, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("scheduler", "weekly"), default="scheduler")
    parser.add_argument("--profiles", type=int, default=1_000_000, help="profiles (scheduler)")
    parser.add_argument(
        "--users", type=int, default=50_000, help="learners owed a weekly report (weekly)"
    )
    parser.add_argument(
        "--history-weeks", type=int, default=2, help="earlier weeks of attempts (weekly)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="REPORT_NOTIFICATION_BATCH_SIZE (weekly; default: the setting, 10)",
    )
    parser.add_argument(
        "--redis-url", default="", help="publish to this Redis (default: Notifier disabled)"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.profiles <= 0:
        parser.error("--profiles must be positive")
    return args


# --- database -----------------------------------------------------------------------------------


def setup_django(*, database_url: str, redis_url: str, extra: dict[str, str]) -> None:
    import django

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "duoniche.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "API_TOKENS": "bench-token",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "false" if redis_url else "true",
            "SENTRY_DSN": "",
            **extra,
        }
    )
    # prometheus_client switches to multiprocess files by the variable's presence, even empty.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)
    sys.path.insert(0, str(ROOT))
    django.setup()


@contextmanager
def counting_queries() -> Iterator[Callable[[], int]]:
    """Count the SQL statements Django sends (without keeping them)."""
    from django.db import connection

    count = 0

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield lambda: count


@contextmanager
def database(
    args: argparse.Namespace, *, extra_env: dict[str, str] | None = None
) -> Iterator[None]:
    """A fresh, migrated bench database with Django set up on it; dropped afterwards."""
    reset_database(args.database_url)
    try:
        setup_django(
            database_url=args.database_url, redis_url=args.redis_url, extra=extra_env or {}
        )
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        try:
            yield
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            drop_database(args.database_url)


# --- scheduler ----------------------------------------------------------------------------------

SEED_USERS = """
INSERT INTO learning_telegramuser (telegram_id, name, status, created_at, updated_at)
SELECT (1000000000 + g)::text, 'Learner ' || g, 'free', %(now)s - interval '200 days', %(now)s
FROM generate_series(1, %(n)s) AS g
"""

SEED_PROFILES = """
INSERT INTO learning_botprofile (
    user_id, bot_id, user_language, language_level, status,
    exercises_get_in_session, exercises_get_in_set, errors_count_in_set,
    last_exercise_at, session_frozen_until, wants_session_reminders, current_streak_days,
    last_long_break_reminder_type_sent, last_long_break_reminder_sent_at,
    created_at, updated_at
)
SELECT
    r.id,
    CASE WHEN r.id %% 2 = 0 THEN 'Bulgarian' ELSE 'Serbian' END,
    (ARRAY['en', 'ru', 'uk', 'bg', 'sr', 'tr'])[1 + r.id %% 6],
    'A2',
    CASE WHEN r.s < 0.97 THEN 'active' WHEN r.s < 0.99 THEN 'blocked' ELSE 'inactive' END,
    0, 0, 0,
    CASE WHEN r.never < 0.05 THEN NULL ELSE %(now)s - r.age * interval '120 days' END,
    CASE WHEN r.frozen < 0.002 THEN %(now)s - r.frozen / 0.002 * interval '20 minutes' END,
    CASE WHEN r.frozen < 0.001 THEN true WHEN r.frozen < 0.002 THEN NULL END,
    floor(r.streak * 10)::int,
    CASE WHEN r.sent >= 0.5
        THEN (ARRAY['1d', '3d', '5d', '8d', '13d', '21d', '30d', '90d'])[1 + floor(r.step * 8)::int]
    END,
    CASE WHEN r.sent < 0.5 THEN NULL ELSE %(now)s - r.sent_ago * interval '10 days' END,
    %(now)s - interval '200 days',
    %(now)s
FROM (
    SELECT u.id, random() AS s, random() AS never, random() AS age, random() AS frozen,
           random() AS streak, random() AS sent, random() AS step, random() AS sent_ago
    FROM learning_telegramuser u
) AS r
"""

SEED_REPORTS = """
INSERT INTO learning_weeklyreport (
    user_id, bot_id, week_start_date, short_report, full_report, status, status_changed_at,
    generated_at, short_notified_at, full_generated_at, generation_attempts, failure_reason
)
SELECT
    p.user_id, p.bot_id, %(week)s, 'Your week in numbers',
    CASE WHEN p.id %% 1000 = 0 THEN '<b>Your detailed report</b>' END,
    CASE WHEN p.id %% 1000 = 0 THEN 'GENERATED' ELSE 'PENDING' END,
    %(now)s - interval '11 minutes',
    %(now)s - interval '1 hour',
    CASE WHEN p.id %% 1000 = 0 THEN %(now)s - interval '50 minutes' END,
    CASE WHEN p.id %% 1000 = 0 THEN %(now)s - interval '11 minutes' END,
    CASE WHEN p.id %% 1000 = 0 THEN 1 ELSE 0 END,
    ''
FROM learning_botprofile p
WHERE p.id %% 500 = 0 AND p.status = 'active'
"""


def seed_scheduler(*, profiles: int, now: datetime) -> dict[str, int]:
    from django.db import connection

    week = (now - timedelta(days=now.weekday() + 7)).date()
    params: dict[str, Any] = {"n": profiles, "now": now, "week": week}
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(SEED_USERS, params)
        cursor.execute(SEED_PROFILES, params)
        cursor.execute(SEED_REPORTS, params)
        cursor.execute("ANALYZE learning_telegramuser, learning_botprofile, learning_weeklyreport")
        cursor.execute("SELECT count(*) FROM learning_weeklyreport")
        reports = cursor.fetchone()[0]
    return {"profiles": profiles, "reports": reports}


def _purge_queue(redis_url: str, queue_name: str) -> None:
    from kombu import Connection

    with Connection(redis_url) as connection:
        queue = connection.SimpleQueue(queue_name)  # type: ignore[attr-defined]  # not in stubs
        queue.clear()
        queue.queue.delete()
        queue.close()


def bench_scheduler(args: argparse.Namespace) -> None:
    """One `notification_scheduler` cycle over `--profiles` profiles."""
    queue_name = f"notification_tasks_bench_{uuid.uuid4().hex[:10]}"
    extra = {"NOTIFICATION_TASKS_QUEUE_NAME": queue_name} if args.redis_url else {}
    with database(args, extra_env=extra):
        from django.db.models import Count

        from duoniche.job_runs import job_run
        from notifications.models import NotificationLog

        started = time.monotonic()
        seeded = seed_scheduler(profiles=args.profiles, now=BENCH_NOW)
        seeding = time.monotonic() - started
        try:
            with counting_queries() as queries:
                started = time.monotonic()
                outcome = job_run("notification_scheduler", now=BENCH_NOW, force=True)
                elapsed = time.monotonic() - started
            produced = list(
                NotificationLog.objects.values("notification_type", "status")
                .annotate(n=Count("id"))
                .order_by("notification_type", "status")
            )
        finally:
            if args.redis_url:
                _purge_queue(args.redis_url, queue_name)

    notifier = f"Redis {args.redis_url}" if args.redis_url else "disabled (no broker)"
    print(
        f"notification_scheduler: {outcome.outcome}; {seeded['profiles']:,} profiles, "
        f"{seeded['reports']:,} weekly reports; Notifier {notifier}"
    )
    if outcome.reason:
        print(f"  reason           {outcome.reason}")
    print(f"  seeding          {seeding:8.2f} s  (not measured)")
    verdict = "OK" if elapsed <= 30 else "ABOVE TARGET"
    print(f"  elapsed          {elapsed:8.2f} s  (one cycle; target ≤ 30 s: {verdict})")
    print(f"  SQL statements   {queries():8d}")
    stats = outcome.stats
    for part in (
        "session_reminders",
        "long_break_reminders",
        "full_reports",
        "short_report_catch_up",
    ):
        part_stats = stats.get(part, {})
        shown = {
            key: part_stats[key]
            for key in ("candidates", "due", "new", "enqueued", "skipped", "failed", "written")
            if key in part_stats
        }
        print(f"  {part:<22} {shown}")
    if "steps" in stats.get("long_break_reminders", {}):
        print(f"  long-break steps       {stats['long_break_reminders']['steps']}")
    rows = ", ".join(f"{r['notification_type']}/{r['status']} {r['n']:,}" for r in produced)
    print(f"  log rows               {rows}")


# --- weekly -------------------------------------------------------------------------------------
#
# `--only weekly`: one Monday `weekly_reports` run over `--users` (50,000) learners owed a report.
# Loaded with `INSERT ... SELECT generate_series`: 200 published exercises per language; each
# learner with an active Bulgarian profile and 15-25 attempts in last week's window (≈ 70 %
# correct) plus 3 Serbian ones (a second profile that must not get a report);
# noise that must not be reported: 5,000 learners with 8 attempts and 2,000 blocked ones with 20;
# `--history-weeks` earlier weeks of attempts of everybody. The run goes through the real runner
# (forced) at Monday 09:00 with `REPORT_NOTIFICATION_BATCH_DELAY_SECONDS=0` (the production
# pause, (batches - 1) s, is printed apart); target ≤ 60 s.

#: The Monday 09:00 of `BENCH_NOW`'s week: the weekly job's slot (it reports 2025-06-30..07-06).
WEEKLY_NOW = datetime(2025, 7, 7, 9, 0, tzinfo=UTC)
WEEKLY_EXERCISES_PER_LANGUAGE = 200
WEEKLY_BELOW_THRESHOLD = 5_000
WEEKLY_BLOCKED = 2_000

WEEKLY_USERS = """
INSERT INTO learning_telegramuser (telegram_id, name, status, created_at, updated_at)
SELECT (2000000000 + g)::text, 'Learner ' || g, 'free', %(now)s - interval '200 days', %(now)s
FROM generate_series(1, %(n)s) AS g
"""

#: Two profiles per user (Bulgarian, Serbian); users after `blocked_after` are blocked in both.
WEEKLY_PROFILES = """
INSERT INTO learning_botprofile (
    user_id, bot_id, user_language, language_level, status, exercises_get_in_session,
    exercises_get_in_set, errors_count_in_set, current_streak_days, created_at, updated_at)
SELECT u.id, b.bot_id, (ARRAY['en', 'ru', 'uk', 'bg', 'sr', 'tr'])[1 + u.id %% 6], 'A2',
       CASE WHEN u.id > %(blocked_after)s THEN 'blocked' ELSE 'active' END, 0, 0, 0, 0,
       %(now)s - interval '200 days', %(now)s
FROM learning_telegramuser u CROSS JOIN (VALUES ('Bulgarian'), ('Serbian')) AS b (bot_id)
"""

#: Per user in [first, last]: `base + id % spread` attempts on `language` exercises, spread over
#: the 7 days from `start`.
WEEKLY_ATTEMPTS = """
INSERT INTO learning_exerciseattempt (
    user_id, exercise_id, answer, answer_text, answer_key, is_correct, feedback, created_at)
SELECT u.id, e.ids[1 + (u.id * 7 + n) %% array_length(e.ids, 1)], '{"words": ["едно"]}'::jsonb,
       'едно', md5('едно'), random() < 0.7, '',
       %(start)s + (n * 7919 + u.id) %% 604800 * interval '1 second'
FROM learning_telegramuser u
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM exercises_exercise
            WHERE exercise_language = %(language)s) AS e
CROSS JOIN LATERAL generate_series(1, %(base)s + u.id %% %(spread)s) AS n
WHERE u.id BETWEEN %(first)s AND %(last)s
"""


def seed_weekly_exercises(now: datetime) -> None:
    """Published fill-in-the-blank exercises in both languages, through `exercise_create`."""
    from exercises.content import content_hash
    from exercises.services import exercise_create

    for language, sentence in (("Bulgarian", "Искам ___ кафе {}."), ("Serbian", "Hoću ___ {}.")):
        for n in range(WEEKLY_EXERCISES_PER_LANGUAGE):
            data = {"text_with_blanks": sentence.format(n), "words": ["едно", "една"]}
            answer = {"words": ["едно"]}
            exercise_create(
                exercise_type="fill_in_the_blank",
                exercise_language=language,
                language_level="A2",
                topic="food",
                data=data,
                correct_answer=answer,
                grammar_tags={"grammar": ["numerals: cardinal"], "vocabulary": ["food"]},
                status="published",
                persona=None,
                content_hash=content_hash(
                    exercise_type="fill_in_the_blank",
                    exercise_language=language,
                    data=data,
                    correct_answer=answer,
                ),
                source="imported",
                created_by="import",
                now=now,
            )


def seed_weekly(*, users: int, history_weeks: int, now: datetime) -> dict[str, int]:
    from django.db import connection

    from learning.report_selectors import weekly_report_week_start

    seed_weekly_exercises(now)
    week_start = datetime.combine(weekly_report_week_start(now), datetime.min.time(), UTC)
    below_last = users + WEEKLY_BELOW_THRESHOLD
    total = below_last + WEEKLY_BLOCKED
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(WEEKLY_USERS, {"n": total, "now": now})
        cursor.execute("SELECT min(id) FROM learning_telegramuser")
        offset = cursor.fetchone()[0] - 1
        cursor.execute(WEEKLY_PROFILES, {"now": now, "blocked_after": offset + below_last})

        def attempts(
            language: str, start: datetime, first: int, last: int, base: int, spread: int
        ) -> None:
            cursor.execute(
                WEEKLY_ATTEMPTS,
                {
                    "language": language,
                    "start": start,
                    "first": offset + first,
                    "last": offset + last,
                    "base": base,
                    "spread": spread,
                },
            )

        attempts("Bulgarian", week_start, 1, users, 15, 11)  # owed a report: 15-25 attempts
        attempts("Serbian", week_start, 1, users, 3, 1)  # too few: no Serbian report
        attempts("Bulgarian", week_start, users + 1, below_last, 8, 1)  # below the threshold
        attempts("Bulgarian", week_start, below_last + 1, total, 20, 1)  # blocked profiles
        for weeks_back in range(1, history_weeks + 1):
            attempts("Bulgarian", week_start - timedelta(weeks=weeks_back), 1, total, 15, 11)
        cursor.execute("SELECT count(*) FROM learning_exerciseattempt")
        attempt_rows = cursor.fetchone()[0]
        # What autovacuum would have done by Monday morning.
        cursor.execute("VACUUM ANALYZE")
    return {"users": total, "attempts": attempt_rows}


def bench_weekly(args: argparse.Namespace) -> None:
    """One `weekly_reports` run over `--users` learners owed a report."""
    queue_name = f"notification_tasks_bench_{uuid.uuid4().hex[:10]}"
    extra = {"REPORT_NOTIFICATION_BATCH_DELAY_SECONDS": "0"}
    if args.batch_size:
        extra["REPORT_NOTIFICATION_BATCH_SIZE"] = str(args.batch_size)
    if args.redis_url:
        extra["NOTIFICATION_TASKS_QUEUE_NAME"] = queue_name
    with database(args, extra_env=extra):
        from django.conf import settings
        from django.db.models import Count

        from duoniche.job_runs import job_run
        from learning.models import BotProfile, WeeklyReport
        from notifications import weekly
        from notifications.models import NotificationLog

        started = time.monotonic()
        seeded = seed_weekly(users=args.users, history_weeks=args.history_weeks, now=WEEKLY_NOW)
        seeding = time.monotonic() - started

        # The two phases of the body, timed where the body looks them up.
        phases: dict[str, float] = {}

        def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(**kwargs: Any) -> Any:
                phase_started = time.monotonic()
                try:
                    return function(**kwargs)
                finally:
                    phases[name] = time.monotonic() - phase_started

            return wrapped

        weekly.weekly_reports_create = timed("create", weekly.weekly_reports_create)
        weekly.weekly_reports_notify = timed("notify", weekly.weekly_reports_notify)
        try:
            with counting_queries() as queries:
                started = time.monotonic()
                outcome = job_run("weekly_reports", now=WEEKLY_NOW, force=True)
                elapsed = time.monotonic() - started
            reports = dict(
                WeeklyReport.objects.values_list("bot_id").annotate(n=Count("id")).order_by()
            )
            logs = dict(NotificationLog.objects.values_list("status").annotate(n=Count("id")))
            updated = BotProfile.objects.filter(last_report_generated_at=WEEKLY_NOW).count()
            size = settings.REPORT_NOTIFICATION_BATCH_SIZE
        finally:
            if args.redis_url:
                _purge_queue(args.redis_url, queue_name)

    notifier = f"Redis {args.redis_url}" if args.redis_url else "disabled (no broker)"
    stats = outcome.stats
    batches = int(stats.get("batches", 0))
    print(
        f"weekly_reports: {outcome.outcome}; {args.users:,} learners owed a report, "
        f"{seeded['users']:,} users, {seeded['attempts']:,} attempts "
        f"({args.history_weeks} earlier weeks); Notifier {notifier}"
    )
    if outcome.reason:
        print(f"  reason           {outcome.reason}")
    print(f"  seeding          {seeding:8.2f} s  (not measured)")
    verdict = "OK" if elapsed <= 60 else "ABOVE TARGET"
    print(f"  elapsed          {elapsed:8.2f} s  (one run; target ≤ 60 s: {verdict})")
    print(
        f"    create         {phases.get('create', 0.0):8.2f} s  (grouped query, inserts, update)"
    )
    print(f"    notify         {phases.get('notify', 0.0):8.2f} s  ({batches:,} batches of {size})")
    print(f"  SQL statements   {queries():8d}")
    print(f"  reports          {reports}  (expected {{'Bulgarian': {args.users}}})")
    print(f"  profiles updated {updated:8,d}")
    print(f"  log rows         {logs}")
    print(
        f"  production pause {max(batches - 1, 0):8,d} s  (1 s between batches, not slept here; "
        f"the job's hard time limit is 3600 s)"
    )
    ok = outcome.outcome == "succeeded" and reports == {"Bulgarian": args.users}
    ok = ok and updated == args.users and sum(logs.values()) == args.users
    print(f"  result           {'OK' if ok else 'UNEXPECTED'}")


#: `--only` choices and their benchmark.
BENCHES: dict[str, Callable[[argparse.Namespace], None]] = {
    "scheduler": bench_scheduler,
    "weekly": bench_weekly,
}


def main() -> None:
    args = parse_args()
    bench = BENCHES.get(args.only)
    if bench is None:
        sys.exit(f"bench/jobs.py: --only {args.only} is not implemented yet")
    bench(args)


if __name__ == "__main__":
    main()
