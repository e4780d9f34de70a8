"""Which API transactions commit without waiting for the disk (duoniche/rows.py NO_FLUSH_WAIT).

The test's own transaction wraps each request, so `synchronous_commit` as the request left it
(a `set_config(..., true)` lasts until that transaction ends) shows whether the request's writes
would have waited for the disk.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection

from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, TelegramUserFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@pytest.fixture(autouse=True)
def _waiting_to_start_with():
    assert synchronous_commit() == "on"


@pytest.fixture
def exercise():
    return ExerciseFactory(
        data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една", "един"]},
    )


def validate_wrong(client, profile, exercise):
    return client.post(
        f"/api/v1/exercises/{exercise.pk}/validate/",
        json.dumps(
            {
                "user_id": profile.user_id,
                "answer": {"exercise_type": "fill_in_the_blank", "words": ["една"]},
            }
        ),
        content_type="application/json",
        **AUTH,
    )


def next_action(client, user_id):
    return client.get(f"/api/v1/users/{user_id}/bots/Bulgarian/next-action/", **AUTH)


def test_by_default_an_attempt_commits_without_waiting_for_the_disk(client, exercise):
    profile = BotProfileFactory(bot_id="Bulgarian")

    assert validate_wrong(client, profile, exercise).status_code == 200

    assert synchronous_commit() == "off"


def test_by_default_a_served_exercise_commits_without_waiting_for_the_disk(client, exercise):
    profile = BotProfileFactory(bot_id="Bulgarian")

    response = next_action(client, profile.user_id)

    assert response.json()["action"] == "new_exercise"
    assert synchronous_commit() == "off"


def test_switched_off_the_bookkeeping_waits_for_the_disk(client, settings, exercise):
    settings.DATABASE_ASYNC_BOOKKEEPING_COMMIT = False
    profile = BotProfileFactory(bot_id="Bulgarian")

    assert validate_wrong(client, profile, exercise).status_code == 200
    assert synchronous_commit() == "on"

    assert next_action(client, profile.user_id).json()["action"] == "new_exercise"
    assert synchronous_commit() == "on"


def test_next_action_that_creates_the_profile_waits_for_the_disk(client, exercise):
    user = TelegramUserFactory()

    response = next_action(client, user.pk)

    assert response.json()["action"] == "new_exercise"
    assert synchronous_commit() == "on"


def test_a_new_user_waits_for_the_disk(client):
    response = client.put(
        "/api/v1/users/",
        json.dumps(
            {
                "telegram_id": "777001",
                "username": None,
                "name": None,
                "user_language": "en",
                "target_language": "Bulgarian",
            }
        ),
        content_type="application/json",
        **AUTH,
    )

    assert response.status_code == 200
    assert synchronous_commit() == "on"


def test_a_payment_and_the_session_it_unlocks_wait_for_the_disk(client):
    profile = BotProfileFactory(bot_id="Bulgarian")
    invoice = client.get(
        f"/api/v1/payments/invoice-details/session_unlock/users/{profile.user_id}/bots/Bulgarian",
        **AUTH,
    )

    response = client.post(
        "/api/v1/payments/process",
        json.dumps(
            {
                "telegram_payment_charge_id": "charge-durable",
                "amount": 20,
                "invoice_payload": invoice.json()["invoice_payload"],
                "currency": "XTR",
            }
        ),
        content_type="application/json",
        **AUTH,
    )

    assert response.status_code == 200
    assert "already" not in response.json()["message"]
    assert synchronous_commit() == "on"


def test_next_action_that_ends_the_users_plan_waits_for_the_disk(client, exercise):
    from datetime import timedelta

    from django.utils import timezone

    from duoniche.enums import UserStatus

    user = TelegramUserFactory(
        status=UserStatus.PREMIUM, status_expires_at=timezone.now() - timedelta(days=1)
    )
    BotProfileFactory(user=user, bot_id="Bulgarian")

    response = next_action(client, user.pk)

    assert response.json()["action"] == "new_exercise"
    user.refresh_from_db()
    assert user.status == UserStatus.FREE  # this transaction ended the plan
    assert synchronous_commit() == "on"
