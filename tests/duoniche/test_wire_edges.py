"""Edges of the wire contract that a bot written for the previous service runs into (issue 10).

Machine endpoints are never redirected to HTTPS, `bot_id=` (empty) means no bot, the user is
checked before the bot, ids below 1 are 422 lists, an unknown learner is simply not relevant,
OPTIONS and HEAD are 405, and errors under /api/, /healthz and /metrics are JSON whatever fails.
"""

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client
from django.urls import get_resolver

from duoniche.api.routing import CANONICAL_PATHS
from duoniche.service_views import bad_request
from tests.learning.factories import BotProfileFactory, TelegramUserFactory
from tests.notifications.factories import NotificationLogFactory

pytestmark = pytest.mark.django_db

KEY = {"HTTP_X_API_KEY": "test-token"}

get_resolver().url_patterns  # noqa: B018  (loading the URLconf registers the routes)


def _is_json_error(response, status, code):
    assert response.status_code == status, response.content[:200]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == code
    return True


# --- item 11: only the admin is behind the HTTPS redirect ---------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/healthz/",
        "/metrics",
        "/metrics/",
        "/api/schema/",
        "/api/schema",
        "/api/docs/",
        "/api/v1/users/by-telegram-id/1",
        "/api/v1/nothing",
    ],
)
def test_machine_endpoints_are_not_redirected_to_https(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(path, **KEY)

    assert response.status_code not in (301, 302, 307, 308), path


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/admin"])
def test_the_admin_is_still_redirected_to_https(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(path)

    assert response.status_code == 301
    assert response["Location"].startswith("https://")


# --- item 12: wire edges ----------------------------------------------------------------------


def test_an_empty_bot_id_query_means_no_bot(client):
    profile = BotProfileFactory(user=TelegramUserFactory(telegram_id="77"), bot_id="Serbian")

    response = client.get("/api/v1/users/by-telegram-id/77?bot_id=", **KEY)

    assert response.status_code == 200
    assert response.json()["user_id"] == profile.user_id


def test_an_unknown_user_is_404_before_an_unknown_bot(client):
    response = client.get("/api/v1/users/by-telegram-id/404404?bot_id=Klingon", **KEY)

    assert _is_json_error(response, 404, "user_not_found")


def test_a_known_user_with_an_unknown_bot_is_still_400(client):
    TelegramUserFactory(telegram_id="78")

    response = client.get("/api/v1/users/by-telegram-id/78?bot_id=Klingon", **KEY)

    assert _is_json_error(response, 400, "invalid_bot_id")


@pytest.mark.parametrize("user_id", ["0", "-1", "-9223372036854775808"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/users/{}/bots/Bulgarian/next-action/", None),
        ("get", "/api/v1/users/{}/next_action/", None),
        ("post", "/api/v1/users/{}/bots/Bulgarian/block", {"telegram_id": "1"}),
        (
            "put",
            "/api/v1/users/{}/bots/Bulgarian/preferences/session_reminders",
            {"wants_reminders": True},
        ),
        ("put", "/api/v1/users/{}/bots/Bulgarian/preferences", {"alphabet": "latin"}),
        ("get", "/api/v1/users/{}/bots/Bulgarian/reports/latest-detailed", None),
    ],
)
def test_user_ids_below_one_are_a_422_list(client, method, path, body, user_id):
    response = getattr(client, method)(
        path.format(user_id), data=body, content_type="application/json", **KEY
    )

    assert _is_json_error(response, 422, "validation_error")
    (item,) = response.json()["detail"]
    assert item["loc"] == ["path", "user_id"]
    assert item["type"] == "greater_than_equal"


def test_put_user_keeps_no_lower_bound_on_its_path(client):
    body = {
        "user_id": 0,
        "telegram_id": "1",
        "username": None,
        "name": None,
        "user_language": "en",
        "target_language": "Bulgarian",
    }

    response = client.put("/api/v1/users/0", data=body, content_type="application/json", **KEY)

    assert _is_json_error(response, 404, "user_not_found")


@pytest.mark.parametrize("user_id", ["0", "-5"])
def test_an_unknown_learner_is_not_relevant(client, user_id):
    log = NotificationLogFactory()

    unknown = client.get(
        f"/api/v1/notifications/none/relevance?bot_id=Bulgarian&user_id={user_id}", **KEY
    )
    known = client.get(
        f"/api/v1/notifications/{log.task_id}/relevance?bot_id=Bulgarian&user_id={user_id}",
        **KEY,
    )

    assert (known.status_code, known.json()) == (200, {"is_relevant": False})
    assert (unknown.status_code, unknown.json()) == (200, {"is_relevant": False})


def test_relevance_still_requires_a_user_id(client):
    response = client.get("/api/v1/notifications/t-1/relevance?bot_id=Bulgarian", **KEY)

    assert _is_json_error(response, 422, "validation_error")


@pytest.mark.parametrize("path", sorted(CANONICAL_PATHS))
@pytest.mark.parametrize("method", ["options", "head"])
def test_options_and_head_are_not_allowed(client, path, method):
    url = path.format(
        user_id=1, bot_id="Bulgarian", telegram_id=1, exercise_id=1, task_id=1, source="x"
    )

    response = getattr(client, method)(url, **KEY)

    assert response.status_code == 405, url
    assert response["Content-Type"].startswith("application/json")
    if method == "options":
        assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path", ["/api/v1/users/by-telegram-id/1", "/api/v1/nothing", "/healthz", "/metrics"]
)
def test_an_unknown_host_is_a_json_400(client, path):
    response = client.get(path, HTTP_HOST="evil.example", **KEY)

    assert _is_json_error(response, 400, "bad_request")


@pytest.mark.parametrize("path", ["/healthz", "/healthz/", "/metrics", "/metrics/"])
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "options"])
def test_wrong_methods_on_machine_endpoints_are_a_json_405(client, path, method):
    response = getattr(client, method)(path)

    assert _is_json_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("path", ["/healthz", "/healthz/", "/metrics", "/metrics/"])
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_wrong_methods_on_machine_endpoints_are_a_json_405_with_csrf_enforced(path, method):
    # A real server enforces CSRF (the test client does not by default): without the exemption
    # Django's CSRF check answers an HTML 403 before the view can say 405 (bench/attack.py).
    response = getattr(Client(enforce_csrf_checks=True), method)(path)

    assert _is_json_error(response, 405, "method_not_allowed")


def test_a_body_too_large_outside_the_api_views_is_a_json_413(rf):
    # A middleware that reads a form body (CSRF, on a view that is not exempt) raises this
    # before any view: Django then calls handler400.
    request = rf.post("/api/v1/users/", data={"field": "x"})

    response = bad_request(request, RequestDataTooBig("too big"))

    assert response.status_code == 413
    assert json.loads(response.content)["code"] == "request_too_large"
