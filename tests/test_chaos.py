"""Chaos: Redis, the broker and the database fail under the API, and the API never answers 5xx.

The tests start and kill their own servers (tests/fakes/servers.py): a `redis-server` on a free
port for the cache or the broker, and a TCP black hole for a database that hangs. The time bounds
below are correctness bounds (a request must not wait for an outage), not benchmarks.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from duoniche.job_runs import job_run
from learning.models import ExerciseAttempt, ReportStatus, WeeklyReport
from tests.exercises.factories import ExerciseFactory
from tests.fakes.servers import RedisServer, black_hole, free_port, redis_server
from tests.learning.factories import BotProfileFactory, WeeklyReportFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
ROOT = Path(__file__).resolve().parent.parent


def redis_cache_settings(url: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "duoniche.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "chaos",
        }
    }


@dataclass
class Outcome:
    name: str
    status: int
    content_type: str
    seconds: float


class Traffic:
    """One valid request to every bot API endpoint (and the service endpoints), as a bot sends."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.profile = BotProfileFactory(bot_id="Bulgarian", user_language="en")
        self.user = self.profile.user
        self.exercise = ExerciseFactory(
            data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една", "един"]},
        )
        self.report = WeeklyReportFactory(user=self.user, bot_id="Bulgarian")
        self.charges = itertools.count(1)
        self.telegram_ids = itertools.count(900_000)
        self.reopen_report = False

    def _json(self, method: str, path: str, body: dict[str, Any]) -> Any:
        call = getattr(self.client, method)
        return call(path, json.dumps(body), content_type="application/json", **AUTH)

    def requests(self) -> list[tuple[str, Callable[[], Any]]]:
        user_id, bot = self.user.pk, "Bulgarian"
        base = f"/api/v1/users/{user_id}/bots/{bot}"
        exercise_id = self.exercise.pk
        known = {"exercise_type": "fill_in_the_blank", "words": ["едно"]}
        new = {"exercise_type": "fill_in_the_blank", "words": ["една"]}
        return [
            (
                "ensure user (new)",
                lambda: self._json(
                    "put",
                    "/api/v1/users/",
                    {
                        "telegram_id": str(next(self.telegram_ids)),
                        "username": "chaos",
                        "name": "Chaos",
                        "user_language": "en",
                        "target_language": bot,
                    },
                ),
            ),
            (
                "user by telegram id",
                lambda: self.client.get(
                    f"/api/v1/users/by-telegram-id/{self.user.telegram_id}", **AUTH
                ),
            ),
            (
                "update user",
                lambda: self._json(
                    "put",
                    f"/api/v1/users/{user_id}",
                    {
                        "user_id": user_id,
                        "telegram_id": self.user.telegram_id,
                        "username": "chaos",
                        "name": "Chaos",
                        "user_language": "en",
                        "target_language": bot,
                    },
                ),
            ),
            (
                "session reminders",
                lambda: self._json(
                    "put", f"{base}/preferences/session_reminders", {"wants_reminders": True}
                ),
            ),
            ("preferences", lambda: self._json("put", f"{base}/preferences", {"alphabet": None})),
            ("next-action", lambda: self.client.get(f"{base}/next-action/", **AUTH)),
            (
                "legacy next-action",
                lambda: self.client.get(f"/api/v1/users/{user_id}/next_action/", **AUTH),
            ),
            (
                "validate (known answer)",
                lambda: self._json(
                    "post",
                    f"/api/v1/exercises/{exercise_id}/validate/",
                    {"user_id": user_id, "answer": known},
                ),
            ),
            (
                "validate (new answer)",
                lambda: self._json(
                    "post",
                    f"/api/v1/exercises/{exercise_id}/validate/",
                    {"user_id": user_id, "answer": new},
                ),
            ),
            (
                "legacy validate",
                lambda: self._json(
                    "post",
                    "/api/v1/exercises/validate/",
                    {"user_id": user_id, "exercise_id": exercise_id, "answer": new},
                ),
            ),
            ("latest-detailed", lambda: self._latest_detailed(f"{base}/reports/latest-detailed")),
            ("payment", self._pay),
            (
                "relevance",
                lambda: self.client.get(
                    f"/api/v1/notifications/chaos-task/relevance?bot_id={bot}&user_id={user_id}",
                    **AUTH,
                ),
            ),
            (
                "block",
                lambda: self._json(
                    "post", f"{base}/block", {"telegram_id": self.user.telegram_id, "reason": "x"}
                ),
            ),
            ("healthz", lambda: self.client.get("/healthz")),
            ("metrics", lambda: self.client.get("/metrics")),
        ]

    def _latest_detailed(self, path: str) -> Any:
        if self.reopen_report:  # a report the bot may request again: the request must publish
            WeeklyReport.objects.filter(pk=self.report.pk).update(status=ReportStatus.FAILED)
        return self.client.get(path, **AUTH)

    def _pay(self) -> Any:
        invoice = self.client.get(
            f"/api/v1/payments/invoice-details/session_unlock/users/{self.user.pk}/bots/Bulgarian",
            **AUTH,
        )
        if invoice.status_code != 200:
            return invoice
        return self._json(
            "post",
            "/api/v1/payments/process",
            {
                "telegram_payment_charge_id": f"chaos-{next(self.charges)}",
                "amount": 20,
                "invoice_payload": invoice.json()["invoice_payload"],
                "currency": "XTR",
            },
        )

    def round(self) -> list[Outcome]:
        outcomes = []
        for name, send in self.requests():
            started = time.monotonic()
            response = send()
            outcomes.append(
                Outcome(
                    name,
                    response.status_code,
                    response.get("Content-Type", ""),
                    time.monotonic() - started,
                )
            )
        return outcomes


