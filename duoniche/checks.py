"""Startup checks: a malformed languages file stops startup; risky settings are warned about;
`check --deploy` also warns about an open /metrics and the development superuser."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

from duoniche import dictionaries
from duoniche.languages import LanguageConfigError, bot_ids, languages, load_languages


@register()
def check_languages(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        load_languages(settings.LANGUAGES_FILE)
    except LanguageConfigError as exc:
        return [
            Error(
                f"languages file: {problem}", obj=str(settings.LANGUAGES_FILE), id="duoniche.E001"
            )
            for problem in exc.problems
        ]
    return []


@register()
def check_runtime_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.DEBUG and not settings.REDIS_URL:
        messages.append(
            Warning(
                "REDIS_URL is empty: no background jobs and no notifications.",
                id="duoniche.W001",
            )
        )
    if settings.API_ALLOW_ANONYMOUS:
        messages.append(
            Warning(
                "API_ALLOW_ANONYMOUS is true: the bot API accepts requests without a token.",
                id="duoniche.W002",
            )
        )
    if settings.PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS or settings.PAYMENTS_ACCEPT_ANY_AMOUNT:
        messages.append(
            Warning(
                "A payments migration window is open "
                "(PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS or PAYMENTS_ACCEPT_ANY_AMOUNT).",
                id="duoniche.W003",
            )
        )
    if not settings.DEBUG and not settings.PAYMENTS_PAYLOAD_SECRET:
        messages.append(
            Warning(
                "PAYMENTS_PAYLOAD_SECRET is empty: the payload key is derived from the secret key.",
                id="duoniche.W004",
            )
        )
    try:
        known = set(bot_ids())
    except LanguageConfigError:
        known = set()
    for bot_id in settings.TELEGRAM_BOT_TOKENS_JSON:
        if known and bot_id not in known:
            messages.append(
                Warning(
                    f"TELEGRAM_BOT_TOKENS_JSON has a token for {bot_id!r}, "
                    "which is not a configured bot id.",
                    id="duoniche.W005",
                )
            )
    messages.extend(_language_check_warnings())
    for alias, name in settings.DEPRECATED_ENV_ALIASES_USED:
        messages.append(
            Warning(f"{alias} is a deprecated name; set {name} instead.", id="duoniche.W006")
        )
    return messages


#: What `make run` creates (`ensure_admin` in debug): fine on a laptop, not in production.
DEVELOPMENT_LOGIN = ("admin", "admin")


@register(Tags.security, deploy=True)
def check_csrf_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django's security.W003, which we silence, by class: the admin-only wrapper counts."""
    if any(issubclass(import_string(path), CsrfViewMiddleware) for path in settings.MIDDLEWARE):
        return []
    return [
        Warning(
            "No CSRF middleware in MIDDLEWARE: the admin's forms are not protected.",
            id="duoniche.W010",
        )
    ]


@register(Tags.security, deploy=True)
def check_deploy_exposure(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.METRICS_TOKEN:
        messages.append(
            Warning(
                "/metrics answers anyone: METRICS_TOKEN is empty.",
                hint="Set METRICS_TOKEN (Prometheus sends it as a bearer token), or silence "
                "duoniche.W007 if only your network reaches the web processes.",
                id="duoniche.W007",
            )
        )
    messages += _development_superuser()
    return messages


def _development_superuser() -> list[CheckMessage]:
    """The development login still signs in: a staff user admin whose password is admin."""
    username, password = DEVELOPMENT_LOGIN
    try:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
    except DatabaseError:  # no database, or not migrated yet: nothing to look at
        return []
    # The hasher function, not user.check_password: that one may re-hash and save the user.
    if user is None or not user.is_staff or not check_password(password, user.password):
        return []
    return [
        Warning(
            f"The development login {username}/{password} works on this database.",
            hint=f"Change that user's password (manage.py changepassword {username}) or delete it.",
            id="duoniche.W008",
        )
    ]


def _language_check_warnings() -> list[CheckMessage]:
    if not settings.LANGUAGE_CHECK:
        return []  # turned off on purpose
    try:
        configured = list(languages().values())
    except LanguageConfigError:
        return []
    return [
        Warning(
            f"The language check of {bot_id} is {state}: its exercises are not checked "
            "against dictionaries.",
            hint="Install the Hunspell dictionaries and binding: ops/language-packages.sh "
            ".venv/bin/pip (docs/language-check.md).",
            id="duoniche.W009",
        )
        for bot_id, state in dictionaries.status(configured).items()
        if state != "enabled"
    ]
