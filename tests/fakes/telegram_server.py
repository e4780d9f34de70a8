"""A loopback fake Telegram Bot API: JSON calls (payments, refunds) and multipart uploads.

A real HTTP server on 127.0.0.1 (random port) in a thread: `duoniche.telegram` talks to it over
the network stack exactly as it talks to Telegram, so nothing of ours is mocked. Multipart bodies
are decoded with the standard library's MIME parser, independently of our encoder.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.fakes.loopback import serving

BULGARIAN_TOKEN = "111111:bulgarian-voice-secret"
SERBIAN_TOKEN = "222222:serbian-voice-secret"
UPLOAD_CHAT_ID = "-1001234567890"


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    content: bytes


@dataclass
class TelegramRequest:
    """One call: `body` is the decoded JSON (text if it was not JSON, None for multipart);
    `fields` and `files` are the form parts (a JSON body's keys appear as text fields too)."""

    token: str
    method: str
    content_type: str
    body: Any
    fields: dict[str, str]
    files: dict[str, UploadedFile]


@dataclass
class FakeTelegram:
    """Records every request; answers queued replies per method, else a voice message for
    `sendVoice` and `{"ok": true, "result": true}` for anything else."""

    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    requests: list[TelegramRequest] = field(default_factory=list)
    replies: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    gates: dict[str, threading.Event] = field(default_factory=dict)

    def hold(self, method: str) -> threading.Event:
        """Hold every answer to `method` (recorded on arrival) until the returned event is set."""
        gate = self.gates[method] = threading.Event()
        return gate

    def reply(self, method: str, body: Any, *, status: int = 200) -> None:
        """Queue one answer for `method`; a `str` body is sent as is (not JSON)."""
        self.replies.setdefault(method, []).append((status, body))

    def next_reply(self, method: str) -> tuple[int, Any]:
        with self.lock:
            queue = self.replies.get(method)
            if queue:
                return queue.pop(0)
            number = next(self.counter)
        if method == "sendVoice":
            voice = {
                "file_id": f"voice-file-{number}",
                "file_unique_id": f"u{number}",
                "duration": 3,
                "mime_type": "audio/ogg",
            }
            return 200, {"ok": True, "result": {"message_id": number, "voice": voice}}
        return 200, {"ok": True, "result": True}

    @property
    def uploads(self) -> list[TelegramRequest]:
        return [r for r in self.requests if r.method == "sendVoice"]


def _parse(content_type: str, raw: bytes) -> tuple[Any, dict[str, str], dict[str, UploadedFile]]:
    """(JSON body, form fields, files) of a request."""
    if not content_type.startswith("multipart/form-data"):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace"), {}, {}
        fields = {key: str(value) for key, value in body.items()} if isinstance(body, dict) else {}
        return body, fields, {}
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        if filename is None:
            fields[name] = payload.decode()
        else:
            files[name] = UploadedFile(filename, part.get_content_type(), payload)
    return None, fields, files


def _handler(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            bot_part, _, method = self.path.lstrip("/").partition("/")
            content_type = self.headers.get("Content-Type", "")
            body, fields, files = _parse(content_type, raw)
            with fake.lock:
                fake.requests.append(
                    TelegramRequest(
                        token=bot_part.removeprefix("bot"),
                        method=method,
                        content_type=content_type,
                        body=body,
                        fields=fields,
                        files=files,
                    )
                )
            gate = fake.gates.get(method)
            if gate is not None:
                gate.wait(timeout=10)
            status, answer = fake.next_reply(method)
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def running_fake_telegram(settings: Any, tokens: dict[str, str]) -> Iterator[FakeTelegram]:
    """The fake, serving, with the settings pointing at it and knowing `tokens` (by bot id)."""
    fake = FakeTelegram()
    with serving(_handler(fake)) as url:
        fake.url = url
        fake.tokens = dict(tokens)
        settings.TELEGRAM_API_BASE_URL = fake.url
        settings.TELEGRAM_BOT_TOKENS_JSON = dict(tokens)
        settings.TELEGRAM_REQUEST_TIMEOUT = 5.0
        yield fake


@pytest.fixture
def fake_telegram_voice(settings) -> Iterator[FakeTelegram]:
    """The Bot API at a loopback fake, with both bots' tokens and an upload chat configured."""
    settings.TELEGRAM_UPLOAD_CHAT_ID = UPLOAD_CHAT_ID
    with running_fake_telegram(
        settings, {"Bulgarian": BULGARIAN_TOKEN, "Serbian": SERBIAN_TOKEN}
    ) as fake:
        yield fake
