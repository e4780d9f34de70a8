"""Invoice payloads: build, sign, parse and verify.

Format, colon-separated and at most 128 bytes of UTF-8:

    invoice_payload:<source>:<user_id>:<bot_id>:<item_id>:<unix_seconds>:<sig>

The first six parts are the previous service's format (`item_id = -1` for session unlocks).
`<sig>` is the first 16 bytes of HMAC-SHA256 over that six-part prefix, in lower-case hex. The
key is `PAYMENTS_PAYLOAD_SECRET`, or, when that is empty, the SHA-256 digest of
`"duoniche-payments:" + SECRET_KEY`.

Every malformed payload is a 400 `invalid_payload` (never a 500); a signature that does not
verify is `invalid_payload_signature`, and a six-part payload is `unsigned_payload` unless the
migration window `PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS` is open.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from duoniche.api.errors import ApplicationError
from duoniche.enums import PaymentSource
from duoniche.languages import get_language

PREFIX = "invoice_payload"
MAX_PAYLOAD_BYTES = 128
SIGNATURE_BYTES = 16
#: Session unlocks carry no item; the previous service wrote -1.
NO_ITEM = -1
#: Upper bounds of the columns the ids end up in (bigint user/report ids, int `Payment.item_id`).
MAX_USER_ID = 2**63 - 1
MAX_ITEM_ID = 2**31 - 1

_POSITIVE = re.compile(r"[1-9][0-9]*")
_TIMESTAMP = re.compile(r"[0-9]{1,20}")
_SIGNATURE = re.compile(rf"[0-9a-f]{{{SIGNATURE_BYTES * 2}}}")


class PaymentRejected(ApplicationError):
    """A payment (or invoice request) the bot must not honour: always a 400 with its own code."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


@dataclass(frozen=True)
class InvoicePayload:
    source: str
    user_id: int
    bot_id: str
    item_id: int
    timestamp: int
    #: The `<sig>` part as received; None for a six-part (unsigned, legacy) payload.
    signature: str | None

    @property
    def prefix(self) -> str:
        """The six signed parts, exactly as they are signed."""
        return ":".join(
            (
                PREFIX,
                self.source,
                str(self.user_id),
                self.bot_id,
                str(self.item_id),
                str(self.timestamp),
            )
        )

    @property
    def report_id(self) -> int | None:
        return self.item_id if self.source == PaymentSource.REPORT_DONATION else None


def payload_key() -> bytes:
    """The HMAC key: the configured secret, else derived from the Django secret key."""
    secret: str = settings.PAYMENTS_PAYLOAD_SECRET
    if secret:
        return secret.encode()
    return hashlib.sha256(f"duoniche-payments:{settings.SECRET_KEY}".encode()).digest()


def payload_sign(prefix: str) -> str:
    """`<sig>` for a six-part prefix: HMAC-SHA256 truncated to 16 bytes, lower-case hex."""
    digest = hmac.new(payload_key(), prefix.encode(), hashlib.sha256).digest()
    return digest[:SIGNATURE_BYTES].hex()


def payload_build(*, source: str, user_id: int, bot_id: str, item_id: int, now: datetime) -> str:
    """A signed invoice payload; raises ValueError if it would not fit Telegram's 128 bytes."""
    prefix = InvoicePayload(
        source=source,
        user_id=user_id,
        bot_id=bot_id,
        item_id=item_id,
        timestamp=int(now.timestamp()),
        signature=None,
    ).prefix
    payload = f"{prefix}:{payload_sign(prefix)}"
    size = len(payload.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"the invoice payload for bot {bot_id!r} is {size} bytes; "
            f"Telegram allows at most {MAX_PAYLOAD_BYTES}"
        )
    return payload


def _invalid(reason: str) -> PaymentRejected:
    return PaymentRejected(f"The invoice payload is malformed: {reason}.", code="invalid_payload")


def _positive(text: str, limit: int) -> int | None:
    if not _POSITIVE.fullmatch(text) or len(text) > len(str(limit)):
        return None
    value = int(text)
    return value if value <= limit else None


def payload_parse(text: str) -> InvoicePayload:
    """Parse a payload strictly; any deviation raises `invalid_payload` (step 2 of processing)."""
    parts = text.split(":")
    if parts[0] != PREFIX:
        raise _invalid(f"it does not start with {PREFIX!r}")
    if len(parts) not in (6, 7):
        raise _invalid(f"it has {len(parts)} parts instead of 6 or 7")
    source, user_text, bot_id, item_text, timestamp_text = parts[1:6]
    if source not in PaymentSource.values:
        raise _invalid("the source is not a known payment source")
    user_id = _positive(user_text, MAX_USER_ID)
    if user_id is None:
        raise _invalid("the user id is not a positive integer")
    if get_language(bot_id) is None:
        raise _invalid("the bot id is not a configured bot")
    if source == PaymentSource.SESSION_UNLOCK:
        if item_text != str(NO_ITEM):
            raise _invalid(f"a session unlock must have item {NO_ITEM}")
        item_id = NO_ITEM
    else:
        report_id = _positive(item_text, MAX_ITEM_ID)
        if report_id is None:
            raise _invalid("the report id is not a positive integer")
        item_id = report_id
    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise _invalid("the timestamp is not an integer")
    return InvoicePayload(
        source=source,
        user_id=user_id,
        bot_id=bot_id,
        item_id=item_id,
        timestamp=int(timestamp_text),
        signature=parts[6] if len(parts) == 7 else None,
    )


def payload_verify(payload: InvoicePayload, *, accept_unsigned: bool) -> bool:
    """Check the signature (step 3); returns whether the payload was signed.

    The timestamp's age is not checked: Telegram has already charged the user.
    """
    if payload.signature is None:
        if accept_unsigned:
            return False
        raise PaymentRejected(
            "The invoice payload is not signed, and unsigned payloads are not accepted.",
            code="unsigned_payload",
        )
    expected = payload_sign(payload.prefix)
    # Constant-time whatever the received value looks like; the format check cannot leak the key.
    matches = hmac.compare_digest(expected.encode(), payload.signature.encode("utf-8", "replace"))
    if not (matches and _SIGNATURE.fullmatch(payload.signature)):
        raise PaymentRejected(
            "The invoice payload signature does not verify.", code="invalid_payload_signature"
        )
    return True
