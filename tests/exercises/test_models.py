"""The constraints that guard the exercise bank hold in the database itself."""

import pytest
from django.db import IntegrityError, connection, transaction

from exercises.models import Exercise, ExerciseAnswer
from tests.exercises.factories import (
    ExerciseAnswerFactory,
    ExerciseFactory,
    ExerciseReviewFactory,
)

pytestmark = pytest.mark.django_db


def test_exercise_is_created_with_exactly_one_reference_verdict():
    exercise = ExerciseFactory()

    reference = exercise.verdicts.get()
    assert reference.is_reference
    assert reference.is_correct
    assert reference.answer == {"words": [exercise.data["words"][0]]}
    assert reference.feedback_language == ""
    assert 0 <= exercise.random_key < 1


def test_content_hash_is_unique():
    exercise = ExerciseFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        ExerciseFactory(data=exercise.data)


def test_random_key_must_be_in_unit_interval():
    exercise = ExerciseFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Exercise.objects.filter(pk=exercise.pk).update(random_key=1.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Exercise.objects.filter(pk=exercise.pk).update(random_key=-0.1)


def test_one_verdict_per_answer_and_feedback_language():
    verdict = ExerciseAnswerFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        ExerciseAnswerFactory(exercise=verdict.exercise, answer=verdict.answer)
    # The same answer in another feedback language is a separate verdict.
    ExerciseAnswerFactory(exercise=verdict.exercise, answer=verdict.answer, feedback_language="ru")
    assert verdict.exercise.verdicts.filter(answer_key=verdict.answer_key).count() == 2


def test_only_one_reference_answer_per_exercise():
    exercise = ExerciseFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        ExerciseAnswerFactory(
            exercise=exercise, is_reference=True, is_correct=True, feedback_language="en"
        )
    assert ExerciseAnswer.objects.filter(exercise=exercise, is_reference=True).count() == 1


def test_reviews_and_verdicts_go_with_their_exercise():
    review = ExerciseReviewFactory()
    exercise = review.exercise

    exercise.delete()

    assert not ExerciseAnswer.objects.filter(exercise_id=exercise.pk).exists()
    assert not type(review).objects.filter(pk=review.pk).exists()


def test_exercise_pages_leave_room_for_counter_updates():
    """The per-attempt `attempts_count` bump stays a HOT update (migration 0003)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'exercises_exercise'")
        assert cursor.fetchone() == (["fillfactor=90"],)
