"""Exercise factories create through `exercise_create`, the same path as import and generation."""

from typing import Any

import factory
from django.utils import timezone

from duoniche.enums import ExerciseSource, ExerciseStatus, ExerciseType, ReviewSource
from exercises.content import answer_text, content_hash, text_hash
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.services import exercise_create


class ExerciseFactory(factory.django.DjangoModelFactory):
    """A Bulgarian fill-in-the-blank exercise with unique content (override type/data as needed)."""

    class Meta:
        model = Exercise

    exercise_type = ExerciseType.FILL_IN_THE_BLANK
    exercise_language = "Bulgarian"
    language_level = "A2"
    topic = "food"
    data = factory.Sequence(
        lambda n: {"text_with_blanks": f"Искам ___ кафе номер {n}.", "words": ["едно", "една"]}
    )
    correct_answer = factory.LazyAttribute(
        lambda o: {"words": [o.data["words"][0]]}
        if o.exercise_type == ExerciseType.FILL_IN_THE_BLANK
        else {"answer": o.data["options"][0]}
    )
    grammar_tags = factory.LazyFunction(
        lambda: {"grammar": ["numerals: cardinal"], "vocabulary": []}
    )
    status = ExerciseStatus.PUBLISHED
    persona = None
    source = ExerciseSource.IMPORTED

    @classmethod
    def _create(cls, model_class: type[Exercise], *args: Any, **kwargs: Any) -> Exercise:
        kwargs.setdefault(
            "content_hash",
            content_hash(
                exercise_type=kwargs["exercise_type"],
                exercise_language=kwargs["exercise_language"],
                data=kwargs["data"],
                correct_answer=kwargs["correct_answer"],
            ),
        )
        return exercise_create(created_by="import", now=timezone.now(), **kwargs)


class ExerciseAnswerFactory(factory.django.DjangoModelFactory):
    """A non-reference verdict (an LLM judgement in a feedback language)."""

    class Meta:
        model = ExerciseAnswer

    exercise = factory.SubFactory(ExerciseFactory)
    answer = factory.LazyAttribute(lambda o: {"words": [o.exercise.data["words"][-1]]})
    answer_text = factory.LazyAttribute(lambda o: answer_text(o.exercise.exercise_type, o.answer))
    answer_key = factory.LazyAttribute(lambda o: text_hash(o.answer_text))
    is_correct = False
    feedback = "Not quite."
    feedback_language = "en"
    error_tags = factory.LazyFunction(lambda: {"grammar": ["noun gender"], "vocabulary": []})
    created_by = "LLM:user:1"


class ExerciseReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExerciseReview

    exercise = factory.SubFactory(ExerciseFactory)
    source = ReviewSource.STAFF
    previous_status = ExerciseStatus.PUBLISHED
    new_status = ExerciseStatus.ARCHIVED
    note = "archived by a moderator"