def server_errors(outcomes: list[Outcome]) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome.status >= 500]


def validate_new_answer(traffic: Traffic) -> int:
    response = traffic._json(
        "post",
        f"/api/v1/exercises/{traffic.exercise.pk}/validate/",
        {
            "user_id": traffic.user.pk,
            "answer": {"exercise_type": "fill_in_the_blank", "words": ["един"]},
        },
    )
    return int(response.status_code)


def attempts(traffic: Traffic) -> int:
    return ExerciseAttempt.objects.filter(user=traffic.user).count()


# --- Redis --------------------------------------------------------------------------------------


@pytest.fixture
def own_redis(settings) -> Iterator[RedisServer]:
    with redis_server() as server:
        settings.CACHES = redis_cache_settings(server.url)
        yield server


def test_redis_killed_mid_traffic_no_endpoint_answers_5xx_and_the_cache_comes_back(
    client, own_redis
):
    traffic = Traffic(client)
    before = traffic.round()
    assert server_errors(before) == []
    assert cache.get("chaos-probe", "absent") == "absent"

    own_redis.stop()
    started = time.monotonic()
    during = traffic.round() + traffic.round()
    outage_seconds = time.monotonic() - started

    assert server_errors(during) == [], server_errors(during)
    # The duplicate-submission window and the verdict lock are skipped, not waited for.
    assert outage_seconds < 10, [(o.name, round(o.seconds, 2)) for o in during]

    own_redis.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        cache.set("chaos-probe", "back", 30)
        if cache.get("chaos-probe") == "back":
            break
        time.sleep(0.2)
    assert cache.get("chaos-probe") == "back"

    after = traffic.round()
    assert server_errors(after) == []
    # The duplicate window works again: an identical submission is answered from it.
    recorded = attempts(traffic)
    assert validate_new_answer(traffic) == 200
    assert validate_new_answer(traffic) == 200
    assert attempts(traffic) == recorded + 1


