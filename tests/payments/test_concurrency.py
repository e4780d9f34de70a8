"""Concurrent duplicates of a payment give one row and 200 for all (PostgreSQL);
concurrent refunds of one payment make one Bot API call (issue 10 #10)."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments.models import Payment
from payments.payloads import payload_build
from payments.services import payment_refund
from tests.fakes.telegram_server import running_fake_telegram
from tests.learning.factories import BotProfileFactory, TelegramUserFactory
from tests.payments.conftest import BULGARIAN_TOKEN
from tests.payments.factories import PaymentFactory

THREADS = 50


@pytest.mark.django_db(transaction=True)
def test_fifty_identical_payments_at_once(payments_secret, metric):
    profile = BotProfileFactory(
        exercises_get_in_session=15,
        exercises_get_in_set=5,
        session_started_at=timezone.now() - timedelta(hours=1),
        session_frozen_until=timezone.now() + timedelta(hours=3),
    )
    labels = {
        "cohort": "",
        "plan": "",
        "target_language": "Bulgarian",
        "user_language": profile.user_language,
        "language_level": profile.language_level,
    }
    unlocks_before = metric("backend_session_unlocked_by_payment_total", **labels)
    amount_before = metric("backend_payment_amount_total", **labels, currency="XTR")
    body = json.dumps(
        {
            "telegram_payment_charge_id": "concurrent-charge",
            "amount": 100,
            "invoice_payload": payload_build(
                source="session_unlock",
                user_id=profile.user_id,
                bot_id="Bulgarian",
                item_id=-1,
                now=timezone.now(),
            ),
            "currency": "XTR",
        }
    )
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def pay() -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            response = client.post(
                "/api/v1/payments/process",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION="Bearer test-token",
            )
            results.append((response.status_code, response.json()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(results) == THREADS
    assert {status for status, _ in results} == {200}
    assert all(body["status"] == "success" for _, body in results)
    processed = [body for _, body in results if "already processed" not in body["message"]]
    assert len(processed) == 1
    payment = Payment.objects.get()
    assert payment.telegram_payment_charge_id == "concurrent-charge"
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 0
    assert profile.session_frozen_until is None
    # Reset exactly once: by the one request that wrote the row, at its own `now`.
    assert profile.session_started_at == payment.processed_at
    assert metric("backend_session_unlocked_by_payment_total", **labels) == unlocks_before + 1
    assert metric("backend_payment_amount_total", **labels, currency="XTR") == amount_before + 100


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refunds_call_telegram_once(settings, metric):
    """Issue 10 #10: the second refund, while the first waits on Telegram, makes no call."""
    staff = User.objects.create_user("refunder", is_staff=True)
    payment = PaymentFactory(user=TelegramUserFactory(telegram_id="5550002"), amount=100)
    before = metric("backend_payment_refunded_total", source="session_unlock")
    results: list = []
    errors: list[BaseException] = []

    def refund() -> None:
        try:
            results.append(payment_refund(payment_id=payment.pk, staff_user=staff))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    def refund_requests() -> int:
        return sum(r.method == "refundStarPayment" for r in fake.requests)

    def wait_for(condition, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return False

    with running_fake_telegram(settings, {"Bulgarian": BULGARIAN_TOKEN}) as fake:
        gate = fake.hold("refundStarPayment")
        first = threading.Thread(target=refund)
        first.start()
        assert wait_for(lambda: refund_requests() == 1, 5)
        second = threading.Thread(target=refund)
        second.start()
        # The second one either answers at once (claimed elsewhere) or reaches Telegram too.
        wait_for(lambda: len(results) == 1 or refund_requests() == 2, 3)
        gate.set()
        first.join(timeout=10)
        second.join(timeout=10)

    assert errors == []
    assert refund_requests() == 1
    assert sorted(result.outcome for result in results) == ["in_progress", "refunded"]
    in_progress = next(r for r in results if r.outcome == "in_progress")
    assert "being refunded" in in_progress.message
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.refunded_by == staff
    assert metric("backend_payment_refunded_total", source="session_unlock") == before + 1
