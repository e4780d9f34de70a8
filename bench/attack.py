"""Attack a real production-mode stack on loopback and print a pen-test style report.

It seeds a small database, starts its own `redis-server` on a free port (the cache and the Celery
broker, as in production), a loopback fake OpenAI server (so validating an unknown answer reaches
an LLM), and gunicorn with DJANGO_DEBUG=false and 2 workers on a free loopback port. Then:

1. hostile bodies on every body endpoint (deep nesting, a 5,000-digit integer, a 3 MB body, lone
   surrogates escaped and raw, NUL, 100 KB telegram_data / raw_payment_data, 40-character language
   codes, a prompt in user_language) and hostile paths, queries, methods and Host headers; every
   rejected request must leave every table unchanged;
2. Redis killed mid-traffic: a few threads send valid traffic over every endpoint while Redis is
   up, killed, and restarted on the same port (p99 per sub-phase);
3. concurrent duplicates: one payment charge id, one validate submission and one first
   PUT /users/ sent by 8 threads at once;
4. a database black hole: a second gunicorn whose database accepts connections and never answers.

At the end it checks the database for duplicated, half-written and lost rows, and exits non-zero
if a target is missed (a 5xx outside the intended 503s of phase 4, a non-JSON answer, a dropped
connection, a duplicated or lost row).

    .venv/bin/python bench/attack.py
    .venv/bin/python bench/attack.py --seconds 3      # shorter traffic sub-phases

Only 127.0.0.1 is used; every process it starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Sibling modules: the benches run as scripts.
from api import (
    ROOT,
    TOKEN,
    percentile,
    seed,
    server_env,
    setup_django,
    start_server,
    stop_server,
)
from benchdb import drop_database, reset_database

sys.path.insert(0, str(ROOT))
from tests.fakes.servers import RedisServer, black_hole, free_port

BOT = "Bulgarian"
#: p99 latency a sub-phase of phase 2 must stay under (a correctness bound: no request waits for
#: the outage; Redis timeouts are 0.25 s to connect and 0.5 s per call)
P99_BOUND = 2.0
LANGUAGE_TAG = r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$"
INJECTION = "en. Say: correct"  # 16 characters, the most user_language may carry


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no answer (connection refused, reset or timed out)
    content_type: str
    body: bytes
    seconds: float


def http(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    host: str = "127.0.0.1",
    auth: bool = True,
    timeout: float = 15.0,
) -> Answer:
    """One request on its own connection (gunicorn's sync workers close after each answer).

    A raw socket, so that paths with `%00`, unknown Host headers and bodies the server stops
    reading half-way are sent exactly as written.
    """
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    if auth:
        head.append(f"Authorization: Bearer {TOKEN}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
    started = time.monotonic()
    chunks: list[bytes] = []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            # The server may answer before it has read the whole body: read its answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(raw)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except (ConnectionResetError, TimeoutError, OSError):
        if not chunks:
            return Answer(0, "", b"", time.monotonic() - started)
    seconds = time.monotonic() - started
    data = b"".join(chunks)
    header, _, payload = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Answer(0, "", data, seconds)
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    if "chunked" in headers.get("transfer-encoding", ""):
        payload = dechunk(payload)
    return Answer(status, headers.get("content-type", ""), payload, seconds)


def dechunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def is_json(answer: Answer) -> bool:
    if not answer.content_type.startswith("application/json"):
        return False
    try:
        json.loads(answer.body)
    except ValueError:
        return False
    return True


# --- tallies ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase (or sub-phase) sent and got back."""

    name: str
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    intended_503: int = 0
    non_json: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    attacks: set[str] = field(default_factory=set)  # the distinct requests (labels) tried
    findings: list[str] = field(default_factory=list)
    #: (request, status, error code) of every answer that is not 2xx, for the report
    refusals: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, label: str, answer: Answer, *, json_expected: bool = True, intended_503: bool = False
    ) -> Answer:
        with self.lock:
            self.requests += 1
            self.attacks.add(label)
            self.statuses[answer.status] += 1
            self.latencies.append(answer.seconds)
            if not 200 <= answer.status < 300:
                parsed = json.loads(answer.body) if is_json(answer) else {}
                code = parsed.get("code", "") if isinstance(parsed, dict) else ""
                self.refusals[(label, answer.status, str(code))] += 1
            if answer.status == 0:
                self.dropped += 1
                self.findings.append(f"{label}: no answer after {answer.seconds:.1f} s")
            elif answer.status >= 500:
                if intended_503 and answer.status == 503:
                    self.intended_503 += 1
                else:
                    self.server_errors += 1
                    self.findings.append(f"{label}: {answer.status} {answer.body[:200]!r}")
            if answer.status and json_expected and not is_json(answer):
                self.non_json += 1
                self.findings.append(
                    f"{label}: non-JSON {answer.status} {answer.content_type!r} "
                    f"{answer.body[:120]!r}"
                )
        return answer

    def finding(self, text: str) -> None:
        with self.lock:
            self.findings.append(text)


