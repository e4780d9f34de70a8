"""Telegram Stars payments: processing and refunds (the invoices are in `payments.invoices`).

`payment_process` checks everything before its first write and then writes in one short
transaction: the Payment row inside a savepoint (the unique charge id makes concurrent duplicates
answer "already processed") and, for a session unlock, the reset of the locked profile.
`payment_refund` first claims the payment (`paid` → `refunding`, committed), calls Telegram outside
any transaction, then settles the claim (`refunded`, or back to `paid` on failure): two concurrent
refunds make one Bot API call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from duoniche import metrics
from duoniche.api.errors import ApplicationError
from duoniche.enums import PaymentSource, PaymentStatus
from duoniche.telegram import TelegramError, refund_star_payment
from learning.errors import profile_not_found, user_not_found
from learning.models import BotProfile, TelegramUser, WeeklyReport
from learning.profiles import profile_unlock_session
from payments.invoices import CURRENCY, UNLOCK_TIERS, report_not_found
from payments.models import Payment
from payments.payloads import (
    InvoicePayload,
    PaymentRejected,
    payload_parse,
    payload_verify,
)

logger = logging.getLogger(__name__)

#: `Payment.amount` is a PositiveIntegerField; a larger amount can never be a real price.
MAX_AMOUNT = 2**31 - 1


# --- processing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentOutcome:
    """`payment` is the row written by this call; None when the charge was already processed."""

    payment: Payment | None

    @property
    def already_processed(self) -> bool:
        return self.payment is None


@dataclass(frozen=True)
class _Checked:
    payload: InvoicePayload
    signed: bool
    user: TelegramUser
    #: The payload's (user, bot) profile: required for unlocks, optional (metric labels) else.
    profile: BotProfile | None
    report: WeeklyReport | None


def _amount_accepted(source: str, amount: int) -> bool:
    if amount > MAX_AMOUNT:
        return False
    if settings.PAYMENTS_ACCEPT_ANY_AMOUNT:
        return True
    if source == PaymentSource.SESSION_UNLOCK:
        return amount in {price for _, price in UNLOCK_TIERS}
    return amount == settings.REPORT_DONATION_AMOUNT_XTR


def _payment_check(*, amount: int, currency: str, payload: str) -> _Checked:
    """The checks of docs/api.md, in order, reads only; the first failure raises its 400."""
    parsed = payload_parse(payload)
    signed = payload_verify(parsed, accept_unsigned=settings.PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS)
    if currency != CURRENCY:
        raise PaymentRejected(
            f"Only {CURRENCY} (Telegram Stars) payments are accepted.", code="invalid_currency"
        )
    if not _amount_accepted(parsed.source, amount):
        raise PaymentRejected(
            f"{amount} is not an accepted price for a {parsed.source} payment.",
            code="invalid_amount",
        )
    user = TelegramUser.objects.filter(pk=parsed.user_id).first()
    if user is None:
        raise user_not_found(parsed.user_id, status=400)
    profile = BotProfile.objects.filter(user=user, bot_id=parsed.bot_id).first()
    report = None
    if parsed.report_id is not None:
        report = WeeklyReport.objects.filter(pk=parsed.report_id, user=user).first()
        if report is None:
            raise report_not_found(parsed.report_id, user.pk)
    elif profile is None:
        raise profile_not_found(user.pk, parsed.bot_id, status=400)
    return _Checked(payload=parsed, signed=signed, user=user, profile=profile, report=report)


def _reject(charge_id: str, error: ApplicationError) -> None:
    """Every rejection: a WARNING (charge id and reason; never the payload secret), the metric
    and a Sentry event.

    The user has paid, so staff may need to refund: Sentry gets it even though nothing is written.
    """
    logger.warning("payment %r rejected: %s (%s)", charge_id, error.code, error.message)
    metrics.payment_rejected.labels(reason=error.code).inc()
    import sentry_sdk  # only when reporting: importing it costs every process 0.15 s

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("payment_rejected_reason", error.code)
        scope.set_extra("telegram_payment_charge_id", charge_id)
        sentry_sdk.capture_message(f"Payment rejected: {error.code}", level="warning")


def _labels(user: TelegramUser, profile: BotProfile | None, bot_id: str) -> dict[str, str]:
    return metrics.user_labels(
        cohort=user.cohort,
        plan=user.plan,
        target_language=bot_id,
        user_language=profile.user_language if profile is not None else "",
        level=profile.language_level if profile is not None else "",
    )


def _payment_record(
    *,
    checked: _Checked,
    charge_id: str,
    amount: int,
    currency: str,
    payload: str,
    raw: dict[str, Any] | None,
    now: datetime,
) -> PaymentOutcome:
    """Step 8: the row and, for an unlock, the session reset, in one transaction."""
    parsed = checked.payload
    unlock = parsed.source == PaymentSource.SESSION_UNLOCK
    profile = checked.profile
    with transaction.atomic():
        try:
            with transaction.atomic():  # the savepoint a concurrent duplicate rolls back to
                payment = Payment.objects.create(
                    user=checked.user,
                    bot_id=parsed.bot_id,
                    telegram_payment_charge_id=charge_id,
                    currency=currency,
                    amount=amount,
                    source=parsed.source,
                    item_id=None if unlock else parsed.item_id,
                    report=checked.report,
                    invoice_payload=payload,
                    payload_signed=checked.signed,
                    status=PaymentStatus.PAID,
                    raw_payment_data=raw,
                    processed_at=now,
                )
        except IntegrityError:
            if not Payment.objects.filter(telegram_payment_charge_id=charge_id).exists():
                raise  # not the unique charge id: a real failure
            logger.info("payment %r already processed (concurrent duplicate)", charge_id)
            return PaymentOutcome(payment=None)
        if unlock:
            # A profile deleted since the check raises, rolling the payment back too.
            profile = profile_unlock_session(user=checked.user, bot_id=parsed.bot_id, now=now)
    labels = _labels(checked.user, profile, parsed.bot_id)
    metrics.payment_amount.labels(**labels, currency=currency).inc(amount)
    if unlock:
        metrics.session_unlocked_by_payment.labels(**labels).inc()
    logger.info(
        "payment %s recorded: %s %s %s for user %s on %s",
        payment.pk,
        amount,
        currency,
        parsed.source,
        checked.user.pk,
        parsed.bot_id,
    )
    return PaymentOutcome(payment=payment)


def payment_process(
    *, charge_id: str, amount: int, currency: str, payload: str, raw: dict[str, Any] | None
) -> PaymentOutcome:
    """Record a successful Telegram Stars payment exactly once.

    A known charge id answers "already processed" before any verification, so bot retries keep
    working after a secret rotation. Rejections write nothing.
    """
    if Payment.objects.filter(telegram_payment_charge_id=charge_id).exists():
        logger.info("payment %r already processed", charge_id)
        return PaymentOutcome(payment=None)
    try:
        checked = _payment_check(amount=amount, currency=currency, payload=payload)
        return _payment_record(
            checked=checked,
            charge_id=charge_id,
            amount=amount,
            currency=currency,
            payload=payload,
            raw=raw,
            now=timezone.now(),
        )
    except ApplicationError as error:
        _reject(charge_id, error)
        raise


# --- refunds ----------------------------------------------------------------------------------


class PaymentRefundFailed(ApplicationError):
    """Telegram did not refund; the description is stored in `Payment.refund_error`.

    `retry_after`: Telegram throttled the call (HTTP 429) and asked to try again in that many
    seconds (the caller did not wait).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, code="refund_failed", status=502)
        self.retry_after = retry_after


