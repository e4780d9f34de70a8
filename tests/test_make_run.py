"""`make run` as a newcomer meets it: in a copy of this checkout with nothing configured, it starts
its own PostgreSQL, serves, and a whole learning session plays against it with no error; after it
stops, a bare `manage.py` in the same checkout works and a second start reuses the data.

The copy shares this checkout's virtualenv (tests/checkout.py); nothing of the environment the
tests run in reaches it but PATH, HOME and the locale.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from duoniche.local_servers import free_port
from tests.checkout import clean_env, copy_checkout

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 240
NEW = "new_exercise"


def make(checkout: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *targets],
        cwd=checkout,
        env={**clean_env(), **variables},
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Path, str, float]]:
    """`make run PORT=...` in a fresh copy; yields (checkout, base URL, seconds to first answer)."""
    checkout = copy_checkout(tmp_path_factory.mktemp("clone"))
    port = free_port()
    log = (checkout / "make-run.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=checkout,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one process group: make, manage.py runserver and its child
    )
    base = f"http://127.0.0.1:{port}"
    try:
        first_answer = _wait_until_serving(base, process, started, checkout / "make-run.log")
        yield checkout, base, first_answer
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
        make(checkout, "db-stop")


def _wait_until_serving(base: str, process: subprocess.Popen, started: float, log: Path) -> float:
    while time.monotonic() - started < START_SECONDS:
        if process.poll() is not None:
            pytest.fail(f"make run exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"make run did not serve within {START_SECONDS} s:\n{log.read_text()[-4000:]}")


def starter_answers() -> dict[str, dict[str, Any]]:
    """The correct answer of each starter-bank exercise, by its served `data`."""
    bank = json.loads((ROOT / "exercises/fixtures/starter_bank.json").read_text())
    return {_key(item["data"]): _composed(item["correct_answer"]) for item in bank}


def _composed(answer: dict[str, Any]) -> dict[str, Any]:
    if "words" in answer:
        return {"words": [unicodedata.normalize("NFC", word) for word in answer["words"]]}
    return {"answer": unicodedata.normalize("NFC", answer["answer"])}


def _key(data: dict[str, Any]) -> str:
    """What identifies an exercise in what the bot is served (choices may come shuffled)."""
    # The bank may hold decomposed accents (и + U+0300) where the API serves composed ones (ѝ).
    choices = [unicodedata.normalize("NFC", c) for c in data.get("words") or data.get("options")]
    return json.dumps([data.get("text_with_blanks"), sorted(choices)], ensure_ascii=False)


def wrong_answer(exercise: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    data = exercise["data"]
    if "words" in right:
        others = [word for word in data["words"] if word not in right["words"]]
        return {"words": [others[0], *right["words"][1:]]}
    return {"answer": next(option for option in data["options"] if option != right["answer"])}


def test_a_whole_session_plays_against_make_run(served):
    _, base, first_answer = served
    answers = starter_answers()
    client = httpx.Client(base_url=base, timeout=30)
    statuses: list[int] = []

    user = client.put(
        "/api/v1/users/",
        json={
            "telegram_id": "1001",
            "username": "newcomer",
            "name": "Ana",
            "user_language": "en",
            "target_language": "Bulgarian",
        },
    )
    statuses.append(user.status_code)
    user_id = user.json()["user_id"]
    actions, verdicts = [], []
    for turn in range(19):
        step = client.get(f"/api/v1/users/{user_id}/bots/Bulgarian/next-action/")
        statuses.append(step.status_code)
        actions.append(step.json()["action"])
        if actions[-1] != NEW:
            continue
        exercise = step.json()["exercise"]
        right = answers[_key(exercise["data"])]
        answer = right if turn % 2 == 0 else wrong_answer(exercise, right)
        verdict = client.post(
            f"/api/v1/exercises/{exercise['exercise_id']}/validate/",
            json={
                "user_id": user_id,
                "answer": {"exercise_type": exercise["exercise_type"], **answer},
            },
        )
        statuses.append(verdict.status_code)
        verdicts.append((turn % 2 == 0, verdict.json()["is_correct"]))

    print(
        f"make run: first answer {first_answer:.1f} s after the command, {len(statuses)} requests"
    )
    assert statuses == [200] * len(statuses)
    assert actions == (
        [NEW] * 5
        + ["praise_and_next_set"]
        + [NEW] * 5
        + ["praise_and_next_set"]
        + [NEW] * 5
        + ["congratulations_and_wait", "limit_reached"]
    )
    assert len(verdicts) == 15
    assert all(expected == given for expected, given in verdicts), verdicts
    assert client.get("/api/v1/").json()["links"]["docs"] == "/api/docs/"  # what make run prints
    assert client.get("/admin", follow_redirects=False).headers["Location"] == "/admin/"


def test_manage_py_works_after_make_run_and_the_data_is_kept(served):
    checkout, _, _ = served
    env_file = (checkout / ".env").read_text()
    count_users = (
        "from learning.models import TelegramUser; print('users', TelegramUser.objects.count())"
    )

    bare = subprocess.run(
        [str(checkout / ".venv/bin/python"), "manage.py", "shell", "-v", "0", "-c", count_users],
        cwd=checkout,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    again = make(checkout, "db")

    assert env_file.startswith("# Written by `make run`")
    assert "DJANGO_DEBUG=true" in env_file
    assert "DJANGO_SECRET_KEY=" in env_file
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.split()[-2:] == ["users", "1"]
    assert "DJANGO_SECRET_KEY is not set" not in bare.stderr
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() in env_file  # the same database, not a new one
    assert (checkout / ".env").read_text() == env_file
    assert "sqlite" not in (checkout / "make-run.log").read_text().lower()
