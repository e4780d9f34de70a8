"""What generators produce: an exercise before assessment, audio and saving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Draft:
    """A generated exercise, normalised, options in wire order (correct first)."""

    exercise_type: str
    exercise_language: str
    language_level: str
    topic: str
    data: dict[str, Any]
    correct_answer: dict[str, Any]
    grammar_tags: dict[str, list[str]]
    persona: str | None
    #: The model that wrote it (a metrics label).
    llm_model: str = ""


class GenerationFailed(Exception):
    """A generation step could not produce a usable draft; `reason` is short and loggable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
