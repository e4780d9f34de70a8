"""Invoice payloads: the previous six-part format plus an HMAC suffix, parsed strictly."""

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from duoniche.languages import bot_ids
from payments.payloads import (
    MAX_PAYLOAD_BYTES,
    PaymentRejected,
    payload_build,
    payload_key,
    payload_parse,
    payload_sign,
    payload_verify,
)

NOW = datetime(2025, 11, 26, tzinfo=UTC)
TS = int(NOW.timestamp())


@pytest.fixture(autouse=True)
def _secret(payments_secret):
    return payments_secret


def _expected_sig(prefix: str, key: bytes) -> str:
    return hmac.new(key, prefix.encode(), hashlib.sha256).hexdigest()[:32]


def test_a_session_unlock_payload_round_trips(payments_secret):
    payload = payload_build(
        source="session_unlock", user_id=42, bot_id="Bulgarian", item_id=-1, now=NOW
    )

    prefix = f"invoice_payload:session_unlock:42:Bulgarian:-1:{TS}"
    assert payload == f"{prefix}:{_expected_sig(prefix, payments_secret.encode())}"
    parsed = payload_parse(payload)
    assert (parsed.source, parsed.user_id, parsed.bot_id, parsed.item_id, parsed.timestamp) == (
        "session_unlock",
        42,
        "Bulgarian",
        -1,
        TS,
    )
    assert parsed.report_id is None
    assert parsed.prefix == prefix
    assert payload_verify(parsed, accept_unsigned=False) is True


def test_a_donation_payload_carries_the_report_id():
    payload = payload_build(
        source="report_donation", user_id=7, bot_id="Serbian", item_id=913, now=NOW
    )

    parsed = payload_parse(payload)
    assert payload.split(":")[:6] == [
        "invoice_payload",
        "report_donation",
        "7",
        "Serbian",
        "913",
        str(TS),
    ]
    assert parsed.item_id == parsed.report_id == 913
    assert payload_verify(parsed, accept_unsigned=False) is True


@pytest.mark.parametrize("bot_id", bot_ids())
def test_the_largest_payloads_fit_telegrams_128_bytes(bot_id):
    payload = payload_build(
        source="report_donation",
        user_id=2**63 - 1,
        bot_id=bot_id,
        item_id=2**31 - 1,
        now=datetime(2286, 11, 20, tzinfo=UTC),  # 10-digit timestamps until then
    )

    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert payload_verify(payload_parse(payload), accept_unsigned=False) is True


def test_building_a_payload_over_128_bytes_fails():
    with pytest.raises(ValueError, match="128"):
        payload_build(
            source="report_donation",
            user_id=2**63 - 1,
            bot_id="B" * 50,  # the longest bot id the configuration allows
            item_id=2**31 - 1,
            now=NOW,
        )


def test_the_key_is_derived_from_the_secret_key_when_no_secret_is_set(settings):
    settings.PAYMENTS_PAYLOAD_SECRET = ""
    derived = hashlib.sha256(f"duoniche-payments:{settings.SECRET_KEY}".encode()).digest()

    assert payload_key() == derived
    prefix = "invoice_payload:session_unlock:1:Bulgarian:-1:1"
    assert payload_sign(prefix) == _expected_sig(prefix, derived)


def test_a_changed_user_digit_fails_the_signature():
    payload = payload_build(
        source="session_unlock", user_id=42, bot_id="Bulgarian", item_id=-1, now=NOW
    )
    forged = payload.replace(":42:", ":43:")

    with pytest.raises(PaymentRejected) as error:
        payload_verify(payload_parse(forged), accept_unsigned=False)

    assert error.value.code == "invalid_payload_signature"
    assert error.value.status == 400


def test_a_rotated_secret_fails_old_signatures(settings):
    payload = payload_build(
        source="session_unlock", user_id=42, bot_id="Bulgarian", item_id=-1, now=NOW
    )
    settings.PAYMENTS_PAYLOAD_SECRET = "another-secret"

    with pytest.raises(PaymentRejected) as error:
        payload_verify(payload_parse(payload), accept_unsigned=False)

    assert error.value.code == "invalid_payload_signature"


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0" * 31,
        "0" * 33,
        "z" * 32,
        "UPPER",
    ],
)
def test_a_malformed_signature_is_a_signature_error(signature):
    prefix = "invoice_payload:session_unlock:42:Bulgarian:-1:1"

    with pytest.raises(PaymentRejected) as error:
        payload_verify(payload_parse(f"{prefix}:{signature}"), accept_unsigned=False)

    assert error.value.code == "invalid_payload_signature"


def test_an_upper_case_copy_of_the_right_signature_is_rejected():
    prefix = "invoice_payload:session_unlock:42:Bulgarian:-1:1"

    with pytest.raises(PaymentRejected) as error:
        payload_verify(
            payload_parse(f"{prefix}:{payload_sign(prefix).upper()}"), accept_unsigned=False
        )

    assert error.value.code == "invalid_payload_signature"


def test_an_unsigned_payload_needs_the_migration_window():
    parsed = payload_parse("invoice_payload:session_unlock:42:Bulgarian:-1:1764115200")

    with pytest.raises(PaymentRejected) as error:
        payload_verify(parsed, accept_unsigned=False)

    assert error.value.code == "unsigned_payload"
    assert payload_verify(parsed, accept_unsigned=True) is False


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "invoice_payload",
        "invoice_payload:x",
        "invalid:payload_format",
        "invoice_payload:session_unlock:abc:Bulgarian:-1:1",
        f"invoice_payload:session_unlock:1:{'B' * 60}:-1:1",
        "invoice_payload:gift:1:Bulgarian:-1:1",
        "INVOICE_PAYLOAD:session_unlock:1:Bulgarian:-1:1",
        "invoice_payload:session_unlock:1:Bulgarian:-1",
        "invoice_payload:session_unlock:1:Bulgarian:-1:1:sig:extra",
        "invoice_payload:session_unlock:0:Bulgarian:-1:1",
        "invoice_payload:session_unlock:-1:Bulgarian:-1:1",
        "invoice_payload:session_unlock:+1:Bulgarian:-1:1",
        "invoice_payload:session_unlock: 1:Bulgarian:-1:1",
        "invoice_payload:session_unlock:01:Bulgarian:-1:1",
        "invoice_payload:session_unlock:١:Bulgarian:-1:1",
        "invoice_payload:session_unlock:1_0:Bulgarian:-1:1",
        f"invoice_payload:session_unlock:{2**63}:Bulgarian:-1:1",
        "invoice_payload:session_unlock:1:bulgarian:-1:1",
        "invoice_payload:session_unlock:1::-1:1",
        "invoice_payload:session_unlock:1:Bulgarian:5:1",
        "invoice_payload:session_unlock:1:Bulgarian:x:1",
        "invoice_payload:report_donation:1:Bulgarian:-1:1",
        "invoice_payload:report_donation:1:Bulgarian:0:1",
        f"invoice_payload:report_donation:1:Bulgarian:{2**31}:1",
        "invoice_payload:session_unlock:1:Bulgarian:-1:",
        "invoice_payload:session_unlock:1:Bulgarian:-1:1.5",
        "invoice_payload:session_unlock:1:Bulgarian:-1:-5",
    ],
)
def test_malformed_payloads_are_invalid(payload):
    with pytest.raises(PaymentRejected) as error:
        payload_parse(payload)

    assert error.value.code == "invalid_payload"
    assert error.value.status == 400
