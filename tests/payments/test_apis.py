"""The payment endpoints: invoice details and payment processing."""

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from duoniche.texts import SUPPORTED_LANGUAGES, render
from learning.models import BotProfile
from payments.models import Payment
from payments.payloads import payload_build, payload_parse, payload_sign, payload_verify
from tests.learning.factories import BotProfileFactory, TelegramUserFactory, WeeklyReportFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
PROCESS = "/api/v1/payments/process"
TIERS = [20, 50, 100, 200, 500, 1000]


@pytest.fixture(autouse=True)
def _secret(payments_secret):
    return payments_secret


def invoice_url(source, user_id, bot_id="Bulgarian"):
    return f"/api/v1/payments/invoice-details/{source}/users/{user_id}/bots/{bot_id}"


def unlock_payload(user_id, bot_id="Bulgarian"):
    return payload_build(
        source="session_unlock", user_id=user_id, bot_id=bot_id, item_id=-1, now=timezone.now()
    )


def donation_payload(user_id, report_id, bot_id="Bulgarian"):
    return payload_build(
        source="report_donation",
        user_id=user_id,
        bot_id=bot_id,
        item_id=report_id,
        now=timezone.now(),
    )


def process(client, *, payload, charge_id="charge-1", amount=100, currency="XTR", **extra):
    body = {
        "telegram_payment_charge_id": charge_id,
        "amount": amount,
        "invoice_payload": payload,
        "currency": currency,
        **extra,
    }
    return client.post(PROCESS, json.dumps(body), content_type="application/json", **AUTH)


@pytest.fixture
def frozen_profile():
    """A profile at the end of a session, frozen for three hours."""
    now = timezone.now()
    return BotProfileFactory(
        user_language="ru",
        language_level="B1",
        exercises_get_in_session=15,
        exercises_get_in_set=5,
        errors_count_in_set=2,
        session_started_at=now - timedelta(hours=1),
        session_frozen_until=now + timedelta(hours=3),
        wants_session_reminders=True,
        last_long_break_reminder_type_sent="1d",
        last_long_break_reminder_sent_at=now - timedelta(days=1),
    )


def labels_of(profile):
    return {
        "cohort": profile.user.cohort or "",
        "plan": profile.user.plan or "",
        "target_language": profile.bot_id,
        "user_language": profile.user_language,
        "language_level": profile.language_level,
    }


def assert_session_reset(profile):
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 0
    assert profile.exercises_get_in_set == 0
    assert profile.errors_count_in_set == 0
    assert profile.session_frozen_until is None
    assert profile.wants_session_reminders is None
    assert profile.last_long_break_reminder_type_sent is None
    assert profile.last_long_break_reminder_sent_at is None
    assert profile.session_started_at is not None


def assert_still_frozen(profile):
    profile.refresh_from_db()
    assert profile.exercises_get_in_session == 15
    assert profile.session_frozen_until is not None


# --- invoice details --------------------------------------------------------------------------


def test_session_unlock_invoice(client):
    profile = BotProfileFactory(user_language="ru")

    response = client.get(invoice_url("session_unlock", profile.user_id), **AUTH)

    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "button_text",
        "title",
        "description",
        "currency",
        "prices",
        "thanks_answer",
        "invoice_payload",
    ]
    assert body["button_text"] == render("payment_button_text", "ru")
    assert body["title"] == render("payment_title", "ru")
    assert body["description"] == render("payment_description_unlock", "ru")
    assert body["currency"] == "XTR"
    assert body["prices"] == [
        {"label": render(f"payment_tier_{n}", "ru"), "amount": amount}
        for n, amount in enumerate(TIERS, start=1)
    ]
    assert body["thanks_answer"] == render("payment_thanks_answer", "ru")
    assert body["button_text"] != render("payment_button_text", "en")
    parsed = payload_parse(body["invoice_payload"])
    assert (parsed.source, parsed.user_id, parsed.bot_id, parsed.item_id) == (
        "session_unlock",
        profile.user_id,
        "Bulgarian",
        -1,
    )
    assert payload_verify(parsed, accept_unsigned=False) is True
    assert abs(parsed.timestamp - timezone.now().timestamp()) < 60


