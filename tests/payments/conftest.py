"""Payment fixtures: a loopback fake Telegram Bot API, payload and metric helpers.

The fake is a real HTTP server on 127.0.0.1 (random port) in a thread: `duoniche.telegram` talks
to it over the network stack exactly as it talks to Telegram, so nothing of ours is mocked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import REGISTRY

BULGARIAN_TOKEN = "111111:bulgarian-secret-token"
SERBIAN_TOKEN = "222222:serbian-secret-token"


@dataclass
class TelegramRequest:
    token: str
    method: str
    body: Any


@dataclass
class FakeTelegram:
    """Records every request; answers queued replies per method, else `{"ok": true}`."""

    url: str = ""
    #: The bot tokens the settings point at, by bot id.
    tokens: dict[str, str] = field(default_factory=dict)
    requests: list[TelegramRequest] = field(default_factory=list)
    replies: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)

    def reply(self, method: str, body: Any, *, status: int = 200) -> None:
        """Queue one answer for `method`; a `str` body is sent as is (not JSON)."""
        self.replies.setdefault(method, []).append((status, body))

    def next_reply(self, method: str) -> tuple[int, Any]:
        queue = self.replies.get(method)
        if queue:
            return queue.pop(0)
        return 200, {"ok": True, "result": True}


def _handler(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            # Path: /bot<token>/<method>
            bot_part, _, method = self.path.lstrip("/").partition("/")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            fake.requests.append(
                TelegramRequest(token=bot_part.removeprefix("bot"), method=method, body=body)
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
def fake_telegram(settings) -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    fake.url = f"http://{host}:{port}"
    settings.TELEGRAM_API_BASE_URL = fake.url
    fake.tokens = {"Bulgarian": BULGARIAN_TOKEN, "Serbian": SERBIAN_TOKEN}
    settings.TELEGRAM_BOT_TOKENS_JSON = dict(fake.tokens)
    settings.TELEGRAM_REQUEST_TIMEOUT = 5.0
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def payments_secret(settings) -> str:
    """A known payload secret (never to appear in logs)."""
    settings.PAYMENTS_PAYLOAD_SECRET = "pay-secret-9f8e7d6c5b4a"
    settings.PAYMENTS_ACCEPT_UNSIGNED_PAYLOADS = False
    settings.PAYMENTS_ACCEPT_ANY_AMOUNT = False
    settings.REPORT_DONATION_AMOUNT_XTR = 50
    return settings.PAYMENTS_PAYLOAD_SECRET


@pytest.fixture
def metric() -> Callable[..., float]:
    """The current value of a Prometheus sample (0 when the label set was never observed)."""

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return value
