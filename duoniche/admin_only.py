"""Middleware that only the admin (and its forms) needs, skipped on the bot API's paths.

Sessions, CSRF, user authentication, two-factor, messages and the staff two-factor gate serve
people signing in to `/admin/`. A bot call carries a service token that the API
checks itself (no `request.user`, no session, no form), and `/healthz` and `/metrics` are read by
machines, so on those paths each of these middleware is pure cost: a session lookup, a CSRF
cookie, a lazy user. `admin_only("<dotted path>")` makes a middleware class that runs the wrapped
one, hooks included, on every other path and steps straight past it on the machine paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string

#: Paths the bots and machines call: the API, the health check, the metrics.
MACHINE_PATHS = ("/api/v1/", "/healthz", "/metrics")


def is_machine_path(request: HttpRequest) -> bool:
    return request.path_info.startswith(MACHINE_PATHS)


class _AdminOnly:
    wrapped = ""
    # Sync only, whatever the wrapped class says: under ASGI, Django then adapts the handler it
    # passes in, and the wrapped instance is built on that same sync handler.
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.inner = import_string(self.wrapped)(get_response)
        self._view_hook = getattr(self.inner, "process_view", None)
        self._exception_hook = getattr(self.inner, "process_exception", None)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_machine_path(request):
            return self.get_response(request)
        return self.inner(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        if self._view_hook is None or is_machine_path(request):
            return None
        return self._view_hook(request, view, args, kwargs)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if self._exception_hook is None or is_machine_path(request):
            return None
        return self._exception_hook(request, exception)


def admin_only(dotted_path: str) -> type[_AdminOnly]:
    """The wrapper class. It also subclasses the wrapped class, only so that checks looking for
    that middleware in MIDDLEWARE (the admin's, django-axes') find it; every call goes through
    `_AdminOnly` to the wrapped instance."""
    wrapped = import_string(dotted_path)
    name = dotted_path.rsplit(".", 1)[1]
    return type(name, (_AdminOnly, wrapped), {"wrapped": dotted_path, "__module__": __name__})


SessionMiddleware = admin_only("django.contrib.sessions.middleware.SessionMiddleware")
CsrfViewMiddleware = admin_only("django.middleware.csrf.CsrfViewMiddleware")
AuthenticationMiddleware = admin_only("django.contrib.auth.middleware.AuthenticationMiddleware")
OTPMiddleware = admin_only("django_otp.middleware.OTPMiddleware")
MessageMiddleware = admin_only("django.contrib.messages.middleware.MessageMiddleware")
StaffTwoFactorMiddleware = admin_only("duoniche.staff_auth.StaffTwoFactorMiddleware")
