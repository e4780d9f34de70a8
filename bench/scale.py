"""Many hosts on one machine: two copies of every process against one PostgreSQL and one Redis.

It creates a dedicated database (`duoniche_scale`), migrates it, imports the starter bank and
starts, all on loopback:

- two web processes (gunicorn, two workers each) behind one nginx (`docker/nginx.conf`, the
  upstream pointed at both);
- two Celery workers and two Celery beats, with every job's interval compressed to
  `--cycle-seconds`, so each job's cycle comes round many times during the run;
- every process writing its metrics to one shared PROMETHEUS_MULTIPROC_DIR, as on one host.

Then `--learners` concurrent learners use the bot API through nginx for `--seconds`: register,
ask for session reminders, and answer exercise after exercise (right and wrong), sessions ending
in a short pause (`DELTA_BETWEEN_SESSIONS` of a few seconds) so the reminders come due. After the
load the beats run on for a few more cycles, then everything is stopped and checked:

- no job ran twice in one period (two beats fire everything twice), and every interval job ran
  in most of its periods;
- no notification was published twice (the Notifier queue, read back from Redis);
- not one 5xx or transport error;
- counters exact: `/metrics` (one scrape through nginx, adding up all eight processes) equals the
  database for attempts, new users and succeeded job runs.

    .venv/bin/python bench/scale.py                                 # 40 learners, 60 s
    .venv/bin/python bench/scale.py --learners 8 --seconds 10 --cycle-seconds 2  # make test

An LLM fake on loopback (`bench/refill.py`'s, over real HTTP with the real client) writes a valid,
unique exercise for every generation request, with the stock target (`--stock-target`) above the
starter bank, so refill generates in every cycle, and checks:

- no exercise generated twice (content hashes), every generated exercise one that a refill run
  reported, and no language and type ever above the target: two refills running at once would
  each fill the same deficit.

Needs nginx (Debian's nginx-light), the local PostgreSQL and Redis (`--redis-url`, a database of
its own: flushed). Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchdb import drop_database, reset_database  # a sibling module: the benches run as scripts
from refill import MODEL, USAGE, make_server  # valid, unique generated exercises

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "scale-token"
METRICS_TOKEN = "scale-metrics"
NOTIFIER_QUEUE = "notification_tasks_scale"
INTERVAL_SETTINGS = (
    "EXERCISE_REFILL_INTERVAL",
    "QUALITY_MONITOR_INTERVAL_SECONDS",
    "REVIEW_PROCESSOR_INTERVAL_SECONDS",
    "NOTIFICATION_SCHEDULER_INTERVAL_SECONDS",
    "UPDATE_USER_METRICS_INTERVAL",
    "REPORT_GENERATION_SWEEP_INTERVAL_SECONDS",
)


@dataclass
class Stack:
    args: argparse.Namespace
    workdir: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    llm_url: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "duoniche.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "scale-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_ENV_FILE": "",
            "DATABASE_URL": self.args.database_url,
            "REDIS_URL": self.args.redis_url,
            "API_TOKENS": TOKEN,
            "PAYMENTS_PAYLOAD_SECRET": "scale-payload-secret",
            "METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            "NOTIFICATION_TASKS_QUEUE_NAME": NOTIFIER_QUEUE,
            "TRUSTED_PROXY_COUNT": "1",
            "OPENAI_API_KEY": "sk-scale-fake-key" if self.llm_url else "",
            "OPENAI_BASE_URL": self.llm_url,
            "OPENAI_MAIN_MODEL_NAME": MODEL,
            "OPENAI_MAX_RETRIES": "0",
            "MIN_EXERCISE_COUNT_TO_GENERATE_NEW": str(self.args.stock_target),
            "GENERATE_AUDIO": "false",
            "SENTRY_DSN": "",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DELTA_BETWEEN_SESSIONS": str(self.args.pause_seconds),
            "EXERCISES_IN_SET": "3",
            "SETS_IN_SESSION": "1",
        }
        for name in INTERVAL_SETTINGS:
            env[name] = str(self.args.cycle_seconds)
        return env

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        self.processes.append((name, process))

    def stop(self, prefix: str = "") -> None:
        chosen = [(n, p) for n, p in self.processes if n.startswith(prefix)]
        for _, process in chosen:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in chosen:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            self.processes.remove((name, process))

    def manage(self, *args: str) -> None:
        subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=self.env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def nginx_config(workdir: Path, listen: int, upstreams: list[int]) -> Path:
    """docker/nginx.conf with its upstream pointed at our web processes, run as this user."""
    conf = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    servers = "\n".join(f"        server 127.0.0.1:{port};" for port in upstreams)
    conf = conf.replace("        server backend:8000;", servers)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    temp = workdir / "nginx"
    temp.mkdir()
    conf = conf.replace(
        "http {",
        f"pid {workdir}/nginx.pid;\nerror_log {workdir}/nginx-error.log;\nhttp {{\n"
        f"    client_body_temp_path {temp}/body;\n    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;",
        1,
    )
    path = workdir / "nginx.conf"
    path.write_text(conf, encoding="utf-8")
    return path


# --- the learners -----------------------------------------------------------------------------


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def answer_for(exercise: dict[str, Any], right: bool) -> dict[str, Any]:
    data = exercise["data"]
    kind = exercise["exercise_type"]
    if kind == "fill_in_the_blank":
        words = list(data["words"])
        blanks = max(1, str(data.get("text_with_blanks", "")).count("___"))
        chosen = words[:blanks] if right else list(reversed(words))[:blanks]
        return {"exercise_type": kind, "words": chosen}
    options = list(data["options"])
    return {"exercise_type": kind, "answer": random.choice(options)}


def learner(base: str, number: int, stop: float, load: Load) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}"}
    bot = "Bulgarian" if number % 2 else "Serbian"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:

        def call(method: str, path: str, body: Any = None) -> dict[str, Any] | None:
            try:
                response = http.request(method, path, json=body)
            except httpx.HTTPError:
                with load.lock:
                    load.transport_errors += 1
                return None
            load.count(response.status_code)
            return response.json() if response.status_code == 200 else None

        user = call("PUT", "/api/v1/users/", {
            "telegram_id": 700_000 + number, "username": f"l{number}", "name": None,
            "user_language": "en", "target_language": bot,
        })  # fmt: skip
        if user is None:
            return
        user_id = user["user_id"]
        call("PUT", f"/api/v1/users/{user_id}/bots/{bot}/preferences/session_reminders",
             {"wants_reminders": True})  # fmt: skip
        while time.monotonic() < stop:
            action = call("GET", f"/api/v1/users/{user_id}/bots/{bot}/next-action/")
            kind = action.get("action") if action else None
            if kind == "congratulations_and_wait":  # a session ended: remind me after the pause
                call("PUT", f"/api/v1/users/{user_id}/bots/{bot}/preferences/session_reminders",
                     {"wants_reminders": True})  # fmt: skip
            if action is None or kind != "new_exercise":
                time.sleep(0.5)  # the pause between sessions, or a set just completed
                continue
            exercise = action["exercise"]
            body = {"user_id": user_id, "answer": answer_for(exercise, random.random() < 0.6)}
            if call("POST", f"/api/v1/exercises/{exercise['exercise_id']}/validate/", body):
                with load.lock:
                    load.answers += 1


# --- checks -----------------------------------------------------------------------------------


def scrape(base: str) -> dict[str, float]:
    request = urllib.request.Request(
        f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if match:
            name, labels, value = match.groups()
            key = name + ("{succeeded}" if labels and 'outcome="succeeded"' in labels else "")
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def database_counts(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

        rows = conn.execute(
            "SELECT job, count(DISTINCT period_key), count(*) FILTER (WHERE status = 'succeeded') "
            "FROM duoniche_jobrun WHERE NOT forced GROUP BY job"
        ).fetchall()
        return {
            "attempts": one("SELECT count(*) FROM learning_exerciseattempt"),
            "users": one("SELECT count(*) FROM learning_telegramuser"),
            "job_runs_succeeded": one(
                "SELECT count(*) FROM duoniche_jobrun WHERE status = 'succeeded'"
            ),
            "duplicate_periods": one(
                "SELECT count(*) FROM (SELECT 1 FROM duoniche_jobrun WHERE NOT forced "
                "GROUP BY job, period_key HAVING count(*) > 1) d"
            ),
            "periods": {job: periods for job, periods, _ in rows},
            "notifications": one("SELECT count(*) FROM notifications_notificationlog"),
        }


def notifier_messages(redis_url: str) -> Counter[str]:
    import redis

    client = redis.Redis.from_url(redis_url)
    task_ids: Counter[str] = Counter()
    messages: list[bytes] = client.lrange(NOTIFIER_QUEUE, 0, -1)  # type: ignore[assignment]
    for raw in messages:
        task_ids[json.loads(raw)["headers"]["id"]] += 1
    return task_ids


def make_llm(latency: float) -> Any:
    """A loopback OpenAI-compatible fake: refill's exercise writer, plus a quick "not quite" for
    answer validation and translation; anything else (accent and story generation, the review
    assessor) gets an immediate 400, which the client does not retry."""
    from tests.fakes.openai_server import Reply, Slow, Status

    replies: dict[str, dict[str, Any]] = {
        "AttemptValidation": {"is_correct": False, "feedback": "Not quite.", "error_tags": None},
        "FeedbackTranslation": {"translated_text": "Not quite.", "source_language": "en"},
    }

    def other(schema: str) -> Any:
        if schema in replies:
            return Slow(latency, Reply(replies[schema], usage=USAGE["assessment"]))
        return Status(400, f"the scale fake does not write {schema or 'this'}")

    return make_server(latency, other)


def setup_django(stack: Stack) -> None:
    """Django in this driver process too (the LLM fake and the stock check use it); it writes no
    metrics into the stack's shared directory."""
    import django

    env = dict(stack.env)
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    django.setup()


