"""A loopback fake of the online dictionary the choose_accent generator scrapes.

A real HTTP server on 127.0.0.1 (random port) in a thread. `GET /random` answers a 302 redirect
to `/word/<n>`, where `n` counts the `/random` requests in arrival order; `/word/<n>` serves the
page `pages[n % len(pages)]` from the HTML fixtures in `tests/fixtures/dictionary/<name>.html`.
The page name `error` answers 500. The generator fetches concurrently, so which request gets which
page is not fixed: tests that care read the order from the LLM calls, not from `pages`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.fakes.loopback import serving

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dictionary"
ERROR_PAGE = "error"


@dataclass
class DictionaryRequest:
    path: str
    user_agent: str


@dataclass
class FakeDictionary:
    """Hands out `pages` in turn (cycling); records every request and every page it served."""

    pages: list[str] = field(default_factory=lambda: ["voda"])
    url: str = ""
    requests: list[DictionaryRequest] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    _random_count: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def random_url(self) -> str:
        return f"{self.url}/random"

    def record(self, request: DictionaryRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def next_entry(self) -> int:
        with self._lock:
            number = self._random_count
            self._random_count += 1
            return number

    def page(self, number: int) -> str:
        name = self.pages[number % len(self.pages)]
        with self._lock:
            self.served.append(name)
        return name

    def random_requests(self) -> int:
        return sum(1 for request in self.requests if request.path == "/random")


def page_html(name: str) -> str:
    return (FIXTURES / f"{name}.html").read_text(encoding="utf-8")


def _handler(fake: FakeDictionary) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.record(
                DictionaryRequest(path=self.path, user_agent=self.headers.get("User-Agent", ""))
            )
            if self.path == "/random":
                self.send_response(302)
                self.send_header("Location", f"/word/{fake.next_entry()}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            number = self.path.removeprefix("/word/")
            if not self.path.startswith("/word/") or not number.isdigit():
                self._answer(404, "<html><body>not found</body></html>")
                return
            name = fake.page(int(number))
            if name == ERROR_PAGE:
                self._answer(500, "<html><body>internal error</body></html>")
                return
            self._answer(200, page_html(name))

        def _answer(self, status: int, html: str) -> None:
            body = html.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def running_dictionary() -> Iterator[FakeDictionary]:
    """A `FakeDictionary` served on loopback for the duration of the block."""
    fake = FakeDictionary()
    with serving(_handler(fake)) as url:
        fake.url = url
        yield fake