def test_session_unlock_ignores_the_item_id(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("session_unlock", profile.user_id) + "?item_id=77", **AUTH)

    assert response.status_code == 200
    assert payload_parse(response.json()["invoice_payload"]).item_id == -1


def test_report_donation_invoice(client, settings):
    settings.REPORT_DONATION_AMOUNT_XTR = 50
    profile = BotProfileFactory(user_language="uk", bot_id="Serbian")
    report = WeeklyReportFactory(user=profile.user, bot_id="Serbian")

    response = client.get(
        invoice_url("report_donation", profile.user_id, "Serbian") + f"?item_id={report.pk}",
        **AUTH,
    )

    assert response.status_code == 200
    body = response.json()
    assert body["button_text"] == render("report_donation_button_text", "uk")
    assert body["title"] == render("payment_title", "uk")
    assert body["description"] == render("payment_description_donation", "uk")
    assert body["prices"] == [{"label": render("payment_tier_2", "uk"), "amount": 50}]
    assert body["thanks_answer"] == render("payment_thanks_answer", "uk")
    parts = body["invoice_payload"].split(":")
    assert parts[:5] == [
        "invoice_payload",
        "report_donation",
        str(profile.user_id),
        "Serbian",
        str(report.pk),
    ]
    assert len(parts) == 7
    assert parts[6] == payload_sign(":".join(parts[:6]))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("source", ["session_unlock", "report_donation"])
def test_invoice_texts_fit_telegrams_limits(client, language, source):
    profile = BotProfileFactory(user_language=language)
    report = WeeklyReportFactory(user=profile.user)

    response = client.get(invoice_url(source, profile.user_id) + f"?item_id={report.pk}", **AUTH)

    body = response.json()
    assert response.status_code == 200
    assert 1 <= len(body["title"]) <= 32
    assert 1 <= len(body["description"]) <= 255
    assert len(body["invoice_payload"].encode()) <= 128


def test_invoice_both_slash_forms(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("session_unlock", profile.user_id) + "/", **AUTH)

    assert response.status_code == 200
    assert response.json()["currency"] == "XTR"


def test_invoice_unknown_bot_is_422(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("session_unlock", profile.user_id, "Klingon"), **AUTH)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_bot_id"
    assert "Klingon" in response.json()["detail"]
    assert "Bulgarian, Serbian" in response.json()["detail"]


def test_invoice_unknown_bot_comes_before_the_profile(client):
    response = client.get(invoice_url("gift", 999_999, "Klingon"), **AUTH)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_bot_id"


@pytest.mark.parametrize("source", ["session_unlock", "report_donation", "gift"])
def test_invoice_missing_profile_comes_before_the_source(client, source):
    user = TelegramUserFactory()
    BotProfileFactory(user=user, bot_id="Serbian")

    response = client.get(invoice_url(source, user.pk, "Bulgarian"), **AUTH)

    assert response.status_code == 400
    assert response.json()["code"] == "profile_not_found"


def test_invoice_for_a_user_id_beyond_bigint_is_400_not_500(client):
    response = client.get(invoice_url("session_unlock", 10**30), **AUTH)

    assert response.status_code == 400
    assert response.json()["code"] == "profile_not_found"


def test_invoice_donation_needs_the_item_id(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("report_donation", profile.user_id), **AUTH)

    assert response.status_code == 400
    assert response.json()["code"] == "item_id_required"


def test_invoice_donation_for_another_users_report(client):
    profile = BotProfileFactory()
    other_report = WeeklyReportFactory()

    response = client.get(
        invoice_url("report_donation", profile.user_id) + f"?item_id={other_report.pk}", **AUTH
    )

    assert response.status_code == 400
    assert response.json()["code"] == "report_not_found"
    assert str(other_report.pk) in response.json()["detail"]


@pytest.mark.parametrize("item_id", [987_654, 0, -1, 2**63 + 5])
def test_invoice_donation_for_a_missing_report(client, item_id):
    profile = BotProfileFactory()

    response = client.get(
        invoice_url("report_donation", profile.user_id) + f"?item_id={item_id}", **AUTH
    )

    assert response.status_code == 400
    assert response.json()["code"] == "report_not_found"


def test_invoice_unsupported_source(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("gift", profile.user_id) + "?item_id=1", **AUTH)

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_payment_source"
    assert "gift" in response.json()["detail"]


