"""Which exercise a learner gets next: a due review, else a new one, else mistakes, else the oldest.

Due reviews (docs/learning.md) are the learner's mistakes whose FSRS card says they are about to
be forgotten, at most `reviews_in_set` of each set; the rest is the cascade of new exercises, with
mistakes and then the least recently seen once nothing new is left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db.models import F, Max

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


@dataclass(frozen=True)
class Selection:
    """The exercise chosen (None when the bank has none), and why.

    `looked_for_review`: the learner's mistakes were read, and `review_due_at` is no later than
    when the earliest of them is due (None: they have none), for the profile's `review_due_at`.
    """

    exercise: Exercise | None
    repetition: bool = False
    review: bool = False
    looked_for_review: bool = False
    review_due_at: datetime | None = None


def due_review(
    *, profile: BotProfile, learning: EffectiveSettings, now: datetime
) -> tuple[Exercise | None, datetime | None]:
    """The learner's most recently due mistake in this bot, and a bound for the next look.

    Of the mistakes already due, the one that fell due last comes first: it is the one still most
    likely to be recalled, so a backlog of overdue reviews is worked from its fresh end (older
    ones come back as the fresh ones are answered). The second value is no later than when the
    learner's earliest mistake is due (None: they have none), for the profile's `review_due_at`.

    One read: two walks of the cards' (user, bot, due) index, back from now for the two latest
    due (so that the one served just before, left unanswered, is not served again at once) and
    forward from now for the next one due.
    """
    mistakes = (
        Exercise.objects.filter(
            review_cards__user_id=profile.user_id,
            review_cards__bot_id=profile.bot_id,
            review_cards__mistakes__gt=0,
            status=ExerciseStatus.PUBLISHED,
        )
        .exclude(topic__in=learning.exclude_topics)
        .annotate(card_due=F("review_cards__due"))
    )
    latest_due = mistakes.filter(card_due__lte=now).order_by("-card_due")[:2]
    next_due = mistakes.filter(card_due__gt=now).order_by("card_due")[:1]
    rows = [(row.card_due, row) for row in latest_due.union(next_due, all=True)]  # type: ignore[attr-defined]
    due = sorted((pair for pair in rows if pair[0] <= now), key=lambda pair: pair[0], reverse=True)
    for due_at, candidate in due:
        if candidate.pk != profile.last_exercise_id:
            return candidate, due_at
    bound = [due_at for due_at, _ in rows]
    return None, min(bound) if bound else None


def exercise_select(
    *, profile: BotProfile, learning: EffectiveSettings, now: datetime
) -> Selection:
    """The next exercise: a due review within the set's share, else the cascade.

    The mistakes are read only when the profile's `review_due_at` says one may be due.
    """
    if (
        settings.SPACED_REVIEW
        and profile.reviews_get_in_set < learning.reviews_in_set
        and profile.review_due_at is not None
        and profile.review_due_at <= now
    ):
        review, earliest = due_review(profile=profile, learning=learning, now=now)
        if review is not None:
            return Selection(
                review, repetition=True, review=True, looked_for_review=True, review_due_at=earliest
            )
        return replace(
            _cascade(profile=profile, learning=learning),
            looked_for_review=True,
            review_due_at=earliest,
        )
    return _cascade(profile=profile, learning=learning)


def _cascade(*, profile: BotProfile, learning: EffectiveSettings) -> Selection:
    """New ones first (level, type and topic relaxed in turn), then mistakes, then the oldest."""
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
            return Selection(exercise)
    mine = ExerciseAttempt.objects.filter(
        user_id=profile.user_id,
        exercise__exercise_language=profile.bot_id,
        exercise__status=ExerciseStatus.PUBLISHED,
    ).exclude(exercise__topic__in=learning.exclude_topics)
    mistakes = list(mine.filter(is_correct=False).values_list("exercise_id", flat=True).distinct())
    if mistakes:
        return Selection(Exercise.objects.get(pk=random.choice(mistakes)), repetition=True)
    oldest = (
        mine.values("exercise_id")
        .annotate(last_seen=Max("created_at"))
        .order_by("last_seen", "exercise_id")
        .values_list("exercise_id", flat=True)
        .first()
    )
    if oldest is not None:
        return Selection(Exercise.objects.get(pk=oldest), repetition=True)
    return Selection(None)
