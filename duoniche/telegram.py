"""The Telegram Bot API boundary: a tiny synchronous, typed client.

Calls go to `{TELEGRAM_API_BASE_URL}/bot<token>/<method>` with the token of the bot that owns the
object (`TELEGRAM_BOT_TOKENS_JSON`, keyed by bot id); tests point the base URL at a loopback fake.
Standard library only (`urllib.request`), so the client adds no dependency.

Secrets: the URL contains the token, so it is never logged, never put in an exception and never
chained into a traceback. Logs name the method and the bot id only, and Telegram's descriptions are
scrubbed of `bot<token>` segments before they leave this module.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings

from duoniche.sentry import scrub_text

logger = logging.getLogger(__name__)

#: HTTP 429: wait `retry_after` seconds and retry once, but only if Telegram asks for this little.
MAX_RETRY_AFTER_SECONDS = 30
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


class TelegramError(Exception):
    """A Bot API call failed; `description` is Telegram's (scrubbed) or our own explanation."""

    def __init__(self, description: str, error_code: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.error_code = error_code
        #: Seconds Telegram asked us to wait (HTTP 429), if it said so.
        self.retry_after: float | None = None


def _token(bot_id: str) -> str:
    token = settings.TELEGRAM_BOT_TOKENS_JSON.get(bot_id)
    if not token:
        raise TelegramError(f"No Telegram bot token is configured for the {bot_id} bot.")
    return str(token)


def _clean(text: str, token: str) -> str:
    return scrub_text(text.replace(token, "[Filtered]"))


def _error(body: Any, status: int | None, token: str) -> TelegramError:
    if isinstance(body, dict):
        code = body.get("error_code")
        error = TelegramError(
            _clean(str(body.get("description") or f"HTTP {status}"), token),
            code if isinstance(code, int) else status,
        )
        parameters = body.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            error.retry_after = float(parameters["retry_after"])
        return error
    return TelegramError(f"HTTP {status}: the response is not a Bot API JSON object.", status)


def _request(token: str, method: str, params: dict[str, Any]) -> Any:
    """One POST; the Bot API `result`, or a TelegramError. Nothing here may carry the URL."""
    request = urllib.request.Request(
        f"{settings.TELEGRAM_API_BASE_URL}/bot{token}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    status: int | None
    try:
        with urllib.request.urlopen(request, timeout=settings.TELEGRAM_REQUEST_TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:  # 4xx/5xx: Telegram still answers with a JSON body
        status, raw = exc.code, exc.read()
        exc.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # refused, timeout
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TelegramError(_clean(f"Telegram is unreachable: {reason}", token)) from None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("ok") is True:
        return body.get("result")
    raise _error(body, status, token)


def call(*, bot_id: str, method: str, params: dict[str, Any]) -> Any:
    """Call a Bot API method as `bot_id`'s bot; retries once after a short HTTP 429 wait."""
    token = _token(bot_id)
    try:
        return _request(token, method, params)
    except TelegramError as error:
        wait = error.retry_after
        if error.error_code != 429 or wait is None or wait > MAX_RETRY_AFTER_SECONDS:
            logger.warning("telegram %s for bot %s failed: %s", method, bot_id, error.description)
            raise
        logger.info("telegram %s for bot %s throttled; retrying in %ss", method, bot_id, wait)
        time.sleep(wait)
    try:
        return _request(token, method, params)
    except TelegramError as error:
        logger.warning("telegram %s for bot %s failed: %s", method, bot_id, error.description)
        raise


def refund_star_payment(*, bot_id: str, user_id: int, charge_id: str) -> bool:
    """Refund a Telegram Stars payment: True if refunded now, False if it already was.

    Telegram's `CHARGE_ALREADY_REFUNDED` error is a success too (refunds are idempotent); any other
    failure raises TelegramError.
    """
    try:
        call(
            bot_id=bot_id,
            method="refundStarPayment",
            params={"user_id": user_id, "telegram_payment_charge_id": charge_id},
        )
    except TelegramError as error:
        if ALREADY_REFUNDED in error.description:
            return False
        raise
    return True


def _post(token: str, method: str, body: bytes, content_type: str) -> Any:
    """One POST of a prepared body (e.g. multipart); like `_request`, nothing may carry the URL."""
    request = urllib.request.Request(
        f"{settings.TELEGRAM_API_BASE_URL}/bot{token}/{method}",
        data=body,
        headers={"Content-Type": content_type, "Accept": "application/json"},
        method="POST",
    )
    status: int | None
    try:
        with urllib.request.urlopen(request, timeout=settings.TELEGRAM_REQUEST_TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        exc.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TelegramError(_clean(f"Telegram is unreachable: {reason}", token)) from None
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("ok") is True:
        return answer.get("result")
    raise _error(answer, status, token)


def _retrying_once(*, bot_id: str, method: str, send: Callable[[], Any]) -> Any:
    """`send()`, retried once after a short HTTP 429 wait; failures are logged without the URL."""
    try:
        return send()
    except TelegramError as error:
        wait = error.retry_after
        if error.error_code != 429 or wait is None or wait > MAX_RETRY_AFTER_SECONDS:
            logger.warning("telegram %s for bot %s failed: %s", method, bot_id, error.description)
            raise
        logger.info("telegram %s for bot %s throttled; retrying in %ss", method, bot_id, wait)
        time.sleep(wait)
    try:
        return send()
    except TelegramError as error:
        logger.warning("telegram %s for bot %s failed: %s", method, bot_id, error.description)
        raise


def _form_quote(value: str) -> str:
    """A quoted-string parameter value for Content-Disposition (no CR/LF, escaped quotes)."""
    value = value.replace("\r", "").replace("\n", "")
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """Encode form `fields` and `files` (name -> (filename, content, content type)) as
    multipart/form-data (RFC 7578); return the body and its Content-Type header value."""
    boundary = f"duoniche-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        disposition = f'form-data; name="{_form_quote(name)}"'
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        parts.append(value.encode() + b"\r\n")
    for name, (filename, content, content_type) in files.items():
        disposition = f'form-data; name="{_form_quote(name)}"; filename="{_form_quote(filename)}"'
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n".encode()
        )
        parts.append(content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def send_voice(*, bot_id: str, chat_id: str, audio: bytes, filename: str) -> str:
    """Upload OGG/Opus `audio` as a voice message to `chat_id` with `bot_id`'s bot; the file_id.

    A file_id is valid only for the bot that uploaded it, so callers pass the exercise's own bot.
    Raises TelegramError, also when Telegram's answer carries no `voice.file_id` (e.g. the bytes
    were not OGG/Opus and Telegram stored them as a document).
    """
    token = _token(bot_id)
    body, content_type = _multipart({"chat_id": chat_id}, {"voice": (filename, audio, "audio/ogg")})
    result = _retrying_once(
        bot_id=bot_id,
        method="sendVoice",
        send=lambda: _post(token, "sendVoice", body, content_type),
    )
    voice = result.get("voice") if isinstance(result, dict) else None
    file_id = voice.get("file_id") if isinstance(voice, dict) else None
    if not isinstance(file_id, str) or not file_id:
        logger.warning("telegram sendVoice for bot %s returned no voice file_id", bot_id)
        raise TelegramError("sendVoice returned no voice file_id.")
    return file_id