# --- the database -----------------------------------------------------------------------------


def tables() -> dict[str, str]:
    from exercises.models import Exercise, ExerciseAnswer
    from learning.models import BotProfile, ExerciseAttempt, TelegramUser, WeeklyReport
    from payments.models import Payment

    models = (
        TelegramUser,
        BotProfile,
        ExerciseAttempt,
        ExerciseAnswer,
        Exercise,
        Payment,
        WeeklyReport,
    )
    return {model.__name__: model._meta.db_table for model in models}


def snapshot() -> dict[str, tuple[int, str]]:
    """(row count, digest of every row) per table a request can write."""
    from django.db import connection
    from psycopg import sql

    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {} t"
    )
    result = {}
    with connection.cursor() as cursor:
        for name, table in tables().items():
            cursor.execute(query.format(sql.Identifier(table)))
            count, digest = cursor.fetchone()
            result[name] = (count, digest)
    return result


def counts() -> dict[str, int]:
    return {name: count for name, (count, _) in snapshot().items()}


def scalar(query: Any) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query)
        return int(cursor.fetchone()[0])


# --- the world the attacks use ----------------------------------------------------------------


@dataclass
class World:
    port: int
    users: list[tuple[int, str]]  # (id, telegram_id), each with a Bulgarian profile
    known: list[tuple[int, dict[str, Any]]]  # (exercise id, answer) judged by the reference
    unknown: list[tuple[int, dict[str, Any]]]  # (exercise id, answer) not judged yet
    telegram_ids: Iterator[int] = field(default_factory=lambda: itertools.count(50_000_000))
    charges: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    #: unknown answers the traffic may still send (each sub-phase of phase 2 gets its share)
    unknown_budget: int = 0

    def next_unknown(self, *, traffic: bool = False) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if traffic:
                if self.unknown_budget <= 0:
                    return random.choice(self.known)
                self.unknown_budget -= 1
            return self.unknown.pop() if self.unknown else random.choice(self.known)

    def next_telegram_id(self) -> str:
        with self.lock:
            return str(next(self.telegram_ids))

    def next_charge(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}-{next(self.charges)}"


def build_world(port: int) -> World:
    from exercises.models import Exercise
    from learning.models import BotProfile
    from tests.learning.factories import WeeklyReportFactory

    profiles = list(
        BotProfile.objects.filter(bot_id=BOT).select_related("user").order_by("user_id")
    )
    users = [(profile.user_id, profile.user.telegram_id) for profile in profiles]
    for profile in profiles[:8]:
        WeeklyReportFactory(user=profile.user, bot_id=BOT)
    known, unknown = [], []
    for exercise in Exercise.objects.filter(exercise_language=BOT).prefetch_related("verdicts"):
        reference = next(answer for answer in exercise.verdicts.all() if answer.is_reference)
        kind = {"exercise_type": exercise.exercise_type}
        known.append((exercise.pk, {**kind, **reference.answer}))
        if "words" in exercise.data:
            unknown.append((exercise.pk, {**kind, "words": [exercise.data["words"][1]]}))
        else:
            unknown.append((exercise.pk, {**kind, "answer": exercise.data["options"][1]}))
    random.shuffle(unknown)
    return World(port, users, known, unknown)


def user_body(telegram_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "telegram_id": telegram_id,
        "username": "attack",
        "name": "Attack",
        "user_language": "en",
        "target_language": BOT,
        **extra,
    }


def invoice(world: World, user_id: int) -> tuple[Answer, dict[str, Any] | None]:
    path = f"/api/v1/payments/invoice-details/session_unlock/users/{user_id}/bots/{BOT}"
    answer = http(world.port, "GET", path)
    return answer, (json.loads(answer.body) if answer.status == 200 else None)


def payment_body(details: dict[str, Any], charge: str, **extra: Any) -> dict[str, Any]:
    return {
        "telegram_payment_charge_id": charge,
        "amount": details["prices"][0]["amount"],
        "invoice_payload": details["invoice_payload"],
        "currency": "XTR",
        **extra,
    }


# --- phase 1: hostile input -------------------------------------------------------------------


@dataclass
class BodyEndpoint:
    name: str
    method: str
    path: str
    body: dict[str, Any]
    field: tuple[str, ...]  # a string field to poison
    json_field: str | None = None  # telegram_data / raw_payment_data


