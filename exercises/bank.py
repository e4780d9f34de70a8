"""The exercise bank file format (docs/exercise-bank.md): validating items and writing them.

`validate_bank_items` checks every item of a parsed file, collects all errors and warnings in the
`item[<index>] <path>: <message>` form, and returns the valid items normalised and reordered to the
wire convention (correct option first), each with its content hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from duoniche.enums import ExerciseStatus, ExerciseTopic, ExerciseType, LanguageLevel
from duoniche.languages import bot_ids, get_language
from exercises.content import (
    BLANK,
    content_hash,
    normalize_blanks,
    normalize_text,
    stress_problem,
    uses_only_script,
    without_stress,
)
from exercises.language_check import check_exercise
from exercises.personas import PERSONAS_BY_NAME
from exercises.tags import KNOWN_GRAMMAR_TAGS, KNOWN_VOCABULARY_TAGS

ITEM_KEYS = (
    "exercise_type",
    "exercise_language",
    "language_level",
    "topic",
    "data",
    "correct_answer",
    "grammar_tags",
    "status",
    "persona",
)
REQUIRED_KEYS = ITEM_KEYS[:6]
INFORMATIONAL_KEYS = frozenset({"exercise_id", "content_hash", "created_at"})
IMPORTABLE_STATUSES = tuple(
    s for s in ExerciseStatus.values if s != ExerciseStatus.PROCESSING_ERROR_RETRY
)
DATA_KEYS: dict[str, tuple[str, ...]] = {
    ExerciseType.FILL_IN_THE_BLANK: ("text_with_blanks", "words"),
    ExerciseType.CHOOSE_SENTENCE: ("options",),
    ExerciseType.CHOOSE_ACCENT: ("options", "meaning"),
    ExerciseType.STORY_COMPREHENSION: (
        "content_text",
        "audio_url",
        "audio_telegram_file_id",
        "options",
    ),
}
OPTION_LIMITS: dict[str, tuple[int, int]] = {
    ExerciseType.CHOOSE_SENTENCE: (2, 6),
    ExerciseType.CHOOSE_ACCENT: (2, 5),
    ExerciseType.STORY_COMPREHENSION: (2, 6),
}
MAX_OPTION_LENGTH = 500
MAX_WORD_BYTES = 64
MAX_TAG_LENGTH = 100
MAX_MEANING_LENGTH = 2000
MAX_STORY_LENGTH = 2000
MAX_STORY_BYTES = 4800


@dataclass
class BankItem:
    """One valid item, normalised, options in wire order, with its natural key."""

    index: int
    exercise_type: str
    exercise_language: str
    language_level: str
    topic: str
    data: dict[str, Any]
    correct_answer: dict[str, Any]
    grammar_tags: dict[str, list[str]]
    status: str
    persona: str | None
    content_hash: str


@dataclass
class BankValidation:
    items: list[BankItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    invalid_count: int = 0
    #: Items the language check flagged (warned about, or refused with `strict`).
    flagged_count: int = 0


def shown(value: Any) -> str:
    """A value as quoted in messages, truncated past 60 characters."""
    text = value if isinstance(value, str) else repr(value)
    return f'"{text}"' if len(text) <= 60 else f'"{text[:57]}..."'


class _ItemChecker:
    def __init__(self, index: int, raw: Any) -> None:
        self.index = index
        self.raw = raw
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"item[{self.index}] {path}: {message}".replace(" : ", ": "))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"warning: item[{self.index}] {path}: {message}")

    # --- generic pieces -----------------------------------------------------------------------

    def choice(self, key: str, allowed: list[str] | tuple[str, ...]) -> str | None:
        value = self.raw.get(key)
        if not isinstance(value, str) or value not in allowed:
            self.error(key, f"{shown(value)} is not one of {', '.join(allowed)}")
            return None
        return value

    def string(self, value: Any, path: str, *, max_length: int | None = None) -> str | None:
        if not isinstance(value, str):
            self.error(path, "must be a string")
            return None
        text = normalize_text(value)
        if max_length is not None and len(text) > max_length:
            self.error(path, f"must be at most {max_length} characters")
            return None
        return text

    def string_list(
        self, value: Any, path: str, *, min_items: int, max_items: int, max_length: int
    ) -> list[str] | None:
        if not isinstance(value, list):
            self.error(path, "must be a list of strings")
            return None
        if not min_items <= len(value) <= max_items:
            self.error(path, f"must have {min_items} to {max_items} items, not {len(value)}")
            return None
        result: list[str] = []
        for position, item in enumerate(value):
            text = self.string(item, f"{path}[{position}]", max_length=max_length)
            if text is None:
                return None
            if not text:
                self.error(f"{path}[{position}]", "must not be empty")
                return None
            if text in result:
                self.error(f"{path}[{position}]", f"{shown(text)} is repeated")
                return None
            result.append(text)
        return result

    def object(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, "must be an object")
            return None
        value = {k: v for k, v in value.items() if not (path == "data" and k == "type")}
        ok = True
        for key in value:
            if key not in keys:
                self.error(f"{path}.{key}", "unknown key")
                ok = False
        for key in keys:
            if key not in value:
                self.error(f"{path}.{key}", "is required")
                ok = False
        return value if ok else None

    def script(self, values: list[Any], path: str, language: str, script: str) -> None:
        for position, value in enumerate(values):
            if isinstance(value, str) and not uses_only_script(value, script):
                self.error(
                    f"{path}[{position}]",
                    f"{language} text must use {script.capitalize()} letters",
                )

    # --- the item -----------------------------------------------------------------------------

    def check(self) -> BankItem | None:
        raw = self.raw
        if not isinstance(raw, dict):
            self.error("", "must be an object")
            return None
        for key in raw:
            if key not in ITEM_KEYS and key not in INFORMATIONAL_KEYS:
                self.error(str(key), "unknown key")
        for key in REQUIRED_KEYS:
            if key not in raw:
                self.error(key, "is required")
        if self.errors:
            return None

        exercise_type = self.choice("exercise_type", ExerciseType.values)
        exercise_language = self.choice("exercise_language", bot_ids())
        language_level = self.choice("language_level", LanguageLevel.values)
        topic = self.choice("topic", ExerciseTopic.values)
        status = (
            self.choice("status", IMPORTABLE_STATUSES)
            if "status" in raw
            else ExerciseStatus.PUBLISHED.value
        )
        persona = raw.get("persona")
        if persona is not None and persona not in PERSONAS_BY_NAME:
            self.error("persona", f"{shown(persona)} is not a known persona")
        grammar_tags = self.tags(raw.get("grammar_tags", {"grammar": [], "vocabulary": []}))

        language = get_language(exercise_language) if exercise_language else None
        if exercise_type and language and exercise_type in language.excluded_types:
            self.error("exercise_type", f"{exercise_type} is not available for {language.bot_id}")
        elif exercise_type == ExerciseType.CHOOSE_ACCENT and exercise_language != "Bulgarian":
            self.error("exercise_type", "choose_accent exercises are Bulgarian only")

        if exercise_type is None:
            return None
        shaped = self.content(exercise_type, raw["data"], raw["correct_answer"], status)
        if language is not None and isinstance(raw["data"], dict):
            for key in ("words", "options"):
                values = raw["data"].get(key)
                if isinstance(values, list):
                    self.script(values, f"data.{key}", language.bot_id, language.generation_script)
        if self.errors or shaped is None or grammar_tags is None:
            return None
        if not (exercise_language and language_level and topic and status):
            return None
        data, correct_answer = shaped
        return BankItem(
            index=self.index,
            exercise_type=exercise_type,
            exercise_language=exercise_language,
            language_level=language_level,
            topic=topic,
            data=data,
            correct_answer=correct_answer,
            grammar_tags=grammar_tags,
            status=status,
            persona=persona,
            content_hash=content_hash(
                exercise_type=exercise_type,
                exercise_language=exercise_language,
                data=data,
                correct_answer=correct_answer,
            ),
        )

    def tags(self, value: Any) -> dict[str, list[str]] | None:
        if not isinstance(value, dict):
            self.error("grammar_tags", "must be an object")
            return None
        unknown = [key for key in value if key not in ("grammar", "vocabulary")]
        for key in unknown:
            self.error(f"grammar_tags.{key}", "unknown key")
        if unknown:
            return None
        tags = value
        result: dict[str, list[str]] = {"grammar": [], "vocabulary": []}
        known = {"grammar": KNOWN_GRAMMAR_TAGS, "vocabulary": KNOWN_VOCABULARY_TAGS}
        for kind in ("grammar", "vocabulary"):
            values = tags.get(kind, [])
            path = f"grammar_tags.{kind}"
            if not isinstance(values, list):
                self.error(path, "must be a list of strings")
                return None
            for position, tag in enumerate(values):
                if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_LENGTH:
                    self.error(
                        f"{path}[{position}]",
                        f"must be a non-empty string of at most {MAX_TAG_LENGTH} characters",
                    )
                    return None
                tag = normalize_text(tag)
                if tag not in known[kind]:
                    self.warn(f"{path}[{position}]", f"{shown(tag)} is not a known {kind} tag")
                result[kind].append(tag)
        return result

    def content(
        self, exercise_type: str, raw_data: Any, raw_answer: Any, status: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        data = self.object(raw_data, "data", DATA_KEYS[exercise_type])
        answer_keys = ("words",) if exercise_type == ExerciseType.FILL_IN_THE_BLANK else ("answer",)
        answer = self.object(raw_answer, "correct_answer", answer_keys)
        if data is None or answer is None:
            return None
        if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
            return self.fill(data, answer)
        return self.choose(exercise_type, data, answer, status)

    def fill(
        self, data: dict[str, Any], answer: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        text = self.string(data["text_with_blanks"], "data.text_with_blanks")
        words = self.string_list(
            data["words"], "data.words", min_items=2, max_items=20, max_length=10_000
        )
        if text is None or words is None:
            return None
        text = normalize_blanks(text)
        blanks = text.count(BLANK)
        if blanks not in (1, 2):
            self.error("data.text_with_blanks", f"must have 1 or 2 blanks ({BLANK}), not {blanks}")
        for position, word in enumerate(words):
            if " " in word:
                self.error(f"data.words[{position}]", f"{shown(word)} must be a single word")
            elif len(word.encode("utf-8")) > MAX_WORD_BYTES:
                self.error(f"data.words[{position}]", f"must be at most {MAX_WORD_BYTES} bytes")
        correct = answer["words"]
        if not isinstance(correct, list) or not all(isinstance(w, str) for w in correct):
            self.error("correct_answer.words", "must be a list of strings")
            return None
        correct = [normalize_text(w) for w in correct]
        if blanks in (1, 2) and len(correct) != blanks:
            self.error(
                "correct_answer.words",
                f"must have one word per blank ({blanks}), not {len(correct)}",
            )
        for position, word in enumerate(correct):
            if word not in words:
                self.error(
                    f"correct_answer.words[{position}]", f"{shown(word)} is not one of data.words"
                )
        if not set(words) - set(correct):
            self.error("data.words", "must contain at least one distractor")
        if self.errors:
            return None
        ordered = list(dict.fromkeys(correct)) + [w for w in words if w not in correct]
        return {"text_with_blanks": text, "words": ordered}, {"words": correct}

    def choose(
        self, exercise_type: str, data: dict[str, Any], answer: dict[str, Any], status: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        low, high = OPTION_LIMITS[exercise_type]
        options = self.string_list(
            data["options"],
            "data.options",
            min_items=low,
            max_items=high,
            max_length=MAX_OPTION_LENGTH,
        )
        correct = self.string(answer["answer"], "correct_answer.answer")
        if options is None or correct is None:
            return None
        if correct not in options:
            self.error("correct_answer.answer", f"{shown(correct)} is not one of data.options")
        shaped: dict[str, Any] = {}
        if exercise_type == ExerciseType.CHOOSE_ACCENT:
            for position, option in enumerate(options):
                problem = stress_problem(option)
                if problem:
                    self.error(f"data.options[{position}]", f"{shown(option)} {problem}")
            if len({without_stress(option) for option in options}) > 1:
                self.error("data.options", "must all be the same word once the stress is removed")
            meaning = data["meaning"]
            if meaning is not None:
                meaning = self.string(meaning, "data.meaning", max_length=MAX_MEANING_LENGTH)
                # Keep the author's line breaks: only trim the ends.
                meaning = data["meaning"].strip() if meaning is not None else None
            shaped["meaning"] = meaning
        if exercise_type == ExerciseType.STORY_COMPREHENSION:
            story = self.string(
                data["content_text"], "data.content_text", max_length=MAX_STORY_LENGTH
            )
            if story is not None and not story:
                self.error("data.content_text", "must not be empty")
            elif story is not None and len(story.encode("utf-8")) > MAX_STORY_BYTES:
                self.error("data.content_text", f"must be at most {MAX_STORY_BYTES} bytes")
            shaped["content_text"] = story
            for key in ("audio_url", "audio_telegram_file_id"):
                value = self.string(data[key], f"data.{key}")
                shaped[key] = value
                if value == "" and status == ExerciseStatus.PUBLISHED:
                    self.error(
                        f"data.{key}",
                        "a published story needs audio; import it as audio_generation_error",
                    )
        if self.errors:
            return None
        ordered = [correct] + [option for option in options if option != correct]
        if exercise_type == ExerciseType.STORY_COMPREHENSION:
            shaped = {
                "content_text": shaped["content_text"],
                "audio_url": shaped["audio_url"],
                "audio_telegram_file_id": shaped["audio_telegram_file_id"],
                "options": ordered,
            }
        elif exercise_type == ExerciseType.CHOOSE_ACCENT:
            shaped = {"options": ordered, "meaning": shaped["meaning"]}
        else:
            shaped = {"options": ordered}
        return shaped, {"answer": correct}


def language_problem(item: BankItem) -> str:
    """The language check's findings of an item in one line ("" when none or disabled)."""
    findings = check_exercise(
        exercise_type=item.exercise_type, exercise_language=item.exercise_language, data=item.data
    )
    return "; ".join(
        f"{f.kind} {shown(f.word)} ({f'{f.origin}, ' if f.origin else ''}data.{f.field})"
        for f in findings or []
    )


