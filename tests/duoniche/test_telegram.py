"""The Bot API client (duoniche/telegram.py) on httpx against the loopback fake Telegram: one retry
policy for JSON calls and uploads, 429 handling, timeouts, and no token in errors or logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from duoniche import telegram
from tests.fakes.telegram_server import FakeTelegram, running_fake_telegram

TOKEN = "333333:client-test-secret"
OGG = b"OggS" + b"\0" * 60


@pytest.fixture
def tg(settings) -> Iterator[FakeTelegram]:
    with running_fake_telegram(settings, {"Bulgarian": TOKEN}) as fake:
        yield fake


def throttled(seconds: float) -> dict[str, Any]:
    return {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds:g}",
        "parameters": {"retry_after": seconds},
    }


def server_error(code: int = 500) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": "Internal Server Error"}


def refund(*, wait: bool) -> bool:
    return telegram.refund_star_payment(bot_id="Bulgarian", user_id=7, charge_id="ch-1", wait=wait)


def test_a_call_posts_json_to_the_bots_method(tg):
    tg.reply("getMe", {"ok": True, "result": {"id": 333333, "is_bot": True}})

    result = telegram.call(bot_id="Bulgarian", method="getMe", params={"a": 1})

    assert result == {"id": 333333, "is_bot": True}
    [request] = tg.requests
    assert (request.token, request.method, request.body) == (TOKEN, "getMe", {"a": 1})
    assert request.content_type == "application/json"


def test_an_already_refunded_charge_is_a_success(tg):
    tg.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_ALREADY_REFUNDED"},
        status=400,
    )

    assert refund(wait=True) is False
    assert len(tg.requests) == 1


def test_server_errors_are_retried_with_backoff_until_an_answer(tg):
    tg.reply("refundStarPayment", server_error(500), status=500)
    tg.reply("refundStarPayment", server_error(502), status=502)
    started = time.monotonic()

    assert refund(wait=True) is True

    elapsed = time.monotonic() - started
    assert len(tg.requests) == 3
    assert elapsed >= telegram.BACKOFF_SECONDS * 3  # 0.5 s, then 1 s


def test_server_errors_give_up_after_the_attempts(tg):
    for _ in range(telegram.ATTEMPTS + 1):
        tg.reply("refundStarPayment", server_error(503), status=503)

    with pytest.raises(telegram.TelegramError) as failed:
        refund(wait=True)

    assert failed.value.error_code == 503
    assert len(tg.requests) == telegram.ATTEMPTS


def test_a_client_error_is_not_retried(tg):
    tg.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_NOT_FOUND"},
        status=400,
    )

    with pytest.raises(telegram.TelegramError, match="CHARGE_NOT_FOUND") as failed:
        refund(wait=True)

    assert failed.value.error_code == 400
    assert len(tg.requests) == 1


def test_a_short_429_is_waited_out_in_a_worker(tg):
    tg.reply("refundStarPayment", throttled(0.2), status=429)
    started = time.monotonic()

    assert refund(wait=True) is True

    assert time.monotonic() - started >= 0.2
    assert len(tg.requests) == 2


def test_a_long_429_is_raised_at_once_with_its_wait(tg):
    tg.reply("refundStarPayment", throttled(telegram.MAX_RETRY_AFTER_SECONDS + 1), status=429)
    started = time.monotonic()

    with pytest.raises(telegram.TelegramError) as failed:
        refund(wait=True)

    assert time.monotonic() - started < 2
    assert (failed.value.error_code, failed.value.retry_after) == (
        429,
        telegram.MAX_RETRY_AFTER_SECONDS + 1,
    )
    assert len(tg.requests) == 1


@pytest.mark.parametrize(
    ("status", "body"), [(429, throttled(0.2)), (500, server_error()), (502, "<html>")]
)
def test_without_waiting_the_first_failure_is_raised(tg, status, body):
    tg.reply("refundStarPayment", body, status=status)

    with pytest.raises(telegram.TelegramError) as failed:
        refund(wait=False)

    assert failed.value.error_code == status
    assert failed.value.retry_after == (0.2 if status == 429 else None)
    assert len(tg.requests) == 1


def test_uploads_share_the_retry_policy(tg):
    tg.reply("sendVoice", server_error(), status=500)

    file_id = telegram.send_voice(bot_id="Bulgarian", chat_id="42", audio=OGG, filename="a.ogg")

    assert file_id == "voice-file-1"
    assert [r.method for r in tg.requests] == ["sendVoice", "sendVoice"]
    assert tg.uploads[1].files["voice"].content == OGG


def test_a_hanging_telegram_times_out_and_never_holds_a_worker_long(tg, settings):
    settings.TELEGRAM_REQUEST_TIMEOUT = 0.3
    gate = tg.hold("refundStarPayment")
    started = time.monotonic()
    try:
        with pytest.raises(telegram.TelegramError) as failed:
            refund(wait=True)
        elapsed = time.monotonic() - started
    finally:
        gate.set()

    # Three tries of 0.3 s with 0.5 s and 1 s between them.
    assert elapsed < 0.3 * telegram.ATTEMPTS + 1.5 + 2
    assert failed.value.unreachable
    assert failed.value.description == "Telegram did not answer within 0.3 s."
    assert len(tg.requests) == telegram.ATTEMPTS


def test_a_hanging_telegram_fails_a_web_request_after_one_timeout(tg, settings):
    settings.TELEGRAM_REQUEST_TIMEOUT = 0.3
    gate = tg.hold("refundStarPayment")
    started = time.monotonic()
    try:
        with pytest.raises(telegram.TelegramError, match="did not answer"):
            refund(wait=False)
        elapsed = time.monotonic() - started
    finally:
        gate.set()

    assert elapsed < 1.5
    assert len(tg.requests) == 1


def test_an_unreachable_telegram_is_retried_and_named_without_the_token(tg, settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.TELEGRAM_API_BASE_URL = "http://127.0.0.1:9"  # the discard port: refused

    with pytest.raises(telegram.TelegramError) as failed:
        refund(wait=True)

    assert failed.value.unreachable
    assert failed.value.description.startswith("Telegram is unreachable")
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == telegram.ATTEMPTS - 1
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in failed.value.description


def test_httpx_request_logs_carry_no_token(tg, caplog):
    caplog.set_level(logging.DEBUG)

    telegram.call(bot_id="Bulgarian", method="getMe", params={})

    request_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/bot[Filtered]/getMe" in line for line in request_lines), request_lines
    assert TOKEN.split(":")[1] not in caplog.text


def test_a_missing_token_makes_no_request(tg):
    with pytest.raises(telegram.TelegramError, match="No Telegram bot token"):
        telegram.call(bot_id="Klingon", method="getMe", params={})
    assert tg.requests == []
