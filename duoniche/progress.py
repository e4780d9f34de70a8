"""A small progress bar for management commands (stderr, only on a terminal at verbosity >= 1)."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    WIDTH = 30

    def __init__(self, *, total: int, label: str, stream: TextIO, enabled: bool) -> None:
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
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
