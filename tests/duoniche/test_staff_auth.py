"""Repeated failed admin sign-ins are locked out, per username and per address (django-axes);
the bot API's token auth is never counted."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from duoniche.staff_auth import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-1"


@pytest.fixture
def staff(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return User.objects.create_user("mod", password=PASSWORD, is_staff=True)


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
    )


def test_a_right_password_signs_in(client, staff):
    assert sign_in(client, "mod", PASSWORD).status_code == 302


def test_after_the_limit_the_account_is_paused_even_with_the_right_password(client, staff):
    for _ in range(2):
        assert sign_in(client, "mod", "wrong", address="10.0.0.9").status_code == 200
    assert sign_in(client, "mod", "wrong", address="10.0.0.9").status_code == 429  # the third

    locked = sign_in(client, "mod", PASSWORD, address="10.0.0.77")  # another address too

    assert locked.status_code == 429
    assert "Sign-in paused" in locked.content.decode()
    assert AccessAttempt.objects.filter(username="mod").exists()  # the audit trail


def test_failures_from_one_address_pause_every_account_there(client, staff):
    for name in ("a", "b", "c"):
        sign_in(client, name, "wrong", address="10.0.0.5")

    assert sign_in(client, "mod", PASSWORD, address="10.0.0.5").status_code == 429
    assert sign_in(client, "mod", PASSWORD, address="10.0.0.6").status_code == 302


def test_the_bot_api_is_never_counted(client, staff, settings):
    for _ in range(5):
        response = client.get("/api/v1/users/by-telegram-id/1", HTTP_AUTHORIZATION="Bearer nope")
        assert response.status_code == 401

    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy: the header is the client's own words
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the left entry is client-written
        (2, "203.0.113.9, 198.51.100.2", "203.0.113.9"),
        (2, "198.51.100.2", "10.0.0.1"),  # fewer hops than proxies: the socket
        (1, "not-an-address", "10.0.0.1"),
        (1, "", "10.0.0.1"),
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get(
        "/admin/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded
    )

    assert client_ip(request) == expected
