"""Wire rules shared by every /api/v1 endpoint: auth, slash forms, 404/405, error bodies."""

import re

import pytest
from django.urls import get_resolver
from rest_framework.exceptions import ErrorDetail

from duoniche.api.errors import exception_handler
from duoniche.api.routing import CANONICAL_PATHS
from duoniche.durations import format_iso_duration
from duoniche.texts import format_pause_time

pytestmark = pytest.mark.django_db

SAMPLES = {
    "user_id": "1",
    "bot_id": "Bulgarian",
    "telegram_id": "1",
    "exercise_id": "1",
    "task_id": "1",
    "source": "session_unlock",
}


def concrete(path):
    return re.sub(r"{(\w+)}", lambda m: SAMPLES[m.group(1)], path)


get_resolver().url_patterns  # noqa: B018  (loading the URLconf registers the routes)
ROUTES = sorted(CANONICAL_PATHS)


def test_every_route_is_listed():
    assert "/api/v1/users/" in ROUTES
    assert "/api/v1/users/{user_id}/bots/{bot_id}/next-action/" in ROUTES


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_needs_a_token(client, path):
    missing = client.get(concrete(path))
    wrong = client.get(concrete(path), HTTP_AUTHORIZATION="Bearer nope")

    assert missing.status_code == 401
    assert missing.json()["code"] == "not_authenticated"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_answers_both_slash_forms_without_redirect(client, path):
    url = concrete(path)
    other = url[:-1] if url.endswith("/") else url + "/"

    for candidate in (url, other):
        response = client.options(candidate, HTTP_X_API_KEY="test-token")
        assert response.status_code not in (301, 302, 307, 308, 404), candidate


def test_tokens_are_accepted_in_either_header(client, settings):
    settings.API_TOKENS = ["a", "b"]

    bearer = client.get("/api/v1/users/by-telegram-id/1", HTTP_AUTHORIZATION="Bearer a")
    api_key = client.get("/api/v1/users/by-telegram-id/1", HTTP_X_API_KEY="b")

    assert bearer.status_code == api_key.status_code == 404  # authenticated; no such user


def test_anonymous_mode_lets_requests_through(client, settings):
    settings.API_TOKENS = []

    response = client.get("/api/v1/users/by-telegram-id/1")

    assert response.json()["code"] == "user_not_found"


def test_unknown_paths_and_methods(client):
    unknown = client.post("/api/v1/nothing/here", HTTP_X_API_KEY="test-token")
    wrong_method = client.delete("/api/v1/users/", HTTP_X_API_KEY="test-token")

    assert (unknown.status_code, unknown.json()) == (
        404,
        {"detail": "Not found.", "code": "not_found"},
    )
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


def test_unhandled_errors_become_a_json_500():
    response = exception_handler(RuntimeError("boom"), {})

    assert response.status_code == 500
    assert response.data == {"detail": "Internal server error.", "code": "internal_error"}


def test_framework_errors_keep_the_error_body():
    from rest_framework.exceptions import NotAuthenticated

    response = exception_handler(NotAuthenticated(ErrorDetail("x")), {})

    assert response.data["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("seconds", "iso"),
    [
        (10800, "PT3H"),
        (1800, "PT30M"),
        (0, "PT0S"),
        (90000, "P1DT1H"),
        (5400, "PT1H30M"),
        (10799.000005, "PT2H59M59.000005S"),
        (86400, "P1D"),
        (-5, "PT0S"),
    ],
)
def test_durations_on_the_wire(seconds, iso):
    from datetime import timedelta

    assert format_iso_duration(timedelta(seconds=seconds)) == iso


@pytest.mark.parametrize(
    ("seconds", "language", "text"),
    [
        (10800, "en", "3 hours"),
        (3600, "en", "1 hour"),
        (10799.99, "en", "3 hours"),  # rounded up to the minute: never early
        (10790, "en", "3 hours"),
        (10740, "en", "2 hours 59 minutes"),
        (2700, "en", "45 minutes"),
        (60, "en", "1 minute"),
        (61, "en", "2 minutes"),
        (59.9, "en", "less than a minute"),
        (0, "en", "less than a minute"),
        (-5, "en", "less than a minute"),
        (93600, "en", "26 hours"),
        (10800, "ru", "3 часа"),
        (3600, "ru", "1 час"),
        (5 * 3600, "ru", "5 часов"),
        (21 * 3600, "ru", "21 час"),
        (3600 + 60, "ru", "1 час 1 минуту"),
        (2 * 3600 + 22 * 60, "ru", "2 часа 22 минуты"),
        (2700, "ru", "45 минут"),
        (10, "ru", "несколько секунд"),
        (11 * 3600, "uk", "11 годин"),
        (2 * 60, "uk", "2 хвилини"),
        (3 * 3600 + 60, "sr", "3 sata i 1 minut"),
        (5 * 60, "sr", "5 minuta"),
        (3600, "bg", "1 час"),
        (2 * 3600 + 30 * 60, "bg", "2 часа и 30 минути"),
        (3 * 3600, "tr", "3 saat"),
        (90 * 60, "tr", "1 saat 30 dakika"),
        (10800, "pt-BR", "3 hours"),  # no catalogue: English
    ],
)
def test_pause_time_in_texts(seconds, language, text):
    from datetime import timedelta

    assert format_pause_time(timedelta(seconds=seconds), language=language) == text


def test_no_thread_is_started_by_handling_a_request(client):
    import threading

    before = threading.active_count()
    client.get("/healthz")

    assert threading.active_count() == before


def test_nul_characters_are_refused_before_the_database(client):
    body = {"telegram_id": "1", "username": "a\x00b", "name": None, "user_language": "en",
            "target_language": "Bulgarian", "telegram_data": {"k\x00": "v"}}  # fmt: skip

    response = client.put(
        "/api/v1/users/", body, content_type="application/json", HTTP_X_API_KEY="test-token"
    )
    in_path = client.get("/api/v1/users/by-telegram-id/1%002", HTTP_X_API_KEY="test-token")

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [
        ["body", "username"],
        ["body", "telegram_data", "k\x00"],
    ]
    assert response.json()["detail"][0]["type"] == "string_nul_character"
    assert in_path.status_code == 422
