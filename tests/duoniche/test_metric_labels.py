"""Metric labels come from closed sets: a caller cannot mint new Prometheus series (issue 10 #9)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from duoniche import metrics
from learning.users import user_ensure

pytestmark = pytest.mark.django_db

INTERFACE = {"en", "ru", "uk", "bg", "sr", "tr", "other"}


def _label_values(metric_name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == metric_name
    }


def test_two_hundred_user_languages_make_a_handful_of_series():
    for i in range(200):
        user_ensure(
            telegram_id=f"cardinality-{i}",
            username=None,
            name=None,
            telegram_data=None,
            user_language=f"zz-{i}",  # valid tags (stored as given), none we translate
            bot_id="Bulgarian",
        )
    user_ensure(
        telegram_id="cardinality-ru",
        username=None,
        name=None,
        telegram_data=None,
        user_language="ru",
        bot_id="Bulgarian",
    )

    languages = _label_values("backend_new_users_total", "user_language")
    assert languages <= INTERFACE
    assert {"ru", "other"} <= languages


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("RU", "ru"),
        ("uk-UA", "uk"),
        ("sr-Latn", "sr"),
        ("de", "other"),
        ("", ""),
        ("-", "other"),
        ("x" * 16, "other"),
    ],
)
def test_user_language_label(value, expected):
    assert (
        metrics.user_labels(
            cohort=None, plan=None, target_language="Bulgarian", user_language=value, level="B1"
        )["user_language"]
        == expected
    )


def test_unknown_bot_and_level_become_other():
    labels = metrics.user_labels(
        cohort=None, plan=None, target_language="Klingon", user_language="en", level="Z9"
    )
    assert labels["target_language"] == "other"
    assert labels["language_level"] == "other"


def test_exercise_labels_are_closed():
    assert metrics.exercise_labels(exercise_type="choose_accent", level="A1") == {
        "exercise_type": "choose_accent",
        "level": "A1",
    }
    assert metrics.exercise_labels(exercise_type="anything", level="Z1") == {
        "exercise_type": "other",
        "level": "other",
    }