def test_redis_as_cache_and_broker_killed_no_endpoint_answers_5xx_and_nothing_is_stuck(
    client, own_redis, broker_on
):
    """Production shape: one Redis is the cache and the broker. While it is down, every endpoint
    answers as without a cache, and latest-detailed on a report to generate answers GENERATING:
    the report waits for the sweep, which queues its job once Redis is back."""
    broker_on(own_redis.url)
    traffic = Traffic(client)
    traffic.reopen_report = True
    assert server_errors(traffic.round()) == []

    own_redis.stop()  # a crash: whatever was queued before is gone with it
    during = traffic.round()

    assert server_errors(during) == [], [(o.name, o.status) for o in server_errors(during)]
    assert report_waiting(traffic.report)

    own_redis.start()
    time.sleep(1.1)  # REDIS_OUTAGE_RETRY_SECONDS: the cache tries Redis again
    traffic.reopen_report = False  # the bot only asks for its status now
    sweep = job_run("report_generation_sweep", force=True)
    after = traffic.round()

    assert sweep.stats["queued"] == 1
    assert server_errors(after) == []
    assert WeeklyReport.objects.get(pk=traffic.report.pk).status == ReportStatus.GENERATING
    assert not report_waiting(traffic.report)
    assert queued_report_ids(own_redis.port) == [traffic.report.pk]  # queued once Redis is back


def test_a_black_holed_redis_does_not_hang_requests(client, settings):
    with black_hole() as port:
        settings.CACHES = redis_cache_settings(f"redis://127.0.0.1:{port}/0")
        traffic = Traffic(client)
        started = time.monotonic()
        outcomes = traffic.round()
        elapsed = time.monotonic() - started

    assert server_errors(outcomes) == []
    assert elapsed < 10, [(o.name, round(o.seconds, 2)) for o in outcomes]


# --- the broker ---------------------------------------------------------------------------------


@pytest.fixture
def broker_on(settings) -> Iterator[Callable[[str], None]]:
    """Publish to a real broker instead of running tasks eagerly; the test picks the broker URL.

    The Celery app reads its configuration once; the `CELERY_*` keys set on `app.conf` win over
    the Django settings (as duoniche/celery.py does), and the producer pool is rebuilt for the URL.
    """
    from duoniche.celery import app

    keys = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL")
    saved = {key: app.conf.get(key) for key in keys}

    def use(url: str) -> None:
        app.conf["CELERY_TASK_ALWAYS_EAGER"] = False
        app.conf["CELERY_BROKER_URL"] = url
        settings.CELERY_TASK_ALWAYS_EAGER = False
        _reset_producer_pool(app)

    yield use
    for key, value in saved.items():
        app.conf[key] = value
    _reset_producer_pool(app)


def _reset_producer_pool(app: Any) -> None:
    """Forget the app's connection and producer pools, so the next publish uses the new URL."""
    app._pool = None
    app.amqp._producer_pool = None


def report_row(report: WeeklyReport) -> tuple[str, Any]:
    return WeeklyReport.objects.values_list("status", "status_changed_at").get(pk=report.pk)


def report_waiting(report: WeeklyReport) -> bool:
    """GENERATING with its job not known to be queued (the sweep's work)."""
    row = WeeklyReport.objects.values("status", "generation_queued_at").get(pk=report.pk)
    return row["status"] == ReportStatus.GENERATING and row["generation_queued_at"] is None


def queued_report_ids(port: int) -> list[int]:
    """The report ids of the generation jobs waiting in the broker's default queue, oldest first."""
    import redis

    connection = redis.Redis(host="127.0.0.1", port=port)
    try:
        raw = connection.lrange("duoniche", 0, -1)
    finally:
        connection.close()
    ids = []
    for item in reversed(raw):  # kombu pushes on the left
        message = json.loads(item)
        assert message["headers"]["task"] == "learning.generate_detailed_report"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(int(args[0]))
    return ids