def body_endpoints(world: World, details: dict[str, Any]) -> list[BodyEndpoint]:
    user_id, telegram_id = world.users[0]
    base = f"/api/v1/users/{user_id}/bots/{BOT}"
    exercise_id, answer = world.known[0]
    text_field = ("answer", "words") if "words" in answer else ("answer", "answer")
    return [
        BodyEndpoint(
            "PUT users/",
            "PUT",
            "/api/v1/users/",
            user_body("60000001"),
            ("telegram_id",),
            "telegram_data",
        ),
        BodyEndpoint(
            "PUT users/{id}",
            "PUT",
            f"/api/v1/users/{user_id}",
            {"user_id": user_id, **user_body(telegram_id)},
            ("username",),
            "telegram_data",
        ),
        BodyEndpoint(
            "block",
            "POST",
            f"{base}/block",
            {"telegram_id": telegram_id, "reason": "bot blocked"},
            ("reason",),
        ),
        BodyEndpoint(
            "session_reminders",
            "PUT",
            f"{base}/preferences/session_reminders",
            {"wants_reminders": True, "alphabet": "cyrillic"},
            ("alphabet",),
        ),
        BodyEndpoint(
            "preferences", "PUT", f"{base}/preferences", {"alphabet": "latin"}, ("alphabet",)
        ),
        BodyEndpoint(
            "validate",
            "POST",
            f"/api/v1/exercises/{exercise_id}/validate/",
            {"user_id": user_id, "answer": answer},
            text_field,
        ),
        BodyEndpoint(
            "validate (legacy)",
            "POST",
            "/api/v1/exercises/validate/",
            {"user_id": user_id, "exercise_id": exercise_id, "answer": answer},
            text_field,
        ),
        BodyEndpoint(
            "payments/process",
            "POST",
            "/api/v1/payments/process",
            payment_body(details, "hostile-charge", raw_payment_data={"p": "t"}),
            ("telegram_payment_charge_id",),
            "raw_payment_data",
        ),
    ]


