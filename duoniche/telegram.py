"""The Telegram Bot API boundary: a small synchronous, typed client on httpx.

Calls go to `{TELEGRAM_API_BASE_URL}/bot<token>/<method>` with the token of the bot that owns the
object (`TELEGRAM_BOT_TOKENS_JSON`, keyed by bot id); tests point the base URL at a loopback fake.

One retry policy for every call (`_retry_delay`): in a worker (`wait=True`) connection errors,
timeouts and 5xx answers are retried with exponential backoff, and an HTTP 429 is waited out when
Telegram asks for at most `MAX_RETRY_AFTER_SECONDS`; `ATTEMPTS` tries in all, each bounded by
`TELEGRAM_REQUEST_TIMEOUT`, so a hanging Telegram never holds a worker for long. In a web request
(`wait=False`: the admin's refund action) nothing sleeps: the first failure is raised, a 429 with
its `retry_after` for the caller to show.

Secrets: the URL contains the token, so it is never logged, never put in an exception and never
chained into a traceback. Logs name the method and the bot id only, Telegram's descriptions are
scrubbed of `bot<token>` segments before they leave this module, and httpx's own request log lines
(which carry the URL) are scrubbed by a filter on its logger.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import httpx
from django.conf import settings

from duoniche.sentry import scrub_text

logger = logging.getLogger(__name__)

#: Tries per call in a worker (the first one included).
ATTEMPTS = 3
#: Wait before the second try after a connection error or a 5xx; doubled for each further try.
BACKOFF_SECONDS = 0.5
#: HTTP 429: wait `retry_after` seconds and retry, but only if Telegram asks for this little.
MAX_RETRY_AFTER_SECONDS = 10
#: Connecting takes at most this long (or `TELEGRAM_REQUEST_TIMEOUT`, when shorter).
CONNECT_TIMEOUT_SECONDS = 5.0
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


class TelegramError(Exception):
    """A Bot API call failed; `description` is Telegram's (scrubbed) or our own explanation."""

    def __init__(
        self, description: str, error_code: int | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(description)
        self.description = description
        self.error_code = error_code
        #: No answer arrived (refused, reset, timed out): worth another try.
        self.unreachable = unreachable
        #: Seconds Telegram asked us to wait (HTTP 429), if it said so.
        self.retry_after: float | None = None


class _ScrubUrls(logging.Filter):
    """httpx logs each request with its URL, which holds the bot token: scrub the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _ScrubUrls) for f in _logger.filters):
        _logger.addFilter(_ScrubUrls())


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


def _timeout() -> httpx.Timeout:
    seconds = float(settings.TELEGRAM_REQUEST_TIMEOUT)
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_SECONDS))


def _post(client: httpx.Client, token: str, method: str, body: bytes, content_type: str) -> Any:
    """One POST; the Bot API `result`, or a TelegramError. Nothing here may carry the URL."""
    try:
        response = client.post(
            f"{settings.TELEGRAM_API_BASE_URL}/bot{token}/{method}",
            content=body,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
    except httpx.TimeoutException:
        raise TelegramError(
            f"Telegram did not answer within {settings.TELEGRAM_REQUEST_TIMEOUT:g} s.",
            unreachable=True,
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # refused, reset, bad base URL
        description = _clean(f"Telegram is unreachable: {exc}", token)
        raise TelegramError(description, unreachable=True) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("ok") is True:
        return answer.get("result")
    raise _error(answer, response.status_code, token)


def _retry_delay(error: TelegramError, attempt: int) -> float | None:
    """The one retry policy: seconds to wait before another try after `error`, or None."""
    if attempt >= ATTEMPTS:
        return None
    if error.error_code == 429:
        wait = error.retry_after
        return wait if wait is not None and wait <= MAX_RETRY_AFTER_SECONDS else None
    if error.unreachable or (error.error_code is not None and error.error_code >= 500):
        return float(BACKOFF_SECONDS * 2 ** (attempt - 1))
    return None


def _send(*, bot_id: str, method: str, body: bytes, content_type: str, wait: bool) -> Any:
    """POST `body` to `method` as `bot_id`'s bot under the retry policy (no sleeping at all when
    `wait` is False); failures are logged without the URL."""
    token = _token(bot_id)
    with httpx.Client(timeout=_timeout(), follow_redirects=False) as client:
        attempt = 1
        while True:
            try:
                return _post(client, token, method, body, content_type)
            except TelegramError as error:
                delay = _retry_delay(error, attempt) if wait else None
                if delay is None:
                    logger.warning(
                        "telegram %s for bot %s failed: %s", method, bot_id, error.description
                    )
                    raise
                logger.info(
                    "telegram %s for bot %s failed (%s); retrying in %ss",
                    method,
                    bot_id,
                    error.description,
                    delay,
                )
            time.sleep(delay)
            attempt += 1


def call(*, bot_id: str, method: str, params: dict[str, Any], wait: bool = True) -> Any:
    """Call a Bot API method as `bot_id`'s bot with JSON `params`; the Bot API `result`.

    `wait=False` in a web request: no retry, no sleep; a 429 is raised with its `retry_after`.
    """
    return _send(
        bot_id=bot_id,
        method=method,
        body=json.dumps(params).encode(),
        content_type="application/json",
        wait=wait,
    )


def refund_star_payment(*, bot_id: str, user_id: int, charge_id: str, wait: bool) -> bool:
    """Refund a Telegram Stars payment: True if refunded now, False if it already was.

    Telegram's `CHARGE_ALREADY_REFUNDED` error is a success too (refunds are idempotent, which
    also makes retrying after a timeout safe); any other failure raises TelegramError. `wait`:
    see `call`.
    """
    try:
        call(
            bot_id=bot_id,
            method="refundStarPayment",
            params={"user_id": user_id, "telegram_payment_charge_id": charge_id},
            wait=wait,
        )
    except TelegramError as error:
        if ALREADY_REFUNDED in error.description:
            return False
        raise
    return True


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
    body, content_type = _multipart({"chat_id": chat_id}, {"voice": (filename, audio, "audio/ogg")})
    result = _send(
        bot_id=bot_id, method="sendVoice", body=body, content_type=content_type, wait=True
    )
    voice = result.get("voice") if isinstance(result, dict) else None
    file_id = voice.get("file_id") if isinstance(voice, dict) else None
    if not isinstance(file_id, str) or not file_id:
        logger.warning("telegram sendVoice for bot %s returned no voice file_id", bot_id)
        raise TelegramError("sendVoice returned no voice file_id.")
    return file_id
