"""The user endpoints through the URLconf: ensure, lookup, update, block and preferences."""

import pytest
from django.utils import timezone

from learning.models import BotProfile, TelegramUser
from tests.learning.factories import BotProfileFactory, TelegramUserFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def put(client, url, body):
    return client.put(url, body, content_type="application/json", **AUTH)


def ensure_body(**overrides):
    return {
        "telegram_id": "555",
        "username": "ana",
        "name": "Ana",
        "user_language": "ru",
        "target_language": "Bulgarian",
        "telegram_data": {"language_code": "ru"},
        **overrides,
    }


def test_ensure_creates_the_user_and_profile(client, django_assert_num_queries):
    with django_assert_num_queries(2):  # the read, then one insert-or-get of both rows
        response = put(client, "/api/v1/users/", ensure_body(telegram_id=555))

    assert response.status_code == 200
    body = response.json()
    user = TelegramUser.objects.get()
    assert body == {
        "user_id": user.pk,
        "telegram_id": "555",
        "username": "ana",
        "name": "Ana",
        "user_language": "ru",
        "telegram_data": {"language_code": "ru"},
        "language_level": "A2",
        "cohort": None,
        "plan": None,
        "status": "free",
        "status_expires_at": None,
    }
    profile = BotProfile.objects.get()
    assert (profile.bot_id, profile.user_language, profile.status) == ("Bulgarian", "ru", "active")


def test_ensure_never_modifies_an_existing_user_or_profile(client, django_assert_num_queries):
    put(client, "/api/v1/users/", ensure_body())

    with django_assert_num_queries(1):  # the user joined with its profile; no transaction
        response = put(client, "/api/v1/users", ensure_body(username="other", user_language="en"))

    assert response.status_code == 200
    assert response.json()["username"] == "ana"
    assert response.json()["user_language"] == "ru"
    assert TelegramUser.objects.count() == 1


def test_ensure_adds_a_profile_for_another_bot(client, django_assert_num_queries):
    put(client, "/api/v1/users/", ensure_body())

    with django_assert_num_queries(2):  # the read, then the profile's insert-or-get
        response = put(client, "/api/v1/users/", ensure_body(target_language="Serbian"))

    assert response.status_code == 200
    assert sorted(BotProfile.objects.values_list("bot_id", flat=True)) == ["Bulgarian", "Serbian"]


def test_ensure_with_an_unknown_target_writes_nothing(client):
    response = put(client, "/api/v1/users/", ensure_body(target_language="Klingon"))

    assert response.status_code == 400
    assert response.json() == {
        "detail": "'Klingon' is not a configured target language; valid values: Bulgarian, "
        "Serbian.",
        "code": "invalid_target_language",
    }
    assert not TelegramUser.objects.exists()


def test_ensure_validation_errors_are_listed_in_order(client):
    response = put(client, "/api/v1/users/", {"telegram_id": True, "user_language": ""})

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "telegram_id"],
                "msg": "Input should be a valid string",
                "type": "string_type",
            },
            {"loc": ["body", "username"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
            {
                "loc": ["body", "user_language"],
                "msg": "String should have at least 1 character",
                "type": "string_too_short",
            },
            {"loc": ["body", "target_language"], "msg": "Field required", "type": "missing"},
        ],
        "code": "validation_error",
    }


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (
            '{"telegram_id": ',
            [{"loc": ["body", 16], "msg": "JSON decode error", "type": "json_invalid"}],
        ),
        (
            "[1, 2]",
            [
                {
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "type": "model_attributes_type",
                }
            ],
        ),
    ],
)
def test_malformed_bodies(client, raw, detail):
    response = client.put("/api/v1/users/", raw, content_type="text/plain", **AUTH)

    assert response.status_code == 422
    assert response.json()["detail"] == detail


def test_strings_are_capped(client):
    response = put(client, "/api/v1/users/", ensure_body(username="x" * 256))

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "username"],
            "msg": "String should have at most 255 characters",
            "type": "string_too_long",
        }
    ]


