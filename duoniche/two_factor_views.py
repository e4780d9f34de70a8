"""The admin's "Two-factor sign-in" page, where staff set up, replace or turn off their own."""

from __future__ import annotations

import segno
from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.cache import never_cache

from duoniche.two_factor import (
    TwoFactorRequired,
    totp_config_url,
    totp_device,
    totp_enrolment_confirm,
    totp_key_text,
    totp_new_key,
    totp_turn_off,
    two_factor_required,
)

#: The key being set up lives in the session until a code confirms it.
PENDING_KEY = "two_factor_pending_key"


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from the app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


@never_cache
def two_factor_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "off":
        try:
            totp_turn_off(user)  # type: ignore[arg-type]  # admin_view: a signed-in staff member
        except TwoFactorRequired:
            messages.error(request, gettext("Your group requires two-factor sign-in."))
        else:
            messages.success(request, gettext("Two-factor sign-in is off."))
        return redirect("two_factor")

    device = totp_device(user)  # type: ignore[arg-type]
    setting_up = device is None or request.GET.get("replace") == "1" or action == "confirm"
    form = CodeForm(request.POST if action == "confirm" else None)
    key: str = request.session.get(PENDING_KEY) or ""
    if setting_up and not key:
        key = request.session[PENDING_KEY] = totp_new_key()
    if action == "confirm" and form.is_valid():
        code = "".join(form.cleaned_data["code"].split())
        if totp_enrolment_confirm(request, key, code):
            del request.session[PENDING_KEY]
            messages.success(
                request,
                gettext("Two-factor sign-in is on: the admin asks for a code at every sign-in."),
            )
            return redirect("admin:index")
        form.add_error(
            "code",
            gettext("That code is not right. Check the phone's clock and enter the newest code."),
        )
    context = {
        **admin.site.each_context(request),
        "title": gettext("Two-factor sign-in"),
        "device": device,
        "required": two_factor_required(user),
        "setting_up": setting_up,
        "form": form,
    }
    if setting_up:
        context["qr_svg"] = segno.make(totp_config_url(user, key)).svg_inline(  # type: ignore[arg-type]
            scale=4, border=2
        )
        context["key_text"] = totp_key_text(key)
    return TemplateResponse(request, "admin/two_factor.html", context)
