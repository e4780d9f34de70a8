"""The constraints that guard learners' data hold in the database itself."""

import pytest
from django.db import IntegrityError, transaction

from learning.models import BotProfile
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    TelegramUserFactory,
    WeeklyReportFactory,
)

pytestmark = pytest.mark.django_db


def test_telegram_id_is_unique():
    user = TelegramUserFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        TelegramUserFactory(telegram_id=user.telegram_id)


def test_one_profile_per_user_and_bot():
    profile = BotProfileFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        BotProfileFactory(user=profile.user, bot_id=profile.bot_id)
    BotProfileFactory(user=profile.user, bot_id="Serbian")
    assert BotProfile.objects.filter(user=profile.user).count() == 2


def test_profile_defaults_follow_the_spec():
    profile = BotProfileFactory()

    assert profile.language_level == "A2"
    assert profile.status == "active"
    assert profile.exercises_get_in_session == 0
    assert profile.wants_session_reminders is None


def test_one_weekly_report_per_user_bot_and_week():
    report = WeeklyReportFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        WeeklyReportFactory(
            user=report.user, bot_id=report.bot_id, week_start_date=report.week_start_date
        )
    assert report.status == "PENDING"


def test_attempt_is_correct_is_never_null():
    attempt = ExerciseAttemptFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        type(attempt).objects.filter(pk=attempt.pk).update(is_correct=None)


def test_deleting_a_verdict_keeps_the_attempt():
    attempt = ExerciseAttemptFactory(is_correct=False)

    attempt.verdict.delete()
    attempt.refresh_from_db()

    assert attempt.verdict is None
    assert attempt.is_correct is False
