"""Payment fixtures: the loopback fake Telegram Bot API with the payments' tokens, payload and
metric helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from tests.fakes.telegram_server import FakeTelegram, running_fake_telegram

BULGARIAN_TOKEN = "111111:bulgarian-secret-token"
SERBIAN_TOKEN = "222222:serbian-secret-token"


@pytest.fixture
def fake_telegram(settings) -> Iterator[FakeTelegram]:
    with running_fake_telegram(
        settings, {"Bulgarian": BULGARIAN_TOKEN, "Serbian": SERBIAN_TOKEN}
    ) as fake:
        yield fake


@pytest.fixture
def payments_secret(settings) -> str:
    """A known payload secret (never to appear in logs)."""
    settings.PAYMENTS_PAYLOAD_SECRET = "pay-secret-9f8e7d6c5b4a"
    settings.PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS = False
    settings.PAYMENTS_ACCEPT_ANY_AMOUNT = False
    settings.REPORT_DONATION_AMOUNT_XTR = 50
    return settings.PAYMENTS_PAYLOAD_SECRET


@pytest.fixture
def metric() -> Callable[..., float]:
    """The current value of a Prometheus sample (0 when the label set was never observed)."""

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return value
