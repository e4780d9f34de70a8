"""Concurrent identical validations share one LLM call and one verdict row.

Real threads with their own database connections (PostgreSQL) and the real Redis cache locks.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test import Client

from duoniche.models import LLMCall
from exercises.models import ExerciseAnswer
from exercises.verdicts import verdicts_delete
from learning.models import ExerciseAttempt
from learning.users import users_delete
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory
from tests.learning.factories import BotProfileFactory
from tests.row_locks import wait_until_blocked

pytestmark = pytest.mark.django_db(transaction=True)
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
WRONG = {"exercise_type": "fill_in_the_blank", "words": ["една"]}


def run_together(exercise_id, user_ids, answer=WRONG):
    """POST the same answer for each user at the same moment; the responses in user order."""
    barrier = threading.Barrier(len(user_ids))
    results: dict[int, tuple[int, dict]] = {}
    errors: list[BaseException] = []

    def submit(position, user_id):
        try:
            barrier.wait()
            response = Client().post(
                f"/api/v1/exercises/{exercise_id}/validate/",
                {"user_id": user_id, "answer": answer},
                content_type="application/json",
                **AUTH,
            )
            results[position] = (response.status_code, response.json())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=submit, args=(position, user_id))
        for position, user_id in enumerate(user_ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not errors
    return [results[position] for position in range(len(user_ids))]


@pytest.fixture
def exercise():
    return ExerciseFactory(
        data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една", "един"]}
    )


def test_two_learners_share_one_llm_call_and_one_verdict(exercise, fake_llm):
    fake_llm.delay = 0.5
    fake_llm.script = [
        {"is_correct": False, "feedback": "Use <code>едно</code>.", "error_tags": None}
    ]
    first = BotProfileFactory(user_language="en")
    second = BotProfileFactory(user_language="en")

    responses = run_together(exercise.pk, [first.user_id, second.user_id])

    expected = (200, {"is_correct": False, "feedback": "Use <code>едно</code>."})
    assert responses == [expected, expected]
    assert len(fake_llm.calls) == 1
    verdict = ExerciseAnswer.objects.get(is_reference=False)
    assert verdict.attempts_count == 2
    assert ExerciseAttempt.objects.filter(verdict=verdict).count() == 2
    assert LLMCall.objects.count() == 1


def test_learners_with_two_languages_get_one_validation_and_one_translation(exercise, fake_llm):
    fake_llm.delay = 0.5
    fake_llm.script = [
        {"is_correct": False, "feedback": "Neuter noun.", "error_tags": None},
        {"translated_text": "Средний род.", "source_language": "en"},
    ]
    english = BotProfileFactory(user_language="en")
    russian = BotProfileFactory(user_language="ru")

    responses = run_together(exercise.pk, [english.user_id, russian.user_id])

    assert all(status == 200 for status, _ in responses)
    assert {body["feedback"] for _, body in responses} == {"Neuter noun.", "Средний род."}
    assert ExerciseAnswer.objects.filter(is_reference=False).count() == 2
    assert sorted(LLMCall.objects.values_list("operation", flat=True)) == [
        "translate_feedback",
        "validate_fill_in_the_blank",
    ]
    assert ExerciseAttempt.objects.count() == 2


def test_one_learner_submitting_twice_at_once_records_one_attempt(exercise, fake_llm):
    fake_llm.delay = 0.5
    fake_llm.script = [{"is_correct": False, "feedback": "Once.", "error_tags": None}]
    learner = BotProfileFactory(user_language="en")

    responses = run_together(exercise.pk, [learner.user_id, learner.user_id])

    assert responses == [(200, {"is_correct": False, "feedback": "Once."})] * 2
    assert ExerciseAttempt.objects.count() == 1
    assert len(fake_llm.calls) == 1


def test_one_learner_sending_a_known_correct_answer_many_times_at_once_records_one_attempt(
    exercise, fake_llm
):
    learner = BotProfileFactory(user_language="en")
    correct = {"exercise_type": "fill_in_the_blank", "words": ["едно"]}

    responses = run_together(exercise.pk, [learner.user_id] * 8, answer=correct)

    assert responses == [(200, {"is_correct": True, "feedback": ""})] * 8
    assert ExerciseAttempt.objects.count() == 1
    exercise.refresh_from_db()
    assert exercise.attempts_count == 1
    assert exercise.verdicts.get(is_reference=True).attempts_count == 1
    assert fake_llm.calls == []


def validate_while_deleting(delete, exercise_id, user_id, answer):
    """POST an answer while another transaction deletes a row it needs: the deletion is made
    first, the validate reads the rows still committed, and the deletion commits only once the
    validate's write is waiting for its locks. Returns (status, body)."""
    deleted, commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def deleter():
        try:
            with transaction.atomic():
                delete()
                deleted.set()
                commit.wait(30)
        except BaseException as exc:  # reported by the main thread
            outcome["deleter"] = exc
        finally:
            deleted.set()
            connection.close()

    def submit():
        try:
            response = Client().post(
                f"/api/v1/exercises/{exercise_id}/validate/",
                {"user_id": user_id, "answer": answer},
                content_type="application/json",
                **AUTH,
            )
            outcome["response"] = (response.status_code, response.json())
        except BaseException as exc:
            outcome["submit"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=deleter), threading.Thread(target=submit)]
    threads[0].start()
    assert deleted.wait(30)
    threads[1].start()
    wait_until_blocked(threads[1])
    commit.set()
    for thread in threads:
        thread.join(timeout=60)
    assert set(outcome) == {"response"}, outcome
    return outcome["response"]


def test_a_learner_deleted_by_staff_during_their_answer_gets_404_not_500(exercise):
    profile = BotProfileFactory(user_language="en")
    right = {"exercise_type": "fill_in_the_blank", "words": ["едно"]}

    status, body = validate_while_deleting(
        lambda: users_delete(user_ids=[profile.user_id]), exercise.pk, profile.user_id, right
    )

    assert status == 404
    assert body["code"] == "profile_not_found"
    assert not ExerciseAttempt.objects.exists()


def test_a_verdict_deleted_by_staff_during_an_answer_leaves_the_attempt_without_its_link(
    exercise,
):
    profile = BotProfileFactory(user_language="en")
    stored = ExerciseAnswerFactory(
        exercise=exercise, answer={"words": ["една"]}, feedback="Use <code>едно</code>."
    )

    status, body = validate_while_deleting(
        lambda: verdicts_delete([stored.pk]), exercise.pk, profile.user_id, WRONG
    )

    assert (status, body) == (200, {"is_correct": False, "feedback": "Use <code>едно</code>."})
    attempt = ExerciseAttempt.objects.get()
    assert (attempt.verdict_id, attempt.is_correct, attempt.feedback) == (
        None,
        False,
        "Use <code>едно</code>.",
    )
