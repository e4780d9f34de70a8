"""Written-out statements on hot paths: they must store what the ORM would, and stay atomic."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from duoniche.rows import Statement, insert_statement, run_with, update_row
from exercises.models import Exercise
from learning.models import ExerciseAttempt
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import TelegramUserFactory

pytestmark = pytest.mark.django_db


def bump(exercise: Exercise) -> Statement:
    return Statement(
        "UPDATE exercises_exercise SET attempts_count = attempts_count + 1 WHERE id = %s",
        (exercise.pk,),
    )


def test_insert_statement_stores_what_the_orm_would_load_back():
    user, exercise = TelegramUserFactory(), ExerciseFactory()
    now = timezone.now()
    attempt = ExerciseAttempt(
        user_id=user.pk,
        exercise_id=exercise.pk,
        answer={"words": ["дума", "Ж"]},
        answer_text="дума Ж",
        answer_key="k" * 64,
        is_correct=False,
        feedback="<b>не</b>",
        error_tags={"grammar": ["verb"], "vocabulary": []},
        created_at=now,
    )

    attempt_id = run_with(insert_statement(attempt))

    stored = ExerciseAttempt.objects.get(pk=attempt_id)
    assert (stored.user_id, stored.exercise_id, stored.verdict_id) == (user.pk, exercise.pk, None)
    assert stored.answer == {"words": ["дума", "Ж"]}
    assert stored.error_tags == {"grammar": ["verb"], "vocabulary": []}
    assert (stored.answer_text, stored.is_correct, stored.feedback) == (
        "дума Ж",
        False,
        "<b>не</b>",
    )
    assert stored.created_at == now


def test_the_statements_alongside_land_with_the_main_one():
    user, exercise, other = TelegramUserFactory(), ExerciseFactory(), ExerciseFactory()
    attempt = ExerciseAttempt(
        user_id=user.pk, exercise_id=exercise.pk, answer={}, answer_text="", answer_key="k",
        is_correct=True,
    )  # fmt: skip

    run_with(insert_statement(attempt), bump(exercise), bump(other))

    exercise.refresh_from_db()
    other.refresh_from_db()
    assert (exercise.attempts_count, other.attempts_count) == (1, 1)
    assert ExerciseAttempt.objects.count() == 1


def test_nothing_lands_when_the_main_statement_fails():
    user, exercise = TelegramUserFactory(), ExerciseFactory()
    invalid = ExerciseAttempt(
        user_id=user.pk, exercise_id=exercise.pk, answer={}, answer_text=None, answer_key="k",
        is_correct=True,
    )  # fmt: skip

    with pytest.raises(IntegrityError), transaction.atomic():  # NOT NULL answer_text
        run_with(insert_statement(invalid), bump(exercise))

    exercise.refresh_from_db()
    assert exercise.attempts_count == 0
    assert not ExerciseAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_write_without_flush_wait_relaxes_only_its_own_commit():
    user, exercise = TelegramUserFactory(), ExerciseFactory()
    attempt = ExerciseAttempt(
        user_id=user.pk, exercise_id=exercise.pk, answer={}, answer_text="", answer_key="k",
        is_correct=True,
    )  # fmt: skip
    statement = insert_statement(attempt, flush_wait=False)
    assert "set_config('synchronous_commit', 'off', true)" in statement.sql

    attempt_id = run_with(statement, bump(exercise))

    assert ExerciseAttempt.objects.filter(pk=attempt_id).exists()
    exercise.refresh_from_db()
    assert exercise.attempts_count == 1
    with connection.cursor() as cursor:  # the next transaction waits for the disk again
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)


@pytest.mark.django_db(transaction=True)
def test_update_row_without_flush_wait_stays_inside_its_transaction():
    exercise = ExerciseFactory()
    exercise.attempts_count = 7

    with transaction.atomic():
        update_row(exercise, ["attempts_count"], flush_wait=False)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone() == ("off",)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)

    exercise.refresh_from_db()
    assert exercise.attempts_count == 7
