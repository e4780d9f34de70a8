"""What the moderator's exercise page shows above the edit form: the exercise as the bot shows it,
the decisions that apply, the answers learners gave with their stored verdicts, the weighted error
rate and the review history. Read-only: built from selectors, no write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from duoniche.dictionaries import missing_parts
from duoniche.enums import ExerciseType
from duoniche.languages import get_language
from duoniche.telegram_html import clean_telegram_html
from duoniche.texts import render
from exercises.content import BLANK
from exercises.language_check import (
    FOREIGN_WORD,
    MIXED_SCRIPT,
    UNKNOWN_WORD,
    WRONG_SCRIPT,
    Finding,
    exercise_texts,
    lint_exercise,
)
from exercises.models import Exercise
from exercises.moderation import STAFF_ACTIONS, answer_among_options
from exercises.selectors import AnswerRow, attempts_weighted_error_rate, exercise_answer_rows


@dataclass(frozen=True)
class Choice:
    text: str
    is_correct: bool


def exercise_view(exercise: Exercise, rows: list[AnswerRow]) -> dict[str, Any]:
    """The exercise as the bot shows it, the correct choices marked."""
    data = exercise.data
    correct = {row.answer_text for row in rows if row.is_correct}
    view: dict[str, Any] = {
        "task": render(f"task_{exercise.exercise_type}", "en"),
        "type": exercise.exercise_type,
    }
    if exercise.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        reference = next((row for row in rows if row.is_reference), None)
        words = set(reference.answer_text.split(";")) if reference else set()
        view["sentence"] = [
            {"text": piece, "blank": index > 0}
            for index, piece in enumerate(str(data.get("text_with_blanks") or "").split(BLANK))
        ]
        view["choices"] = [Choice(str(w), str(w) in words) for w in data.get("words") or []]
        view["correct_answers"] = [
            row.answer_text.replace(";", " … ") for row in rows if row.is_correct
        ]
        return view
    view["choices"] = [Choice(str(o), str(o) in correct) for o in data.get("options") or []]
    view["correct_answers"] = [row.answer_text for row in rows if row.is_correct]
    if exercise.exercise_type == ExerciseType.STORY_COMPREHENSION:
        view["story"] = data.get("content_text") or ""
        view["audio_url"] = data.get("audio_url") or ""
        view["audio_file_id"] = data.get("audio_telegram_file_id") or ""
    if exercise.exercise_type == ExerciseType.CHOOSE_ACCENT:
        view["meaning"] = telegram_html(str(data.get("meaning") or ""))
    return view


FINDING_LABELS = {
    UNKNOWN_WORD: _("not in the dictionary"),
    FOREIGN_WORD: _("another language's word"),
    WRONG_SCRIPT: _("written in the other script"),
    MIXED_SCRIPT: _("mixes Cyrillic and Latin letters"),
}


def _finding_title(finding: Finding) -> str:
    details = [
        d for d in (finding.origin, finding.shown_in and f"as shown in {finding.shown_in}") if d
    ]
    label = str(FINDING_LABELS[finding.kind])
    return f"{label} ({', '.join(details)})" if details else label


def highlighted(text: str, findings: list[Finding]) -> SafeString:
    """`text` escaped, each offending word wrapped in a <mark> that says why."""
    parts: list[str] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < position:
            continue
        parts.append(escape(text[position : finding.start]))
        parts.append(
            format_html(
                '<mark class="language-{}" title="{}">{}</mark>',
                finding.kind,
                _finding_title(finding),
                text[finding.start : finding.end],
            )
        )
        position = finding.end
    parts.append(escape(text[position:]))
    return mark_safe("".join(parts))  # every piece escaped above


def language_view(exercise: Exercise) -> dict[str, Any]:
    """The language check of the exercise as stored: flagged texts with their words marked."""
    findings = lint_exercise(
        exercise_type=exercise.exercise_type,
        exercise_language=exercise.exercise_language,
        data=exercise.data,
    )
    if findings is None:  # disabled: say what it lacks
        language = get_language(exercise.exercise_language)
        missing = missing_parts(language) if language is not None else ["unknown language"]
        return {"disabled": ", ".join(missing) or "disabled", "texts": []}
    texts = []
    for field, text in exercise_texts(exercise.exercise_type, exercise.data):
        stored = [f for f in findings if f.field == field and not f.shown_in]
        shown = [f for f in findings if f.field == field and f.shown_in]
        if stored or shown:
            texts.append(
                {
                    "field": field,
                    "html": highlighted(text, stored),
                    "shown": [{"word": f.word, "title": _finding_title(f)} for f in shown],
                }
            )
    return {"disabled": "", "texts": texts}


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def telegram_html(text: str) -> SafeString:
    """Stored feedback as the bot renders it: cleaned to the subset, so safe to show as HTML."""
    return mark_safe(clean_telegram_html(text))  # only the allowed tags remain, without attributes


JUDGEMENTS = {
    "correct": _("correct"),
    "incorrect": _("incorrect"),
    "disputed": _("disputed"),
    "unjudged": _("not judged"),
}


def judgement(is_correct: bool | None, *, accepted: bool = True) -> dict[str, Any]:
    """A judgement in words, with the CSS class that colours it (`verdict-<kind>`)."""
    if is_correct is None:
        kind = "unjudged"
    elif is_correct:
        kind = "correct" if accepted else "disputed"
    else:
        kind = "incorrect"
    return {"kind": kind, "label": JUDGEMENTS[kind]}


def history(exercise: Exercise) -> list[dict[str, Any]]:
    reviews = exercise.reviews.order_by("-created_at", "-pk")
    return [
        {
            "review": review,
            "who": str(review.analysis.get("moderator") or review.get_source_display())
            if isinstance(review.analysis, dict)
            else review.get_source_display(),
            "details": json.dumps(
                {"analysis": review.analysis, "stats": review.stats},
                ensure_ascii=False,
                indent=2,
            )
            if review.analysis or review.stats
            else "",
        }
        for review in reviews
    ]


def decisions(exercise: Exercise) -> list[dict[str, Any]]:
    """The status decisions that apply to the exercise now; one that cannot run says why."""
    return [
        {"name": action.name, "label": action.label, "unavailable": action.unavailable_reason()}
        for action in STAFF_ACTIONS.values()
        if action.skip_reason(status=exercise.status, exercise_type=exercise.exercise_type) is None
    ]


def moderation_context(
    *, exercise: Exercise, can_change: bool, moderate_url: str
) -> dict[str, Any]:
    rows = exercise_answer_rows(exercise=exercise)
    error_rate = attempts_weighted_error_rate(
        attempts=exercise.attempts.all(),
        exercise_language=exercise.exercise_language,
        since=exercise.last_reviewed_at,
    )
    return {
        "exercise": exercise_view(exercise, rows),
        "language": language_view(exercise),
        "answers": [
            {
                "row": row,
                "judgement": judgement(row.is_correct, accepted=row.is_accepted),
                "verdicts": [
                    {
                        "verdict": verdict,
                        "judgement": judgement(verdict.is_correct),
                        "feedback": telegram_html(verdict.feedback),
                    }
                    for verdict in row.verdicts
                ],
                "can_accept": can_change
                and not row.is_accepted
                and answer_among_options(exercise=exercise, answer=row.answer_text),
            }
            for row in rows
        ],
        "attempted": any(row.attempts for row in rows),
        "error_rate": error_rate,
        "error_rate_display": percent(error_rate.rate),
        "min_weighted_attempts": settings.QUALITY_MIN_WEIGHTED_ATTEMPTS,
        "threshold_display": percent(settings.QUALITY_ERROR_RATE_THRESHOLD),
        "history": history(exercise),
        "actions": decisions(exercise) if can_change else [],
        "moderate_url": moderate_url,
    }