def test_expired_plan_is_shown_as_free():
    user = TelegramUserFactory(
        status="premium", status_expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )
    profile = BotProfileFactory(user=user)
    from django.test import Client

    response = Client().get(f"/api/v1/users/by-telegram-id/{user.telegram_id}", **AUTH)

    assert response.status_code == 200
    assert response.json()["status"] == "free"
    assert response.json()["status_expires_at"] is None
    assert response.json()["language_level"] == profile.language_level


def test_by_telegram_id_picks_the_most_recently_practised_profile(client):
    user = TelegramUserFactory()
    BotProfileFactory(user=user, bot_id="Bulgarian")
    BotProfileFactory(
        user=user,
        bot_id="Serbian",
        user_language="sr",
        last_exercise_at=timezone.now() - timezone.timedelta(days=1),
    )

    response = client.get(f"/api/v1/users/by-telegram-id/{user.telegram_id}", **AUTH)
    bulgarian = client.get(
        f"/api/v1/users/by-telegram-id/{user.telegram_id}?bot_id=Bulgarian", **AUTH
    )

    assert response.json()["user_language"] == "sr"
    assert bulgarian.json()["user_language"] == "en"


def test_by_telegram_id_without_practice_picks_the_first_profile(client):
    user = TelegramUserFactory()
    first = BotProfileFactory(user=user, bot_id="Serbian", user_language="sr")
    BotProfileFactory(user=user, bot_id="Bulgarian")

    response = client.get(f"/api/v1/users/by-telegram-id/{user.telegram_id}/", **AUTH)

    assert response.json()["user_language"] == first.user_language


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 404, "profile_not_found"),
        ("?bot_id=Klingon", 400, "invalid_bot_id"),
        ("?bot_id=Serbian", 404, "profile_not_found"),
    ],
)
def test_by_telegram_id_errors(client, query, status, code):
    user = TelegramUserFactory()
    if query != "":
        BotProfileFactory(user=user)

    response = client.get(f"/api/v1/users/by-telegram-id/{user.telegram_id}{query}", **AUTH)

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_by_telegram_id_unknown_user(client):
    response = client.get("/api/v1/users/by-telegram-id/999999", **AUTH)

    assert (response.status_code, response.json()["code"]) == (404, "user_not_found")


def update_body(**overrides):
    return {
        "user_id": 0,
        "telegram_id": "0",
        "username": "new",
        "name": None,
        "user_language": "uk",
        "target_language": "Bulgarian",
        **overrides,
    }


def test_update_changes_names_and_language_but_keeps_omitted_telegram_data(client):
    profile = BotProfileFactory(user__telegram_data={"language_code": "en", "x": 1})

    response = put(client, f"/api/v1/users/{profile.user_id}", update_body(language_level="C2"))

    assert response.status_code == 200
    assert response.json()["username"] == "new"
    assert response.json()["name"] is None
    assert response.json()["user_language"] == "uk"
    assert response.json()["telegram_data"] == {"language_code": "en", "x": 1}
    profile.refresh_from_db()
    assert (profile.user_language, profile.language_level) == ("uk", "A2")


def test_update_with_explicit_null_clears_telegram_data(client):
    profile = BotProfileFactory()

    response = put(client, f"/api/v1/users/{profile.user_id}/", update_body(telegram_data=None))

    assert response.json()["telegram_data"] is None
    assert TelegramUser.objects.get().telegram_data is None


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [("Serbian", 404, "profile_not_found"), ("Klingon", 400, "invalid_target_language")],
)
def test_update_checks_everything_before_writing(client, target, status, code):
    profile = BotProfileFactory(user__username="old")

    response = put(client, f"/api/v1/users/{profile.user_id}", update_body(target_language=target))

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert TelegramUser.objects.get().username == "old"


def test_update_unknown_user(client):
    response = put(client, "/api/v1/users/424242", update_body())

    assert (response.status_code, response.json()["code"]) == (404, "user_not_found")


