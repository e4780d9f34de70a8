"""Staff sign-in to the admin: the login form with its authenticator code, the guard that keeps
staff without a required second factor out, and the client address the lockout counts per.

Two-factor sign-in (duoniche.two_factor): a staff member who has set up an authenticator gives its
current code with their password; a wrong code counts as a failed sign-in for the lockout. In the
admin, a session that has not given a code is sent to the set-up page when the member's group
requires two-factor sign-in, and back to the login page when the member has a device.

django-axes locks out an admin login after ADMIN_LOGIN_FAILURE_LIMIT failures, counted per
username and, separately, per client address (docs/configuration.md). Behind reverse proxies the
socket's address is the last proxy's, so with TRUSTED_PROXY_COUNT = N the client is the address
the N-th proxy from us saw: the N-th entry from the right of X-Forwarded-For. Entries further left
were written by the client and are never trusted. Anything malformed falls back to the socket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import logout
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy

from duoniche.two_factor import totp_device, totp_sign_in_check, two_factor_required


def client_ip(request: HttpRequest) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < proxies:
        return remote
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class StaffLoginForm(AdminAuthenticationForm):
    """The admin login: username, password and, for staff who have set it up, the app's code."""

    otp_token = forms.CharField(
        label=gettext_lazy("Authenticator code"),
        required=False,
        max_length=12,
        help_text=gettext_lazy("Only if you have set up two-factor sign-in."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "code_required": gettext_lazy(
            "This account uses two-factor sign-in: enter the code your authenticator app shows."
        ),
        "code_invalid": gettext_lazy(
            "That code is not right, or it was already used. Wait for the next one and try again."
        ),
    }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()
        if user is None or totp_device(user) is None:
            return cleaned
        token = "".join(str(cleaned.get("otp_token") or "").split())
        if not token:
            raise ValidationError(self.error_messages["code_required"], code="code_required")
        device = totp_sign_in_check(user, token)
        if device is None:
            # Counted by django-axes like a wrong password: guessing codes locks out too.
            user_login_failed.send(
                sender=type(self),
                credentials={"username": user.get_username()},
                request=self.request,
            )
            raise ValidationError(self.error_messages["code_invalid"], code="code_invalid")
        user.otp_device = device  # type: ignore[attr-defined]  # django-otp marks the session
        return cleaned


class StaffTwoFactorMiddleware:
    """In the admin, staff who owe a second factor see only the login and set-up pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/"):
            detour = self.detour(request)
            if detour is not None:
                return detour
        return self.get_response(request)

    @staticmethod
    def detour(request: HttpRequest) -> HttpResponse | None:
        open_paths = {
            reverse("admin:login"),
            reverse("admin:logout"),
            reverse("admin:jsi18n"),
            reverse("two_factor"),
        }
        user = request.user
        if request.path in open_paths or not (user.is_authenticated and user.is_staff):
            return None
        if user.is_verified():  # type: ignore[attr-defined]  # django-otp's middleware
            return None
        if totp_device(user) is not None:  # set up since this session signed in: sign in again
            logout(request)
            return redirect(f"{reverse('admin:login')}?{urlencode({'next': request.path})}")
        if two_factor_required(user):
            return redirect("two_factor")
        return None