def test_invoice_validation_errors(client):
    response = client.get(invoice_url("session_unlock", 0) + "?item_id=abc", **AUTH)

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["path", "user_id"],
                "msg": "Input should be greater than or equal to 1",
                "type": "greater_than_equal",
            },
            {
                "loc": ["query", "item_id"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            },
        ],
        "code": "validation_error",
    }


def test_invoice_source_longer_than_50_is_422(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("s" * 51, profile.user_id), **AUTH)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "source"]
    assert response.json()["detail"][0]["type"] == "string_too_long"


def test_invoice_needs_the_service_token(client):
    profile = BotProfileFactory()

    response = client.get(invoice_url("session_unlock", profile.user_id))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_invoice_payload_is_accepted_by_process(client, frozen_profile):
    invoice = client.get(invoice_url("session_unlock", frozen_profile.user_id), **AUTH).json()

    response = process(client, payload=invoice["invoice_payload"], amount=20)

    assert response.status_code == 200
    assert Payment.objects.get().payload_signed is True
    assert_session_reset(frozen_profile)


# --- processing: success ----------------------------------------------------------------------


def test_session_unlock_is_recorded_and_resets_the_session(client, frozen_profile, metric):
    labels = labels_of(frozen_profile)
    amount_before = metric("backend_payment_amount_total", **labels, currency="XTR")
    unlocks_before = metric("backend_session_unlocked_by_payment_total", **labels)
    payload = unlock_payload(frozen_profile.user_id)

    response = process(
        client, payload=payload, charge_id="tg-charge-1", amount=100, raw_payment_data={"a": 1}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert "already processed" not in response.json()["message"]
    payment = Payment.objects.get()
    assert payment.user_id == frozen_profile.user_id
    assert payment.bot_id == "Bulgarian"
    assert payment.telegram_payment_charge_id == "tg-charge-1"
    assert (payment.amount, payment.currency, payment.source) == (100, "XTR", "session_unlock")
    assert payment.item_id is None
    assert payment.report is None
    assert payment.invoice_payload == payload
    assert payment.payload_signed is True
    assert payment.status == "paid"
    assert payment.raw_payment_data == {"a": 1}
    assert_session_reset(frozen_profile)
    assert frozen_profile.session_started_at == payment.processed_at
    # The metrics are incremented.
    assert metric("backend_payment_amount_total", **labels, currency="XTR") == amount_before + 100
    assert metric("backend_session_unlocked_by_payment_total", **labels) == unlocks_before + 1


@pytest.mark.parametrize("amount", TIERS)
def test_every_tier_is_accepted(client, frozen_profile, amount):
    response = process(client, payload=unlock_payload(frozen_profile.user_id), amount=amount)

    assert response.status_code == 200
    assert Payment.objects.get().amount == amount


def test_numeric_string_amounts_are_accepted(client, frozen_profile):
    response = process(client, payload=unlock_payload(frozen_profile.user_id), amount="200")

    assert response.status_code == 200
    assert Payment.objects.get().amount == 200


def test_report_donation_is_recorded_without_touching_the_session(client, frozen_profile, metric):
    report = WeeklyReportFactory(user=frozen_profile.user)
    labels = labels_of(frozen_profile)
    amount_before = metric("backend_payment_amount_total", **labels, currency="XTR")
    unlocks_before = metric("backend_session_unlocked_by_payment_total", **labels)

    response = process(
        client, payload=donation_payload(frozen_profile.user_id, report.pk), amount=50
    )

    assert response.status_code == 200
    payment = Payment.objects.get()
    assert payment.source == "report_donation"
    assert payment.item_id == report.pk
    assert payment.report == report
    assert payment.raw_payment_data is None
    assert_still_frozen(frozen_profile)
    assert metric("backend_payment_amount_total", **labels, currency="XTR") == amount_before + 50
    assert metric("backend_session_unlocked_by_payment_total", **labels) == unlocks_before


def test_a_donation_without_a_profile_for_the_bot_is_recorded(client, metric):
    report = WeeklyReportFactory()
    labels = {
        "cohort": "",
        "plan": "",
        "target_language": "Serbian",
        "user_language": "",
        "language_level": "",
    }
    before = metric("backend_payment_amount_total", **labels, currency="XTR")

    response = process(
        client, payload=donation_payload(report.user_id, report.pk, "Serbian"), amount=50
    )

    assert response.status_code == 200
    assert Payment.objects.get().report == report
    assert metric("backend_payment_amount_total", **labels, currency="XTR") == before + 50


def test_process_both_slash_forms(client, frozen_profile):
    body = {
        "telegram_payment_charge_id": "c-slash",
        "amount": 20,
        "invoice_payload": unlock_payload(frozen_profile.user_id),
        "currency": "XTR",
    }

    response = client.post(PROCESS + "/", json.dumps(body), content_type="text/plain", **AUTH)

    assert response.status_code == 200
    assert Payment.objects.filter(telegram_payment_charge_id="c-slash").exists()


def test_happy_path_query_count(client, frozen_profile, django_assert_max_num_queries):
    payload = unlock_payload(frozen_profile.user_id)

    # exists, user, profile, savepoint+insert+release, lock, update (+ the test's savepoint)
    with django_assert_max_num_queries(10):
        response = process(client, payload=payload)

    assert response.status_code == 200


def test_already_processed_query_count(client, frozen_profile, django_assert_num_queries):
    payload = unlock_payload(frozen_profile.user_id)
    process(client, payload=payload)

    with django_assert_num_queries(1):
        response = process(client, payload=payload)

    assert "already processed" in response.json()["message"]


# --- processing: idempotency ------------------------------------------------------------------


def test_a_known_charge_id_is_already_processed(client, frozen_profile):
    payload = unlock_payload(frozen_profile.user_id)
    first = process(client, payload=payload, charge_id="dup")
    BotProfile.objects.filter(pk=frozen_profile.pk).update(exercises_get_in_session=7)

    second = process(client, payload=payload, charge_id="dup")

    assert first.status_code == second.status_code == 200
    assert "already processed" not in first.json()["message"]
    assert second.json() == {"status": "success", "message": second.json()["message"]}
    assert "already processed" in second.json()["message"]
    assert Payment.objects.count() == 1
    frozen_profile.refresh_from_db()
    assert frozen_profile.exercises_get_in_session == 7  # not reset a second time


def test_the_charge_id_is_checked_before_the_payload(client):
    """Compat: bot retries keep working even after a secret rotation or with a garbled payload."""
    PaymentFactory(telegram_payment_charge_id="old-charge")

    response = process(client, payload="garbage", charge_id="old-charge", amount=1, currency="EUR")

    assert response.status_code == 200
    assert "already processed" in response.json()["message"]
    assert Payment.objects.count() == 1


def test_weakness_9_retry_after_profile_not_found(client):
    """A failed unlock leaves no row, so the retry after the profile exists is processed."""
    user = TelegramUserFactory()
    payload = unlock_payload(user.pk)

    rejected = process(client, payload=payload, charge_id="retry-me")

    assert rejected.status_code == 400
    assert rejected.json()["code"] == "profile_not_found"
    assert Payment.objects.count() == 0

    profile = BotProfileFactory(
        user=user, exercises_get_in_session=15, session_frozen_until=timezone.now()
    )
    retried = process(client, payload=payload, charge_id="retry-me")

    assert retried.status_code == 200
    assert "already processed" not in retried.json()["message"]
    assert Payment.objects.count() == 1
    assert_session_reset(profile)


# --- processing: rejections -------------------------------------------------------------------


def assert_rejected(response, code, metric_before, metric):
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert isinstance(response.json()["detail"], str)
    assert Payment.objects.count() == 0
    assert metric("backend_payment_rejected_total", reason=code) == metric_before + 1


def test_weakness_2_unsigned_payload(client, frozen_profile, metric):
    before = metric("backend_payment_rejected_total", reason="unsigned_payload")
    unsigned = f"invoice_payload:session_unlock:{frozen_profile.user_id}:Bulgarian:-1:1764115200"

    response = process(client, payload=unsigned)

    assert_rejected(response, "unsigned_payload", before, metric)
    assert_still_frozen(frozen_profile)


def test_weakness_2_unsigned_payload_in_the_migration_window(client, frozen_profile, settings):
    settings.PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS = True
    unsigned = f"invoice_payload:session_unlock:{frozen_profile.user_id}:Bulgarian:-1:1764115200"

    response = process(client, payload=unsigned)

    assert response.status_code == 200
    payment = Payment.objects.get()
    assert payment.payload_signed is False
    assert payment.invoice_payload == unsigned
    assert_session_reset(frozen_profile)


def test_weakness_2_forged_user_digit(client, frozen_profile, metric):
    """The payer's own signed payload with one digit of the user id changed (to a real user)."""
    digits = str(frozen_profile.user_id)
    victim_id = int(digits[:-1] + str((int(digits[-1]) + 1) % 10))
    BotProfileFactory(user=TelegramUserFactory(pk=victim_id))
    before = metric("backend_payment_rejected_total", reason="invalid_payload_signature")
    parts = unlock_payload(frozen_profile.user_id).split(":")
    parts[2] = str(victim_id)
    forged = ":".join(parts)

    response = process(client, payload=forged)

    assert_rejected(response, "invalid_payload_signature", before, metric)


def test_weakness_2_amount_of_one_star(client, frozen_profile, metric):
    before = metric("backend_payment_rejected_total", reason="invalid_amount")

    response = process(client, payload=unlock_payload(frozen_profile.user_id), amount=1)

    # A rejected payment increments the rejection counter.
    assert_rejected(response, "invalid_amount", before, metric)
    assert_still_frozen(frozen_profile)


def test_weakness_2_usd(client, frozen_profile, metric):
    before = metric("backend_payment_rejected_total", reason="invalid_currency")

    response = process(client, payload=unlock_payload(frozen_profile.user_id), currency="USD")

    assert_rejected(response, "invalid_currency", before, metric)


def test_weakness_2_donation_for_another_users_report(client, frozen_profile, metric):
    other_report = WeeklyReportFactory()
    before = metric("backend_payment_rejected_total", reason="report_not_found")

    response = process(
        client, payload=donation_payload(frozen_profile.user_id, other_report.pk), amount=50
    )

    assert_rejected(response, "report_not_found", before, metric)


def test_donation_for_a_missing_report(client, frozen_profile, metric):
    before = metric("backend_payment_rejected_total", reason="report_not_found")

    response = process(client, payload=donation_payload(frozen_profile.user_id, 99_999), amount=50)

    assert_rejected(response, "report_not_found", before, metric)


@pytest.mark.parametrize("amount", [20, 100, 49, 51])
def test_a_donation_must_be_the_donation_price(client, frozen_profile, metric, amount):
    report = WeeklyReportFactory(user=frozen_profile.user)
    before = metric("backend_payment_rejected_total", reason="invalid_amount")

    response = process(
        client, payload=donation_payload(frozen_profile.user_id, report.pk), amount=amount
    )

    assert_rejected(response, "invalid_amount", before, metric)


@pytest.mark.parametrize("amount", [1, 21, 999, 1001])
def test_an_unlock_must_be_a_tier_price(client, frozen_profile, metric, amount):
    before = metric("backend_payment_rejected_total", reason="invalid_amount")

    response = process(client, payload=unlock_payload(frozen_profile.user_id), amount=amount)

    assert_rejected(response, "invalid_amount", before, metric)


def test_any_amount_when_the_check_is_off(client, frozen_profile, settings):
    settings.PAYMENTS_ACCEPT_ANY_AMOUNT = True

    response = process(client, payload=unlock_payload(frozen_profile.user_id), amount=7)

    assert response.status_code == 200
    assert Payment.objects.get().amount == 7


def test_an_amount_beyond_the_column_is_invalid_even_with_any_amount(
    client, frozen_profile, settings, metric
):
    settings.PAYMENTS_ACCEPT_ANY_AMOUNT = True
    before = metric("backend_payment_rejected_total", reason="invalid_amount")

    response = process(client, payload=unlock_payload(frozen_profile.user_id), amount=2**31)

    assert_rejected(response, "invalid_amount", before, metric)


@pytest.mark.parametrize("currency", ["USD", "xtr", "XTR "])
def test_only_xtr(client, frozen_profile, metric, currency):
    before = metric("backend_payment_rejected_total", reason="invalid_currency")

    response = process(client, payload=unlock_payload(frozen_profile.user_id), currency=currency)

    assert_rejected(response, "invalid_currency", before, metric)


def test_the_payloads_user_must_exist(client, metric):
    before = metric("backend_payment_rejected_total", reason="user_not_found")

    response = process(client, payload=unlock_payload(424_242))

    assert_rejected(response, "user_not_found", before, metric)


def test_signature_is_checked_before_currency_and_amount(client, frozen_profile, metric):
    before = metric("backend_payment_rejected_total", reason="invalid_payload_signature")
    payload = unlock_payload(frozen_profile.user_id)
    payload = payload[:-1] + ("1" if payload.endswith("0") else "0")

    response = process(client, payload=payload, amount=1, currency="USD")

    assert_rejected(response, "invalid_payload_signature", before, metric)


@pytest.mark.parametrize(
    "payload",
    [
        "invoice_payload:x",
        "invalid:payload_format",
        "invoice_payload:session_unlock:abc:Bulgarian:-1:1",
        f"invoice_payload:session_unlock:1:{'B' * 60}:-1:1",
        "invoice_payload:gift:1:Bulgarian:-1:1",
        "invoice_payload:report_donation:1:Bulgarian:-1:1",
        f"invoice_payload:report_donation:1:Bulgarian:{2**40}:1",
        f"invoice_payload:session_unlock:{10**30}:Bulgarian:-1:1",
        "invoice_payload:session_unlock:1:Bulgarian:-1:now",
        "x" * 256,
        ":" * 6,
    ],
)
def test_weakness_10_malformed_payloads_are_400(client, metric, payload):
    before = metric("backend_payment_rejected_total", reason="invalid_payload")

    response = process(client, payload=payload)

    assert_rejected(response, "invalid_payload", before, metric)


def test_nul_in_a_payload_is_refused_before_anything_is_written(client):
    response = process(client, payload="invoice_payload:session_unlock:1\x00:Bulgarian:-1:1")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "invoice_payload"]
    assert not Payment.objects.exists()


