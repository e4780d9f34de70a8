"""Benchmark of the bot API against a real stack: gunicorn, PostgreSQL and Redis on this machine.

It seeds a dedicated database (1,000 users with profiles, 20,000 published exercises in both
languages, 200,000 attempts), starts gunicorn with N workers, loads it with wrk (2 threads, a
fixed number of keep-alive connections, a fixed time per endpoint, `--rounds` rounds) and prints
the median requests/s with the rounds' range, p50 and p99 for:

- GET  /api/v1/                                   (`no-db`: the API index, no database; the
                                                   floor that no database change can move)
- GET  /healthz                                   (one SELECT 1)
- GET  /api/v1/users/{id}/bots/{bot}/next-action/  (serving an exercise)
- POST /api/v1/exercises/{id}/validate/            (a known answer: stored verdict)
- POST /api/v1/exercises/{id}/validate/            (`validate-first`: a learner's first answer
                                                   to the exercise, never the same pair twice)
- PUT  /api/v1/users/                              (an existing user)
- PUT  /api/v1/users/                              (`put-new-users`: a new telegram id each time)

Beside req/s it prints the SQL statements each kind sends per request, counted by Django on 40
sample requests made in this process before the load (BEGIN and COMMIT included: Django logs
them too); and, when the database has `pg_stat_statements` loaded (`shared_preload_libraries`),
the statements the server ran per request during each measured phase.

With `--compare DIR`, a second checkout (a `git worktree` of an earlier commit, same schema) is
served beside this one on the next port, and every endpoint is loaded on both in turn, round by
round, so that a before/after comparison sees the same machine state:

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/api.py --reuse --skip-large-bank --compare /tmp/before

Then it grows the bank to 200,000 exercises and measures next-action again, to show that
selection does not slow down with the bank.

    .venv/bin/python bench/api.py                      # workers 1 and 4, 32 clients, 10 s each
    .venv/bin/python bench/api.py --workers 4 --seconds 20 --clients 64

With `--history-attempts 20000000` the attempts table also holds 20 M attempts of 100,000 other
learners (set-based SQL), to compare the hot paths with a table a hundred times larger:

    .venv/bin/python bench/api.py --workers 1 --only next-action validate --skip-large-bank \\
        --history-attempts 20000000 --database-url postgres://postgres@127.0.0.1:5432/duoniche_bench20m

Only loopback addresses are used. Requests per phase are bounded by time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchdb import reset_database  # a sibling module: the benches run as scripts

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
TOPICS = [
    "general", "shopping", "travel", "food", "sports", "weather", "work", "health",
    "emergencies", "relationships", "tech", "education", "entertainment", "money", "home",
    "transport", "restaurant", "family", "pharmacy", "NATURE", "ANIMALS", "KIDS", "housing",
    "culture", "dating", "wine", "digital_life", "public_services",
]  # fmt: skip
LEVELS = ["A1", "A2", "A2", "A2", "B1", "B2"]
KINDS = [
    "no-db",
    "healthz",
    "next-action",
    "validate",
    "validate-first",
    "put-users",
    "put-new-users",
]


# --- seeding ----------------------------------------------------------------------------------


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        "API_TOKENS": TOKEN,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "PAYMENTS_PAYLOAD_SECRET": "bench",
    }


def exercise_data(exercise_type: str, language: str, n: int) -> tuple[dict[str, Any], dict]:
    word = f"дума{n}" if language == "Bulgarian" else f"reč{n}"
    if exercise_type == "fill_in_the_blank":
        words = [word, word + "а", word + "и"]
        return {"text_with_blanks": f"Текст ___ номер {n}.", "words": words}, {"words": [word]}
    if exercise_type == "choose_accent":
        options = [f"во\u0300да{n}", f"вода\u0300{n}"]
        return {"options": options, "meaning": "значение"}, {"answer": options[0]}
    options = [f"{word} първо.", f"{word} второ.", f"{word} трето."]
    if exercise_type == "story_comprehension":
        data = {"content_text": f"Разказ {n}.", "audio_url": f"https://example.invalid/{n}.ogg",
                "audio_telegram_file_id": f"file{n}", "options": options}  # fmt: skip
        return data, {"answer": options[0]}
    return {"options": options}, {"answer": options[0]}


def seed_exercises(start: int, count: int) -> None:
    from duoniche.languages import languages
    from exercises.content import answer_text, text_hash
    from exercises.models import Exercise, ExerciseAnswer

    language_list = list(languages().values())
    batch: list[Exercise] = []
    answers: list[tuple[int, str, dict]] = []
    for n in range(start, start + count):
        language = language_list[n % len(language_list)]
        types = list(language.type_distribution)
        weights = list(language.type_distribution.values())
        exercise_type = random.choices(types, weights=weights)[0]
        data, correct = exercise_data(exercise_type, language.bot_id, n)
        batch.append(
            Exercise(
                exercise_type=exercise_type,
                exercise_language=language.bot_id,
                language_level=random.choice(LEVELS),
                topic=random.choice(TOPICS),
                data=data,
                content_hash=f"bench-{n}",
                source="imported",
            )
        )
        answers.append((n, exercise_type, correct))
        if len(batch) == 5000 or n == start + count - 1:
            created = Exercise.objects.bulk_create(batch)
            ExerciseAnswer.objects.bulk_create(
                ExerciseAnswer(
                    exercise=exercise,
                    answer=correct,
                    answer_text=answer_text(exercise_type, correct),
                    answer_key=text_hash(answer_text(exercise_type, correct)),
                    is_correct=True,
                    feedback_language="",
                    is_reference=True,
                    created_by="import",
                )
                for exercise, (_, exercise_type, correct) in zip(created, answers, strict=True)
            )
            batch, answers = [], []


def setup_django(args: argparse.Namespace) -> None:
    import django

    os.environ.update(server_env(args))
    sys.path.insert(0, str(ROOT))
    django.setup()


def seed(args: argparse.Namespace) -> None:
    setup_django(args)
    from django.db import connection

    from exercises.models import Exercise
    from learning.models import BotProfile, ExerciseAttempt, TelegramUser

    started = time.monotonic()
    users = TelegramUser.objects.bulk_create(
        TelegramUser(
            telegram_id=str(10_000_000 + n),
            username=f"bench{n}",
            telegram_data={"language_code": "en"},
            # A long session and big sets, so that next-action keeps serving exercises.
            custom_settings={"session_exercise_limit": 1_000_000, "exercises_in_set": 1_000_000},
        )
        for n in range(args.users)
    )
    BotProfile.objects.bulk_create(
        BotProfile(user=user, bot_id=bot_id, user_language="en")
        for user in users
        for bot_id in ("Bulgarian", "Serbian")
    )
    seed_exercises(0, args.exercises)
    ids = {
        bot: list(Exercise.objects.filter(exercise_language=bot).values_list("id", "exercise_type"))
        for bot in ("Bulgarian", "Serbian")
    }
    attempts: list[ExerciseAttempt] = []
    for n in range(args.attempts):
        user = users[n % len(users)]
        bot = "Bulgarian" if n % 2 else "Serbian"
        exercise_id, _ = random.choice(ids[bot])
        attempts.append(
            ExerciseAttempt(
                user=user,
                exercise_id=exercise_id,
                answer={"answer": "x"},
                answer_text="x",
                answer_key="0" * 64,
                is_correct=random.random() < 0.7,
            )
        )
        if len(attempts) == 10_000:
            ExerciseAttempt.objects.bulk_create(attempts)
            attempts = []
    ExerciseAttempt.objects.bulk_create(attempts)
    if args.history_attempts:
        seed_history(args.history_attempts)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"seeded {args.users} users, {args.exercises} exercises, {args.attempts} attempts "
        f"(+{args.history_attempts} of other learners) in {time.monotonic() - started:.0f} s",
        flush=True,
    )


#: Attempts per learner of the background history (a learner of a few months).
HISTORY_PER_LEARNER = 200


def seed_history(count: int) -> None:
    """`count` more attempts by `count / 200` other learners, in set-based SQL (no ORM loop).

    The learners the load drives keep their own history; this grows the table and its indexes
    around them, as years of other learners would, to show whether the hot paths stay flat.
    """
    from django.db import connection

    from exercises.models import Exercise
    from learning.models import ExerciseAttempt, TelegramUser

    learners = max(1, count // HISTORY_PER_LEARNER)
    users = TelegramUser._meta.db_table
    attempts = ExerciseAttempt._meta.db_table
    exercises = Exercise._meta.db_table
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {users} (telegram_id, username, telegram_data, custom_settings, "  # noqa: S608
            "status, created_at, updated_at) "
            "SELECT 'h' || g, 'history' || g, '{}'::jsonb, '{}'::jsonb, 'free', now(), now() "
            "FROM generate_series(1, %s) g",
            [learners],
        )
        bounds = f"SELECT min(id), max(id) FROM {users} WHERE telegram_id LIKE 'h%%'"  # noqa: S608
        cursor.execute(bounds)
        first_user, last_user = cursor.fetchone()
        every_exercise = f"SELECT array_agg(id ORDER BY id) FROM {exercises}"  # noqa: S608
        cursor.execute(every_exercise)
        (exercise_ids,) = cursor.fetchone()
        batch = 2_000_000
        for offset in range(0, count, batch):
            size = min(batch, count - offset)
            cursor.execute(
                f"INSERT INTO {attempts} (user_id, exercise_id, answer, answer_text, answer_key, "  # noqa: S608
                "is_correct, feedback, created_at) "
                "SELECT %s + (g %% %s), (%s::bigint[])[1 + floor(random() * %s)::int], "
                "'{\"answer\": \"x\"}'::jsonb, 'x', repeat('0', 64), random() < 0.7, '', "
                "now() - (random() * interval '365 days') "
                "FROM generate_series(%s, %s) g",
                [first_user, last_user - first_user + 1, exercise_ids, len(exercise_ids),
                 offset, offset + size - 1],
            )  # fmt: skip
            print(f"  history: {offset + size} attempts, {time.monotonic() - started:.0f} s",
                  flush=True)  # fmt: skip


def grow_bank(args: argparse.Namespace) -> None:
    from django.db import connection

    started = time.monotonic()
    seed_exercises(args.exercises, args.exercises_large - args.exercises)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"grew the bank to {args.exercises_large} exercises in {time.monotonic() - started:.0f} s",
        flush=True,
    )


def request_plan() -> dict[str, Any]:
    from exercises.models import ExerciseAnswer
    from learning.models import TelegramUser

    # The learners the load drives: not the background history of `--history-attempts`, nor
    # the new learners `put-new-users` created (telegram ids "n...", a profile in one bot only).
    users = list(
        TelegramUser.objects.exclude(telegram_id__startswith="h")
        .exclude(telegram_id__startswith="n")
        .values_list("id", "telegram_id")
    )
    known = list(
        ExerciseAnswer.objects.filter(is_reference=True)
        .values_list("exercise_id", "exercise__exercise_type", "exercise__exercise_language",
                     "answer")[:5000]
    )  # fmt: skip
    # Fresh (learner, exercise) pairs with a stored verdict: no attempt of that learner on it.
    from learning.models import ExerciseAttempt

    answers = {exercise_id: (kind, answer) for exercise_id, kind, _, answer in known}
    learners = [user_id for user_id, _ in users]
    taken = set(
        ExerciseAttempt.objects.filter(exercise_id__in=list(answers)).values_list(
            "user_id", "exercise_id"
        )
    )
    rng = random.Random(11)

    def fresh() -> Iterator[tuple[int, int]]:
        while True:
            pair = (rng.choice(learners), rng.choice(known)[0])
            if pair not in taken:
                taken.add(pair)
                yield pair

    return {
        "users": users,
        "known": known,
        "answers": answers,
        "fresh": fresh(),
        "new_ids": iter(range(10**9)),
        "run": f"{os.getpid()}-{int(time.time())}",
    }


# --- load -------------------------------------------------------------------------------------

#: wrk's connections and threads: the issue's side-by-side set-up (2 threads x 32 connections).
WRK_THREADS = 2
#: Requests written into a phase's script: kinds that must never repeat a request (a first answer,
#: a new learner) get this many per second of the phase (more than any of them serves here); the
#: others cycle through a fixed list.
UNIQUE_REQUESTS_PER_SECOND = 3_000
CYCLED_REQUESTS = 5_000
UNIQUE_KINDS = ("validate-first", "put-new-users")

WRK_SCRIPT = """
local requests = {
%(requests)s
}
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  offset = offset or 0
  sent = 0
  headers = {["Authorization"] = "Bearer %(token)s", ["Content-Type"] = "application/json",
             ["Host"] = "127.0.0.1"}
