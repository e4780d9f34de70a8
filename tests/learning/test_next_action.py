"""The session engine through GET next-action: sets, sessions, freezes, plans, streaks."""

import logging
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from learning.models import BotProfile, TelegramUser
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    TelegramUserFactory,
)

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def next_action(client, profile, bot="Bulgarian"):
    response = client.get(f"/api/v1/users/{profile.user_id}/bots/{bot}/next-action/", **AUTH)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def bank():
    return [ExerciseFactory() for _ in range(30)]


def test_default_session_sequence(client, bank):
    profile = BotProfileFactory()

    actions = [next_action(client, profile)["action"] for _ in range(19)]

    new = "new_exercise"
    assert actions == [new] * 5 + ["praise_and_next_set"] + [new] * 5 + ["praise_and_next_set"] + [
        new
    ] * 5 + ["congratulations_and_wait", "limit_reached"]
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 15
    assert profile.session_frozen_until is not None


def test_congratulations_carries_pause_message_and_payment_button(client, bank):
    profile = BotProfileFactory(
        exercises_get_in_session=15, exercises_get_in_set=5, session_started_at=timezone.now()
    )

    result = next_action(client, profile)
    frozen = next_action(client, profile)

    assert result == {
        "action": "congratulations_and_wait",
        "message": "Congratulations, you have done 15 exercises! Time for a short break. "
        "The next session will be ready in 3 hours.",
        "pause": "PT3H",
        "keyboard": [
            {
                "text": "Support the project and continue now",
                "callback_data": "initiate_payment:session_unlock",
            }
        ],
    }
    assert frozen["action"] == "limit_reached"
    assert set(frozen) == {"action", "message", "keyboard"}
    assert frozen["message"] == (
        "You have finished this session. The next exercise will be ready in 3 hours."
    )


def test_pause_is_written_in_the_learners_language(client, bank):
    now = timezone.now()
    profile = BotProfileFactory(
        exercises_get_in_session=15,
        exercises_get_in_set=5,
        session_started_at=now,
        user_language="ru",
    )

    result = next_action(client, profile)
    BotProfile.objects.filter(pk=profile.pk).update(
        session_frozen_until=now + timedelta(hours=2, minutes=21, seconds=30)
    )
    frozen = next_action(client, profile)

    assert result["message"].endswith("Следующая сессия будет готова через 3 часа.")
    assert frozen["message"].endswith("будет доступно через 2 часа 22 минуты.")


def test_streak_variant_of_congratulations(client, bank):
    profile = BotProfileFactory(
        exercises_get_in_session=15,
        session_started_at=timezone.now(),
        current_streak_days=4,
        user_language="de",
    )

    result = next_action(client, profile)

    assert "day 4 of your streak" in result["message"]  # unsupported language → English


def test_new_exercise_shape(client):
    exercise = ExerciseFactory(
        exercise_type="choose_accent",
        data={"options": ["вода\u0300", "во\u0300да"], "meaning": "течност"},
        topic="NATURE",
    )
    profile = BotProfileFactory(user_language="bg")

    result = next_action(client, profile)

    assert result == {
        "exercise": {
            "exercise_id": exercise.pk,
            "exercise_type": "choose_accent",
            "exercise_language": "Bulgarian",
            "language_level": "A2",
            "topic": "NATURE",
            "exercise_text": result["exercise"]["exercise_text"],
            "ui_template": "choose",
            "data": {"options": ["вода\u0300", "во\u0300да"]},
        },
        "action": "new_exercise",
    }
    assert result["exercise"]["exercise_text"] not in (
        "",
        "Choose the word with the correct stress.",
    )


def test_serbian_cyrillic_profiles_see_cyrillic_data(client):
    ExerciseFactory(
        exercise_language="Serbian",
        data={"text_with_blanks": "Ja ___ kafu.", "words": ["pijem", "piješ"]},
    )
    profile = BotProfileFactory(bot_id="Serbian", settings={"alphabet": "cyrillic"})

    result = next_action(client, profile, bot="Serbian")

    assert result["exercise"]["data"] == {
        "text_with_blanks": "Ја ___ кафу.",
        "words": ["пијем", "пијеш"],
    }
    assert result["exercise"]["exercise_text"] == "Fill in the blanks in the sentence."


def test_empty_bank_gives_error_and_keeps_state(client):
    profile = BotProfileFactory()

    result = next_action(client, profile)

    assert result == {
        "action": "error",
        "message": "Sorry, we have no new exercise for you right now. "
        "Please try again a little later.",
    }
    profile.refresh_from_db()
    assert profile.session_started_at is not None
    assert profile.exercises_get_in_session == 0


def test_missing_profile_is_created_from_telegram_language(client, bank):
    user = TelegramUserFactory(telegram_data={"language_code": "tr"})

    response = client.get(f"/api/v1/users/{user.pk}/bots/Serbian/next-action", **AUTH)

    assert response.status_code == 200
    profile = BotProfile.objects.get(user=user, bot_id="Serbian")
    assert (profile.user_language, profile.language_level) == ("tr", "A2")


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/v1/users/999/bots/Bulgarian/next-action/", 400, "user_not_found"),
        ("/api/v1/users/1/bots/Klingon/next-action/", 422, "invalid_bot_id"),
        ("/api/v1/users/999/next_action/", 400, "user_not_found"),
    ],
)
def test_next_action_errors(client, url, status, code):
    response = client.get(url, **AUTH)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not BotProfile.objects.exists()


def test_legacy_route_uses_the_default_bot(client, bank):
    user = TelegramUserFactory()

    response = client.get(f"/api/v1/users/{user.pk}/next_action/", **AUTH)

    assert response.json()["action"] == "new_exercise"
    assert BotProfile.objects.get(user=user).bot_id == "Bulgarian"


