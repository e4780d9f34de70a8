"""Spaced review on FSRS: cards move with every recorded answer; due mistakes come back first."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fsrs import State

from exercises.models import Exercise
from learning.models import ExerciseAttempt, ReviewCard
from learning.selection import due_review
from learning.sessions import profile_next_action
from learning.validation import attempt_validate
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory
from tests.learning.factories import BotProfileFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
RELEARN = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def relearning_step(settings):
    settings.REVIEW_RELEARN_MINUTES = 10


def answer(profile, exercise, *, right, now):
    cache.clear()  # time has passed: the duplicate-submission window is over
    words = [exercise.data["words"][0 if right else -1]]
    return attempt_validate(
        exercise_id=exercise.pk,
        user_id=profile.user_id,
        answer={"exercise_type": "fill_in_the_blank", "words": words},
        now=now,
    )


def missed(profile, exercise, *, now):
    """A wrong answer with a stored verdict (no LLM), recorded at `now`."""
    ExerciseAnswerFactory(exercise=exercise)
    result = answer(profile, exercise, right=False, now=now)
    assert not result.is_correct
    return exercise


def served(profile, now):
    result = profile_next_action(user_id=profile.user_id, bot_id=profile.bot_id, now=now)
    assert result.action == "new_exercise", result
    return result.exercise["exercise_id"]


@pytest.fixture
def profile():
    return BotProfileFactory(user_language="en", session_started_at=timezone.now())


@pytest.fixture
def bank():
    return [ExerciseFactory() for _ in range(12)]


# --- the card -------------------------------------------------------------------------------


def test_a_wrong_first_answer_makes_the_card_due_soon(profile, bank):
    now = timezone.now()

    missed(profile, bank[0], now=now)

    card = ReviewCard.objects.get(user=profile.user, exercise=bank[0])
    assert (card.bot_id, card.reviews, card.mistakes) == ("Bulgarian", 1, 1)
    assert card.state == State.Learning
    assert card.due == now + RELEARN
    assert card.last_review == now


def test_without_a_relearning_step_a_wrong_answer_comes_back_the_next_day(profile, bank, settings):
    settings.REVIEW_RELEARN_MINUTES = 0
    now = timezone.now()

    missed(profile, bank[0], now=now)

    card = ReviewCard.objects.get(user=profile.user, exercise=bank[0])
    assert (card.state, card.due) == (State.Review, now + timedelta(days=1))


def test_a_right_first_answer_schedules_a_review_days_away_and_is_no_mistake(profile, bank):
    now = timezone.now()

    answer(profile, bank[0], right=True, now=now)

    card = ReviewCard.objects.get(user=profile.user, exercise=bank[0])
    assert (card.reviews, card.mistakes, card.state) == (1, 0, State.Review)
    assert card.due - now >= timedelta(days=1)


def test_right_answers_to_a_mistake_space_its_reviews_out(profile, bank):
    now = timezone.now()
    missed(profile, bank[0], now=now)
    intervals = []
    moment = now
    for _ in range(4):
        card = ReviewCard.objects.get(user=profile.user, exercise=bank[0])
        moment = card.due
        answer(profile, bank[0], right=True, now=moment)
        card.refresh_from_db()
        intervals.append(card.due - moment)

    card = ReviewCard.objects.get(user=profile.user, exercise=bank[0])
    assert (card.reviews, card.mistakes, card.state) == (5, 1, State.Review)
    assert intervals == sorted(intervals)
    assert intervals[-1] > 3 * intervals[1]


def test_validate_with_a_card_stays_one_read_and_one_write(
    client, profile, bank, django_assert_num_queries
):
    exercise = bank[0]
    answer(profile, exercise, right=True, now=timezone.now() - timedelta(days=3))
    cache.clear()

    with django_assert_num_queries(2):
        response = client.post(
            f"/api/v1/exercises/{exercise.pk}/validate/",
            {
                "user_id": profile.user_id,
                "answer": {"exercise_type": "fill_in_the_blank", "words": ["едно"]},
            },
            content_type="application/json",
            **AUTH,
        )

    assert response.json() == {"is_correct": True, "feedback": ""}
    assert ReviewCard.objects.get().reviews == 2


# --- next-action ----------------------------------------------------------------------------


def test_a_due_mistake_is_served_before_new_exercises(profile, bank):
    now = timezone.now()
    mistake = missed(profile, bank[0], now=now)

    assert served(profile, now + RELEARN + timedelta(seconds=1)) == mistake.pk
    profile.refresh_from_db()
    assert profile.reviews_get_in_set == 1


def test_a_mistake_that_is_not_due_waits(profile, bank):
    now = timezone.now()
    mistake = missed(profile, bank[0], now=now)

    assert served(profile, now + timedelta(minutes=1)) != mistake.pk
    profile.refresh_from_db()
    assert profile.reviews_get_in_set == 0


def test_right_answers_are_not_brought_back_as_reviews(profile, bank):
    now = timezone.now()
    answer(profile, bank[0], right=True, now=now)

    later = now + timedelta(days=400)
    assert due_review(profile=profile, learning=_learning(profile, later), now=later) == (
        None,
        None,
    )
    profile.refresh_from_db()
    assert profile.review_due_at is None


def test_reviews_take_at_most_their_share_of_each_set(profile, bank, settings):
    settings.REVIEWS_IN_SET = 2
    now = timezone.now()
    mistakes = [
        missed(profile, exercise, now=now + timedelta(seconds=n))
        for n, exercise in enumerate(bank[:4])
    ]
    later = now + timedelta(hours=1)

    first_set = []
    for _ in range(5):
        first_set.append(served(profile, later))
        if first_set[-1] in {exercise.pk for exercise in mistakes}:
            answer(profile, Exercise.objects.get(pk=first_set[-1]), right=True, now=later)
    praise = profile_next_action(user_id=profile.user_id, bot_id="Bulgarian", now=later)
    second_set = [served(profile, later) for _ in range(5)]

    assert first_set[:2] == [mistakes[3].pk, mistakes[2].pk]  # the most recently due first
    assert not set(first_set[2:]) & {exercise.pk for exercise in mistakes}
    assert praise.action == "praise_and_next_set"
    # A new set brings the share back: the two mistakes still due, never twice in a row even
    # when the learner leaves one unanswered.
    assert second_set[:3] == [mistakes[1].pk, mistakes[0].pk, second_set[2]]
    assert second_set[2] not in {exercise.pk for exercise in mistakes}


def test_a_share_of_zero_or_spaced_review_off_keeps_the_old_order(profile, bank, settings):
    now = timezone.now()
    mistake = missed(profile, bank[0], now=now)
    later = now + timedelta(hours=1)

    settings.SPACED_REVIEW = False
    assert served(profile, later) != mistake.pk
    settings.SPACED_REVIEW = True
    profile.settings = {"reviews_in_set": 0}
    profile.save()  # test set-up of a stored setting
    assert served(profile, later) != mistake.pk


def test_archived_and_excluded_exercises_are_not_reviewed(profile, bank):
    now = timezone.now()
    food = missed(profile, bank[0], now=now)
    profile.settings = {"exclude_topics": ["food"]}
    profile.save()  # test set-up of a stored setting
    later = now + timedelta(hours=1)

    assert due_review(profile=profile, learning=_learning(profile, later), now=later) == (
        None,
        None,
    )
    profile.settings = {}
    profile.save()
    review, _ = due_review(profile=profile, learning=_learning(profile, later), now=later)
    assert review == food


def test_serving_a_review_stays_within_the_query_budget(
    client, profile, bank, django_assert_max_num_queries
):
    missed(profile, bank[0], now=timezone.now() - timedelta(hours=1))

    # ≤ 6 statements of ours, plus the savepoint pair of the test transaction.
    with django_assert_max_num_queries(8):
        response = client.get(
            f"/api/v1/users/{profile.user_id}/bots/Bulgarian/next-action/", **AUTH
        )

    assert response.json()["exercise"]["exercise_id"] == bank[0].pk


def test_the_due_read_walks_the_cards_index(profile, bank):
    for exercise in bank[:6]:
        missed(profile, exercise, now=timezone.now())
    later = timezone.now() + timedelta(hours=1)
    with CaptureQueriesContext(connection) as queries:
        due_review(profile=profile, learning=_learning(profile, later), now=later)
    sql = queries.captured_queries[-1]["sql"]

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a small table would be scanned anyway
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "review_card_due_idx" in plan
    assert "Seq Scan" not in plan


def _learning(profile, now):
    from duoniche.languages import get_language
    from learning.effective_settings import effective_settings

    return effective_settings(
        user=profile.user, profile=profile, language=get_language(profile.bot_id), now=now
    )


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_answers_judged_at_once_move_the_card_once(fake_llm):
    """Both requests read the card before either writes (the judge takes 0.5 s): one update."""
    exercise = ExerciseFactory(
        data={"text_with_blanks": "Искам ___ кафе.", "words": ["едно", "една", "един"]}
    )
    learner = BotProfileFactory(user_language="en")
    fake_llm.delay = 0.5
    fake_llm.script = [
        {"is_correct": False, "feedback": "Not this one.", "error_tags": None},
        {"is_correct": False, "feedback": "Nor this one.", "error_tags": None},
    ]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def submit(word):
        try:
            barrier.wait()
            response = Client().post(
                f"/api/v1/exercises/{exercise.pk}/validate/",
                {
                    "user_id": learner.user_id,
                    "answer": {"exercise_type": "fill_in_the_blank", "words": [word]},
                },
                content_type="application/json",
                **AUTH,
            )
            assert response.status_code == 200, response.content
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(word,)) for word in ("една", "един")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)

    assert not errors
    assert ExerciseAttempt.objects.filter(user_id=learner.user_id).count() == 2
    card = ReviewCard.objects.get(user_id=learner.user_id, exercise=exercise)
    assert (card.reviews, card.mistakes) == (1, 1)

    # One after the other, each answer moves the card.
    after = Client().post(
        f"/api/v1/exercises/{exercise.pk}/validate/",
        {
            "user_id": learner.user_id,
            "answer": {"exercise_type": "fill_in_the_blank", "words": ["едно"]},
        },
        content_type="application/json",
        **AUTH,
    )
    assert after.json()["is_correct"] is True
    card.refresh_from_db()
    assert (card.reviews, card.mistakes) == (2, 1)


# --- when next-action looks -------------------------------------------------------------------


def card_reads(queries):
    return sum("learning_reviewcard" in query["sql"] for query in queries.captured_queries)


def test_learners_without_mistakes_never_read_cards(profile, bank):
    now = timezone.now()
    answer(profile, bank[0], right=True, now=now)
    profile.refresh_from_db()
    assert profile.review_due_at is None

    with CaptureQueriesContext(connection) as queries:
        served(profile, now + timedelta(days=30))

    assert card_reads(queries) == 0


def test_a_mistake_not_yet_due_is_looked_up_once_until_it_is(profile, bank):
    now = timezone.now()
    missed(profile, bank[0], now=now)
    profile.refresh_from_db()
    assert profile.review_due_at == now + RELEARN
    # The learner answers it right at once (from the same session): due days away now.
    answer(profile, bank[0], right=True, now=now + timedelta(minutes=1))
    card = ReviewCard.objects.get()
    profile.refresh_from_db()
    assert profile.review_due_at == now + RELEARN  # a bound: earlier than the card's due

    with CaptureQueriesContext(connection) as first:
        served(profile, now + timedelta(hours=1))
    profile.refresh_from_db()
    with CaptureQueriesContext(connection) as second:
        served(profile, now + timedelta(hours=1, minutes=1))

    assert (card_reads(first), card_reads(second)) == (1, 0)
    assert profile.review_due_at == card.due
    assert served(profile, card.due + timedelta(seconds=1)) == bank[0].pk
