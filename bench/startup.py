"""How long a `manage.py` command takes to start, and how long `make run` takes to serve.

1. `manage.py check` (and `manage.py help`, which loads every app's commands), each run a number
   of times after one warm-up run, in a fresh process with a development environment and no
   `.env` (DJANGO_ENV_FILE empty); prints the median and the spread. Target: `check` at most
   1.5 s warm.
2. With `--make-run`: in a copy of the checkout that shares this `.venv`, with nothing
   configured, the seconds from `make run` to the first 200 of `/healthz` (an embedded PostgreSQL
   created, migrated, the starter bank imported) and then from a second `make run` (the data
   reused). Installing `.venv` is not counted: it is pip's time, not ours.

    .venv/bin/python bench/startup.py                 # 7 runs of each command
    .venv/bin/python bench/startup.py --runs 15 --make-run

Needs nothing running: the commands do not connect to the database.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from duoniche.local_servers import free_port  # noqa: E402
from tests.checkout import clean_env, copy_checkout  # noqa: E402

CHECK_TARGET_SECONDS = 1.5


def command_seconds(args: list[str], runs: int) -> list[float]:
    env = {
        **clean_env(),
        "DJANGO_ENV_FILE": "",
        "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": "bench-startup-secret-key-0123456789abcdefghij",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/duoniche",
    }
    times = []
    for run in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )
        if run:  # the first run warms the disk cache and writes the .pyc files
            times.append(time.perf_counter() - started)
    return times


def make_run_seconds() -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="duoniche-bench-startup-") as directory:
        checkout = copy_checkout(Path(directory))
        try:
            return serve_once(checkout), serve_once(checkout)
        finally:
            subprocess.run(["make", "-s", "db-stop"], cwd=checkout, check=False)


def serve_once(checkout: Path) -> float:
    port = free_port()
    env = clean_env()
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise SystemExit(f"make run exited with {process.returncode}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--make-run", action="store_true")
    options = parser.parse_args()

    failed = False
    for label, args in (("manage.py check", ["check"]), ("manage.py help", ["help"])):
        times = command_seconds(args, options.runs)
        median = statistics.median(times)
        print(
            f"{label:<18} median {median:.2f} s  min {min(times):.2f}  max {max(times):.2f}"
            f"  ({options.runs} warm runs)"
        )
        if args == ["check"] and median > CHECK_TARGET_SECONDS:
            print(f"  over the target of {CHECK_TARGET_SECONDS} s")
            failed = True
    if options.make_run:
        first, second = make_run_seconds()
        print(f"make run, new database  {first:.1f} s to the first /healthz 200")
        print(f"make run, data reused   {second:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
