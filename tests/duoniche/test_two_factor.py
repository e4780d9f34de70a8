"""Two-factor sign-in for staff (TOTP): setting it up, signing in with a code, the groups that must
have it, and the superuser's reset. Codes are computed as an authenticator app would."""

from __future__ import annotations

import re
from binascii import unhexlify

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from duoniche.two_factor_views import PENDING_KEY

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-1"


def code(key: str, steps_ahead: int = 0) -> str:
    """The code the app shows now (or `steps_ahead` 30-second steps later), as digits."""
    return f"{totp(unhexlify(key), drift=steps_ahead):06d}"


@pytest.fixture
def staff(settings) -> User:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # wrong codes do not slow the next test step
    return User.objects.create_user("mod", password=PASSWORD, is_staff=True)


def sign_in(client, password=PASSWORD, otp_token="", username="mod", address="10.0.0.1"):
    return client.post(
        reverse("admin:login"),
        {
            "username": username,
            "password": password,
            "otp_token": otp_token,
            "next": reverse("admin:index"),
        },
        REMOTE_ADDR=address,
    )


def set_up(client) -> str:
    """Open the set-up page, read the key it shows, confirm with the app's code: the hex key."""
    page = client.get(reverse("two_factor"))
    assert page.status_code == 200
    assert "<svg" in page.content.decode()  # the QR code
    key = client.session[PENDING_KEY]
    response = client.post(reverse("two_factor"), {"action": "confirm", "code": code(key)})
    assert response.status_code == 302, response.content.decode()
    return key


def test_the_set_up_page_shows_a_key_and_stores_nothing_until_a_code_confirms_it(client, staff):
    assert sign_in(client).status_code == 302
    page = client.get(reverse("two_factor")).content.decode()
    key = client.session[PENDING_KEY]
    shown = re.search(r'id="two-factor-key">([A-Z2-7 ]+)<', page)

    assert shown is not None
    assert shown.group(1).replace(" ", "")  # the base32 text a person types instead of scanning
    assert not TOTPDevice.objects.exists()

    wrong = client.post(reverse("two_factor"), {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    assert not TOTPDevice.objects.exists()
    assert client.session[PENDING_KEY] == key  # the same key: the app need not be scanned again

    client.post(reverse("two_factor"), {"action": "confirm", "code": code(key)})
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed
    assert device.key == key
    assert client.get(reverse("admin:index")).status_code == 200  # this session gave a code


def test_once_set_up_the_password_alone_is_not_enough(client, staff):
    sign_in(client)
    key = set_up(client)
    client.logout()

    no_code = sign_in(client)
    assert no_code.status_code == 200
    assert "enter the code your authenticator app shows" in no_code.content.decode()

    wrong = sign_in(client, otp_token="123456" if code(key, 1) != "123456" else "654321")
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    assert AccessAttempt.objects.get(username="mod").failures_since_start == 1  # counted

    right = sign_in(client, otp_token=code(key, 1))
    assert right.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    client.logout()

    replayed = sign_in(client, otp_token=code(key, 1))  # a code works once
    assert replayed.status_code == 200
    assert "already used" in replayed.content.decode()


def test_guessing_codes_locks_the_account_out_like_wrong_passwords(client, staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    sign_in(client)
    key = set_up(client)
    client.logout()
    wrong = "000000" if code(key, 1) != "000000" else "111111"

    assert sign_in(client, otp_token=wrong).status_code == 200
    assert sign_in(client, otp_token=wrong).status_code == 200
    assert sign_in(client, otp_token=wrong).status_code == 429  # the third failure
    assert sign_in(client, otp_token=code(key, 1), address="10.9.9.9").status_code == 429


def test_a_required_group_sees_only_the_set_up_page_until_it_is_done(client, staff, settings):
    settings.STAFF_TWO_FACTOR_GROUPS = ["support"]
    staff.groups.add(Group.objects.get_or_create(name="support")[0])
    assert sign_in(client).status_code == 302

    for page in (reverse("admin:index"), reverse("admin:auth_user_changelist")):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"] == reverse("two_factor")
    assert "requires two-factor" in client.get(reverse("two_factor")).content.decode()

    set_up(client)
    assert client.get(reverse("admin:index")).status_code == 200

    refused = client.post(reverse("two_factor"), {"action": "off"}, follow=True)
    assert "requires two-factor sign-in" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=staff).exists()


def test_without_a_required_group_two_factor_is_optional_and_can_be_turned_off(
    client, staff, settings
):
    settings.STAFF_TWO_FACTOR_GROUPS = ["support"]
    sign_in(client)
    assert client.get(reverse("admin:index")).status_code == 200  # no detour
    set_up(client)

    client.post(reverse("two_factor"), {"action": "off"})

    assert not TOTPDevice.objects.exists()
    client.logout()
    assert sign_in(client).status_code == 302  # the password is enough again


def test_a_session_without_a_code_is_signed_out_once_the_member_sets_it_up_elsewhere(
    client, staff, django_user_model
):
    from django.test import Client

    sign_in(client)
    other = Client()
    assert sign_in(other).status_code == 302
    set_up(client)

    response = other.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert other.get(reverse("admin:index"))["Location"].startswith(reverse("admin:login"))


def test_moving_to_a_new_phone_replaces_the_device_only_when_its_code_is_right(client, staff):
    sign_in(client)
    first = set_up(client)
    client.get(reverse("two_factor") + "?replace=1")
    second = client.session[PENDING_KEY]
    assert second != first
    assert TOTPDevice.objects.get(user=staff).key == first  # the old app still works meanwhile

    client.post(reverse("two_factor"), {"action": "confirm", "code": code(second)})

    assert list(TOTPDevice.objects.filter(user=staff).values_list("key", flat=True)) == [second]


def test_only_a_superuser_resets_a_member_who_lost_the_phone(client, staff):
    sign_in(client)
    set_up(client)
    device = TOTPDevice.objects.get(user=staff)
    changelist = reverse("admin:otp_totp_totpdevice_changelist")
    reset = {"action": "reset", "_selected_action": [device.pk]}

    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_totpdevice", "delete_totpdevice"])
    )
    client.post(changelist, reset)
    assert TOTPDevice.objects.filter(pk=device.pk).exists()  # a staff member cannot

    boss = User.objects.create_superuser("boss", password=PASSWORD)
    client.logout()
    client.force_login(boss)
    response = client.post(changelist, reset, follow=True)

    assert "Reset for 1 staff member" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff).exists()


def test_the_support_group_helps_learners_and_never_edits_the_bank():
    codenames = set(
        Group.objects.get(name="support").permissions.values_list("codename", flat=True)
    )

    assert {"change_botprofile", "refund_payment", "change_weeklyreport"} <= codenames
    assert not {name for name in codenames if name.endswith("exercise")}
