"""The `quality_monitor` job (docs/jobs.md): ratings, the weighted error rate and its thresholds
row by row, no re-flagging on reviewed statistics, the skip without new attempts, query counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from duoniche.enums import ExerciseStatus, JobRunStatus, ReviewSource
from duoniche.job_runs import Outcome, job_run
from duoniche.models import JobRun
from exercises.models import Exercise, ExerciseReview
from exercises.services import exercise_change_status
from learning.models import BotProfile, ExerciseAttempt, TelegramUser
from learning.quality import (
    candidates_flag,
    compute_ratings,
    quality_monitor,
    rating_groups,
    review_candidates,
)
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    TelegramUserFactory,
)

pytestmark = pytest.mark.django_db

PUBLISHED = ExerciseStatus.PUBLISHED
PENDING = ExerciseStatus.PENDING_REVIEW


def later(hours: float) -> datetime:
    """`hours` from now (exercises created now are old enough after 24 h)."""
    return timezone.now() + timedelta(hours=hours)


def answers(
    exercise: Exercise,
    user: TelegramUser,
    *,
    wrong: int = 0,
    right: int = 0,
    at: datetime | None = None,
) -> None:
    """`wrong` incorrect and `right` correct attempts of `user` on `exercise`."""
    at = at or timezone.now() - timedelta(minutes=5)
    if wrong:
        verdict = exercise.verdicts.filter(is_correct=False).first() or ExerciseAnswerFactory(
            exercise=exercise
        )
        ExerciseAttemptFactory.create_batch(
            wrong, user=user, exercise=exercise, verdict=verdict, is_correct=False, created_at=at
        )
    if right:
        ExerciseAttemptFactory.create_batch(
            right, user=user, exercise=exercise, is_correct=True, created_at=at
        )


def learner(rating: float | None, *, bot_id: str = "Bulgarian") -> TelegramUser:
    user = TelegramUserFactory()
    BotProfileFactory(user=user, bot_id=bot_id, rating=rating)
    return user


def candidate_ids(*, now: datetime, since: datetime | None = None) -> list[int]:
    return [c.exercise_id for c in review_candidates(now=now, since=since)]


# --- the thresholds, row by row (review_candidates with given ratings) -------------------------


@pytest.mark.parametrize(
    ("rating", "wrong", "right", "expected"),
    [
        pytest.param(1.0, 4, 3, True, id="total-7-rate-0.57"),
        pytest.param(0.5, 7, 7, False, id="rate-exactly-0.5-is-not-over"),
        pytest.param(0.5, 8, 6, True, id="rate-0.57-at-half-weight"),
        pytest.param(1.0, 6, 0, False, id="total-6-below-7"),
        pytest.param(None, 70, 0, True, id="default-rating-0.1-times-70-is-7"),
        pytest.param(None, 69, 0, False, id="default-rating-0.1-times-69-is-below"),
        pytest.param(1.0, 0, 10, False, id="all-correct"),
    ],
)
def test_the_weighted_error_rate_thresholds(rating, wrong, right, expected):
    exercise = ExerciseFactory()
    answers(exercise, learner(rating), wrong=wrong, right=right)

    assert candidate_ids(now=later(25)) == ([exercise.pk] if expected else [])


def test_a_learner_without_a_profile_in_the_language_weighs_the_default():
    exercise = ExerciseFactory()
    serbian_expert = learner(1.0, bot_id="Serbian")  # no Bulgarian profile: 0.1
    answers(exercise, serbian_expert, wrong=7)

    assert candidate_ids(now=later(25)) == []
    answers(exercise, serbian_expert, wrong=63)
    assert candidate_ids(now=later(25)) == [exercise.pk]


def test_the_weights_mix_ratings():
    exercise = ExerciseFactory()
    answers(exercise, learner(1.0), wrong=3)  # 3.0 wrong
    answers(exercise, learner(0.5), right=8)  # 4.0 right
    assert candidate_ids(now=later(25)) == []  # 3 / 7 = 0.43

    answers(exercise, learner(0.25), wrong=4)  # +1.0 wrong: 4 / 8 = 0.5, not over
    assert candidate_ids(now=later(25)) == []

    answers(exercise, learner(0.1), wrong=1)  # 4.1 / 8.1 > 0.5
    assert candidate_ids(now=later(25)) == [exercise.pk]


def test_an_exercise_changed_less_than_24_hours_ago_is_not_a_candidate(settings):
    exercise = ExerciseFactory()
    answers(exercise, learner(1.0), wrong=7)
    changed = Exercise.objects.get(pk=exercise.pk).status_changed_at

    assert candidate_ids(now=changed + timedelta(hours=23, minutes=59)) == []
    assert candidate_ids(now=changed + timedelta(hours=24)) == [exercise.pk]
    settings.QUALITY_MIN_HOURS_SINCE_UPDATE = 48
    assert candidate_ids(now=changed + timedelta(hours=47)) == []


def test_only_published_exercises_are_candidates():
    exercise = ExerciseFactory(status=ExerciseStatus.ARCHIVED)
    answers(exercise, learner(1.0), wrong=9)

    assert candidate_ids(now=later(25)) == []


def test_the_thresholds_come_from_settings(settings):
    exercise = ExerciseFactory()
    answers(exercise, learner(1.0), wrong=3, right=2)
    assert candidate_ids(now=later(25)) == []

    settings.QUALITY_MIN_WEIGHTED_ATTEMPTS = 5.0
    assert candidate_ids(now=later(25)) == [exercise.pk]
    settings.QUALITY_ERROR_RATE_THRESHOLD = 0.6
    assert candidate_ids(now=later(25)) == []


def test_only_exercises_attempted_since_the_previous_run_are_in_scope():
    old = ExerciseFactory()
    answers(old, learner(1.0), wrong=8, at=timezone.now() - timedelta(hours=3))
    fresh = ExerciseFactory()
    answers(fresh, learner(1.0), wrong=7, at=timezone.now() - timedelta(hours=3))
    answers(fresh, learner(1.0), wrong=1, at=timezone.now() - timedelta(minutes=30))

    since = timezone.now() - timedelta(hours=1)
    assert candidate_ids(now=later(25), since=since) == [fresh.pk]
    assert candidate_ids(now=later(25)) == [old.pk, fresh.pk]


# --- ratings ------------------------------------------------------------------------------------


def test_ratings_from_days_attempts_and_correctness_written_to_two_fields_only():
    day = datetime(2025, 6, 2, tzinfo=UTC)
    bulgarian = [ExerciseFactory() for _ in range(3)]
    serbian = ExerciseFactory(
        exercise_language="Serbian",
        data={"text_with_blanks": "Hoću ___ kafu.", "words": ["jednu", "jedan"]},
    )
    ana, boris, idle = TelegramUserFactory(), TelegramUserFactory(), TelegramUserFactory()
    ana_bg = BotProfileFactory(user=ana, bot_id="Bulgarian")
    ana_sr = BotProfileFactory(user=ana, bot_id="Serbian")
    boris_bg = BotProfileFactory(user=boris, bot_id="Bulgarian", rating=0.77)
    idle_bg = BotProfileFactory(user=idle, bot_id="Bulgarian")
    # Ana, Bulgarian: 9 attempts, 6 correct, on 3 UTC days (23:30 and 00:30 are two days).
    answers(bulgarian[0], ana, right=3, at=day + timedelta(hours=23, minutes=30))
    answers(bulgarian[1], ana, right=3, wrong=1, at=day + timedelta(hours=24, minutes=30))
    answers(bulgarian[2], ana, wrong=2, at=day + timedelta(days=3, hours=12))
    answers(serbian, ana, right=1, at=day)  # Ana, Serbian: 1 attempt, correct, 1 day
    answers(bulgarian[0], boris, wrong=1, at=day)  # Boris: 1 attempt, wrong, 1 day
    untouched = {
        p.pk: p.updated_at for p in BotProfile.objects.filter(pk__in=[ana_bg.pk, boris_bg.pk])
    }
    now = later(1)

    stats = quality_monitor(now=now, dry_run=False)

    # days range 3 - 1 = 2 > 0, log10(1 + total) range 1 - log10(2) > 0: both normalised.
    expected = {ana_bg.pk: 0.9, ana_sr.pk: 0.3, boris_bg.pk: 0.0, idle_bg.pk: None}
    profiles = {p.pk: p for p in BotProfile.objects.all()}
    assert {pk: profiles[pk].rating for pk in expected} == expected
    assert profiles[ana_bg.pk].rating_last_calculated_at == now
    assert profiles[idle_bg.pk].rating_last_calculated_at is None
    assert {pk: profiles[pk].updated_at for pk in untouched} == untouched  # only the two fields
    assert (stats["rating_groups"], stats["profiles_rated"], stats["ratings_normalised"]) == (
        3,
        3,
        True,
    )


def test_without_both_ranges_only_correctness_counts():
    exercise = ExerciseFactory()
    ana, boris = learner(None), learner(None)
    answers(exercise, ana, right=1, wrong=1)  # same day for everyone: no day range
    answers(exercise, boris, right=3)

    ratings = compute_ratings(rating_groups())

    assert ratings == {(ana.pk, "Bulgarian"): 0.15, (boris.pk, "Bulgarian"): 0.3}


def test_a_dry_run_computes_and_writes_nothing():
    exercise = ExerciseFactory()
    user = learner(1.0)
    answers(exercise, user, wrong=8)

    stats = quality_monitor(now=later(25), dry_run=True)

    assert [c["exercise_id"] for c in stats["candidates"]] == [exercise.pk]
    assert stats["flagged"] == []
    assert Exercise.objects.get(pk=exercise.pk).status == PUBLISHED
    assert BotProfile.objects.get(user=user).rating == 1.0


# --- flagging -----------------------------------------------------------------------------------


def test_a_candidate_is_flagged_with_its_totals_and_the_thresholds(settings):
    settings.QUALITY_MIN_WEIGHTED_ATTEMPTS = 0.5
    exercise = ExerciseFactory()
    answers(exercise, learner(None), wrong=7, right=3)
    now = later(25)

    stats = quality_monitor(now=now, dry_run=False)

    assert stats["flagged"] == [exercise.pk]
    exercise.refresh_from_db()
    assert exercise.status == PENDING
    assert exercise.status_changed_at == now
    review = ExerciseReview.objects.get(exercise=exercise, source=ReviewSource.QUALITY_MONITOR)
    assert (review.previous_status, review.new_status) == (PUBLISHED, PENDING)
    # One learner on one day: no normalisation, so the rating is 0.3 * 3/10 = 0.09.
    assert review.stats["attempts"] == 10
    assert review.stats["weighted_total"] == pytest.approx(0.9)
    assert review.stats["weighted_incorrect"] == pytest.approx(0.63)
    assert review.stats["error_rate"] == pytest.approx(0.7)
    assert review.stats["thresholds"]["min_weighted_attempts"] == 0.5
    assert review.stats["thresholds"]["error_rate_threshold"] == 0.5
    assert review.note == "weighted error rate 0.70 over 0.90 weighted attempts"


def strong_learners(count: int, *, before: datetime) -> list[TelegramUser]:
    """Learners with a rating near 1: the most days and attempts, nearly all correct.

    Each practised 10 correct attempts over 5 days; one casual learner (1 attempt, 1 day) makes
    the min–max ranges positive.
    """
    practice = [ExerciseFactory(topic="travel") for _ in range(5)]
    users = [learner(None) for _ in range(count)]
    for user in users:
        for day, exercise in enumerate(practice):
            answers(exercise, user, right=2, at=before - timedelta(days=10 - day))
    answers(practice[0], learner(None), right=1, at=before - timedelta(days=10))
    return users


def test_fix_15_a_republished_exercise_counts_only_attempts_after_its_review():
    base = timezone.now()
    target = ExerciseFactory()
    strong = strong_learners(8, before=base)
    for user in strong:
        answers(target, user, wrong=1, at=base - timedelta(hours=1))

    first = base + timedelta(hours=25)
    assert quality_monitor(now=first, dry_run=False)["flagged"] == [target.pk]
    reviewed = first + timedelta(hours=1)
    exercise_change_status(
        exercise_id=target.pk,
        new_status=PUBLISHED,
        source=ReviewSource.REVIEW_PROCESSOR,
        now=reviewed,
        expected_status=PENDING,
    )

    # Reviewed and re-published, no new attempt: the old statistics don't count any more.
    second = reviewed + timedelta(hours=25)
    stats = quality_monitor(now=second, dry_run=False)
    assert stats["flagged"] == []
    assert Exercise.objects.get(pk=target.pk).status == PUBLISHED

    # 8 new weighted-wrong attempts after the review: flagged again, on those only.
    for user in strong:
        answers(target, user, wrong=1, at=second + timedelta(minutes=10))
    third = second + timedelta(hours=2)
    stats = quality_monitor(now=third, dry_run=False)

    assert stats["flagged"] == [target.pk]
    assert Exercise.objects.get(pk=target.pk).status == PENDING
    review = ExerciseReview.objects.filter(
        exercise=target, source=ReviewSource.QUALITY_MONITOR
    ).latest("created_at")
    assert review.created_at == third
    assert review.stats["attempts"] == 8
    assert review.stats["weighted_total"] >= 7.0
    assert review.stats["error_rate"] == 1.0


def test_an_exercise_no_longer_published_is_left_alone():
    exercise = ExerciseFactory()
    answers(exercise, learner(1.0), wrong=8)
    candidates = review_candidates(now=later(25), since=None)
    exercise_change_status(
        exercise_id=exercise.pk,
        new_status=ExerciseStatus.ARCHIVED,
        source=ReviewSource.STAFF,
        now=timezone.now(),
    )

    assert candidates_flag(candidates=candidates, now=later(25)) == []
    assert Exercise.objects.get(pk=exercise.pk).status == ExerciseStatus.ARCHIVED


# --- the runner: skip without new attempts -----------------------------------------------------


def test_a_run_without_new_attempts_skips_and_issues_no_profile_update():
    exercise = ExerciseFactory()
    user = learner(None)
    answers(exercise, user, wrong=1, right=3)
    first = later(1)

    outcome = job_run("quality_monitor", now=first)
    assert outcome.outcome == Outcome.SUCCEEDED
    rating = BotProfile.objects.get(user=user).rating
    assert rating is not None

    second = first + timedelta(hours=2)  # the next period
    with CaptureQueriesContext(connection) as queries:
        again = job_run("quality_monitor", now=second)

    assert again.outcome == Outcome.SUCCEEDED
    assert again.stats["skipped_reason"] == "no attempts since the previous successful run"
    assert not [q["sql"] for q in queries if "learning_botprofile" in q["sql"]]
    assert not [q["sql"] for q in queries if q["sql"].startswith('UPDATE "exercises_exercise"')]
    profile = BotProfile.objects.get(user=user)
    assert (profile.rating, profile.rating_last_calculated_at) == (rating, first)

    # A new attempt after the previous run: the next run computes again.
    answers(exercise, user, right=1, at=second + timedelta(minutes=1))
    third = second + timedelta(hours=2)
    assert job_run("quality_monitor", now=third).stats["skipped_reason"] is None
    assert BotProfile.objects.get(user=user).rating_last_calculated_at == third


def test_a_failed_run_does_not_count_as_the_previous_run():
    exercise = ExerciseFactory()
    user = learner(None)
    answers(exercise, user, right=2)
    JobRun.objects.create(
        job="quality_monitor",
        period_key="2000-01-01T00:00Z",
        status=JobRunStatus.FAILED,
        started_at=timezone.now(),
    )

    stats = quality_monitor(now=later(1), dry_run=False)

    assert stats["since"] is None
    assert stats["skipped_reason"] is None
    assert BotProfile.objects.get(user=user).rating is not None


# --- query counts --------------------------------------------------------------------------------


def seed_profiles(count: int, exercises: list[Exercise]) -> None:
    for n in range(count):
        user = learner(None)
        answers(exercises[n % len(exercises)], user, right=1 + n % 3, wrong=n % 2)


def flagging_learner(exercise: Exercise, practice: Exercise) -> None:
    """Half right overall (rating 0.15 without normalisation), all wrong on `exercise`."""
    user = learner(None)
    answers(exercise, user, wrong=8)
    answers(practice, user, right=8)


def test_the_query_count_does_not_depend_on_the_number_of_profiles(settings):
    settings.QUALITY_MIN_WEIGHTED_ATTEMPTS = 1.0
    exercises = [ExerciseFactory() for _ in range(4)]
    flagged = ExerciseFactory()
    flagging_learner(flagged, exercises[0])
    seed_profiles(10, exercises)

    with CaptureQueriesContext(connection) as small:
        stats = quality_monitor(now=later(25), dry_run=False)
    assert stats["profiles_rated"] == 11
    assert stats["flagged"] == [flagged.pk]

    again = ExerciseFactory()
    flagging_learner(again, exercises[0])
    seed_profiles(89, exercises)
    with CaptureQueriesContext(connection) as large:
        stats = quality_monitor(now=later(50), dry_run=False)
    assert stats["profiles_rated"] == 101
    assert stats["flagged"] == [again.pk]

    assert len(large) == len(small)
    assert len(small) <= 12, "\n".join(q["sql"][:120] for q in small)


def test_no_query_per_attempt_either(django_assert_max_num_queries):
    exercise = ExerciseFactory()
    users = [learner(None) for _ in range(3)]
    for user in users:
        answers(exercise, user, right=20, wrong=5)

    with django_assert_max_num_queries(7):
        quality_monitor(now=later(25), dry_run=False)

    assert ExerciseAttempt.objects.count() == 75
