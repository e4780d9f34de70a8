"""The Telegram-HTML subset: what LLM-written text and staff-edited feedback are cleaned to.

Telegram's HTML parse mode accepts a handful of tags and rejects a message with a stray `<` or `&`.
`clean_telegram_html` turns an arbitrary string into text it accepts: the
allowed tags are kept without attributes, block tags become newlines, every other tag is dropped
(its text kept, except inside `<script>`/`<style>`), entities are decoded once and the text is
re-escaped, and tags are balanced. Fix: the previous cleaner unescaped entities and produced raw
`<`/`&` that Telegram refused.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

#: Input tag → the Telegram tag it becomes.
ALLOWED_TAGS: dict[str, str] = {
    "b": "b",
    "strong": "b",
    "i": "i",
    "em": "i",
    "u": "u",
    "ins": "u",
    "s": "s",
    "strike": "s",
    "del": "s",
    "code": "code",
}
NEWLINE_TAGS = frozenset({"br", "p", "div", "ul", "ol"})
DROPPED_CONTENT_TAGS = frozenset({"script", "style"})

_MANY_NEWLINES = re.compile(r"\n{3,}")
_TOKEN = re.compile(r"<(/?)([a-z]+)>|&(?:[a-z]+|#\d+|#x[0-9a-f]+);|[^<&]", re.IGNORECASE)


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []  # the Telegram tags currently open, outermost first
        self.repeated: dict[str, int] = {}  # nested repeats of an open tag, dropped with closers
        self.skipping = 0  # depth inside <script>/<style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_CONTENT_TAGS:
            self.skipping += 1
        elif self.skipping:
            return
        elif tag in ALLOWED_TAGS:
            name = ALLOWED_TAGS[tag]
            if name in self.open:
                self.repeated[name] = self.repeated.get(name, 0) + 1
            else:
                self.open.append(name)
                self.out.append(f"<{name}>")
        elif tag in NEWLINE_TAGS:
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skipping and tag in NEWLINE_TAGS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_CONTENT_TAGS:
            self.skipping = max(self.skipping - 1, 0)
        elif self.skipping:
            return
        elif tag in ALLOWED_TAGS:
            self._close(ALLOWED_TAGS[tag])
        elif tag in NEWLINE_TAGS:
            self.out.append("\n")

    def _close(self, name: str) -> None:
        if self.repeated.get(name):
            self.repeated[name] -= 1
            return
        if name not in self.open:
            return  # a stray closer
        position = self.open.index(name)
        overlapped = self.open[position + 1 :]
        for inner in reversed(overlapped):
            self.out.append(f"</{inner}>")
        self.out.append(f"</{name}>")
        del self.open[position:]
        for inner in overlapped:  # reopen what the overlap closed
            self.open.append(inner)
            self.out.append(f"<{inner}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        for name in reversed(self.open):
            self.out.append(f"</{name}>")
        self.open.clear()
        return _MANY_NEWLINES.sub("\n\n", "".join(self.out)).strip()


def clean_telegram_html(text: str) -> str:
    """`text` reduced to the Telegram-HTML subset (safe to send with parse mode HTML)."""
    cleaner = _Cleaner()
    cleaner.feed(text)
    return cleaner.result()


def visible_length(cleaned: str) -> int:
    """Length as Telegram counts it: tags removed, each entity one character."""
    return sum(1 for match in _TOKEN.finditer(cleaned) if not match.group(2))


def truncate_visible(cleaned: str, limit: int, *, ellipsis: str = "…") -> str:
    """Cleaned text cut to at most `limit` visible characters (the ellipsis included).

    The cut falls on the last word boundary before the limit, never inside a tag or an entity;
    tags left open are closed.
    """
    if visible_length(cleaned) <= limit:
        return cleaned
    budget = max(limit - len(ellipsis), 0)
    pieces: list[str] = []
    open_tags: list[str] = []
    visible = 0
    last_space: tuple[int, list[str]] | None = None
    for match in _TOKEN.finditer(cleaned):
        if match.group(2):
            name = match.group(2).lower()
            if match.group(1):
                if name in open_tags:
                    open_tags.remove(name)
            else:
                open_tags.append(name)
            pieces.append(match.group(0))
            continue
        if match.group(0).isspace():
            last_space = (len(pieces), list(open_tags))
        if visible == budget:
            break
        pieces.append(match.group(0))
        visible += 1
    if last_space is not None:
        cut, open_tags = last_space
        pieces = pieces[:cut]
    kept = "".join(pieces).rstrip()
    return kept + "".join(f"</{name}>" for name in reversed(open_tags)) + ellipsis
