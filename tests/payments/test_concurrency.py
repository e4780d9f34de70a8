"""Weakness #8: concurrent duplicates of a payment give one row and 200 for all (PostgreSQL)."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments.models import Payment
from payments.payloads import payload_build
from tests.learning.factories import BotProfileFactory

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
