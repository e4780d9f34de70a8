"""Streak freezes: earned, used, capped, told; streak days in the learner's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from learning.sessions import profile_next_action
from learning.streaks import streak_on_practice
from notifications.drafts import long_break_text
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
SOFIA = ZoneInfo("Europe/Sofia")  # UTC+2 in winter
NOON = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def practise(days, freezes, last, now=NOON, zone=UTC):
    return streak_on_practice(days=days, freezes=freezes, last_practice=last, now=now, zone=zone)


# --- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "freezes", "gap_days", "expected"),
    [
        (0, 0, None, (1, 0, 0)),  # first practice
        (3, 0, 0, (3, 0, 0)),  # again today
        (3, 0, 1, (4, 0, 0)),  # yesterday
        (3, 0, 2, (1, 0, 0)),  # a missed day, no freeze: broken
        (3, 1, 2, (4, 0, 1)),  # a missed day, one freeze: kept
        (3, 2, 3, (4, 0, 2)),  # two missed days, two freezes
        (3, 1, 3, (1, 1, 0)),  # two missed days, one freeze: broken, the freeze kept
        (6, 0, 1, (7, 1, 0)),  # the 7th day earns one
        (13, 1, 1, (14, 2, 0)),  # the 14th another
        (20, 2, 1, (21, 2, 0)),  # capped at two
        (6, 1, 2, (7, 1, 1)),  # spent one on the way to day 7, earned one back
    ],
)
def test_the_rule(days, freezes, gap_days, expected):
    last = None if gap_days is None else NOON - timedelta(days=gap_days)

    streak = practise(days, freezes, last)

    assert (streak.days, streak.freezes, streak.freezes_used) == expected


def test_settings_change_the_period_and_the_cap(settings):
    settings.STREAK_FREEZE_EVERY_DAYS = 3
    settings.STREAK_FREEZES_MAX = 0

    assert practise(2, 0, NOON - timedelta(days=1)).freezes == 0
    settings.STREAK_FREEZES_MAX = 5
    assert practise(2, 0, NOON - timedelta(days=1)).freezes == 1


def test_days_follow_the_learners_midnight_not_utc():
    # 23:30 and 00:30 in Sofia: two days there, one UTC day (21:30 and 22:30 UTC).
    before = datetime(2026, 12, 9, 21, 30, tzinfo=UTC)
    after = datetime(2026, 12, 9, 22, 30, tzinfo=UTC)

    assert practise(5, 0, before, now=after, zone=SOFIA).days == 6
    assert practise(5, 0, before, now=after, zone=UTC).days == 5


def test_one_local_day_across_utc_midnight_is_one_day():
    # 23:30 and 01:30 UTC are 15:30 and 17:30 in Los Angeles: the same day there.
    before = datetime(2026, 12, 9, 23, 30, tzinfo=UTC)
    after = datetime(2026, 12, 10, 1, 30, tzinfo=UTC)
    los_angeles = ZoneInfo("America/Los_Angeles")

    assert practise(5, 0, before, now=after, zone=los_angeles).days == 5
    assert practise(5, 0, before, now=after, zone=UTC).days == 6


# --- through next-action ------------------------------------------------------------------


@pytest.fixture
def bank():
    return [ExerciseFactory() for _ in range(10)]


def serve(profile, now):
    return profile_next_action(user_id=profile.user_id, bot_id=profile.bot_id, now=now)


def test_a_freeze_is_used_on_return_and_told_in_the_next_message(bank):
    now = datetime.now(UTC)
    profile = BotProfileFactory(
        current_streak_days=9,
        streak_freezes=1,
        last_exercise_at=now - timedelta(days=2),
        session_started_at=now - timedelta(days=2),
    )

    assert serve(profile, now).action == "new_exercise"
    profile.refresh_from_db()
    assert (profile.current_streak_days, profile.streak_freezes) == (10, 0)
    assert profile.streak_freezes_used == 1
    for _ in range(4):
        serve(profile, now)
    praise = serve(profile, now)

    assert praise.action == "praise_and_next_set"
    assert praise.message.endswith(
        "Welcome back! Streak freezes covered the days you missed (1), "
        "so your streak goes on: day 10."
    )
    profile.refresh_from_db()
    assert profile.streak_freezes_used == 0
    for _ in range(5):
        serve(profile, now)
    assert "Streak freezes covered" not in serve(profile, now).message  # told once


def test_the_time_zone_setting_moves_the_day(bank):
    # 23:50 in Sofia yesterday, 00:10 in Sofia now: a new day there, the same day in UTC.
    now = datetime(2026, 12, 9, 22, 10, tzinfo=UTC)
    profile = BotProfileFactory(
        current_streak_days=4,
        last_exercise_at=now - timedelta(minutes=20),
        session_started_at=now - timedelta(minutes=20),
        settings={"time_zone": "Europe/Sofia"},
    )
    utc_learner = BotProfileFactory(
        current_streak_days=4,
        last_exercise_at=now - timedelta(minutes=20),
        session_started_at=now - timedelta(minutes=20),
    )

    serve(profile, now)
    serve(utc_learner, now)

    profile.refresh_from_db()
    utc_learner.refresh_from_db()
    assert (profile.current_streak_days, utc_learner.current_streak_days) == (5, 4)


def test_preferences_take_a_time_zone_and_refuse_an_unknown_one(client):
    profile = BotProfileFactory()
    url = f"/api/v1/users/{profile.user_id}/bots/Bulgarian/preferences"

    good = client.put(
        url, {"time_zone": "Europe/Belgrade"}, content_type="application/json", **AUTH
    )
    bad = client.put(url, {"time_zone": "Mars/Olympus"}, content_type="application/json", **AUTH)
    cleared = client.put(url, {"time_zone": None}, content_type="application/json", **AUTH)

    assert good.status_code == 200
    assert good.json()["settings"] == {"time_zone": "Europe/Belgrade"}
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"
    assert bad.json()["detail"][0]["type"] == "time_zone_unknown"
    assert cleared.json()["settings"] == {}


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "Europe/Sofia\x00", "\ud800", "x" * 100])
def test_hostile_time_zones_are_refused(client, hostile):
    profile = BotProfileFactory()
    url = f"/api/v1/users/{profile.user_id}/bots/Bulgarian/preferences"

    response = client.put(url, {"time_zone": hostile}, content_type="application/json", **AUTH)

    assert response.status_code == 422
    profile.refresh_from_db()
    assert profile.settings is None


# --- the long-break reminders ---------------------------------------------------------------


def test_reminders_mention_freezes_while_they_can_still_save_the_streak():
    held = "Streak freezes you hold: 2."

    assert held in long_break_text(step="3d", language="en", streak_days=12, freezes=2, days_away=3)
    assert held in long_break_text(step="1d", language="en", streak_days=12, freezes=2, days_away=1)
    # Three missed days are more than two freezes cover; no freezes, no streak: nothing to say.
    assert held not in long_break_text(
        step="5d", language="en", streak_days=12, freezes=2, days_away=5
    )
    assert "Streak freezes" not in long_break_text(
        step="3d", language="en", streak_days=12, freezes=0, days_away=3
    )
    assert "Streak freezes" not in long_break_text(
        step="3d", language="en", streak_days=1, freezes=2, days_away=3
    )
