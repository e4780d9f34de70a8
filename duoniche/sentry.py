"""Sentry, switched on by `SENTRY_DSN`: no PII, and secrets scrubbed from every event."""

from __future__ import annotations

import re
from typing import Any

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(bot)\d+:[A-Za-z0-9_-]+"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)=)[^&\s\"']+"),
    re.compile(r"(?i)(sk-)[A-Za-z0-9_-]{8,}"),
)
_SENSITIVE_HEADERS = {"authorization", "x-api-key", "cookie"}


def scrub_text(text: str) -> str:
    """Replace tokens, keys and passwords that may sit in a message or URL."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + "[Filtered]", text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: "[Filtered]" if str(key).lower() in _SENSITIVE_HEADERS else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return dict(_scrub(event))


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    # The SDK is imported only when a DSN is set: the scrubbing helpers above serve every
    # process, and importing the SDK costs each one 0.15-0.2 s to start.
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        integrations=[DjangoIntegration(), CeleryIntegration(), LoggingIntegration()],
        before_send=scrub_event,  # type: ignore[arg-type]
    )