def test_broker_down_latest_detailed_answers_generating_and_the_sweep_queues_it_once(
    client, broker_on
):
    profile = BotProfileFactory(bot_id="Bulgarian")
    report = WeeklyReportFactory(user=profile.user, bot_id="Bulgarian")
    path = f"/api/v1/users/{profile.user_id}/bots/Bulgarian/reports/latest-detailed"
    assert report_row(report)[0] == ReportStatus.PENDING

    broker = RedisServer()  # not started yet: the broker is down
    try:
        broker_on(broker.url)
        started = time.monotonic()
        response = client.get(path, **AUTH)
        elapsed = time.monotonic() - started

        assert response.status_code == 200
        assert response.json() == {"current_report_status": "GENERATING"}
        assert report_waiting(report)  # recorded with the transition: nothing lost
        assert elapsed < 5  # a web worker never hangs on the broker
        # The sweep while the broker is still down queues nothing and loses nothing.
        assert job_run("report_generation_sweep", force=True).stats["queued"] == 0
        assert report_waiting(report)

        broker.start()
        response = client.get(path, **AUTH)  # asking again does not queue a second job
        assert response.json() == {"current_report_status": "GENERATING"}
        assert queued_report_ids(broker.port) == []

        first = job_run("report_generation_sweep", force=True)
        second = job_run("report_generation_sweep", force=True)

        assert (first.outcome, first.stats["queued"]) == ("succeeded", 1)
        assert (second.outcome, second.stats["queued"]) == ("succeeded", 0)
        assert queued_report_ids(broker.port) == [report.pk]
        assert not report_waiting(report)
        assert report_row(report)[0] == ReportStatus.GENERATING
    finally:
        broker.cleanup()


def test_a_healthy_broker_gets_the_job_from_the_request_and_the_sweep_adds_none(client, broker_on):
    profile = BotProfileFactory(bot_id="Bulgarian")
    report = WeeklyReportFactory(user=profile.user, bot_id="Bulgarian")
    with redis_server() as broker:
        broker_on(broker.url)
        response = client.get(
            f"/api/v1/users/{profile.user_id}/bots/Bulgarian/reports/latest-detailed", **AUTH
        )

        assert response.json() == {"current_report_status": "GENERATING"}
        assert queued_report_ids(broker.port) == [report.pk]
        assert not report_waiting(report)

        assert job_run("report_generation_sweep", force=True).stats["queued"] == 0
        assert queued_report_ids(broker.port) == [report.pk]


def test_a_report_published_by_the_request_and_by_the_sweep_is_generated_once(client, broker_on):
    """The request's process dies between its publish and its mark: the sweep publishes the job
    again. Both messages are delivered; the report is written by one of them."""
    from learning.tasks import generate_detailed_report

    profile = BotProfileFactory(bot_id="Bulgarian")
    report = WeeklyReportFactory(user=profile.user, bot_id="Bulgarian")
    with redis_server() as broker:
        broker_on(broker.url)
        client.get(
            f"/api/v1/users/{profile.user_id}/bots/Bulgarian/reports/latest-detailed", **AUTH
        )
        WeeklyReport.objects.filter(pk=report.pk).update(generation_queued_at=None)  # the crash
        assert job_run("report_generation_sweep", force=True).stats["queued"] == 1
        messages = queued_report_ids(broker.port)

    assert messages == [report.pk, report.pk]
    for report_id in messages:  # what the worker does with each delivery
        generate_detailed_report.apply(args=(report_id,))
    report.refresh_from_db()
    assert (report.status, report.generation_attempts) == (ReportStatus.GENERATED, 1)


def test_a_black_holed_broker_answers_latest_detailed_fast_and_the_report_waits(client, broker_on):
    profile = BotProfileFactory(bot_id="Bulgarian")
    report = WeeklyReportFactory(user=profile.user, bot_id="Bulgarian")
    with black_hole() as port:
        broker_on(f"redis://127.0.0.1:{port}/0")
        started = time.monotonic()
        response = client.get(
            f"/api/v1/users/{profile.user_id}/bots/Bulgarian/reports/latest-detailed", **AUTH
        )
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json() == {"current_report_status": "GENERATING"}
    assert report_waiting(report)
    assert elapsed < 10


# --- the database -------------------------------------------------------------------------------