def test_block_and_reactivation_by_next_action(client):
    profile = BotProfileFactory()
    url = f"/api/v1/users/{profile.user_id}/bots/Bulgarian/block"

    response = client.post(
        url,
        {"telegram_id": int(profile.user.telegram_id), "reason": "bot blocked"},
        content_type="application/json",
        **AUTH,
    )

    assert response.json() == {"status": "ok"}
    profile.refresh_from_db()
    assert (profile.status, profile.reason) == ("blocked", "bot blocked")
    client.get(f"/api/v1/users/{profile.user_id}/bots/Bulgarian/next-action/", **AUTH)
    profile.refresh_from_db()
    assert (profile.status, profile.reason) == ("active", None)


@pytest.mark.parametrize(
    ("bot", "telegram_id", "status", "code"),
    [
        ("Klingon", None, 422, "invalid_bot_id"),
        ("Bulgarian", "1", 404, "user_not_found"),
        ("Serbian", None, 400, "profile_not_found"),
    ],
)
def test_block_errors(client, bot, telegram_id, status, code):
    profile = BotProfileFactory()

    response = client.post(
        f"/api/v1/users/{profile.user_id}/bots/{bot}/block",
        {"telegram_id": telegram_id or profile.user.telegram_id},
        content_type="application/json",
        **AUTH,
    )

    assert (response.status_code, response.json()["code"]) == (status, code)
    profile.refresh_from_db()
    assert profile.status == "active"


def test_session_reminders_store_the_tri_state_and_ignore_level(client):
    profile = BotProfileFactory()
    url = f"/api/v1/users/{profile.user_id}/bots/Bulgarian/preferences/session_reminders"

    on = put(client, url, {"wants_reminders": "yes", "language_level": "B2"})
    omitted = put(client, url, {})

    assert on.json() == {
        "user_id": profile.user_id,
        "bot_id": "Bulgarian",
        "wants_session_reminders": True,
        "status": "ok",
    }
    assert omitted.json()["wants_session_reminders"] is False
    profile.refresh_from_db()
    assert profile.wants_session_reminders is None
    assert profile.language_level == "A2"


def test_session_reminders_validate_ignored_fields(client):
    profile = BotProfileFactory()
    url = f"/api/v1/users/{profile.user_id}/bots/Bulgarian/preferences/session_reminders"

    response = put(client, url, {"language_level": "Z9", "alphabet": "greek"})

    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body", "language_level"], "enum"),
        (["body", "alphabet"], "string_pattern_mismatch"),
    ]
    assert response.json()["detail"][0]["msg"] == (
        "Input should be 'A1', 'A2', 'B1', 'B2', 'C1' or 'C2'"
    )


def test_preferences_merge_and_remove_keys(client):
    profile = BotProfileFactory(bot_id="Serbian", settings={"exercises_in_set": 3, "junk": 1})
    url = f"/api/v1/users/{profile.user_id}/bots/Serbian/preferences"

    set_response = put(client, url, {"alphabet": "cyrillic"})
    keep_response = put(client, url, {})
    clear_response = put(client, url, {"alphabet": None})

    assert set_response.json() == {
        "user_id": profile.user_id,
        "bot_id": "Serbian",
        "settings": {"exercises_in_set": 3, "alphabet": "cyrillic"},
    }
    assert keep_response.json()["settings"]["alphabet"] == "cyrillic"
    assert clear_response.json()["settings"] == {"exercises_in_set": 3}
    profile.refresh_from_db()
    assert profile.settings == {"exercises_in_set": 3, "junk": 1}


def test_preferences_reject_unknown_alphabets(client):
    profile = BotProfileFactory(bot_id="Serbian")

    response = put(
        client, f"/api/v1/users/{profile.user_id}/bots/Serbian/preferences", {"alphabet": "greek"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "string_pattern_mismatch"


@pytest.mark.parametrize(
    ("bot", "status", "code"),
    [("Klingon", 422, "invalid_bot_id"), ("Serbian", 404, "profile_not_found")],
)
def test_preferences_errors(client, bot, status, code):
    profile = BotProfileFactory()

    response = put(client, f"/api/v1/users/{profile.user_id}/bots/{bot}/preferences", {})

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_ids_beyond_bigint_are_rejected_before_the_database(client):
    response = client.get(f"/api/v1/users/{2**64}/bots/Bulgarian/next-action/", **AUTH)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "user_id"]
    assert response.json()["detail"][0]["type"] == "less_than_equal"
