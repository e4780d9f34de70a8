"""A small progress bar for management commands (stderr, only on a terminal at verbosity >= 1)."""

from __future__ import annotations

from typing import Protocol


class Stream(Protocol):
    def write(self, msg: str = "", style_func: None = None, ending: str | None = None) -> None: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


class ProgressBar:
    WIDTH = 30

    def __init__(self, *, total: int, label: str, stream: Stream, enabled: bool) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.done = 0

    def advance(self, step: int = 1) -> None:
        self.done += step
        if not self.enabled:
            return
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}", ending="")
        if self.done >= self.total:
            self.stream.write("")
        self.stream.flush()
