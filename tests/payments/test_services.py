"""Refunds via Telegram, against a loopback fake Bot API."""

import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from duoniche.api.errors import ApplicationError
from payments.models import Payment
from payments.payloads import payload_build
from payments.services import (
    REFUND_CLAIM_STALE_AFTER,
    PaymentRefundFailed,
    payment_process,
    payment_refund,
)
from tests.learning.factories import BotProfileFactory, TelegramUserFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return User.objects.create_user("support", is_staff=True)


@pytest.fixture
def payment():
    return PaymentFactory(user=TelegramUserFactory(telegram_id="5550001"), amount=100)


def refunds(fake):
    return [r for r in fake.requests if r.method == "refundStarPayment"]


def test_refund_ok(fake_telegram, payment, staff, metric):
    before = metric("backend_payment_refunded_total", source="session_unlock")

    result = payment_refund(payment_id=payment.pk, staff_user=staff)

    assert result.outcome == "refunded"
    assert result.payment_id == payment.pk
    assert len(fake_telegram.requests) == 1
    request = fake_telegram.requests[0]
    assert request.token == fake_telegram.tokens["Bulgarian"]
    assert request.method == "refundStarPayment"
    assert request.body == {
        "user_id": 5550001,
        "telegram_payment_charge_id": payment.telegram_payment_charge_id,
    }
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.refunded_by == staff
    assert timezone.now() - payment.refunded_at < timedelta(minutes=1)
    assert payment.refund_error == ""
    assert metric("backend_payment_refunded_total", source="session_unlock") == before + 1


def test_a_second_refund_is_a_no_op_without_calling_telegram(fake_telegram, payment, staff, metric):
    payment_refund(payment_id=payment.pk, staff_user=staff)
    refunded_at = Payment.objects.get(pk=payment.pk).refunded_at
    before = metric("backend_payment_refunded_total", source="session_unlock")

    result = payment_refund(payment_id=payment.pk, staff_user=None)

    assert result.outcome == "already_refunded"
    assert "already refunded" in result.message
    assert len(fake_telegram.requests) == 1
    payment.refresh_from_db()
    assert payment.refunded_at == refunded_at
    assert payment.refunded_by == staff
    assert metric("backend_payment_refunded_total", source="session_unlock") == before


def test_the_bot_token_of_the_payments_bot_is_used(fake_telegram, staff):
    payment = PaymentFactory(bot_id="Serbian", source="report_donation", amount=50)

    payment_refund(payment_id=payment.pk, staff_user=staff)

    assert [r.token for r in fake_telegram.requests] == [fake_telegram.tokens["Serbian"]]


def test_charge_already_refunded_counts_as_success(fake_telegram, staff, metric):
    payment = PaymentFactory(source="report_donation", amount=50)
    fake_telegram.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_ALREADY_REFUNDED"},
        status=400,
    )
    before = metric("backend_payment_refunded_total", source="report_donation")

    result = payment_refund(payment_id=payment.pk, staff_user=staff)

    assert result.outcome == "refunded"
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.refunded_by == staff
    assert metric("backend_payment_refunded_total", source="report_donation") == before + 1


def test_another_telegram_error_is_stored_and_raised(fake_telegram, payment, staff, metric):
    fake_telegram.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_NOT_FOUND"},
        status=400,
    )
    before = metric("backend_payment_refunded_total", source="session_unlock")

    with pytest.raises(PaymentRefundFailed) as error:
        payment_refund(payment_id=payment.pk, staff_user=staff)

    assert error.value.code == "refund_failed"
    assert "CHARGE_NOT_FOUND" in error.value.message
    payment.refresh_from_db()
    assert payment.status == "paid"
    assert payment.refunded_at is None
    assert payment.refunded_by is None
    assert payment.refund_error == "Bad Request: CHARGE_NOT_FOUND"
    assert metric("backend_payment_refunded_total", source="session_unlock") == before


def test_a_failed_refund_can_be_retried(fake_telegram, payment, staff):
    fake_telegram.reply(
        "refundStarPayment", {"ok": False, "error_code": 500, "description": "Internal"}, status=500
    )
    with pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)

    result = payment_refund(payment_id=payment.pk, staff_user=staff)

    assert result.outcome == "refunded"
    assert len(refunds(fake_telegram)) == 2
    assert Payment.objects.get(pk=payment.pk).status == "refunded"


def test_a_short_429_is_retried_once_when_the_caller_may_wait(fake_telegram, payment, staff):
    fake_telegram.reply(
        "refundStarPayment",
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 0",
            "parameters": {"retry_after": 0},
        },
        status=429,
    )

    result = payment_refund(payment_id=payment.pk, staff_user=staff, wait=True)

    assert result.outcome == "refunded"
    assert len(refunds(fake_telegram)) == 2


def test_a_429_in_a_web_request_is_raised_with_its_wait(fake_telegram, payment, staff):
    fake_telegram.reply(
        "refundStarPayment",
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 0",
            "parameters": {"retry_after": 0},
        },
        status=429,
    )

    with pytest.raises(PaymentRefundFailed) as failed:
        payment_refund(payment_id=payment.pk, staff_user=staff)

    assert failed.value.retry_after == 0
    assert len(refunds(fake_telegram)) == 1
    assert Payment.objects.get(pk=payment.pk).status == "paid"


