"""The level policy: promotion, demotion, hysteresis, the pin, and staff changes, all recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from learning.models import BotProfile, LevelChange
from learning.profiles import profile_staff_update
from learning.sessions import profile_next_action
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, ExerciseAttemptFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thresholds(settings):
    """A window of 20, up at 85 %, down at 50 %, back up at 95 % (round figures)."""
    settings.LEVEL_WINDOW = 20
    settings.LEVEL_PROMOTE_SHARE = 0.85
    settings.LEVEL_DEMOTE_SHARE = 0.5
    settings.LEVEL_RETURN_SHARE = 0.95


@pytest.fixture
def bank():
    return [ExerciseFactory(language_level=level) for level in ("A2", "B1", "A1") for _ in range(4)]


def learner(level="A2", **fields):
    """A learner at the end of a set: their next call is the set's praise."""
    return BotProfileFactory(
        language_level=level,
        exercises_get_in_set=5,
        session_started_at=timezone.now(),
        **fields,
    )


def answered(profile, *, right, wrong, level=None, bot="Bulgarian", start=None):
    """Attempts at `level` (the profile's by default), oldest first, all before now."""
    moment = start or timezone.now() - timedelta(hours=2)
    for correct in [True] * right + [False] * wrong:
        moment += timedelta(seconds=10)
        exercise = ExerciseFactory(
            language_level=level or profile.language_level,
            exercise_language=bot,
            **(
                {"data": {"text_with_blanks": f"Ja ___ {moment}.", "words": ["sam", "si"]}}
                if bot == "Serbian"
                else {}
            ),
        )
        ExerciseAttemptFactory(
            user=profile.user, exercise=exercise, is_correct=correct, created_at=moment
        )


def praise(profile):
    result = profile_next_action(user_id=profile.user_id, bot_id=profile.bot_id, now=timezone.now())
    assert result.action == "praise_and_next_set"
    profile.refresh_from_db()
    return result.message


def test_comfortably_right_answers_promote_and_the_learner_is_told(bank):
    profile = learner()
    answered(profile, right=18, wrong=2)

    message = praise(profile)

    assert profile.language_level == "B1"
    assert profile.level_changed_at is not None
    change = LevelChange.objects.get(profile=profile)
    assert (change.from_level, change.to_level, change.source) == ("A2", "B1", "policy")
    assert change.reason.startswith("18 of the last 20 answers at A2 right")
    assert message.endswith(
        "Your answers show you are ready for more: most exercises are now at level B1."
    )


def test_struggling_demotes(bank):
    profile = learner(level="B1")
    answered(profile, right=10, wrong=10)

    message = praise(profile)

    assert profile.language_level == "A2"
    assert LevelChange.objects.get(profile=profile).to_level == "A2"
    assert "most exercises are at level A2" in message


def test_between_the_thresholds_nothing_moves(bank):
    profile = learner()
    answered(profile, right=14, wrong=6)  # 70 %

    praise(profile)

    assert profile.language_level == "A2"
    assert not LevelChange.objects.exists()


def test_too_few_answers_decide_nothing(bank):
    profile = learner()
    answered(profile, right=19, wrong=0)

    praise(profile)

    assert profile.language_level == "A2"


def test_only_the_newest_window_counts(bank):
    profile = learner()
    answered(profile, right=0, wrong=20, start=timezone.now() - timedelta(days=2))
    answered(profile, right=18, wrong=2)

    praise(profile)

    assert profile.language_level == "B1"


def test_answers_at_other_levels_and_in_other_bots_do_not_count(bank):
    profile = learner()
    answered(profile, right=20, wrong=0, level="B1")
    answered(profile, right=20, wrong=0, bot="Serbian")

    praise(profile)

    assert profile.language_level == "A2"


def test_a_change_starts_a_fresh_window_so_it_is_never_undone_at_once(bank):
    """Hysteresis: after a promotion, the answers that caused it no longer count."""
    profile = learner()
    answered(profile, right=20, wrong=0)
    praise(profile)
    assert profile.language_level == "B1"

    BotProfile.objects.filter(pk=profile.pk).update(exercises_get_in_set=5)  # another set done
    answered(profile, right=0, wrong=19, level="B1", start=timezone.now() - timedelta(hours=1))
    praise(profile)

    assert profile.language_level == "B1"  # 19 answers since the change: not yet a window
    assert LevelChange.objects.count() == 1


def test_going_back_up_to_a_level_moved_down_from_needs_the_return_bar(bank):
    profile = learner(level="B1")
    answered(profile, right=5, wrong=15, start=timezone.now() - timedelta(hours=3))
    praise(profile)
    assert profile.language_level == "A2"

    BotProfile.objects.filter(pk=profile.pk).update(exercises_get_in_set=5)
    answered(profile, right=18, wrong=2, start=timezone.now())
    praise(profile)
    assert profile.language_level == "A2"  # 90 %: enough to go up, not to go back up

    BotProfile.objects.filter(pk=profile.pk).update(exercises_get_in_set=5)
    answered(profile, right=19, wrong=1, start=timezone.now() + timedelta(hours=1))
    praise(profile)
    assert profile.language_level == "B1"  # 95 %
    assert [c.to_level for c in LevelChange.objects.order_by("created_at")] == ["A2", "B1"]


def test_the_return_bar_lapses(bank, settings):
    settings.LEVEL_RETURN_DAYS = 0
    profile = learner(level="B1")
    answered(profile, right=5, wrong=15, start=timezone.now() - timedelta(hours=3))
    praise(profile)
    BotProfile.objects.filter(pk=profile.pk).update(exercises_get_in_set=5)
    answered(profile, right=18, wrong=2, start=timezone.now())

    praise(profile)

    assert profile.language_level == "B1"


def test_the_top_and_bottom_levels_stay(bank):
    top = learner(level="C2")
    answered(top, right=20, wrong=0)
    bottom = learner(level="A1")
    answered(bottom, right=0, wrong=20)

    praise(top)
    praise(bottom)

    assert (top.language_level, bottom.language_level) == ("C2", "A1")


@pytest.mark.parametrize(
    ("where", "value"), [("settings", {"adaptive_level": False}), ("custom", None)]
)
def test_the_flag_pins_the_level(bank, where, value):
    profile = learner(settings=value if where == "settings" else None)
    if where == "custom":
        profile.user.custom_settings = {"adaptive_level": False}
        profile.user.save()  # test set-up of a stored setting
    answered(profile, right=20, wrong=0)

    praise(profile)

    assert profile.language_level == "A2"


def test_the_policy_can_be_switched_off(bank, settings):
    settings.ADAPTIVE_LEVEL = False
    profile = learner()
    answered(profile, right=20, wrong=0)

    praise(profile)

    assert profile.language_level == "A2"


def test_staff_changes_are_recorded_and_restart_the_window(bank):
    profile = learner()
    answered(profile, right=20, wrong=0)

    profile_staff_update(profile_id=profile.pk, changes={"language_level": "C1"}, staff_name="ana")
    praise(profile)

    assert profile.language_level == "C1"
    change = LevelChange.objects.get()
    assert (change.from_level, change.to_level, change.source, change.reason) == (
        "A2",
        "C1",
        "staff",
        "set by ana",
    )


def test_staff_saving_the_same_level_records_nothing(bank):
    profile = learner()

    profile_staff_update(profile_id=profile.pk, changes={"language_level": "A2"})

    assert not LevelChange.objects.exists()
