"""Concurrent requests on real PostgreSQL: no double counting, no lost update, never a 500."""

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from learning.models import BotProfile, TelegramUser
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory

pytestmark = pytest.mark.django_db(transaction=True)
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def in_parallel(count: int, call: Callable[[Client], Any]) -> list[Any]:
    """Run `call` from `count` threads at once, each with its own client and connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            client = Client()
            barrier.wait()
            results[index] = call(client)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_first_puts_create_one_user_and_one_profile():
    body = {
        "telegram_id": "777",
        "username": "u",
        "name": "n",
        "user_language": "en",
        "target_language": "Serbian",
    }

    responses = in_parallel(
        20, lambda c: c.put("/api/v1/users/", body, content_type="application/json", **AUTH)
    )

    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.json()["user_id"] for r in responses}) == 1
    assert TelegramUser.objects.count() == 1
    assert BotProfile.objects.count() == 1


def test_concurrent_puts_of_a_known_user_for_a_new_bot_create_one_profile():
    body = {
        "telegram_id": "778",
        "username": "u",
        "name": "n",
        "user_language": "en",
        "target_language": "Bulgarian",
    }
    Client().put("/api/v1/users/", body, content_type="application/json", **AUTH)

    responses = in_parallel(
        20,
        lambda c: c.put(
            "/api/v1/users/",
            {**body, "target_language": "Serbian", "username": "other"},
            content_type="application/json",
            **AUTH,
        ),
    )

    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["username"] for r in responses} == {"u"}  # the user is never modified
    assert TelegramUser.objects.count() == 1
    assert sorted(BotProfile.objects.values_list("bot_id", flat=True)) == ["Bulgarian", "Serbian"]


def test_concurrent_first_next_actions_create_one_profile():
    for _ in range(30):
        ExerciseFactory()
    user = TelegramUser.objects.create(telegram_id="888")

    responses = in_parallel(
        20, lambda c: c.get(f"/api/v1/users/{user.pk}/bots/Bulgarian/next-action/", **AUTH)
    )

    assert [r.status_code for r in responses] == [200] * 20
    assert BotProfile.objects.filter(user=user).count() == 1


def test_concurrent_next_actions_count_every_served_exercise():
    for _ in range(30):
        ExerciseFactory()
    profile = BotProfileFactory()

    responses = in_parallel(
        10,
        lambda c: c.get(f"/api/v1/users/{profile.user_id}/bots/Bulgarian/next-action/", **AUTH),
    )

    actions = Counter(r.json()["action"] for r in responses)
    assert actions == {"new_exercise": 9, "praise_and_next_set": 1}
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 9


def test_twenty_concurrent_next_actions_leave_counters_equal_to_exercises_served():
    for _ in range(40):
        ExerciseFactory()
    profile = BotProfileFactory()

    responses = in_parallel(
        20,
        lambda c: c.get(f"/api/v1/users/{profile.user_id}/bots/Bulgarian/next-action/", **AUTH),
    )

    served = sum(r.json()["action"] == "new_exercise" for r in responses)
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == served == 15
