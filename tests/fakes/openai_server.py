"""A loopback fake of an OpenAI-compatible server, so the real `ChatOpenAI` is tested over HTTP.

`FakeOpenAIServer` serves `POST /v1/chat/completions` on 127.0.0.1 from a queue of scripted
replies and records every request. A reply is one of:

* a `dict`: the structured answer. It comes back the way the request asked for it: as a tool call
  when the request has `tools` (`function_calling`), otherwise as the JSON message content
  (`json_schema`, `json_mode`);
* `Raw(text)`: `text` verbatim where the JSON would go (tool arguments or content), e.g. malformed
  JSON;
* `NoToolCall(text)`: a plain assistant message without a tool call or JSON;
* `Status(code)`: an HTTP error with an OpenAI-shaped error body (500s are retried by the SDK);
* `Slow(seconds, reply)`: `reply` after a delay, to trigger the client timeout;
* `Before(action, reply)`: `reply` after running `action()` in the server thread (races);
* `Reply(data, usage)`: a structured answer with explicit token usage.

Every successful reply carries `usage` (prompt and completion tokens). An empty queue answers 400
("no scripted reply"), which the SDK does not retry.

Use the `openai_server` fixture: it starts a server, points `settings.OPENAI_BASE_URL` at it with
an API key, the main model `FAKE_MODEL` (for every purpose), a 2 s request timeout and no SDK
retries, builds real `ChatOpenAI` models, and stops the server afterwards. To use it in a test
package, import it in that package's `conftest.py` (or in the test module):
`from tests.fakes.openai_server import openai_server_fixture  # noqa: F401`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from duoniche import llm_models

FAKE_MODEL = "fake-gpt"
FAKE_API_KEY = "sk-fake-openai-key"
DEFAULT_USAGE = (100, 20)


@dataclass(frozen=True)
class Raw:
    """`text` verbatim in place of the JSON (tool-call arguments or message content)."""

    text: str
    usage: tuple[int, int] = DEFAULT_USAGE


@dataclass(frozen=True)
class NoToolCall:
    """A plain-text assistant message: no tool call and no JSON."""

    text: str = "Sorry, I cannot help with that."
    usage: tuple[int, int] = DEFAULT_USAGE


@dataclass(frozen=True)
class Status:
    """An HTTP error response with an OpenAI-style error body.

    `retry_after_ms` sends the `retry-after-ms` header, which the SDK honours between retries
    (keeps retry tests fast).
    """

    code: int
    message: str = "the fake server failed"
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class Slow:
    """`reply` after `seconds` (longer than the client timeout makes it time out)."""

    seconds: float
    reply: Any = None


@dataclass(frozen=True)
class Before:
    """Run `action()` in the server thread, then answer `reply`.

    For races: change the world (e.g. the database, from the server thread's own connection)
    while the client waits for this response.
    """

    action: Callable[[], None]
    reply: Any = None


@dataclass(frozen=True)
class Reply:
    """A structured answer with explicit token usage (a bare dict uses `DEFAULT_USAGE`)."""

    data: dict[str, Any]
    usage: tuple[int, int] = DEFAULT_USAGE


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def mode(self) -> str:
        """How structured output was requested: `tools`, `json_schema`, `json_object` or `text`."""
        if self.body.get("tools"):
            return "tools"
        response_format = self.body.get("response_format") or {}
        return str(response_format.get("type") or "text")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


@dataclass
class FakeOpenAIServer:
    """The server state: the reply queue and the recorded requests (thread-safe)."""

    replies: deque[Any] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------

    def script(self, *replies: Any) -> FakeOpenAIServer:
        """Queue replies, answered in order, one per request."""
        with self._lock:
            self.replies.extend(replies)
        return self

    def next_reply(self) -> Any:
        with self._lock:
            return self.replies.popleft() if self.replies else None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def pending(self) -> int:
        """Replies not used yet."""
        with self._lock:
            return len(self.replies)

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give the client (`http://127.0.0.1:<port>/v1`)."""
        assert self._httpd is not None, "the server is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    # Answer at once: with Nagle's algorithm every keep-alive reply waited ~40 ms for an ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        request = RecordedRequest(
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        self.fake.record(request)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error("not found", "invalid_request_error"))
            return
        reply = self.fake.next_reply()
        while isinstance(reply, Slow | Before):
            if isinstance(reply, Slow):
                time.sleep(reply.seconds)
            else:
                reply.action()
            reply = reply.reply
        if reply is None:
            self._send(400, _error("no scripted reply left", "invalid_request_error"))
        elif isinstance(reply, Status):
            headers = {}
            if reply.retry_after_ms is not None:
                headers["retry-after-ms"] = str(reply.retry_after_ms)
            self._send(reply.code, _error(reply.message, "server_error"), headers)
        else:
            self._send(200, _completion(request, reply))

    def _send(
        self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout) and closed the connection
            self.close_connection = True


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _completion(request: RecordedRequest, reply: Any) -> dict[str, Any]:
    usage = getattr(reply, "usage", DEFAULT_USAGE)
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    finish_reason = "stop"
    if isinstance(reply, NoToolCall):
        message["content"] = reply.text
    else:
        text = reply.text if isinstance(reply, Raw) else json.dumps(_data(reply))
        if request.mode == "tools":
            message["tool_calls"] = [
                {
                    "id": f"call_{len(text)}",
                    "type": "function",
                    "function": {"name": _tool_name(request.body), "arguments": text},
                }
            ]
            finish_reason = "tool_calls"
        else:
            message["content"] = text
    prompt_tokens, completion_tokens = usage
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(request.body.get("model") or FAKE_MODEL),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _data(reply: Any) -> dict[str, Any]:
    return reply.data if isinstance(reply, Reply) else dict(reply)


def _tool_name(body: dict[str, Any]) -> str:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name") or "")
    tools = body.get("tools") or [{}]
    return str(tools[0].get("function", {}).get("name") or "")


@pytest.fixture(name="openai_server")
def openai_server_fixture(settings) -> Iterator[FakeOpenAIServer]:
    """A running fake server with the LLM settings pointing at it (real `ChatOpenAI`)."""
    server = FakeOpenAIServer().start()
    settings.OPENAI_BASE_URL = server.url
    settings.OPENAI_API_KEY = FAKE_API_KEY
    settings.OPENAI_MAIN_MODEL_NAME = FAKE_MODEL
    for name in (
        "OPENAI_GENERATION_MODEL_NAME",
        "OPENAI_VALIDATION_MODEL_NAME",
        "OPENAI_ASSESSOR_MODEL_NAME",
        "OPENAI_TRANSLATOR_MODEL_NAME",
        "OPENAI_REPORTS_MODEL_NAME",
    ):
        setattr(settings, name, "")
    settings.OPENAI_REQUEST_TIMEOUT = 2.0
    settings.OPENAI_MAX_RETRIES = 0
    settings.LLM_DAILY_BUDGET_USD = 0.0
    try:
        with llm_models.using_chat_model(llm_models.provider_chat_model):
            yield server
    finally:
        server.stop()
