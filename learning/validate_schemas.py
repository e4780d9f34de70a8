"""Request and response schemas of the validate endpoints (docs/api.md).

The answer object is a union tried left to right, so 422 locations name the variant class
(`FillInTheBlankAnswerSchema` first, then `ChooseAnswerSchema`) as the previous service's did.
`from_attributes` makes a non-object answer fail with `model_attributes_type`, as before.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from duoniche.api.validation import Schema

ANSWER_MAX_LENGTH = 500
FILL_ANSWER_MAX_WORDS = 10
FILL_WORD_MAX_LENGTH = 64

ExerciseTypeText = Annotated[str, StringConstraints(max_length=64)]
FillWord = Annotated[str, StringConstraints(min_length=1, max_length=FILL_WORD_MAX_LENGTH)]


class AnswerSchema(Schema):
    model_config = ConfigDict(extra="ignore", from_attributes=True)


class FillInTheBlankAnswerSchema(AnswerSchema):
    exercise_type: ExerciseTypeText
    words: list[FillWord] = Field(min_length=1, max_length=FILL_ANSWER_MAX_WORDS)


class ChooseAnswerSchema(AnswerSchema):
    exercise_type: ExerciseTypeText
    answer: Annotated[str, StringConstraints(min_length=1, max_length=ANSWER_MAX_LENGTH)]


AnswerObject = Annotated[
    FillInTheBlankAnswerSchema | ChooseAnswerSchema, Field(union_mode="left_to_right")
]


class ExerciseIdPath(Schema):
    exercise_id: int = Field(ge=1)


class ValidateRequest(Schema):
    user_id: int = Field(ge=1)
    answer: AnswerObject


class LegacyValidateRequest(Schema):
    user_id: int = Field(ge=1)
    exercise_id: int = Field(ge=1)
    answer: AnswerObject


class ValidationResultSchema(BaseModel):
    is_correct: bool
    feedback: str | None = Field(
        default=None,
        description="Telegram HTML; empty for most correct answers, omitted only when null",
    )
