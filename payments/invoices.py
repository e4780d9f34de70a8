"""Stars invoices: what a bot shows before a payment, in the learner's language.

`payment_invoice_details` checks the bot, the profile and the source (with its item), then returns
the button, title, description, prices and a signed payload that `payments.services` verifies when
the payment arrives. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from duoniche.api.errors import ApplicationError
from duoniche.enums import PaymentSource
from duoniche.languages import get_language
from duoniche.texts import render
from learning.errors import invalid_bot
from learning.models import BotProfile, WeeklyReport
from payments.payloads import NO_ITEM, payload_build

CURRENCY = "XTR"
#: Session-unlock prices in Stars, in invoice order, with their label message keys.
UNLOCK_TIERS: tuple[tuple[str, int], ...] = (
    ("payment_tier_1", 20),
    ("payment_tier_2", 50),
    ("payment_tier_3", 100),
    ("payment_tier_4", 200),
    ("payment_tier_5", 500),
    ("payment_tier_6", 1000),
)
DONATION_LABEL = "payment_tier_2"


@dataclass(frozen=True)
class Price:
    label: str
    amount: int


@dataclass(frozen=True)
class InvoiceDetails:
    """What the bot needs to send a Stars invoice (wire TelegramPayment)."""

    button_text: str
    title: str
    description: str
    currency: str
    prices: list[Price]
    thanks_answer: str
    invoice_payload: str | None


def report_not_found(report_id: int, user_id: int) -> ApplicationError:
    return ApplicationError(
        f"Report {report_id} was not found for user {user_id}.",
        code="report_not_found",
        status=400,
    )


def payment_invoice_details(
    *, source: str, user_id: int, bot_id: str, item_id: int | None, now: datetime
) -> InvoiceDetails:
    """The invoice for `source` in the profile's language, with a signed payload.

    Checks, in the wire's order: the bot (422), the profile (before the source, Compat), then the
    source with its item.
    """
    if get_language(bot_id) is None:
        raise invalid_bot(bot_id, code="invalid_bot_id", status=422)
    profile = (
        BotProfile.objects.filter(user_id=user_id, bot_id=bot_id).only("user_language").first()
    )
    if profile is None:
        raise ApplicationError(
            f"User {user_id} has no profile for the {bot_id} bot, "
            "so the language of the invoice cannot be determined.",
            code="profile_not_found",
            status=400,
        )
    language = profile.user_language
    if source == PaymentSource.REPORT_DONATION:
        if item_id is None:
            raise ApplicationError(
                "A report donation needs the report id in the item_id query parameter.",
                code="item_id_required",
                status=400,
            )
        if not WeeklyReport.objects.filter(pk=item_id, user_id=user_id).exists():
            raise report_not_found(item_id, user_id)
        button_key, description_key = "report_donation_button_text", "payment_description_donation"
        prices = [Price(render(DONATION_LABEL, language), settings.REPORT_DONATION_AMOUNT_XTR)]
        item = item_id
    elif source == PaymentSource.SESSION_UNLOCK:
        button_key, description_key = "payment_button_text", "payment_description_unlock"
        prices = [Price(render(key, language), amount) for key, amount in UNLOCK_TIERS]
        item = NO_ITEM
    else:
        raise ApplicationError(
            f"{source!r} is not a supported payment source; "
            f"valid values: {', '.join(PaymentSource.values)}.",
            code="unsupported_payment_source",
            status=400,
        )
    return InvoiceDetails(
        button_text=render(button_key, language),
        title=render("payment_title", language),
        description=render(description_key, language),
        currency=CURRENCY,
        prices=prices,
        thanks_answer=render("payment_thanks_answer", language),
        invoice_payload=payload_build(
            source=source, user_id=user_id, bot_id=bot_id, item_id=item, now=now
        ),
    )