@contextmanager
def gunicorn_against(database_url: str, log: Path | None = None, **extra: str) -> Iterator[str]:
    """A real gunicorn (one sync worker, production settings) whose database is `database_url`;
    with `log`, its access lines and Django's log records (JSON, one per line) go to that file."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        "TEST_DATABASE_URL": database_url,  # settings_test makes it DATABASE_URL
        "DATABASE_CONN_MAX_AGE": "0",
        "SENTRY_DSN": "",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    output = log.open("ab") if log else subprocess.DEVNULL
    if log:
        env["DJANGO_LOG_FORMAT"] = "json"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "duoniche.wsgi:application",
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30"),
            *(("--access-logfile", "-", "--log-level", "warning") if log else ()),
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:  # an unknown API path answers without the database
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nothing", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait(timeout=5)
        if log:
            output.close()


def timed_get(url: str, **headers: str) -> tuple[int, str, bytes, float]:
    """(status, content type, body, seconds); gives up after 6 s (a hang fails the test)."""
    request = urllib.request.Request(url, headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=6) as response:
            status, content_type, body = response.status, response.headers["Content-Type"], b""
            body = response.read()
    except urllib.error.HTTPError as error:
        status, content_type, body = error.code, error.headers["Content-Type"], error.read()
    return status, content_type, body, time.monotonic() - started


@pytest.mark.django_db(False)
def test_a_black_holed_database_gives_json_503_fast_from_a_real_server():
    with black_hole() as port, gunicorn_against(f"postgres://postgres@127.0.0.1:{port}/x") as base:
        status, content_type, body, seconds = timed_get(f"{base}/healthz")

        assert status == 503
        assert content_type.startswith("application/json")
        assert json.loads(body)["code"] == "service_unavailable"
        assert seconds < 3  # correctness bound: the orchestrator's probe must get an answer

        status, content_type, body, seconds = timed_get(
            f"{base}/api/v1/users/by-telegram-id/1", Authorization="Bearer test-token"
        )

        assert status == 503
        assert content_type.startswith("application/json")
        assert json.loads(body)["code"] == "service_unavailable"
        assert seconds < 3


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_fails_one_request_then_is_replaced():
    # No health check before each request (DATABASE_CONN_HEALTH_CHECKS=false): the dead
    # connection is found by the query that fails, answered as JSON, and closed.
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with gunicorn_against(url, DATABASE_CONN_MAX_AGE="600") as base:
        assert timed_get(f"{base}/healthz")[0] == 200  # the worker now holds a connection
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        failed = timed_get(f"{base}/healthz")
        recovered = [timed_get(f"{base}/healthz")[0] for _ in range(3)]

    assert failed[0] == 503
    assert json.loads(failed[2])["code"] == "service_unavailable"
    assert recovered == [200, 200, 200]


@pytest.mark.django_db(transaction=True)
def test_each_bot_request_logs_one_access_line_and_an_outage_one_record_with_its_cause(tmp_path):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    log = tmp_path / "server.log"
    path = "/api/v1/users/by-telegram-id/404404404"
    with gunicorn_against(url, log=log, DATABASE_CONN_MAX_AGE="600") as base:
        start = log.stat().st_size
        assert timed_get(f"{base}{path}", Authorization="Bearer test-token")[0] == 404
        time.sleep(0.2)  # the access line is written after the response
        missing = log.read_bytes()[start:].decode().splitlines()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        start = log.stat().st_size
        assert timed_get(f"{base}{path}", Authorization="Bearer test-token")[0] == 503
        time.sleep(0.2)
        outage = log.read_bytes()[start:].decode().splitlines()

    # A 404 (routine for a bot): the access line and nothing else.
    assert len(missing) == 1, missing
    assert f'"GET {path} HTTP/1.1" 404' in missing[0]
    # The dropped connection: one record naming the cause, then the access line.
    records = [json.loads(line) for line in outage if line.startswith("{")]
    access = [line for line in outage if not line.startswith("{")]
    assert len(access) == 1, outage
    assert f'"GET {path} HTTP/1.1" 503' in access[0]
    assert len(records) == 1, records
    assert records[0]["level"] == "WARNING"
    assert "OperationalError" in records[0]["message"]
