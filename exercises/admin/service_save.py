"""The admin saves through services: who the moderator is, and a failed save reported as such."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

_FAILED = "_moderation_failed"


def moderator_of(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # the admin only lets signed-in staff through
        raise PermissionDenied
    return user


class ServiceSaveMixin(admin.ModelAdmin):
    """`save_model` calls a service; a `ValidationError` it raises becomes an error message.

    The forms check what they can (the errors then show on the form); this covers what only the
    write can find (a race). The failed save is then neither logged nor announced as a success:
    the moderator is sent back to the object's page.
    """

    def report_failure(self, request: HttpRequest, error: ValidationError) -> None:
        setattr(request, _FAILED, True)
        self.message_user(request, " ".join(error.messages), messages.ERROR)

    def save_failed(self, request: HttpRequest) -> bool:
        return bool(getattr(request, _FAILED, False))

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if self.save_failed(request):
            return None
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        if self.save_failed(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)
