"""Review cards: each learner's FSRS memory state of the exercises they answered (docs/learning.md).

The `fsrs` package schedules; this module only stores. A card is read together with the exercise
when an answer is validated (`card_columns_sql`) and written by the statement that records the
attempt (`card_reviewed`), so validate stays one read and one write. next-action reads the due
mistakes (`learning.selection`). This module is the `ReviewCard` model's one write path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings
from fsrs import Card, Rating, Scheduler, State

from duoniche.rows import Statement
from learning.models import ReviewCard

#: No review is scheduled further out than this many days.
MAXIMUM_INTERVAL_DAYS = 365

CARD_COLUMNS = (
    "state",
    "step",
    "stability",
    "difficulty",
    "due",
    "last_review",
    "reviews",
    "mistakes",
)


@dataclass(frozen=True)
class CardState:
    """A stored card, as read beside the exercise."""

    state: int
    step: int | None
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime
    reviews: int
    mistakes: int


@cache
def _scheduler(desired_retention: float, relearn_minutes: int) -> Scheduler:
    """FSRS with one (re)learning step of `relearn_minutes`, or none (0): a wrong answer is then
    due again after FSRS's own interval for a lapse (a day)."""
    steps = (timedelta(minutes=relearn_minutes),) if relearn_minutes else ()
    return Scheduler(
        desired_retention=desired_retention,
        learning_steps=steps,
        relearning_steps=steps,
        maximum_interval=MAXIMUM_INTERVAL_DAYS,
    )


def card_columns_sql(alias: str) -> str:
    """The card's columns in `CARD_COLUMNS` order, for a SELECT that LEFT JOINs it as `alias`."""
    return ", ".join(f"{alias}.{column}" for column in CARD_COLUMNS)


def card_from_row(values: tuple[object, ...] | list[object]) -> CardState | None:
    """The card from its `card_columns_sql` values; None when the LEFT JOIN found none."""
    if values[0] is None:
        return None
    return CardState(*values)


def card_after_answer(
    *, previous: CardState | None, correct: bool, now: datetime
) -> tuple[Card, int, int]:
    """The card FSRS schedules after this answer, with the new review and mistake counts.

    Right is FSRS's "Good", wrong its "Again": a wrong answer is due again soon (after
    `REVIEW_RELEARN_MINUTES`, or a day when that is 0), a first right one days away.
    """
    moment = now.astimezone(UTC)
    if previous is None:
        card = Card(card_id=0, due=moment)
        reviews, mistakes = 0, 0
    else:
        card = Card(
            card_id=0,
            state=State(previous.state),
            step=previous.step,
            stability=previous.stability,
            difficulty=previous.difficulty,
            due=previous.due.astimezone(UTC),
            last_review=previous.last_review.astimezone(UTC),
        )
        reviews, mistakes = previous.reviews, previous.mistakes
    scheduler = _scheduler(settings.REVIEW_DESIRED_RETENTION, settings.REVIEW_RELEARN_MINUTES)
    reviewed, _ = scheduler.review_card(card, Rating.Good if correct else Rating.Again, moment)
    return reviewed, reviews + 1, mistakes + (0 if correct else 1)


@dataclass(frozen=True)
class ReviewedCard:
    """The card after an answer: its upsert, when it is due next, and whether it is a mistake."""

    statement: Statement
    due: datetime
    mistakes: int


def card_reviewed(
    *,
    user_id: int,
    exercise_id: int,
    bot_id: str,
    previous: CardState | None,
    correct: bool,
    now: datetime,
) -> ReviewedCard:
    """The upsert that records one answer on the learner's card of the exercise.

    Returned, not run: validation sends it with the attempt's INSERT as one statement. It applies
    only on top of the card it was computed from (`reviews` unchanged since the read): of two
    answers judged at the same moment from the same card, the first to commit updates it and the
    other leaves it alone, so a card is never moved twice from one state.
    """
    card, reviews, mistakes = card_after_answer(previous=previous, correct=correct, now=now)
    table = ReviewCard._meta.db_table
    columns = ("user_id", "exercise_id", "bot_id", *CARD_COLUMNS)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in CARD_COLUMNS)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (a table name)
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT (user_id, exercise_id) DO UPDATE SET {updates} "
        f"WHERE {table}.reviews = %s"
    )
    values = (
        user_id,
        exercise_id,
        bot_id,
        int(card.state),
        card.step,
        card.stability,
        card.difficulty,
        card.due,
        card.last_review,
        reviews,
        mistakes,
        previous.reviews if previous is not None else 0,
    )
    return ReviewedCard(statement=Statement(sql, values), due=card.due, mistakes=mistakes)
