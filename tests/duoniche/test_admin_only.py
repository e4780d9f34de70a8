"""The admin's middleware (sessions, CSRF, authentication, two-factor, messages) runs for the admin
and is skipped on the bot API, /healthz and /metrics (duoniche/admin_only.py)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tests.learning.factories import TelegramUserFactory

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def test_a_bot_call_gets_no_session_csrf_or_cookie_vary(client):
    user = TelegramUserFactory()
    client.cookies["sessionid"] = "a-session-the-bot-never-had"

    response = client.put(
        "/api/v1/users/",
        {
            "telegram_id": user.telegram_id,
            "username": "u",
            "name": "n",
            "user_language": "en",
            "target_language": "Bulgarian",
        },
        content_type="application/json",
        **AUTH,
    )
    health = client.get("/healthz")

    assert response.status_code == 200
    assert health.status_code == 200
    for answer in (response, health):
        assert not answer.cookies  # neither a CSRF cookie nor a session cookie
        assert "Cookie" not in answer.get("Vary", "")
        assert not hasattr(answer.wsgi_request, "session")


def test_the_admin_still_gets_sessions_csrf_and_its_sign_in():
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "a-long-pw-42")
    browser = Client(enforce_csrf_checks=True)

    login_page = browser.get("/admin/login/")
    refused = browser.post("/admin/login/", {"username": "boss", "password": "a-long-pw-42"})
    token = login_page.cookies["csrftoken"].value
    signed_in = browser.post(
        "/admin/login/?next=/admin/",
        {"username": "boss", "password": "a-long-pw-42", "csrfmiddlewaretoken": token},
    )

    assert refused.status_code == 403  # no CSRF token: the admin's form is still protected
    assert signed_in.status_code == 302
    assert browser.get("/admin/").context["user"] == staff
    assert "sessionid" in browser.cookies


def test_the_deploy_check_finds_a_missing_csrf_middleware(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "Csrf" not in m]
    out = StringIO()

    call_command("check", "--deploy", stdout=out, stderr=out)

    assert "duoniche.W010" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_wrappers_work_under_asgi_too():
    import asyncio

    from django.test import AsyncClient

    client = AsyncClient()

    health = asyncio.run(client.get("/healthz"))
    login = asyncio.run(client.get("/admin/login/"))

    assert health.status_code == 200
    assert not health.cookies
    assert login.status_code == 200
    assert "csrftoken" in login.cookies