def generation_counts(target: int) -> dict[str, Any]:
    """What refill generated, against what its runs reported and the stock target."""
    from django.db.models import Count

    from duoniche.models import JobRun
    from exercises.models import Exercise
    from exercises.refill import untouched_stock

    reported = sum(
        int((run.stats or {}).get("totals", {}).get("generated", 0))
        for run in JobRun.objects.filter(job="refill_stock")
    )
    repeated = (
        Exercise.objects.values("content_hash").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    stock = untouched_stock()
    return {
        "generated": Exercise.objects.filter(source="generated").count(),
        "reported_by_refill_runs": reported,
        "content_hashes_twice": repeated,
        "most_untouched_in_a_pair": max(stock.values(), default=0),
        "target": target,
    }


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="duoniche-scale-"))
    (workdir / "metrics").mkdir()
    stack = Stack(args, workdir)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    reset_database(args.database_url)
    setup_django(stack)
    llm = make_llm(args.llm_latency)
    stack.llm_url = llm.url
    started = time.monotonic()
    try:
        stack.manage("migrate", "--noinput")
        stack.manage("import_exercises", str(ROOT / "exercises/fixtures/starter_bank.json"))
        proxy_port, *web_ports = free_ports(3)
        for n, port in enumerate(web_ports):
            stack.start(f"web{n}", [str(BIN / "gunicorn"), "duoniche.wsgi:application",
                                    "--bind", f"127.0.0.1:{port}", "--workers", "2"])  # fmt: skip
        for n in range(2):
            stack.start(f"worker{n}", [str(BIN / "celery"), "-A", "duoniche", "worker", "-Q",
                                       "duoniche", "--concurrency", "2", "-n", f"scale{n}@%h",
                                       "--loglevel", "WARNING"])  # fmt: skip
        for n in range(2):
            stack.start(f"beat{n}", [str(BIN / "celery"), "-A", "duoniche", "beat",
                                     "--pidfile", str(workdir / f"beat{n}.pid"),
                                     "--loglevel", "WARNING"])  # fmt: skip
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        stack.start("proxy", [nginx, "-c", str(nginx_config(workdir, proxy_port, web_ports)),
                              "-p", str(workdir), "-g", "daemon off;"])  # fmt: skip
        base = f"http://127.0.0.1:{proxy_port}"
        for port in web_ports:
            wait_for(f"http://127.0.0.1:{port}/healthz")
        wait_for(f"{base}/healthz")
        print(f"stack up in {time.monotonic() - started:.1f} s ({workdir})")

        load = Load()
        stop = time.monotonic() + args.seconds
        threads = [threading.Thread(target=learner, args=(base, n, stop, load))
                   for n in range(args.learners)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"load: {args.learners} learners, {args.seconds:.0f} s, {load.answers} answers, "
              f"statuses {dict(load.statuses)}, "
              f"transport errors {load.transport_errors}")  # fmt: skip

        time.sleep(args.cycle_seconds * 3)  # the jobs run on after the load
        stack.stop("beat")
        time.sleep(args.cycle_seconds * 2)  # what the beats sent last is worked off
        stack.stop("worker")
        metrics = scrape(base)
        counts = database_counts(args.database_url)
        published = notifier_messages(args.redis_url)
        generation = generation_counts(args.stock_target)
    finally:
        stack.stop()
        llm.stop()
    elapsed_cycles = (time.monotonic() - started) / args.cycle_seconds

    checks = {
        "no 5xx and no transport error": sum(
            n for status, n in load.statuses.items() if status >= 500
        ) + load.transport_errors == 0,
        "no job ran twice in a period": counts["duplicate_periods"] == 0,
        # refill_stock runs longer than a compressed cycle while it generates (its lock makes
        # the next periods skip), so it is only asked to have come round more than once.
        "every short interval job ran in many periods": min(
            counts["periods"].get(job, 0) for job in
            ("notification_scheduler", "metrics_updater", "quality_monitor")
        ) >= min(5, elapsed_cycles / 4),
        "refill_stock ran in more than one period": counts["periods"].get("refill_stock", 0) > 1,
        "no notification published twice": all(n == 1 for n in published.values()),
        "/metrics attempts == database attempts": metrics.get(
            "backend_exercise_attempt_total", 0) == counts["attempts"],
        "/metrics new users == database users": metrics.get(
            "backend_new_users_total", 0) == counts["users"],
        "/metrics succeeded job runs == database": metrics.get(
            "backend_job_runs_total{succeeded}", 0) == counts["job_runs_succeeded"],
        "exercises were generated": generation["generated"] > 0,
        "no exercise generated twice": generation["content_hashes_twice"] == 0,
        "every generated exercise is one a refill run reported": generation["generated"]
        == generation["reported_by_refill_runs"],
        "two refills never filled one deficit twice": generation["most_untouched_in_a_pair"]
        <= args.stock_target,
        # A repeat of the same answer to the same exercise is answered but not recorded again.
        "answers were recorded": 0 < counts["attempts"] <= load.answers,
    }  # fmt: skip
    summary = {
        "database": {k: v for k, v in counts.items()},
        "metrics": {k: metrics.get(k) for k in ("backend_exercise_attempt_total",
                    "backend_new_users_total", "backend_job_runs_total{succeeded}")},
        "notifier_messages": sum(published.values()),
        "generation": generation,
        "checks": checks,
    }  # fmt: skip
    print(json.dumps(summary, indent=2, default=str))
    if not args.keep:
        drop_database(args.database_url)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(checks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/duoniche_scale"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--learners", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cycle-seconds", type=int, default=3)
    parser.add_argument("--pause-seconds", type=int, default=4)
    parser.add_argument(
        "--stock-target",
        type=int,
        default=25,
        help="MIN_EXERCISE_COUNT_TO_GENERATE_NEW: above the starter bank, so refill generates",
    )
    parser.add_argument("--llm-latency", type=float, default=0.05, help="the LLM fake's delay")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
