"""Benchmark of the admin index with the operations dashboard, on the bench database.

It renders `/admin/` with Django's test client as a superuser against the database `bench/api.py`
leaves behind (`duoniche_bench`: 200,000 exercises, ~200,000 attempts, all within the dashboard's
30-day window, the worst case for the activity query), and prints the queries and the time per
render (target: under 30 queries and 300 ms), with the cached figures (bank and activity, kept a
minute) recomputed and then reused, and the time of each dashboard selector.

The ledgers the API benchmark does not fill (LLM calls, payments, notifications, job runs) get
30 days of synthetic rows first, inside one transaction that is rolled back at the end with the
superuser and its session: the bench database is left as it was (pending migrations apart, which
are applied as `bench/api.py` does).

    .venv/bin/python bench/dashboard.py                    # 5 renders of each kind
    .venv/bin/python bench/dashboard.py --runs 10 --no-ledgers
    .venv/bin/python bench/dashboard.py --database-url postgres://postgres@127.0.0.1:5432/other

Needs only the local PostgreSQL (no Redis: the cache is in memory).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUERY_BUDGET = 30
TIME_TARGET_MS = 300.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured renders after a warm-up")
    parser.add_argument(
        "--no-ledgers", action="store_true", help="do not add the synthetic ledger rows"
    )
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/duoniche_bench"
    )
    return parser.parse_args()


def database_exists(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def setup_django(args: argparse.Namespace) -> None:
    import django

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "duoniche.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "API_TOKENS": "bench-token",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": "",
            "CELERY_BROKER_URL": "",
            "SENTRY_DSN": "",
            "LLM_DAILY_BUDGET_USD": "5",
        }
    )
    # prometheus_client switches to multiprocess files by the variable's presence, even empty.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)
    sys.path.insert(0, str(ROOT))
    django.setup()

    from django.conf import settings
    from django.test.utils import override_settings

    # Static files as in development: no collected manifest is needed to render the page.
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override_settings(STORAGES=storages).enable()


def migrate_if_needed() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        print(f"applying {len(plan)} pending migration(s) to the bench database")
        call_command("migrate", verbosity=0)


def table_counts() -> dict[str, int]:
    from duoniche.models import JobRun, LLMCall
    from exercises.models import Exercise
    from learning.models import ExerciseAttempt, TelegramUser
    from notifications.models import NotificationLog
    from payments.models import Payment

    models: dict[str, Any] = {
        "exercises": Exercise,
        "attempts": ExerciseAttempt,
        "users": TelegramUser,
        "LLM calls": LLMCall,
        "payments": Payment,
        "notifications": NotificationLog,
        "job runs": JobRun,
    }
    return {name: model.objects.count() for name, model in models.items()}


def seed_ledgers(rng: random.Random) -> dict[str, int]:
    """30 days of LLM calls, payments, notifications and job runs (rolled back by the caller)."""
    from django.utils import timezone

    from duoniche.models import JobRun, LLMCall
    from learning.models import TelegramUser
    from notifications.models import NotificationLog
    from payments.models import Payment

    now = timezone.now()
    users = list(TelegramUser.objects.values_list("pk", flat=True)[:1000])
    if not users:
        return {}

    def moment() -> Any:
        return now - timedelta(seconds=rng.randrange(30 * 86400))

    purposes = ["generation", "validation", "assessment", "translation", "reports"]
    calls = [
        LLMCall(
            created_at=moment(),
            purpose=rng.choice(purposes),
            operation="bench",
            model="bench-model",
            input_tokens=rng.randrange(200, 2000),
            output_tokens=rng.randrange(20, 300),
            latency_ms=rng.randrange(200, 3000),
            ok=rng.random() > 0.03,
            cost_usd=Decimal(rng.randrange(1, 900)) / Decimal(1_000_000) * 1000,
        )
        for _ in range(30_000)
    ]
    LLMCall.objects.bulk_create(calls, batch_size=5000)
    payments = [
        Payment(
            user_id=rng.choice(users),
            bot_id=rng.choice(["Bulgarian", "Serbian"]),
            telegram_payment_charge_id=f"bench-dashboard-{n}",
            currency="XTR",
            amount=rng.choice([20, 50, 100, 200, 500, 1000]),
            source=rng.choice(["session_unlock", "report_donation"]),
            invoice_payload="invoice_payload:bench",
            payload_signed=True,
            status="refunded" if rng.random() < 0.02 else "paid",
            processed_at=moment(),
        )
        for n in range(3000)
    ]
    Payment.objects.bulk_create(payments, batch_size=5000)
    statuses = ["enqueued"] * 90 + ["failed"] * 4 + ["skipped"] * 5 + ["pending"]
    notifications = [
        NotificationLog(
            dedupe_key=f"bench-dashboard-{n}",
            user_id=rng.choice(users),
            bot_id="Bulgarian",
            notification_type="session_reminder",
            text="bench",
            status=rng.choice(statuses),
            created_at=moment(),
        )
        for n in range(30_000)
    ]
    NotificationLog.objects.bulk_create(notifications, batch_size=5000)
    runs = [
        JobRun(
            job=job,
            period_key=f"bench-{n}",
            status="failed" if rng.random() < 0.02 else "succeeded",
            started_at=now - timedelta(minutes=10 * n),
            finished_at=now - timedelta(minutes=10 * n - 1),
        )
        for job in ("refill_stock", "quality_monitor", "notification_scheduler")
        for n in range(30 * 144)
    ]
    JobRun.objects.bulk_create(runs, batch_size=5000)
    return {
        "LLM calls": len(calls),
        "payments": len(payments),
        "notifications": len(notifications),
        "job runs": len(runs),
    }


def timed(function: Callable[[], Any]) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        function()
        elapsed = (time.perf_counter() - start) * 1000
    return elapsed, len(queries)


def measure(args: argparse.Namespace) -> bool:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client
    from django.utils import timezone

    from duoniche import dashboard
    from exercises import dashboard as exercises_dashboard
    from learning import dashboard as learning_dashboard
    from notifications import dashboard as notifications_dashboard
    from payments import dashboard as payments_dashboard

    counts = table_counts()
    print("bench database: " + ", ".join(f"{n:,} {name}" for name, n in counts.items()))
    if not args.no_ledgers:
        started = time.perf_counter()
        seeded = seed_ledgers(random.Random(42))
        print(
            "added for this run (rolled back at the end): "
            + ", ".join(f"{n:,} {name}" for name, n in seeded.items())
            + f" in {time.perf_counter() - started:.1f} s"
        )

    superuser = User.objects.create_superuser("bench-dashboard", password="x")
    client = Client()
    client.force_login(superuser)

    def render() -> None:
        response = client.get("/admin/")
        if response.status_code != 200 or b'id="ops-dashboard"' not in response.content:
            raise SystemExit(f"GET /admin/ answered {response.status_code} without the dashboard")

    def uncached() -> None:
        cache.clear()  # the bank and activity figures are recomputed, as once a minute
        render()

    first, queries = timed(uncached)
    cold = [timed(uncached) for _ in range(args.runs)]
    warm = [timed(render) for _ in range(args.runs)]
    most_queries = max([queries, *(n for _, n in cold)])
    median = statistics.median(elapsed for elapsed, _ in cold)
    print(f"GET /admin/ as a superuser: {most_queries} queries (budget < {QUERY_BUDGET})")
    print(f"  first render of the process: {first:.0f} ms")
    for name, runs in (("figures recomputed", cold), ("within the cache minute", warm)):
        times = [elapsed for elapsed, _ in runs]
        print(
            f"  {name:<24} median {statistics.median(times):4.0f} ms, min {min(times):4.0f} ms, "
            f"max {max(times):4.0f} ms, {runs[0][1]} queries ({len(runs)} renders)"
        )
    print(f"  target: median < {TIME_TARGET_MS:.0f} ms with the figures recomputed")

    now = timezone.now()
    today = timezone.localdate(now)
    days = [today - timedelta(days=n) for n in range(dashboard.DAYS - 1, -1, -1)]

    def build_uncached() -> None:
        cache.clear()
        dashboard.dashboard_build(now=now, can_view=lambda perm: True)

    selectors: dict[str, Callable[[], Any]] = {
        "exercise_counts": lambda: exercises_dashboard.exercise_counts(target=5),
        "attempts_per_day": lambda: learning_dashboard.attempts_per_day(days=days),
        "payments_per_day": lambda: payments_dashboard.payments_per_day(days=days),
        "llm_usage_per_day": lambda: dashboard.llm_usage_per_day(days=days),
        "notifications_per_day": lambda: notifications_dashboard.notifications_per_day(days=days),
        "job_states": lambda: dashboard.job_states(registered=["refill_stock"]),
        "dashboard_build (all)": build_uncached,
    }
    print("  selectors (median of 3):")
    for name, selector in selectors.items():
        samples = [timed(selector) for _ in range(3)]
        elapsed = statistics.median(sample[0] for sample in samples)
        print(f"    {name:<24} {elapsed:7.1f} ms  {samples[0][1]} queries")
    ok = most_queries < QUERY_BUDGET and median < TIME_TARGET_MS
    print("result: " + ("OK" if ok else "OVER TARGET"))
    return ok


def main() -> None:
    args = parse_args()
    if not database_exists(args.database_url):
        print(f"no bench database at {args.database_url}: create it with bench/api.py first")
        sys.exit(2)
    setup_django(args)
    migrate_if_needed()

    from django.db import transaction

    with transaction.atomic():
        ok = measure(args)
        transaction.set_rollback(True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
