"""Two-factor sign-in for staff: time-based one-time codes (TOTP) from an authenticator app.

The one write path of django-otp's `TOTPDevice`. A staff member sets it up themselves on the
admin's "Two-factor sign-in" page: the page shows a new key (a QR code and the key as text), kept
in the session only, and the first right code from the app stores it as their device. From then
on the admin asks for a code at every sign-in. A staff member keeps at most one device: confirming
a new one replaces the old.

`STAFF_TWO_FACTOR_GROUPS` names the groups (e.g. moderator, support) whose members must have it:
until they set it up, the admin shows them only the set-up page, and they cannot turn it off. A
superuser resets a member's device when the phone is lost ("Reset two-factor sign-in" on the
devices list); the member then sets up a new one at their next sign-in.
"""

from __future__ import annotations

from base64 import b32encode
from binascii import unhexlify

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp import verify_token as otp_verify_token
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

DEVICE_NAME = "Authenticator app"


class TwoFactorRequired(Exception):
    """The user's group requires two-factor sign-in: it cannot be turned off."""


def two_factor_required(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` belongs to a group that STAFF_TWO_FACTOR_GROUPS names."""
    groups = settings.STAFF_TWO_FACTOR_GROUPS
    if not groups or not user.is_authenticated:
        return False
    return user.groups.filter(name__in=groups).exists()  # type: ignore[attr-defined]


def totp_device(user: AbstractBaseUser) -> TOTPDevice | None:
    """The user's confirmed device, if they have set one up."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def totp_new_key() -> str:
    """A fresh secret for the set-up page; nothing is stored until a code confirms it."""
    return default_key()


def totp_config_url(user: AbstractBaseUser, key: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return TOTPDevice(user=user, key=key).config_url


def totp_key_text(key: str) -> str:
    """The key as the app's "enter a key" screen takes it: base32, in groups of four."""
    text = b32encode(unhexlify(key)).decode()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def totp_enrolment_confirm(request: HttpRequest, key: str, token: str) -> bool:
    """Confirm the new `key` with a code from the app; it replaces any earlier device.

    Right code: the device is the user's one device and this session counts as signed in with it.
    Wrong or malformed code: nothing is written.
    """
    user = request.user
    device = TOTPDevice(user=user, key=key, name=DEVICE_NAME, confirmed=True)
    clock = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if not (token.isdigit() and len(token) == device.digits):
        return False
    if not clock.verify(int(token), device.tolerance):
        return False
    device.last_t = clock.t()  # the same code cannot sign in again
    device.drift = clock.drift
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=user.pk).delete()
        device.save()
    otp_login(request, device)
    return True


def totp_turn_off(user: AbstractBaseUser) -> None:
    """The user turns two-factor sign-in off (refused when their group requires it)."""
    if two_factor_required(user):
        raise TwoFactorRequired
    TOTPDevice.objects.filter(user=user).delete()


def totp_reset(device_ids: list[int]) -> int:
    """A superuser removes devices (a lost phone); returns how many staff members were reset."""
    devices = TOTPDevice.objects.filter(pk__in=device_ids)
    users = set(devices.values_list("user_id", flat=True))
    TOTPDevice.objects.filter(user_id__in=users).delete()
    return len(users)


def totp_sign_in_check(user: AbstractBaseUser, token: str) -> TOTPDevice | None:
    """The user's device if `token` is its current code (each code works once), else None.

    django-otp locks the device row, refuses a code it already accepted and, after wrong codes,
    refuses every code for a growing delay.
    """
    device = totp_device(user)
    if device is None:
        return None
    verified: TOTPDevice | None = otp_verify_token(user, device.persistent_id, token)
    return verified
