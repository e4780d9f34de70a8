"""Exercise selection: new first, then mistakes, then the least recently seen; no table scans."""

import random
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from duoniche.languages import get_language
from exercises.models import Exercise
from exercises.selectors import SqlCondition, exercise_pick_random
from learning.effective_settings import effective_settings
from learning.models import ExerciseAttempt
from learning.selection import exercise_select
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, ExerciseAttemptFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}


def select(profile):
    language = get_language(profile.bot_id)
    learning = effective_settings(
        user=profile.user, profile=profile, language=language, now=timezone.now()
    )
    selection = exercise_select(profile=profile, learning=learning, now=timezone.now())
    return selection.exercise, selection.repetition


def test_least_recently_seen_is_served_when_nothing_is_new(client):
    profile = BotProfileFactory()
    a, b = ExerciseFactory(), ExerciseFactory()
    now = timezone.now()
    ExerciseAttemptFactory(user=profile.user, exercise=a, created_at=now - timedelta(hours=2))
    ExerciseAttemptFactory(user=profile.user, exercise=b, created_at=now - timedelta(hours=1))

    first, repetition = select(profile)
    ExerciseAttemptFactory(user=profile.user, exercise=a, created_at=now)
    second, _ = select(profile)

    assert (first, repetition) == (a, True)
    assert second == b


def test_mistakes_come_back_before_other_repetitions():
    profile = BotProfileFactory()
    right, wrong = ExerciseFactory(), ExerciseFactory()
    ExerciseAttemptFactory(user=profile.user, exercise=right, created_at=timezone.now())
    ExerciseAttemptFactory(
        user=profile.user,
        exercise=wrong,
        is_correct=False,
        created_at=timezone.now() + timedelta(seconds=1),
    )

    picks = {select(profile)[0] for _ in range(20)}

    assert picks == {wrong}


def test_new_exercises_come_first():
    profile = BotProfileFactory()
    seen = ExerciseFactory()
    fresh = ExerciseFactory()
    ExerciseAttemptFactory(user=profile.user, exercise=seen, is_correct=False)

    assert {select(profile)[0] for _ in range(20)} == {fresh}


def test_only_published_exercises_of_the_bot_are_served():
    profile = BotProfileFactory()
    ExerciseFactory(status="archived")
    ExerciseFactory(
        exercise_language="Serbian", data={"text_with_blanks": "Ja ___.", "words": ["sam", "si"]}
    )

    assert select(profile) == (None, False)


def test_excluded_topics_are_never_selected():
    profile = BotProfileFactory(settings={"exclude_topics": ["food"]})
    ExerciseFactory(topic="food")
    travel = ExerciseFactory(topic="travel")

    assert {select(profile)[0] for _ in range(20)} == {travel}


def test_random_pick_reaches_every_exercise():
    exercises = [ExerciseFactory() for _ in range(20)]
    # Keys are drawn uniformly at creation; here they are spread evenly so that the test pins
    # the walk (both halves of the wrap-around) rather than the luck of 20 random draws.
    for position, exercise in enumerate(exercises):
        Exercise.objects.filter(pk=exercise.pk).update(random_key=(position + 0.5) / 20)

    counts = Counter(exercise_pick_random(bot_id="Bulgarian") for _ in range(2000))

    assert set(counts) == set(exercises)
    assert min(counts.values()) > 50  # each holds 1/20 of the unit interval: ~100 expected


def test_pick_walks_an_index_not_the_table():
    for _ in range(30):
        ExerciseFactory()
    profile = BotProfileFactory()
    seen = SqlCondition(
        "EXISTS (SELECT 1 FROM learning_exerciseattempt a "
        "WHERE a.user_id = %s AND a.exercise_id = e.id)",
        (profile.user_id,),
    )
    with CaptureQueriesContext(connection) as queries:
        exercise_pick_random(
            bot_id="Bulgarian",
            exercise_type="fill_in_the_blank",
            level="A2",
            topic="food",
            exclude=seen,
        )
    sql = queries.captured_queries[-1]["sql"]

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a small table would be scanned anyway
        cursor.execute("EXPLAIN " + sql)  # the captured SQL has its parameters inlined
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # Both halves of the wrap-around walk are index scans ordered by random_key, and the
    # "already seen" anti-join reads the learner's attempts by index.
    assert plan.count("Index Scan using exercise_pick_") == 2
    assert "Seq Scan" not in plan
    assert "Sort" not in plan
    assert "on learning_exerciseattempt" in plan


def test_query_count_does_not_grow_with_the_bank(client, django_assert_max_num_queries):
    profile = BotProfileFactory(session_started_at=timezone.now())
    ExerciseFactory()
    random.seed(7)  # the same level, type and topic draws for both calls
    with CaptureQueriesContext(connection) as small:
        client.get(f"/api/v1/users/{profile.user_id}/bots/Bulgarian/next-action/", **AUTH)
    Exercise.objects.bulk_create(
        Exercise(
            exercise_type="fill_in_the_blank",
            exercise_language="Bulgarian",
            language_level="A2",
            topic="food",
            data={"text_with_blanks": "___", "words": ["a"]},
            content_hash=f"bulk-{n}",
        )
        for n in range(2000)
    )
    random.seed(7)
    with CaptureQueriesContext(connection) as large:
        client.get(f"/api/v1/users/{profile.user_id}/bots/Bulgarian/next-action/", **AUTH)

    assert len(large.captured_queries) == len(small.captured_queries)


def test_migrations_declare_the_selection_indexes():
    indexes = {index.name for index in Exercise._meta.indexes}
    attempt_indexes = {index.name for index in ExerciseAttempt._meta.indexes}

    assert {"exercise_pick_exact_idx", "exercise_pick_type_idx", "exercise_pick_any_idx"} <= indexes
    assert "attempt_user_exercise_idx" in attempt_indexes
