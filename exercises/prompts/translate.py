"""Feedback translator (purpose `translation`).

A stored verdict's feedback is translated into another learner's language instead of asking the
validator again; the result is cleaned to the Telegram-HTML subset before it is stored.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from duoniche.llm import Prompt
from exercises.prompts import DATA_RULE


class FeedbackTranslation(BaseModel):
    translated_text: str = Field(description="the comment translated into the target language")
    source_language: str = Field(description="ISO 639-1 code of the original comment's language")


SYSTEM = (
    "You are an experienced teacher of {exercise_language}. A colleague wrote a comment on a "
    "student's answer to an exercise. Translate that comment into {user_language} for the "
    "student.\n"
    "Rules:\n"
    "- Keep the pedagogical meaning, the tone and the structure; add nothing and leave nothing "
    "out.\n"
    "- Leave the parts inside <code>...</code> (quotes from the exercise or the answer) exactly "
    "as they are, untranslated, and keep the <b>, <i> and <code> tags.\n"
    "- Detect the language of the original comment yourself and report its ISO 639-1 code.\n"
    f"- {DATA_RULE}"
)

USER = (
    "Exercise data (JSON):\n"
    "{exercise_data}\n"
    "The student's answer:\n"
    "{student_answer}\n"
    "The comment to translate into {user_language}:\n"
    "{original_feedback}"
)

TRANSLATE_FEEDBACK = Prompt(
    id="translate_feedback",
    version="1",
    system=SYSTEM,
    user=USER,
    output=FeedbackTranslation,
)