def validate_bank_items(raw_items: list[Any], *, strict: bool = False) -> BankValidation:
    """Check every item of a parsed bank file; report all problems, keep the valid items.

    The language check's findings are a warning per item, or with `strict` an error that makes the
    item invalid."""
    result = BankValidation()
    first_index_by_hash: dict[str, int] = {}
    for index, raw in enumerate(raw_items):
        checker = _ItemChecker(index, raw)
        item = checker.check()
        if item is not None and item.content_hash in first_index_by_hash:
            checker.error("", f"duplicate of item[{first_index_by_hash[item.content_hash]}]")
            item = None
        problem = language_problem(item) if item is not None else ""
        if problem:
            result.flagged_count += 1
            if strict:
                checker.error("language", problem)
                item = None
            else:
                checker.warn("language", problem)
        result.errors.extend(checker.errors)
        result.warnings.extend(checker.warnings)
        if item is None:
            result.invalid_count += 1
        else:
            first_index_by_hash[item.content_hash] = index
            result.items.append(item)
    return result


def bank_item_from_exercise(
    *,
    exercise_type: str,
    exercise_language: str,
    language_level: str,
    topic: str,
    data: dict[str, Any],
    correct_answer: dict[str, Any],
    grammar_tags: Any,
    status: str,
    persona: str | None,
) -> dict[str, Any]:
    """An exported item: exactly the format keys, in the format's order."""
    return {
        "exercise_type": exercise_type,
        "exercise_language": exercise_language,
        "language_level": language_level,
        "topic": topic,
        "data": data,
        "correct_answer": correct_answer,
        "grammar_tags": grammar_tags,
        "status": status,
        "persona": persona,
    }