def test_trial_and_premium_have_no_pause(client, bank):
    user = TelegramUserFactory(status="premium")
    profile = BotProfileFactory(
        user=user, exercises_get_in_session=15, session_started_at=timezone.now()
    )

    result = next_action(client, profile)
    after = next_action(client, profile)

    assert result["pause"] == "PT0S"
    assert after["action"] == "new_exercise"


def test_expired_plan_downgrades_and_uses_the_free_pause(client, bank):
    user = TelegramUserFactory(
        status="premium", status_expires_at=timezone.now() - timedelta(seconds=1)
    )
    profile = BotProfileFactory(
        user=user, exercises_get_in_session=15, session_started_at=timezone.now()
    )

    result = next_action(client, profile)

    assert result["pause"] == "PT3H"
    user.refresh_from_db()
    assert (user.status, user.status_expires_at, user.status_source) == ("free", None, "expired")


def test_freeze_passing_starts_a_new_session(client, bank):
    profile = BotProfileFactory(
        exercises_get_in_session=15,
        session_started_at=timezone.now() - timedelta(hours=2),
        session_frozen_until=timezone.now() - timedelta(seconds=1),
        wants_session_reminders=True,
    )

    result = next_action(client, profile)

    assert result["action"] == "new_exercise"
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 1
    assert profile.session_frozen_until is None
    assert profile.wants_session_reminders is None


def test_old_session_restarts_silently_mid_set(client, bank):
    profile = BotProfileFactory(
        exercises_get_in_session=7,
        exercises_get_in_set=2,
        session_started_at=timezone.now() - timedelta(hours=3, seconds=1),
    )

    next_action(client, profile)

    profile.refresh_from_db()
    assert (profile.exercises_get_in_session, profile.exercises_get_in_set) == (1, 1)


@pytest.mark.parametrize(
    ("last", "stored", "expected"),
    [(None, 0, 1), (timedelta(0), 3, 3), (timedelta(days=1), 3, 4), (timedelta(days=2), 3, 1)],
)
def test_streak_on_utc_dates(client, bank, last, stored, expected):
    now = timezone.now()
    profile = BotProfileFactory(
        current_streak_days=stored,
        last_exercise_at=None if last is None else now - last,
        session_started_at=now,
    )

    next_action(client, profile)

    profile.refresh_from_db()
    assert profile.current_streak_days == expected


def test_custom_settings_are_applied_key_by_key(client, bank, caplog):
    user = TelegramUserFactory(
        custom_settings={"foo": 1, "session_exercise_limit": 2, "exercises_in_set": "x"}
    )
    profile = BotProfileFactory(user=user)

    with caplog.at_level(logging.WARNING, logger="learning.effective_settings"):
        actions = [next_action(client, profile)["action"] for _ in range(3)]

    assert actions == ["new_exercise", "new_exercise", "congratulations_and_wait"]
    logged = caplog.text
    assert "'foo'" in logged
    assert "'exercises_in_set'" in logged


def test_profile_settings_override_user_settings(client, bank):
    user = TelegramUserFactory(custom_settings={"exercises_in_set": 1})
    profile = BotProfileFactory(user=user, settings={"exercises_in_set": 2})

    actions = [next_action(client, profile)["action"] for _ in range(3)]

    assert actions == ["new_exercise", "new_exercise", "praise_and_next_set"]


def test_available_types_and_distribution(client):
    for _ in range(5):
        ExerciseFactory()
    ExerciseFactory(exercise_type="choose_sentence", data={"options": ["Да.", "Не."]})
    user = TelegramUserFactory(
        custom_settings={"exercise_type_distribution": {"choose_sentence": 1}}
    )
    profile = BotProfileFactory(user=user)

    result = next_action(client, profile)

    assert result["exercise"]["exercise_type"] == "choose_sentence"


def test_unanswered_exercises_count_as_served(client, bank):
    profile = BotProfileFactory()

    next_action(client, profile)
    next_action(client, profile)

    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 2


def test_set_boundary_resets_the_error_count(client, bank):
    profile = BotProfileFactory(
        exercises_get_in_set=5, errors_count_in_set=2, session_started_at=timezone.now()
    )

    assert next_action(client, profile)["action"] == "praise_and_next_set"
    profile.refresh_from_db()
    assert (profile.exercises_get_in_set, profile.errors_count_in_set) == (0, 0)


def test_serving_an_exercise_costs_few_queries(client, bank, django_assert_max_num_queries):
    profile = BotProfileFactory(session_started_at=timezone.now())
    for exercise in bank[:10]:
        ExerciseAttemptFactory(user=profile.user, exercise=exercise)

    # ≤ 6 statements of ours, plus the savepoint pair of the test transaction.
    with django_assert_max_num_queries(8):
        result = next_action(client, profile)

    assert result["action"] == "new_exercise"


def test_selection_sql_uses_no_random_ordering(client, bank):
    profile = BotProfileFactory()

    with CaptureQueriesContext(connection) as queries:
        next_action(client, profile)

    assert not any("RANDOM()" in q["sql"].upper() for q in queries.captured_queries)


def test_user_is_not_created_by_next_action(client):
    client.get("/api/v1/users/5/bots/Bulgarian/next-action/", **AUTH)

    assert not TelegramUser.objects.exists()


def test_timestamps_are_aware_utc(client, bank):
    profile = BotProfileFactory()

    next_action(client, profile)

    profile.refresh_from_db()
    assert isinstance(profile.last_exercise_at, datetime)
    assert profile.last_exercise_at.utcoffset() == timedelta(0)