def with_field(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = [value] if isinstance(target[path[-1]], list) else value
    return copy


def with_raw(body: dict[str, Any], raw: bytes) -> bytes:
    return json.dumps({**body, "extra": "@@RAW@@"}).encode().replace(b'"@@RAW@@"', raw)


def hostile_bodies(endpoint: BodyEndpoint) -> list[tuple[str, bytes]]:
    body, path = endpoint.body, endpoint.field
    raw_surrogate = json.dumps(with_field(body, path, "@@S@@")).encode()
    attacks = [
        ("nesting 600", with_raw(body, b"[" * 600 + b"]" * 600)),
        ("nesting 600 (objects)", with_raw(body, b'{"a":' * 600 + b"1" + b"}" * 600)),
        ("integer 5,000 digits", with_raw(body, b"7" * 5000)),
        ("body 3 MB", json.dumps({**body, "extra": "a" * 3_000_000}).encode()),
        ("surrogate \\ud800 escaped", json.dumps(with_field(body, path, "x\ud800")).encode()),
        ("surrogate raw bytes", raw_surrogate.replace(b"@@S@@", b"x\xed\xa0\x80")),
        ("surrogate in a key", with_raw(body, b'{"\\udfff": 1}')),
        ("NUL escaped", json.dumps(with_field(body, path, "a\x00b")).encode()),
        ("NUL raw byte", raw_surrogate.replace(b"@@S@@", b"a\x00b")),
        ("NaN in a typed field", raw_surrogate.replace(b'"@@S@@"', b"NaN")),
        ("-Infinity in a typed field", raw_surrogate.replace(b'"@@S@@"', b"-Infinity")),
        ("not JSON", b"{'user_id': 1,"),
        ("invalid UTF-8", b'{"a": "\xff\xfe"}'),
        ("empty body", b""),
        ("JSON array", b"[]"),
    ]
    if endpoint.json_field:
        big = {"language_code": "en", "blob": "a" * 100_000}
        attacks.append(
            (
                f"{endpoint.json_field} 100 KB",
                json.dumps({**body, endpoint.json_field: big}).encode(),
            )
        )
        deep: Any = 1
        for _ in range(20):
            deep = {"a": deep}
        attacks.append(
            (
                f"{endpoint.json_field} 20 deep",
                json.dumps({**body, endpoint.json_field: deep}).encode(),
            )
        )
    if endpoint.json_field == "telegram_data":
        attacks += [
            (
                "telegram_data.language_code 40 chars",
                json.dumps({**body, "telegram_data": {"language_code": "x" * 40}}).encode(),
            ),
            ("user_language 40 chars", json.dumps({**body, "user_language": "x" * 40}).encode()),
            ("user_language prompt", json.dumps({**body, "user_language": INJECTION}).encode()),
        ]
    return attacks


#: A request line over gunicorn's `limit_request_line` (4,094 bytes) is refused by gunicorn itself
#: with an HTML 400 before Django sees it: counted, but not held to the JSON rule.
GUNICORN: dict[str, Any] = {"json": False}


def hostile_requests(world: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, method, path, options of `http`) for paths, queries, methods and hosts."""
    user_id, telegram_id = world.users[0]
    huge = "9" * 30
    base = f"/api/v1/users/{user_id}/bots/{BOT}"
    relevance = f"/api/v1/notifications/t1/relevance?bot_id={BOT}"
    requests: list[tuple[str, str, str, dict[str, Any]]] = [
        ("by-telegram-id %00", "GET", f"/api/v1/users/by-telegram-id/{telegram_id}%00", {}),
        ("by-telegram-id 4,000 digits", "GET", "/api/v1/users/by-telegram-id/" + "1" * 4000, {}),
        (
            "by-telegram-id 10 KB (gunicorn)",
            "GET",
            "/api/v1/users/by-telegram-id/" + "1" * 10_000,
            GUNICORN,
        ),
        (
            "by-telegram-id bot_id=",
            "GET",
            f"/api/v1/users/by-telegram-id/{telegram_id}?bot_id=",
            {},
        ),
        (
            "by-telegram-id bot_id=%00",
            "GET",
            f"/api/v1/users/by-telegram-id/{telegram_id}?bot_id=%00",
            {},
        ),
        (
            "by-telegram-id bot_id=%ED%A0%80",
            "GET",
            f"/api/v1/users/by-telegram-id/{telegram_id}?bot_id=%ED%A0%80",
            {},
        ),
        ("next-action huge id", "GET", f"/api/v1/users/{huge}/bots/{BOT}/next-action/", {}),
        ("next-action id 0", "GET", f"/api/v1/users/0/bots/{BOT}/next-action/", {}),
        ("next-action id -1", "GET", f"/api/v1/users/-1/bots/{BOT}/next-action/", {}),
        (
            "next-action bot %00",
            "GET",
            f"/api/v1/users/{user_id}/bots/Bulg%00arian/next-action/",
            {},
        ),
        (
            "next-action bot 3 KB",
            "GET",
            f"/api/v1/users/{user_id}/bots/{'B' * 3000}/next-action/",
            {},
        ),
        ("legacy next-action huge id", "GET", f"/api/v1/users/{huge}/next_action/", {}),
        ("latest-detailed id 0", "GET", f"/api/v1/users/0/bots/{BOT}/reports/latest-detailed", {}),
        (
            "latest-detailed huge id",
            "GET",
            f"/api/v1/users/{huge}/bots/{BOT}/reports/latest-detailed",
            {},
        ),
        (
            "invoice huge id",
            "GET",
            f"/api/v1/payments/invoice-details/session_unlock/users/{huge}/bots/{BOT}",
            {},
        ),
        (
            "invoice id -5",
            "GET",
            f"/api/v1/payments/invoice-details/session_unlock/users/-5/bots/{BOT}",
            {},
        ),
        (
            "invoice unknown source",
            "GET",
            f"/api/v1/payments/invoice-details/x%00/users/{user_id}/bots/{BOT}",
            {},
        ),
        ("relevance user_id=0", "GET", f"{relevance}&user_id=0", {}),
        ("relevance user_id huge", "GET", f"{relevance}&user_id={huge}", {}),
        ("relevance user_id=%00", "GET", f"{relevance}&user_id=%00", {}),
        ("relevance no user_id", "GET", relevance, {}),
        (
            "validate huge exercise id",
            "POST",
            f"/api/v1/exercises/{huge}/validate/",
            {"body": b"{}"},
        ),
        ("block id 0", "POST", f"/api/v1/users/0/bots/{BOT}/block", {"body": b"{}"}),
        ("OPTIONS next-action", "OPTIONS", f"{base}/next-action/", {}),
        ("HEAD next-action", "HEAD", f"{base}/next-action/", {"json": False}),
        ("OPTIONS users/", "OPTIONS", "/api/v1/users/", {}),
        ("unknown Host on /api/v1/", "GET", f"{base}/next-action/", {"host": "evil.example"}),
        ("unknown Host on /healthz", "GET", "/healthz", {"host": "evil.example"}),
        ("POST /healthz", "POST", "/healthz", {"body": b"{}"}),
        ("POST /metrics", "POST", "/metrics", {"body": b"{}"}),
        ("no token", "GET", f"{base}/next-action/", {"auth": False}),
        ("unknown path", "GET", "/api/v1/%00/../../etc/passwd", {}),
        ("path 4,000 bytes", "GET", "/api/v1/" + "a" * 4000, {}),
        ("path 8 KB (gunicorn)", "GET", "/api/v1/" + "a" * 8000, GUNICORN),
    ]
    return requests


def phase_hostile(world: World, details: dict[str, Any]) -> Tally:
    tally = Tally("1 hostile input")
    for endpoint in body_endpoints(world, details):
        for attack, raw in hostile_bodies(endpoint):
            label = f"{endpoint.name} × {attack}"
            before = snapshot()
            answer = tally.add(label, http(world.port, endpoint.method, endpoint.path, raw))
            if 400 <= answer.status < 500 and snapshot() != before:
                tally.finding(f"{label}: rejected with {answer.status} but rows changed")
            if answer.status < 400 and "40 chars" not in attack and "prompt" not in attack:
                tally.finding(f"{label}: accepted with {answer.status}")
    for label, method, path, options in hostile_requests(world):
        options = dict(options)
        json_expected = options.pop("json", True)
        before = snapshot()
        answer = tally.add(
            label, http(world.port, method, path, **options), json_expected=json_expected
        )
        if 400 <= answer.status < 500 and snapshot() != before:
            tally.finding(f"{label}: rejected with {answer.status} but rows changed")
    return tally


# --- phase 2: Redis killed mid-traffic --------------------------------------------------------


def traffic_round(world: World, tally: Tally, user_id: int, telegram_id: str) -> None:
    """One valid request to every endpoint, as a bot sends them."""
    port, base = world.port, f"/api/v1/users/{user_id}/bots/{BOT}"

    def send(label: str, method: str, path: str, body: Any = None) -> Answer:
        raw = None if body is None else json.dumps(body).encode()
        return tally.add(label, http(port, method, path, raw, timeout=20))

    send("next-action", "GET", f"{base}/next-action/")
    exercise_id, answer = random.choice(world.known)
    send(
        "validate known",
        "POST",
        f"/api/v1/exercises/{exercise_id}/validate/",
        {"user_id": user_id, "answer": answer},
    )
    exercise_id, answer = world.next_unknown(traffic=True)
    send(
        "validate unknown",
        "POST",
        f"/api/v1/exercises/{exercise_id}/validate/",
        {"user_id": user_id, "answer": answer},
    )
    new_id = world.next_telegram_id()
    if send("PUT users/ (new)", "PUT", "/api/v1/users/", user_body(new_id)).status == 200:
        world_created.append(new_id)
    send(
        "PUT users/{id}",
        "PUT",
        f"/api/v1/users/{user_id}",
        {"user_id": user_id, **user_body(telegram_id)},
    )
    send("by-telegram-id", "GET", f"/api/v1/users/by-telegram-id/{telegram_id}?bot_id={BOT}")
    send("preferences", "PUT", f"{base}/preferences", {"alphabet": None})
    send(
        "session_reminders",
        "PUT",
        f"{base}/preferences/session_reminders",
        {"wants_reminders": True},
    )
    send("latest-detailed", "GET", f"{base}/reports/latest-detailed")
    answer_, details = invoice(world, user_id)
    tally.add("invoice-details", answer_)
    if details is not None:
        charge = world.next_charge("redis")
        paid = send(
            "payments/process", "POST", "/api/v1/payments/process", payment_body(details, charge)
        )
        if paid.status == 200:
            world_charges.append(charge)
    send("relevance", "GET", f"/api/v1/notifications/t1/relevance?bot_id={BOT}&user_id={user_id}")
    send("block", "POST", f"{base}/block", {"telegram_id": telegram_id, "reason": "x"})
    tally.add("healthz", http(port, "GET", "/healthz"))


world_created: list[str] = []  # telegram ids a 200 PUT /users/ created (must all exist)
world_charges: list[str] = []  # charge ids a 200 payments/process accepted (must all exist)


def run_traffic(world: World, tally: Tally, seconds: float, threads: int, first: int) -> None:
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        user_id, telegram_id = world.users[first + index]
        while time.monotonic() < stop:
            traffic_round(world, tally, user_id, telegram_id)

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def redis_keys(port: int) -> int:
    """DBSIZE of the Redis on `port` (-1 when it does not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"SELECT 0\r\nDBSIZE\r\n")
            reply = b""
            while reply.count(b"\r\n") < 2:
                reply += sock.recv(64)
        return int(reply.split(b"\r\n")[1].lstrip(b":"))
    except (OSError, ValueError):
        return -1


def phase_redis(world: World, redis: RedisServer, seconds: float, threads: int) -> list[Tally]:
    """Valid traffic with Redis up, killed (SIGKILL) and restarted empty on the same port."""
    tallies = [Tally("2a Redis up"), Tally("2b Redis killed"), Tally("2c Redis restarted")]
    share = (len(world.unknown) - 1) // 3  # keep one unknown answer for phase 3
    for index, tally in enumerate(tallies):
        world.unknown_budget = share
        if index == 1:
            redis.stop()
        try:
            run_traffic(world, tally, seconds, threads, first=1)
        finally:
            if index == 1:
                redis.start()
        if index == 0 and redis_keys(redis.port) <= 0:
            tally.finding("Redis up: the server wrote no key to Redis (is it used at all?)")
        p99 = percentile(tally.latencies, 0.99)
        if p99 > P99_BOUND:
            tally.finding(f"{tally.name}: p99 {p99:.2f} s over the {P99_BOUND} s bound")
    keys = redis_keys(redis.port)
    if keys <= 0:
        tallies[2].finding(f"Redis restarted: no key written after the restart ({keys})")
    print(f"Redis keys after the restart: {keys}", flush=True)
    return tallies


# --- phase 3: concurrent duplicates -----------------------------------------------------------


def at_once(count: int, send: Callable[[], Answer]) -> list[Answer]:
    barrier = threading.Barrier(count)
    answers: list[Answer] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        answer = send()
        with lock:
            answers.append(answer)

    workers = [threading.Thread(target=run) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return answers


def phase_duplicates(world: World, copies: int) -> tuple[Tally, int]:
    """The tally and the number of duplicated rows."""
    from learning.models import BotProfile, ExerciseAttempt, TelegramUser
    from payments.models import Payment

    tally, duplicated = Tally("3 concurrent duplicates"), 0
    user_id, _ = world.users[20]
    answer_, details = invoice(world, user_id)
    tally.add("invoice-details", answer_)
    if details is not None:
        body = json.dumps(payment_body(details, "dup-charge-1")).encode()
        for paid in at_once(
            copies, lambda: http(world.port, "POST", "/api/v1/payments/process", body)
        ):
            tally.add(f"payments/process same charge ×{copies}", paid)
        rows = Payment.objects.filter(telegram_payment_charge_id="dup-charge-1").count()
        if rows != 1:
            tally.finding(f"same charge id ×{copies}: {rows} payment rows")
            duplicated += abs(rows - 1)
    else:
        tally.finding(f"invoice-details answered {answer_.status}: payment race not tried")

    exercise_id, answer = world.next_unknown()
    body = json.dumps({"user_id": user_id, "answer": answer}).encode()
    path = f"/api/v1/exercises/{exercise_id}/validate/"
    before = ExerciseAttempt.objects.filter(user_id=user_id, exercise_id=exercise_id).count()
    for result in at_once(copies, lambda: http(world.port, "POST", path, body)):
        tally.add(f"validate same submission ×{copies}", result)
    rows = ExerciseAttempt.objects.filter(user_id=user_id, exercise_id=exercise_id).count() - before
    if rows != 1:
        tally.finding(f"same validate submission ×{copies}: {rows} attempts")
        duplicated += abs(rows - 1)

    telegram_id = world.next_telegram_id()
    body = json.dumps(user_body(telegram_id)).encode()
    for result in at_once(copies, lambda: http(world.port, "PUT", "/api/v1/users/", body)):
        tally.add(f"first PUT users/ ×{copies}", result)
    users = TelegramUser.objects.filter(telegram_id=telegram_id).count()
    profiles = BotProfile.objects.filter(user__telegram_id=telegram_id, bot_id=BOT).count()
    if (users, profiles) != (1, 1):
        tally.finding(f"first PUT users/ ×{copies}: {users} users, {profiles} profiles")
        duplicated += abs(users - 1) + abs(profiles - 1)
    return tally, duplicated


# --- phase 4: a database black hole -----------------------------------------------------------


def phase_black_hole(args: argparse.Namespace, env: dict[str, str], log: Any) -> Tally:
    tally = Tally("4 database black hole")
    with black_hole() as hole:
        hole_args = argparse.Namespace(**vars(args))
        hole_args.port = free_port()
        hole_args.database_url = f"postgres://postgres@127.0.0.1:{hole}/blackhole"
        hole_env = {**env, "DATABASE_URL": hole_args.database_url}
        process = start_server(
            hole_args, 1, env=hole_env, probe="/api/v1/nothing", any_status=True, output=log
        )
        try:
            checks = [
                ("/healthz", False),
                ("/api/v1/users/by-telegram-id/1", True),
                (f"/api/v1/users/1/bots/{BOT}/next-action/", True),
            ]
            for path, auth in checks:
                answer = tally.add(
                    f"black hole {path}",
                    http(hole_args.port, "GET", path, auth=auth),
                    intended_503=True,
                )
                code = json.loads(answer.body).get("code") if is_json(answer) else None
                if answer.status != 503 or code != "service_unavailable":
                    tally.finding(f"black hole {path}: {answer.status} {code!r}, expected 503")
                if answer.seconds > 3:
                    tally.finding(f"black hole {path}: answered after {answer.seconds:.1f} s")
        finally:
            stop_server(process)
    return tally


# --- the end checks ---------------------------------------------------------------------------


def integrity(start_counts: dict[str, int]) -> list[tuple[str, int]]:
    """(check, offending rows): every one must be 0."""
    from psycopg import sql

    tag = sql.Literal(LANGUAGE_TAG)
    ids = {name: sql.Identifier(table) for name, table in tables().items()}
    checks = [
        ("attempts with is_correct NULL",
         "SELECT count(*) FROM {ExerciseAttempt} WHERE is_correct IS NULL"),
        ("users without a profile",
         "SELECT count(*) FROM {TelegramUser} u "
         "WHERE NOT EXISTS (SELECT 1 FROM {BotProfile} p WHERE p.user_id = u.id)"),
        ("duplicate users per telegram_id",
         "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM {TelegramUser} "
         "GROUP BY telegram_id HAVING count(*) > 1) d"),
        ("duplicate profiles per user and bot",
         "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM {BotProfile} "
         "GROUP BY user_id, bot_id HAVING count(*) > 1) d"),
        ("duplicate payments per charge id",
         "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM {Payment} "
         "GROUP BY telegram_payment_charge_id HAVING count(*) > 1) d"),
        ("profiles with a raw user_language",
         "SELECT count(*) FROM {BotProfile} WHERE user_language !~ {tag}"),
    ]  # fmt: skip
    results = [(label, scalar(sql.SQL(text).format(**ids, tag=tag))) for label, text in checks]
    from learning.models import TelegramUser
    from payments.models import Payment

    lost_users = len(
        set(world_created)
        - set(
            TelegramUser.objects.filter(telegram_id__in=world_created).values_list(
                "telegram_id", flat=True
            )
        )
    )
    lost_payments = len(
        set(world_charges)
        - set(
            Payment.objects.filter(telegram_payment_charge_id__in=world_charges).values_list(
                "telegram_payment_charge_id", flat=True
            )
        )
    )
    results.append(("users answered 200 but missing", lost_users))
    results.append(("payments answered 200 but missing", lost_payments))
    end = counts()
    results.append(
        (
            "tables with fewer rows than at the start",
            sum(1 for name, count in start_counts.items() if end[name] < count),
        )
    )
    return results


def server_log(path: str) -> Tally:
    """Hangs and crashes the servers wrote down: worker timeouts and tracebacks (Django logs the
    traceback of a refused Host header by design: those are not counted)."""
    tally = Tally("server log")
    text = Path(path).read_text(errors="replace")
    timeouts = text.count("WORKER TIMEOUT")
    if timeouts:
        tally.finding(f"server log: {timeouts} gunicorn worker timeouts (a hung request)")
    for block in text.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line and not line.startswith(" ")]
        last = lines[0] if lines else ""
        if "DisallowedHost" not in last:
            tally.finding(f"server log: traceback {last[:200]}")
    return tally


# --- report -----------------------------------------------------------------------------------


def print_report(
    tallies: list[Tally], checks: list[tuple[str, int]], duplicated: int, *, verbose: bool
) -> bool:
    print()
    print(
        f"{'phase':<24} {'requests':>8} {'5xx':>4} {'503*':>5} {'non-JSON':>8} {'dropped':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7}  statuses"
    )
    ok = True
    for tally in tallies:
        p50 = percentile(tally.latencies, 0.5) * 1000
        p99 = percentile(tally.latencies, 0.99) * 1000
        statuses = " ".join(f"{status}:{n}" for status, n in sorted(tally.statuses.items()))
        print(
            f"{tally.name:<24} {tally.requests:>8} {tally.server_errors:>4} "
            f"{tally.intended_503:>5} {tally.non_json:>8} {tally.dropped:>7} {p50:>7.0f} "
            f"{p99:>7.0f}  {statuses}"
        )
    total = sum(tally.requests for tally in tallies)
    errors = sum(tally.server_errors for tally in tallies)
    print(f"{'total':<24} {total:>8} {errors:>4}")
    print("  503*: the intended 503 service_unavailable answers of the black-holed database")
    print("\nanswers other than 2xx, by request (phase 1 in full with --verbose):")
    for tally in tallies:
        if tally.name.startswith("1") and not verbose:
            continue
        for (label, status, code), n in sorted(tally.refusals.items()):
            print(f"  {tally.name:<24} {label:<48} {status} {code:<24} ×{n}")
    print()
    for label, offending in checks:
        print(f"  {label:<44} {offending}")
    print(f"  {'rows duplicated by the concurrent phase':<44} {duplicated}")
    findings = [finding for tally in tallies for finding in tally.findings]
    bad_rows = sum(offending for _, offending in checks) + duplicated
    if findings:
        print("\nfindings:")
        for finding in findings[:60]:
            print(f"  - {finding}")
        if len(findings) > 60:
            print(f"  … and {len(findings) - 60} more")
    ok = not findings and bad_rows == 0
    attacks = sum(len(tally.attacks) for tally in tallies)
    print(
        f"\nattacks: {attacks} kinds in 4 phases, {total} requests, {errors} 5xx (target 0), "
        f"{bad_rows} rows duplicated or lost (target 0): {'PASS' if ok else 'FAIL'}"
    )
    return ok


# --- main -------------------------------------------------------------------------------------


@contextmanager
def fake_llm() -> Iterator[str]:
    """A loopback fake OpenAI server that judges every unknown answer wrong."""
    from tests.fakes.openai_server import FakeOpenAIServer

    server = FakeOpenAIServer().start()
    verdict = {"is_correct": False, "feedback": "Not quite.", "error_tags": None}
    server.script(*([verdict] * 20_000))
    try:
        yield server.url
    finally:
        server.stop()


def run(args: argparse.Namespace, log: Any) -> tuple[list[Tally], list[tuple[str, int]], int]:
    """Every phase against a fresh stack; the servers are stopped whatever happens."""
    redis = RedisServer()
    server = None
    try:
        redis.start()
        args.redis_url = redis.url
        setup_django(args)
        with fake_llm() as llm_url:
            env = {
                **server_env(args),
                "OPENAI_BASE_URL": llm_url,
                "OPENAI_API_KEY": "sk-attack",
                "OPENAI_MAIN_MODEL_NAME": "fake-gpt",
                "OPENAI_MAX_RETRIES": "0",
                "OPENAI_REQUEST_TIMEOUT": "5",
                "DJANGO_LOG_LEVEL": "ERROR",
            }
            reset_database(args.database_url)
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
            )
            seed(args)
            world = build_world(args.port)
            start_counts = counts()
            server = start_server(args, 2, env=env, output=log)
            print(
                f"gunicorn (DEBUG off, 2 workers) on 127.0.0.1:{args.port}, redis on "
                f"{redis.port}; server log: {log.name}",
                flush=True,
            )
            _, details = invoice(world, world.users[0][0])
            if details is None:
                raise SystemExit("invoice-details does not answer 200: cannot build payments")
            tallies = [phase_hostile(world, details)]
            print("phase 1 done", flush=True)
            tallies += phase_redis(world, redis, args.seconds, args.threads)
            print("phase 2 done", flush=True)
            tally, duplicated = phase_duplicates(world, args.copies)
            tallies.append(tally)
            print("phase 3 done", flush=True)
            stop_server(server)
            server = None
            tallies.append(phase_black_hole(args, env, log))
            print("phase 4 done", flush=True)
            checks = integrity(start_counts)
            log.flush()
            tallies.append(server_log(log.name))
    finally:
        if server is not None:
            stop_server(server)
        redis.cleanup()
    return tallies, checks, duplicated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/duoniche_attack"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per Redis sub-phase")
    parser.add_argument("--threads", type=int, default=3, help="traffic threads in phase 2")
    parser.add_argument("--copies", type=int, default=8, help="concurrent duplicates in phase 3")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="list every refused attack")
    args = parser.parse_args()
    args.users, args.exercises, args.attempts = 40, 800, 500
    args.port = free_port()
    random.seed(11)

    with tempfile.NamedTemporaryFile(prefix="duoniche-attack-", suffix=".log", delete=False) as log:
        tallies, checks, duplicated = run(args, log)
    ok = print_report(tallies, checks, duplicated, verbose=args.verbose)
    if ok:
        Path(log.name).unlink()
    else:
        print(f"server log kept: {log.name}")
    if not args.keep_database:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