#: A `refunding` claim older than this was abandoned (its process died mid-call) and may be taken
#: over; far above the Bot API timeout. Calling Telegram again is safe: it answers
#: `CHARGE_ALREADY_REFUNDED` for a charge it has refunded, which counts as a success.
REFUND_CLAIM_STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class RefundResult:
    payment_id: int
    outcome: Literal["refunded", "already_refunded", "in_progress"]
    message: str


def payment_refund(
    *, payment_id: int, staff_user: AbstractBaseUser | None, wait: bool = False
) -> RefundResult:
    """Refund a payment via Telegram; idempotent, one Bot API call at a time.

    Must be called outside any transaction: the Bot API call is slow and external. The payment is
    first claimed (`paid` → `refunding`, a committed conditional update), so a concurrent refund
    of the same payment answers `in_progress` without calling Telegram; no transaction or row lock
    is held across the call. A refund does not revoke a session that was already unlocked. Raises
    `PaymentRefundFailed` (with the error stored in `refund_error`, status back to `paid`) when
    Telegram refuses. `wait`: whether the Bot API call may sleep to retry (no in a web request,
    such as the admin's action: a 429 is raised with its `retry_after` instead).
    """
    payment = Payment.objects.select_related("user").filter(pk=payment_id).first()
    if payment is None:
        raise ApplicationError(
            f"Payment {payment_id} was not found.", code="payment_not_found", status=404
        )
    if payment.status == PaymentStatus.REFUNDED:
        return _already_refunded(payment.pk)
    try:
        telegram_id = int(payment.user.telegram_id)
    except ValueError:
        raise _refund_failed(payment, "the user's Telegram id is not a number") from None
    claimed_at = timezone.now()
    claimable = Q(status=PaymentStatus.PAID) | Q(
        status=PaymentStatus.REFUNDING, refund_started_at__lt=claimed_at - REFUND_CLAIM_STALE_AFTER
    )
    claimed = Payment.objects.filter(claimable, pk=payment.pk).update(
        status=PaymentStatus.REFUNDING, refund_started_at=claimed_at
    )
    if not claimed:
        current = Payment.objects.filter(pk=payment.pk).values_list("status", flat=True).first()
        if current == PaymentStatus.REFUNDED:
            return _already_refunded(payment.pk)
        return RefundResult(
            payment_id=payment.pk,
            outcome="in_progress",
            message=(
                f"Payment {payment.pk} is being refunded by another request right now; "
                "nothing was done. Check its status in a minute."
            ),
        )
    try:
        refund_star_payment(
            bot_id=payment.bot_id,
            user_id=telegram_id,
            charge_id=payment.telegram_payment_charge_id,
            wait=wait,
        )
    except TelegramError as error:
        raise _refund_failed(
            payment,
            error.description,
            claimed_at=claimed_at,
            retry_after=error.retry_after if error.error_code == 429 else None,
        ) from None
    except BaseException:  # not ours to explain; the payment must not stay claimed
        _refund_release(payment, claimed_at=claimed_at)
        raise
    updated = Payment.objects.filter(
        pk=payment.pk, status=PaymentStatus.REFUNDING, refund_started_at=claimed_at
    ).update(status=PaymentStatus.REFUNDED, refunded_at=timezone.now(), refunded_by=staff_user)
    if not updated:  # our claim went stale and another refund settled it
        return _already_refunded(payment.pk)
    metrics.payment_refunded.labels(source=payment.source).inc()
    logger.info("payment %s refunded via Telegram", payment.pk)
    return RefundResult(
        payment_id=payment.pk, outcome="refunded", message=f"Payment {payment.pk} was refunded."
    )


def _already_refunded(payment_id: int) -> RefundResult:
    return RefundResult(
        payment_id=payment_id,
        outcome="already_refunded",
        message=f"Payment {payment_id} was already refunded.",
    )


def _refund_release(payment: Payment, *, claimed_at: datetime, **fields: Any) -> None:
    """Give our `refunding` claim back (status `paid`), if it is still ours."""
    Payment.objects.filter(
        pk=payment.pk, status=PaymentStatus.REFUNDING, refund_started_at=claimed_at
    ).update(status=PaymentStatus.PAID, refund_started_at=None, **fields)


def _refund_failed(
    payment: Payment,
    description: str,
    *,
    claimed_at: datetime | None = None,
    retry_after: float | None = None,
) -> PaymentRefundFailed:
    """Store the failure on the row (status back to `paid`) and build the error for the caller."""
    if claimed_at is None:
        Payment.objects.filter(pk=payment.pk).update(refund_error=description)
    else:
        _refund_release(payment, claimed_at=claimed_at, refund_error=description)
    logger.warning("refund of payment %s failed: %s", payment.pk, description)
    return PaymentRefundFailed(
        f"Payment {payment.pk} was not refunded: {description}", retry_after=retry_after
    )
