"""A loopback fake of Google Cloud Text-to-Speech's REST API (v1) for the real client library.

`exercises.audio` builds a real `TextToSpeechClient(transport="rest")`; the `fake_tts` fixture
points it here through `GOOGLE_TTS_ENDPOINT` (plain http is accepted by the REST transport when the
endpoint carries its scheme). Implemented: `POST /v1/text:synthesize` and `GET /v1/voices`.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.loopback import serving

#: What the fake "synthesises": the OGG capture pattern and some bytes.
FAKE_OGG = b"OggS\x00\x02fake-opus-audio"


@dataclass
class TTSRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class FakeTTS:
    """Records requests; `synthesize` answers queued replies, else `audio`; `voices` by locale."""

    url: str = ""
    audio: bytes = FAKE_OGG
    voices: dict[str, list[str]] = field(default_factory=dict)
    voices_status: int = 200
    requests: list[TTSRequest] = field(default_factory=list)
    replies: list[tuple[int, Any]] = field(default_factory=list)
    #: Called (in the server thread) before each synthesize answer, e.g. to race a repair.
    on_synthesize: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int, message: str = "backend error", *, times: int = 1) -> None:
        """The next `times` synthesize calls answer a Google-style error."""
        names = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
        error = {"error": {"code": status, "message": message, "status": names.get(status, "")}}
        self.replies.extend([(status, error)] * times)

    def next_synthesis(self) -> tuple[int, Any]:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        return 200, {"audioContent": base64.b64encode(self.audio).decode()}

    @property
    def syntheses(self) -> list[dict[str, Any]]:
        """The JSON bodies of every synthesize request, in order."""
        return [r.body for r in self.requests if r.path == "/v1/text:synthesize"]

    @property
    def voice_lookups(self) -> list[TTSRequest]:
        return [r for r in self.requests if r.path == "/v1/voices"]


def _handler(fake: FakeTTS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self, body: Any) -> TTSRequest:
            parts = urlsplit(self.path)
            request = TTSRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            with fake.lock:
                fake.requests.append(request)
            return request

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = self._record(json.loads(raw) if raw else None)
            if request.path != "/v1/text:synthesize":
                self._answer(404, {"error": {"code": 404, "message": "not found"}})
                return
            if fake.on_synthesize is not None:
                fake.on_synthesize()
            self._answer(*fake.next_synthesis())

        def do_GET(self) -> None:
            request = self._record(None)
            if request.path != "/v1/voices":
                self._answer(404, {"error": {"code": 404, "message": "not found"}})
                return
            if fake.voices_status != 200:
                self._answer(fake.voices_status, {"error": {"code": fake.voices_status}})
                return
            locale = (request.query.get("languageCode") or [""])[0]
            voices = [
                {"name": name, "languageCodes": [locale], "ssmlGender": "FEMALE"}
                for name in fake.voices.get(locale, [])
            ]
            self._answer(200, {"voices": voices})

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def fake_tts(settings) -> Iterator[FakeTTS]:
    """TTS enabled against the loopback fake, with anonymous credentials."""
    fake = FakeTTS()
    with serving(_handler(fake)) as url:
        fake.url = url
        settings.GENERATE_AUDIO = True
        settings.GOOGLE_APPLICATION_CREDENTIALS = ""
        settings.GOOGLE_TTS_ENDPOINT = fake.url
        yield fake