def test_a_long_429_is_not_waited_for(fake_telegram, payment, staff):
    fake_telegram.reply(
        "refundStarPayment",
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 600",
            "parameters": {"retry_after": 600},
        },
        status=429,
    )

    with pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)

    assert len(refunds(fake_telegram)) == 1
    assert "Too Many Requests" in Payment.objects.get(pk=payment.pk).refund_error


def test_a_non_json_answer_is_a_failure(fake_telegram, payment, staff):
    fake_telegram.reply("refundStarPayment", "<html>Bad Gateway</html>", status=502)

    with pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)

    payment.refresh_from_db()
    assert payment.status == "paid"
    assert "HTTP 502" in payment.refund_error


def test_unreachable_telegram_never_leaks_the_token(
    fake_telegram, payment, staff, caplog, settings
):
    settings.TELEGRAM_API_BASE_URL = "http://127.0.0.1:9"  # discard port: nothing listens

    with caplog.at_level(logging.DEBUG), pytest.raises(PaymentRefundFailed) as error:
        payment_refund(payment_id=payment.pk, staff_user=staff)

    payment.refresh_from_db()
    assert payment.status == "paid"
    assert "unreachable" in payment.refund_error
    for text in [payment.refund_error, error.value.message, caplog.text]:
        assert fake_telegram.tokens["Bulgarian"] not in text
        assert "/bot" not in text


def test_telegram_errors_are_logged_without_the_token(fake_telegram, payment, staff, caplog):
    token = fake_telegram.tokens["Bulgarian"]
    fake_telegram.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 401, "description": f"Unauthorized bot{token}"},
        status=401,
    )

    with caplog.at_level(logging.DEBUG), pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)

    refund_error = Payment.objects.get(pk=payment.pk).refund_error
    assert "Unauthorized" in refund_error
    assert "refundStarPayment" in caplog.text
    assert token not in caplog.text
    assert token not in refund_error


def test_no_token_for_the_bot(fake_telegram, payment, staff, settings):
    settings.TELEGRAM_BOT_TOKENS_JSON = {}

    with pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)

    assert fake_telegram.requests == []
    assert "No Telegram bot token" in Payment.objects.get(pk=payment.pk).refund_error


def test_a_non_numeric_telegram_id_is_a_failure(fake_telegram, staff):
    payment = PaymentFactory(user=TelegramUserFactory(telegram_id="not-a-number"))

    with pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)

    assert fake_telegram.requests == []
    assert Payment.objects.get(pk=payment.pk).status == "paid"


def test_an_unknown_payment(fake_telegram, staff):
    with pytest.raises(ApplicationError) as error:
        payment_refund(payment_id=987_654_321, staff_user=staff)

    assert error.value.code == "payment_not_found"
    assert fake_telegram.requests == []


def test_a_refund_does_not_revoke_the_unlocked_session(fake_telegram, staff, payments_secret):
    """The session opened by the payment stays open after the refund."""
    profile = BotProfileFactory(
        exercises_get_in_session=15, session_frozen_until=timezone.now() + timedelta(hours=3)
    )
    outcome = payment_process(
        charge_id="to-refund",
        amount=50,
        currency="XTR",
        payload=payload_build(
            source="session_unlock",
            user_id=profile.user_id,
            bot_id="Bulgarian",
            item_id=-1,
            now=timezone.now(),
        ),
        raw=None,
    )
    assert outcome.payment is not None
    profile.refresh_from_db()
    started = profile.session_started_at

    result = payment_refund(payment_id=outcome.payment.pk, staff_user=staff)

    assert result.outcome == "refunded"
    profile.refresh_from_db()
    assert profile.session_frozen_until is None
    assert profile.exercises_get_in_session == 0
    assert profile.session_started_at == started


def test_an_abandoned_refund_claim_is_taken_over(fake_telegram, staff):
    """A claim older than REFUND_CLAIM_STALE_AFTER belonged to a process that died mid-call."""
    payment = PaymentFactory(
        status="refunding",
        refund_started_at=timezone.now() - REFUND_CLAIM_STALE_AFTER - timedelta(seconds=1),
    )

    result = payment_refund(payment_id=payment.pk, staff_user=staff)

    assert result.outcome == "refunded"
    assert len(refunds(fake_telegram)) == 1
    assert Payment.objects.get(pk=payment.pk).status == "refunded"


def test_a_failed_refund_gives_the_claim_back(fake_telegram, payment, staff):
    fake_telegram.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_NOT_FOUND"},
        status=400,
    )
    with pytest.raises(PaymentRefundFailed):
        payment_refund(payment_id=payment.pk, staff_user=staff)
    payment.refresh_from_db()
    assert (payment.status, payment.refund_started_at) == ("paid", None)

    result = payment_refund(payment_id=payment.pk, staff_user=staff)  # retry works

    assert result.outcome == "refunded"
    assert len(refunds(fake_telegram)) == 2
