"""Service-token authentication for the bot API.

Tokens come from `API_TOKENS`, sent as `Authorization: Bearer <t>` or `X-API-Key: <t>`, compared in
constant time. With no tokens configured (allowed only in debug or with `API_ALLOW_ANONYMOUS`),
every request passes. Tokens are never logged; only a short fingerprint is.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


@dataclass(frozen=True)
class ServiceClient:
    """The calling service (a bot or the Notifier), known by its token's fingerprint."""

    fingerprint: str
    is_authenticated: bool = True


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:4]


def _given_token(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.META.get("HTTP_X_API_KEY", "").strip()
    return api_key or None


class ServiceTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ServiceClient, str] | None:
        token = _given_token(request)
        if token is None:
            return None
        for known in settings.API_TOKENS:
            if hmac.compare_digest(token.encode(), known.encode()):
                return ServiceClient(fingerprint=token_fingerprint(token)), token
        if not settings.API_TOKENS:
            return None  # anonymous mode: a stray header is not an error
        raise exceptions.AuthenticationFailed()

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


class HasServiceToken(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not settings.API_TOKENS:
            return True
        if request.auth is None:
            raise exceptions.NotAuthenticated()
        return True
