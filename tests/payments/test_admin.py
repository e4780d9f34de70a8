"""The payments admin: the "Refund via Telegram" action against the loopback fake Bot API."""

import time

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from payments.models import Payment
from tests.learning.factories import TelegramUserFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:payments_payment_changelist"
ACTION = "refund_via_telegram"


def staff_with(*codenames: str) -> User:
    user = User.objects.create_user(f"support-{len(codenames)}", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def support(client):
    """A support member: sees payments and may refund them."""
    user = staff_with("view_payment", "refund_payment")
    client.force_login(user)
    return user


@pytest.fixture
def payment():
    return PaymentFactory(user=TelegramUserFactory(telegram_id="5550001"), amount=100)


def run_action(client, payments, *, confirm: bool):
    """The changelist's action form (first step) or the confirmation page's form (second)."""
    data = {"action": ACTION, "_selected_action": [p.pk for p in payments]}
    if confirm:
        data["post"] = "yes"
    else:
        data["index"] = "0"  # the "Go" button of the changelist
    return client.post(reverse(CHANGELIST), data, follow=confirm)


def messages_of(response):
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def refunds(fake):
    return [r for r in fake.requests if r.method == "refundStarPayment"]


def test_the_action_asks_for_confirmation_first(fake_telegram, support, client, payment):
    already = PaymentFactory(amount=50, status="refunded")

    response = run_action(client, [payment, already], confirm=False)

    assert response.status_code == 200
    assert "admin/payments/payment/refund_confirmation.html" in [t.name for t in response.templates]
    assert response.context["to_refund"] == [payment]
    assert response.context["already_refunded"] == [already]
    assert response.context["total_stars"] == 100
    html = response.content.decode()
    assert 'name="post" value="yes"' in html
    assert f'name="_selected_action" value="{payment.pk}"' in html
    assert f'name="_selected_action" value="{already.pk}"' in html
    assert "Refund 1 payment (100 Stars)" in html
    assert refunds(fake_telegram) == []
    assert Payment.objects.get(pk=payment.pk).status == "paid"


def test_confirming_refunds_via_telegram(fake_telegram, support, client, payment):
    response = run_action(client, [payment], confirm=True)

    assert response.status_code == 200
    assert messages_of(response) == [
        ("success", f"Refunded 1 payment (#{payment.pk}) via Telegram.")
    ]
    [request] = refunds(fake_telegram)
    assert request.token == fake_telegram.tokens["Bulgarian"]
    assert request.body == {
        "user_id": 5550001,
        "telegram_payment_charge_id": payment.telegram_payment_charge_id,
    }
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.refunded_by == support
    assert payment.refunded_at is not None


def test_an_already_refunded_payment_is_reported_and_not_sent(fake_telegram, support, client):
    payment = PaymentFactory(status="refunded")

    response = run_action(client, [payment], confirm=True)

    assert messages_of(response) == [
        ("warning", f"Already refunded, nothing done: 1 payment (#{payment.pk}).")
    ]
    assert refunds(fake_telegram) == []


def test_a_refund_in_progress_elsewhere_is_reported_and_not_sent(fake_telegram, support, client):
    """Issue 10 #10: another request holds the payment while it calls Telegram."""
    payment = PaymentFactory(status="refunding", refund_started_at=timezone.now())

    response = run_action(client, [payment], confirm=True)

    assert messages_of(response) == [
        (
            "warning",
            "Being refunded by another request right now, nothing done (check again in a "
            f"minute): 1 payment (#{payment.pk}).",
        )
    ]
    assert refunds(fake_telegram) == []
    assert Payment.objects.get(pk=payment.pk).status == "refunding"


def test_a_telegram_error_is_shown_and_stored(fake_telegram, support, client, payment):
    fake_telegram.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_NOT_FOUND"},
        status=400,
    )

    response = run_action(client, [payment], confirm=True)

    assert messages_of(response) == [
        (
            "error",
            f"Payment {payment.pk} was not refunded: Bad Request: CHARGE_NOT_FOUND",
        )
    ]
    payment.refresh_from_db()
    assert payment.status == "paid"
    assert payment.refund_error == "Bad Request: CHARGE_NOT_FOUND"
    # The changelist shows the stored error.
    listing = client.get(reverse(CHANGELIST)).content.decode()
    assert "Bad Request: CHARGE_NOT_FOUND" in listing


