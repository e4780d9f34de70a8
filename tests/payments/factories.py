import factory

from duoniche.enums import PaymentSource
from payments.models import Payment
from tests.learning.factories import TelegramUserFactory


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    user = factory.SubFactory(TelegramUserFactory)
    bot_id = "Bulgarian"
    telegram_payment_charge_id = factory.Sequence(lambda n: f"charge-{n}")
    currency = "XTR"
    amount = 50
    source = PaymentSource.SESSION_UNLOCK
    item_id = None
    invoice_payload = factory.LazyAttribute(
        lambda o: f"invoice_payload:session_unlock:{o.user.pk}:Bulgarian:-1:1764115200:{'0' * 32}"
    )
    payload_signed = True