def test_rejections_are_logged_without_the_secret(client, frozen_profile, payments_secret, caplog):
    payload = unlock_payload(frozen_profile.user_id)

    with caplog.at_level(logging.INFO, logger="payments"):
        response = process(client, payload=payload, charge_id="charge-log-1", amount=3)

    assert response.status_code == 400
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "payments.services"
    ]
    assert len(warnings) == 1
    assert "charge-log-1" in warnings[0].getMessage()
    assert "invalid_amount" in warnings[0].getMessage()
    assert all(payments_secret not in r.getMessage() for r in caplog.records)


# --- request validation -----------------------------------------------------------------------


def test_process_validation_errors_are_422_and_not_rejections(client, metric):
    body = {
        "telegram_payment_charge_id": "c" * 256,
        "amount": 0,
        "invoice_payload": "",
        "currency": "",
        "raw_payment_data": [1],
    }

    response = client.post(PROCESS, json.dumps(body), content_type="application/json", **AUTH)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body", "telegram_payment_charge_id"], "string_too_long"),
        (["body", "amount"], "greater_than_equal"),
        (["body", "invoice_payload"], "string_too_short"),
        (["body", "currency"], "string_too_short"),
        (["body", "raw_payment_data"], "dict_type"),
    ]
    assert Payment.objects.count() == 0


def test_process_missing_fields(client):
    response = client.post(PROCESS, "{}", content_type="application/json", **AUTH)

    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["body", "telegram_payment_charge_id"], "missing"),
        (["body", "amount"], "missing"),
        (["body", "invoice_payload"], "missing"),
        (["body", "currency"], "missing"),
    ]


@pytest.mark.parametrize(
    ("amount", "error_type"),
    [(1.5, "int_from_float"), ("many", "int_parsing"), ([], "int_type")],
)
def test_process_amount_types(client, amount, error_type):
    response = process(client, payload="invoice_payload:x", amount=amount)

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "amount"], "msg": response.json()["detail"][0]["msg"], "type": error_type}
    ]


def test_process_invoice_payload_over_256_chars_is_422(client):
    response = process(client, payload="x" * 257)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "string_too_long"


def test_process_needs_the_service_token(client):
    response = client.post(PROCESS, "{}", content_type="application/json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_process_get_is_405(client):
    response = client.get(PROCESS, **AUTH)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