def test_a_mixed_selection_reports_each_outcome(fake_telegram, support, client):
    ok = PaymentFactory(amount=20)
    failing = PaymentFactory(amount=50)
    already = PaymentFactory(amount=100, status="refunded")
    # Refunds are sent in id order: the first succeeds, the second fails.
    fake_telegram.reply("refundStarPayment", {"ok": True, "result": True})
    fake_telegram.reply(
        "refundStarPayment",
        {"ok": False, "error_code": 400, "description": "Bad Request: CHARGE_NOT_FOUND"},
        status=400,
    )

    response = run_action(client, [ok, failing, already], confirm=True)

    assert messages_of(response) == [
        ("error", f"Payment {failing.pk} was not refunded: Bad Request: CHARGE_NOT_FOUND"),
        ("success", f"Refunded 1 payment (#{ok.pk}) via Telegram."),
        ("warning", f"Already refunded, nothing done: 1 payment (#{already.pk})."),
    ]
    assert len(refunds(fake_telegram)) == 2
    statuses = dict(Payment.objects.values_list("pk", "status"))
    assert statuses == {ok.pk: "refunded", failing.pk: "paid", already.pk: "refunded"}


def test_several_payments_in_one_message(fake_telegram, support, client):
    payments = PaymentFactory.create_batch(2)

    response = run_action(client, payments, confirm=True)

    ids = ", ".join(f"#{p.pk}" for p in payments)
    assert messages_of(response) == [("success", f"Refunded 2 payments ({ids}) via Telegram.")]


def test_without_the_refund_permission_there_is_no_action(fake_telegram, client, payment):
    client.force_login(staff_with("view_payment"))

    listing = client.get(reverse(CHANGELIST))
    response = run_action(client, [payment], confirm=True)

    assert listing.status_code == 200
    assert ACTION not in listing.content.decode()
    assert response.status_code == 200  # the POST is ignored: no action is available
    assert messages_of(response) == []
    assert refunds(fake_telegram) == []
    assert Payment.objects.get(pk=payment.pk).status == "paid"


def test_the_action_is_offered_with_the_permission(support, client, payment):
    listing = client.get(reverse(CHANGELIST)).content.decode()

    assert f'value="{ACTION}"' in listing
    assert "Refund via Telegram" in listing


def test_payments_stay_read_only(support, client, payment):
    superuser = User.objects.create_superuser("root", password="x")
    client.force_login(superuser)

    page = client.get(reverse("admin:payments_payment_change", args=[payment.pk]))

    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a view page, no form to save
    assert client.get(reverse("admin:payments_payment_add")).status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("source__exact=report_donation", {"donation"}),
        ("bot_id__exact=Serbian", {"serbian"}),
        ("status__exact=refunded", {"refunded"}),
        ("refunded_at__isnull=False", {"refunded"}),
        ("status__exact=paid", {"donation", "serbian", "old"}),
        (
            "processed_at__gte=2020-01-01+00:00:00%2B00:00&processed_at__lt=2020-01-02+00:00:00%2B00:00",
            {"old"},
        ),
    ],
)
def test_list_filters(support, client, query, expected):
    from datetime import UTC, datetime

    named = {
        "donation": PaymentFactory(source="report_donation"),
        "serbian": PaymentFactory(bot_id="Serbian"),
        "refunded": PaymentFactory(status="refunded", refunded_at=datetime(2025, 1, 1, tzinfo=UTC)),
        "old": PaymentFactory(processed_at=datetime(2020, 1, 1, 12, tzinfo=UTC)),
    }
    names = {payment.pk: name for name, payment in named.items()}

    response = client.get(reverse(CHANGELIST) + "?" + query)

    assert response.status_code == 200
    assert {names[p.pk] for p in response.context["cl"].result_list} == expected


def test_throttling_is_reported_with_the_wait_and_never_slept_on(fake_telegram, support, client):
    # The action runs in a web request: no sleeping for Telegram, however short its ask.
    throttled = PaymentFactory(user=TelegramUserFactory(telegram_id="5550003"), amount=10)
    fake_telegram.reply(
        "refundStarPayment",
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
        status=429,
    )
    started = time.monotonic()

    response = run_action(client, [throttled], confirm=True)

    assert time.monotonic() - started < 5
    assert messages_of(response) == [
        ("error", f"Payment {throttled.pk} was not refunded: Telegram asks to retry in 7 s.")
    ]
    assert len(refunds(fake_telegram)) == 1
    throttled.refresh_from_db()
    assert throttled.status == "paid"  # the claim is given back: a later try may refund it
    assert throttled.refund_error == "Too Many Requests: retry after 7"


def test_a_telegram_outage_is_reported_at_once_without_retries(fake_telegram, support, client):
    down = PaymentFactory(user=TelegramUserFactory(telegram_id="5550004"), amount=10)
    fake_telegram.reply("refundStarPayment", {"ok": False, "description": "down"}, status=502)

    response = run_action(client, [down], confirm=True)

    assert messages_of(response) == [("error", f"Payment {down.pk} was not refunded: down")]
    assert len(refunds(fake_telegram)) == 1
    down.refresh_from_db()
    assert (down.status, down.refund_error) == ("paid", "down")
