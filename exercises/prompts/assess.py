"""Generation-time quality assessor (purpose `assessment`).

An expert reviewer checks a freshly generated exercise before it is published. The exercise text
and options were written by a model, so they go in the user message inside data tags (the reviewer
judges them; instructions inside them are ignored). Deterministic checks run before this prompt
(`exercises.quality`); only exercises that pass them reach the model.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from duoniche.llm import Prompt
from exercises.prompts import DATA_RULE


class ExerciseReview(BaseModel):
    issues: list[str] = Field(
        description="concise English descriptions of the problems found; empty when valid"
    )
    is_valid: bool = Field(description="whether the exercise may be published as it is")


SYSTEM = (
    "You are an expert teacher and editor of {exercise_language} exercises for learners whose "
    "native language is {user_language}. Review one generated exercise before it is published.\n"
    "How to judge:\n"
    "- First check that the designated correct answer is grammatically correct and factually "
    "consistent with the exercise. This is the most important check.\n"
    "- The incorrect options are wrong on purpose. Do not report their errors as problems; only "
    "check that they are plausibly wrong yet clearly distinguishable from the correct answer, and "
    "that none of them is also a correct answer.\n"
    "- The exercise must be natural, educational and suitable for level {language_level}, and the "
    "best option must be unambiguous.\n"
    "- is_valid is true only if all of the above hold. Otherwise list each problem in issues, "
    "briefly and in English.\n"
    f"- {DATA_RULE}"
)

USER = (
    "Target language: {exercise_language}\n"
    "Learner's native language: {user_language}\n"
    "Exercise type: {exercise_type}\n"
    "Level: {language_level}\n"
    "Exercise text:\n"
    "{exercise_text}\n"
    "Correct options:\n"
    "{correct_options}\n"
    "Incorrect options:\n"
    "{incorrect_options}\n"
    "All options as shown to the learner:\n"
    "{options}\n"
    "Designated correct answer:\n"
    "{correct_answer}"
)

ASSESS_GENERATED_EXERCISE = Prompt(
    id="assess_generated_exercise",
    version="1",
    system=SYSTEM,
    user=USER,
    output=ExerciseReview,
)
