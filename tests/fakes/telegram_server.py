"""A loopback fake Telegram Bot API that understands multipart uploads (`sendVoice`).

`duoniche.telegram` talks to it over the network stack exactly as it talks to Telegram. Multipart
bodies are decoded with the standard library's MIME parser, independently of our encoder.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

BULGARIAN_TOKEN = "111111:bulgarian-voice-secret"
SERBIAN_TOKEN = "222222:serbian-voice-secret"
UPLOAD_CHAT_ID = "-1001234567890"


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    content: bytes


@dataclass
class TelegramUpload:
    token: str
    method: str
    content_type: str
    fields: dict[str, str]
    files: dict[str, UploadedFile]


@dataclass
class FakeTelegramVoice:
    """Records every request; answers queued replies per method, else a voice message."""

    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    requests: list[TelegramUpload] = field(default_factory=list)
    replies: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def reply(self, method: str, body: Any, *, status: int = 200) -> None:
        """Queue one answer for `method`."""
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
    def uploads(self) -> list[TelegramUpload]:
        return [r for r in self.requests if r.method == "sendVoice"]


def _parse(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    if not content_type.startswith("multipart/form-data"):
        body = json.loads(raw) if raw else {}
        return {key: str(value) for key, value in body.items()}, {}
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
    return fields, files


def _handler(fake: FakeTelegramVoice) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            bot_part, _, method = self.path.lstrip("/").partition("/")
            content_type = self.headers.get("Content-Type", "")
            fields, files = _parse(content_type, raw)
            with fake.lock:
                fake.requests.append(
                    TelegramUpload(
                        token=bot_part.removeprefix("bot"),
                        method=method,
                        content_type=content_type,
                        fields=fields,
                        files=files,
                    )
                )
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


@pytest.fixture
def fake_telegram_voice(settings) -> Iterator[FakeTelegramVoice]:
    """The Bot API at a loopback fake, with both bots' tokens and an upload chat configured."""
    fake = FakeTelegramVoice()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    fake.url = f"http://{host}:{port}"
    fake.tokens = {"Bulgarian": BULGARIAN_TOKEN, "Serbian": SERBIAN_TOKEN}
    settings.TELEGRAM_API_BASE_URL = fake.url
    settings.TELEGRAM_BOT_TOKENS_JSON = dict(fake.tokens)
    settings.TELEGRAM_UPLOAD_CHAT_ID = UPLOAD_CHAT_ID
    settings.TELEGRAM_REQUEST_TIMEOUT = 5.0
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