end
function request()
  local entry = requests[(offset + sent * %(threads)d) %% #requests + 1]
  sent = sent + 1
  return wrk.format(entry[1], entry[2], headers, entry[3])
end
function done(summary, latency, requests_)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "p50": %%f, "p99": %%f, "status": %%d, '
      .. '"socket": %%d, "available": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout, #requests))
end
"""


@dataclass
class Phase:
    name: str
    requests: int
    rate: float
    p50: float  # ms
    p99: float  # ms
    non_2xx: int
    socket_errors: int


def make_request(kind: str, plan: dict[str, Any]) -> tuple[str, str, bytes | None]:
    if kind == "no-db":
        return "GET", "/api/v1/", None
    if kind == "healthz":
        return "GET", "/healthz", None
    if kind == "next-action":
        user_id, _ = random.choice(plan["users"])
        bot = random.choice(("Bulgarian", "Serbian"))
        return "GET", f"/api/v1/users/{user_id}/bots/{bot}/next-action/", None
    if kind == "validate":
        user_id, _ = random.choice(plan["users"])
        exercise_id, exercise_type, _, answer = random.choice(plan["known"])
        body = {"user_id": user_id, "answer": {"exercise_type": exercise_type, **answer}}
        return "POST", f"/api/v1/exercises/{exercise_id}/validate/", json.dumps(body).encode()
    if kind == "validate-first":
        user_id, exercise_id = next(plan["fresh"])
        exercise_type, answer = plan["answers"][exercise_id]
        body = {"user_id": user_id, "answer": {"exercise_type": exercise_type, **answer}}
        return "POST", f"/api/v1/exercises/{exercise_id}/validate/", json.dumps(body).encode()
    if kind == "put-new-users":
        telegram_id = f"n{plan['run']}-{next(plan['new_ids'])}"
        body = {"telegram_id": telegram_id, "username": "n", "name": "n", "user_language": "en",
                "target_language": "Bulgarian"}  # fmt: skip
        return "PUT", "/api/v1/users/", json.dumps(body).encode()
    user_id, telegram_id = random.choice(plan["users"])
    body = {"telegram_id": telegram_id, "username": "b", "name": "b", "user_language": "en",
            "target_language": "Bulgarian"}  # fmt: skip
    return "PUT", "/api/v1/users/", json.dumps(body).encode()


def lua_string(text: str) -> str:
    """`text` as a Lua long string (our paths and JSON bodies never hold its closing bracket)."""
    assert "]==]" not in text
    return f"[==[{text}]==]"


def wrk_script(kind: str, plan: dict[str, Any], folder: Path, seconds: float) -> Path:
    count = CYCLED_REQUESTS
    if kind in UNIQUE_KINDS:
        count = int(seconds * UNIQUE_REQUESTS_PER_SECOND)
    entries = []
    for _ in range(count):
        method, path, body = make_request(kind, plan)
        text = (body or b"").decode()
        entries.append(f"{{{lua_string(method)}, {lua_string(path)}, {lua_string(text)}}},")
    script = folder / f"{kind}.lua"
    script.write_text(
        WRK_SCRIPT % {"requests": "\n".join(entries), "token": TOKEN, "threads": WRK_THREADS},
        encoding="utf-8",
    )
    return script


def drive(port: int, kind: str, plan: dict[str, Any], clients: int, seconds: float) -> Phase:
    """One phase of `kind` under wrk: `clients` keep-alive connections for `seconds`."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        script = wrk_script(kind, plan, Path(folder), seconds)
        completed = subprocess.run(
            ["wrk", "-t", str(WRK_THREADS), "-c", str(clients), "-d", f"{seconds:g}s",
             "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    if kind in UNIQUE_KINDS and summary["requests"] > summary["available"]:
        print(f"  warning: {kind} sent {summary['requests']} requests from "
              f"{summary['available']} prepared ones; some repeated", flush=True)  # fmt: skip
    return Phase(
        kind,
        requests=summary["requests"],
        rate=summary["requests"] / summary["seconds"],
        p50=summary["p50"],
        p99=summary["p99"],
        non_2xx=summary["status"],
        socket_errors=summary["socket"],
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else 0.0


# --- server -----------------------------------------------------------------------------------


def start_server(
    args: argparse.Namespace,
    workers: int,
    *,
    env: dict[str, str] | None = None,
    probe: str = "/healthz",
    any_status: bool = False,
    output: Any = None,
    root: Path = ROOT,
    port: int | None = None,
) -> subprocess.Popen[bytes]:
    """gunicorn on 127.0.0.1:`port` (default `args.port`) serving the checkout at `root`, returned
    once `probe` answers 200 (any HTTP status with `any_status`, for a server whose database is
    meant to be unreachable)."""
    import urllib.error
    import urllib.request

    port = port or args.port
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "duoniche.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning"],
        cwd=root,
        env=env or server_env(args),
        stdout=output,
        stderr=output,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2):
                return process
        except urllib.error.HTTPError:
            if any_status:
                return process
            time.sleep(0.5)
        except OSError:
            time.sleep(0.5)
    process.kill()
    process.wait(timeout=10)
    raise SystemExit(f"gunicorn did not answer {probe} within 60 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def vacuum() -> None:
    """Clear the dead rows earlier phases left, as autovacuum would in production.

    (PostgreSQL on the development machines runs with autovacuum off; without this, every phase
    would pay for the updates of the phases before it.)
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


def statements_per_request(plan: dict[str, Any], kinds: list[str], samples: int = 40) -> None:
    """The SQL statements each kind sends, counted by Django over `samples` requests made here
    (the same views, settings and database as the server's; no HTTP)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST="127.0.0.1")
    counts = []
    for kind in kinds:
        for _ in range(3):  # warm: prepared statements, caches
            method, path, body = make_request(kind, plan)
            client.generic(method, path, body or b"", content_type="application/json")
        with CaptureQueriesContext(connection) as queries:
            for _ in range(samples):
                method, path, body = make_request(kind, plan)
                client.generic(method, path, body or b"", content_type="application/json")
        counts.append(f"{kind} {len(queries) / samples:.2f}")
    print("statements per request: " + ", ".join(counts), flush=True)


class ServerStatements:
    """The statements the database server ran, from `pg_stat_statements` when it is loaded there
    (`shared_preload_libraries`): BEGIN and COMMIT included, whatever process sent them."""

    def __init__(self) -> None:
        from django.db import DatabaseError, connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                cursor.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            self.available = True
        except DatabaseError:
            self.available = False
            print("pg_stat_statements is not loaded in this database: statements per request "
                  "are Django's count above only", flush=True)  # fmt: skip

    def reset(self) -> None:
        if self.available:
            self._run("SELECT pg_stat_statements_reset()")

    def count(self) -> int:
        """Statements run in this database since the last reset (not this class's own)."""
        if not self.available:
            return 0
        return int(
            self._run(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT LIKE '%%pg_stat_statements%%'"
            )
        )

    @staticmethod
    def _run(sql: str) -> Any:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} [{min(values):.0f}-{max(values):.0f}]"


def measure(args: argparse.Namespace, plan: dict[str, Any], workers: int, kinds: list[str],
            suffix: str = "") -> None:  # fmt: skip
    """`args.rounds` rounds of every kind; with `--compare`, the other checkout's server takes each
    kind right after this one's, so both see the same machine state. Prints medians and spreads."""
    vacuum()
    servers = {"this": (start_server(args, workers), args.port)}
    try:
        if args.compare:
            other = start_server(args, workers, root=args.compare, port=args.port + 1)
            servers["compared"] = (other, args.port + 1)
        phases: dict[tuple[str, str], list[Phase]] = {}
        statements: dict[tuple[str, str], list[float]] = {}
        server = ServerStatements()
        for _ in range(args.rounds):
            for kind in kinds:
                for name, (_, port) in servers.items():
                    drive(port, kind, plan, args.clients, 1.0)  # warm-up
                    server.reset()
                    phase = drive(port, kind, plan, args.clients, args.seconds)
                    phases.setdefault((name, kind), []).append(phase)
                    ran = server.count() / phase.requests if phase.requests else 0.0
                    statements.setdefault((name, kind), []).append(ran)
    finally:
        for process, _ in servers.values():
            stop_server(process)
    plural = "s" if workers > 1 else ""
    for kind in kinds:
        for name in servers:
            runs = phases[(name, kind)]
            rates = [phase.rate for phase in runs]
            floor = statistics.median(phase.rate for phase in phases[(name, "no-db")])
            label = f"{kind}{suffix} ({workers} worker{plural})"
            if args.compare:
                label += " compared" if name == "compared" else " this"
            line = (
                f"{label:<40} {spread(rates)} req/s  "
                f"p50 {statistics.median(phase.p50 for phase in runs):6.1f} ms  "
                f"p99 {spread([phase.p99 for phase in runs])} ms  "
                f"vs no-db {statistics.median(rates) / floor:4.0%}"
            )
            if name == "this" and args.compare:
                before = statistics.median(phase.rate for phase in phases[("compared", kind)])
                line += f"  this/compared {statistics.median(rates) / before:5.2f}x"
            if server.available:
                line += f"  statements {statistics.median(statements[(name, kind)]):.2f}/request"
            failures = sum(phase.non_2xx + phase.socket_errors for phase in runs)
            print(f"{line}  non-2xx or socket errors: {failures}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/duoniche_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every kind (medians)")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout of the project (same schema) served beside this one, each kind "
        "measured on both in turn, e.g. a `git worktree` of an earlier commit",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--exercises", type=int, default=20_000)
    parser.add_argument("--exercises-large", type=int, default=200_000)
    parser.add_argument("--attempts", type=int, default=200_000)
    parser.add_argument(
        "--skip-large-bank", action="store_true", help="do not grow the bank and measure again"
    )
    parser.add_argument(
        "--history-attempts",
        type=int,
        default=0,
        help="more attempts by other learners (set-based SQL), e.g. 20000000 for the scale claim",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of a previous run (no seeding)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=KINDS, default=KINDS, help="endpoints to measure"
    )
    args = parser.parse_args()
    random.seed(7)

    env = server_env(args)
    subprocess.run(["redis-cli", "-u", args.redis_url, "flushdb"], check=False,
                   capture_output=True)  # fmt: skip
    if not args.reuse:
        reset_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    if args.reuse:
        setup_django(args)
    else:
        seed(args)
    plan = request_plan()
    print(f"\n{args.clients} clients, {args.seconds:.0f} s per endpoint\n", flush=True)
    floors = ["no-db", "healthz"]
    kinds = [*floors, *[kind for kind in args.only if kind not in floors]]
    statements_per_request(plan, kinds)
    for workers in args.workers:
        measure(args, plan, workers, kinds)
    if args.reuse or args.skip_large_bank:
        return
    grow_bank(args)
    for workers in args.workers:
        measure(
            args,
            plan,
            workers,
            ["no-db", "healthz", "next-action"],
            suffix=f" @{args.exercises_large}",
        )


if __name__ == "__main__":
    main()
