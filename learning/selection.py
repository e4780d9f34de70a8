"""Which exercise a learner gets next: new ones first, then mistakes, then the least recent."""

from __future__ import annotations

import random

from django.db.models import Max

from duoniche.enums import ExerciseStatus, ExerciseTopic, LanguageLevel
from duoniche.languages import Language, get_language
from exercises.models import Exercise
from exercises.selectors import SqlCondition, exercise_pick_random
from learning.effective_settings import EffectiveSettings
from learning.models import BotProfile, ExerciseAttempt

LEVEL_OFFSETS: dict[int, float] = {0: 0.75, 1: 0.10, 2: 0.05, -1: 0.10}


def _pick_level(level: str) -> str:
    levels = list(LanguageLevel.values)
    offset = random.choices(list(LEVEL_OFFSETS), weights=list(LEVEL_OFFSETS.values()))[0]
    return levels[min(max(levels.index(level) + offset, 0), len(levels) - 1)]


def _pick_type(learning: EffectiveSettings, language: Language) -> str:
    distribution = learning.exercise_type_distribution
    if distribution and any(weight > 0 for weight in distribution.values()):
        return random.choices(list(distribution), weights=list(distribution.values()))[0]
    return random.choice(language.generated_types)


def exercise_select(
    *, profile: BotProfile, learning: EffectiveSettings
) -> tuple[Exercise | None, bool]:
    """The next exercise: new ones first, then mistakes, then the least recent.

    Returns (exercise, whether it is a repetition).
    """
    language = get_language(profile.bot_id)
    assert language is not None
    topics = [t for t in ExerciseTopic.values if t not in learning.exclude_topics] or ["general"]
    level = _pick_level(profile.language_level)
    exercise_type = _pick_type(learning, language)
    seen = SqlCondition(
        f"EXISTS (SELECT 1 FROM {ExerciseAttempt._meta.db_table} a "  # noqa: S608 (a table name)
        "WHERE a.user_id = %s AND a.exercise_id = e.id)",
        (profile.user_id,),
    )
    steps: list[dict[str, str]] = [
        {"exercise_type": exercise_type, "level": level, "topic": random.choice(topics)},
        {"exercise_type": exercise_type},
        {},
    ]
    for filters in steps:
        exercise = exercise_pick_random(
            bot_id=profile.bot_id,
            exercise_type=filters.get("exercise_type"),
            level=filters.get("level"),
            topic=filters.get("topic"),
            exclude_topics=learning.exclude_topics,
            exclude=seen,
        )
        if exercise is not None:
            return exercise, False
    mine = ExerciseAttempt.objects.filter(
        user_id=profile.user_id,
        exercise__exercise_language=profile.bot_id,
        exercise__status=ExerciseStatus.PUBLISHED,
    ).exclude(exercise__topic__in=learning.exclude_topics)
    mistakes = list(mine.filter(is_correct=False).values_list("exercise_id", flat=True).distinct())
    if mistakes:
        return Exercise.objects.get(pk=random.choice(mistakes)), True
    oldest = (
        mine.values("exercise_id")
        .annotate(last_seen=Max("created_at"))
        .order_by("last_seen", "exercise_id")
        .values_list("exercise_id", flat=True)
        .first()
    )
    if oldest is not None:
        return Exercise.objects.get(pk=oldest), True
    return None, False
