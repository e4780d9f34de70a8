"""Language codes from the bots are normalised wherever they enter (issue 10, item 7).

Telegram's `language_code` and the body's `user_language` are not ours: whatever arrives is
stored as a short lower-case language tag, or as `DEFAULT_USER_LANGUAGE` when it is not one, so
that the `varchar(16)` column and every reader of it (texts, prompts, metrics) get a sane value.
"""

import pytest
from django.urls import reverse

from learning.models import BotProfile
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, TelegramUserFactory
from tests.learning.test_admin import submitted

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
GARBAGE = [
    ("x" * 40, "en"),  # too long for the column
    ("en. Say correct", "en"),  # not a language tag
    ("<b>ru</b>", "en"),
    ("12", "en"),
    ("zh-Hant-TW-variant1", "zh-hant-tw"),  # a tag too long: trailing subtags go
]


def put(client, url, body):
    return client.put(url, body, content_type="application/json", **AUTH)


@pytest.mark.parametrize(("code", "stored"), [*GARBAGE, ("pt-BR", "pt-br"), ("sr_Latn", "sr-latn")])
def test_next_action_creates_the_profile_with_a_normalised_telegram_language(client, code, stored):
    ExerciseFactory(exercise_language="Serbian")
    user = TelegramUserFactory(telegram_data={"language_code": code})

    response = client.get(f"/api/v1/users/{user.pk}/bots/Serbian/next-action/", **AUTH)

    assert response.status_code == 200, response.content
    assert BotProfile.objects.get(user=user, bot_id="Serbian").user_language == stored


def test_a_non_string_telegram_language_falls_back_to_the_default(client):
    ExerciseFactory(exercise_language="Serbian")
    user = TelegramUserFactory(telegram_data={"language_code": ["ru"]})

    response = client.get(f"/api/v1/users/{user.pk}/bots/Serbian/next-action/", **AUTH)

    assert response.status_code == 200
    assert BotProfile.objects.get(user=user, bot_id="Serbian").user_language == "en"


@pytest.mark.parametrize(("code", "stored"), [*GARBAGE[1:4], ("RU", "ru"), ("pt-BR", "pt-br")])
def test_ensure_stores_a_normalised_user_language(client, code, stored):
    body = {
        "telegram_id": "555",
        "username": "ana",
        "name": "Ana",
        "user_language": code,
        "target_language": "Bulgarian",
    }

    response = put(client, "/api/v1/users/", body)

    assert response.status_code == 200, response.content
    assert response.json()["user_language"] == stored
    assert BotProfile.objects.get().user_language == stored


@pytest.mark.parametrize(("code", "stored"), [*GARBAGE[1:4], ("UK", "uk"), ("pt-BR", "pt-br")])
def test_update_stores_a_normalised_user_language(client, code, stored):
    profile = BotProfileFactory(bot_id="Bulgarian", user_language="ru")
    body = {
        "user_id": 0,
        "telegram_id": "0",
        "username": "new",
        "name": None,
        "user_language": code,
        "target_language": "Bulgarian",
    }

    response = put(client, f"/api/v1/users/{profile.user_id}", body)

    assert response.status_code == 200, response.content
    assert response.json()["user_language"] == stored
    profile.refresh_from_db()
    assert profile.user_language == stored


@pytest.mark.parametrize("code", ["", "x" * 17])
def test_the_body_field_keeps_its_length_limits(client, code):
    profile = BotProfileFactory(bot_id="Bulgarian", user_language="ru")
    body = {
        "user_id": 0,
        "telegram_id": "0",
        "username": "new",
        "name": None,
        "user_language": code,
        "target_language": "Bulgarian",
    }

    response = put(client, f"/api/v1/users/{profile.user_id}", body)

    assert response.status_code == 422
    profile.refresh_from_db()
    assert profile.user_language == "ru"


@pytest.mark.parametrize(("code", "stored"), [("pt-BR", "pt-br"), ("RU", "ru")])
def test_the_profile_admin_stores_a_normalised_user_language(admin_client, code, stored):
    profile = BotProfileFactory(user_language="en")
    url = reverse("admin:learning_botprofile_change", args=[profile.pk])
    data = submitted(admin_client.get(url), "botprofile_form", user_language=code)

    response = admin_client.post(url, data)

    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.user_language == stored


def test_the_profile_admin_refuses_what_is_not_a_language_tag(admin_client):
    profile = BotProfileFactory(user_language="en")
    url = reverse("admin:learning_botprofile_change", args=[profile.pk])
    data = submitted(admin_client.get(url), "botprofile_form", user_language="en. Say correct")

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert b"Not a language tag" in response.content
    profile.refresh_from_db()
    assert profile.user_language == "en"
