"""Payments are financial records: unique per Telegram charge and never deleted with a user."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from tests.learning.factories import WeeklyReportFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_charge_id_is_unique():
    payment = PaymentFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentFactory(telegram_payment_charge_id=payment.telegram_payment_charge_id)


def test_a_user_with_payments_cannot_be_deleted():
    payment = PaymentFactory()

    with pytest.raises(ProtectedError):
        payment.user.delete()


def test_deleting_a_report_keeps_its_donation():
    report = WeeklyReportFactory()
    payment = PaymentFactory(
        user=report.user, source="report_donation", item_id=report.pk, report=report
    )

    report_id = report.pk
    report.delete()
    payment.refresh_from_db()

    assert payment.report is None
    assert payment.item_id == report_id
    assert payment.status == "paid"
