"""Status changes go through one service that records each decision."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exercises.models import ExerciseReview
from exercises.services import exercise_change_status
from tests.exercises.factories import ExerciseFactory

pytestmark = pytest.mark.django_db


def test_a_change_is_stamped_and_recorded():
    exercise = ExerciseFactory()
    now = timezone.now() + timedelta(minutes=1)

    review = exercise_change_status(
        exercise_id=exercise.pk, new_status="pending_review", source="quality_monitor", now=now,
        note="error rate 0.71", stats={"weighted_attempts": 8.2},
    )  # fmt: skip

    exercise.refresh_from_db()
    assert (exercise.status, exercise.status_changed_at) == ("pending_review", now)
    assert exercise.last_reviewed_at is None
    assert review is not None
    assert (review.previous_status, review.new_status, review.stats) == (
        "published", "pending_review", {"weighted_attempts": 8.2}
    )  # fmt: skip


def test_leaving_review_stamps_last_reviewed_at():
    exercise = ExerciseFactory(status="pending_review")
    now = timezone.now()

    exercise_change_status(
        exercise_id=exercise.pk, new_status="published", source="review_processor", now=now
    )

    exercise.refresh_from_db()
    assert exercise.last_reviewed_at == now


def test_expected_status_guards_against_a_concurrent_decision():
    exercise = ExerciseFactory(status="archived")

    review = exercise_change_status(
        exercise_id=exercise.pk, new_status="published", source="review_processor",
        now=timezone.now(), expected_status="pending_review",
    )  # fmt: skip

    exercise.refresh_from_db()
    assert review is None
    assert exercise.status == "archived"
    assert not ExerciseReview.objects.exists()


def test_keeping_the_status_is_still_a_recorded_decision():
    exercise = ExerciseFactory(status="pending_review")

    review = exercise_change_status(
        exercise_id=exercise.pk, new_status="pending_review", source="review_processor",
        now=timezone.now(), note="assessor unavailable",
    )  # fmt: skip

    assert review is not None
    assert review.previous_status == review.new_status == "pending_review"
