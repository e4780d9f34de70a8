"""The exercise bank on the admin index: stock against the refill target and the quality funnel.

Registered from the app's `ready()`; `duoniche/dashboard.py` assembles the page."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Q

from duoniche.dashboard import Dashboard, Number, cached, changelist
from duoniche.enums import ExerciseStatus, LanguageLevel
from duoniche.languages import languages
from exercises.models import Exercise

#: The quality funnel, in the order a moderator reads it; other statuses follow.
FUNNEL = (
    ExerciseStatus.PUBLISHED,
    ExerciseStatus.PENDING_REVIEW,
    ExerciseStatus.PENDING_ADMIN_REVIEW,
    ExerciseStatus.ARCHIVED,
    ExerciseStatus.REJECTED_BY_ASSESSOR,
)


@dataclass(frozen=True)
class StockCell:
    published: int = 0
    untouched: int = 0


@dataclass
class StockRow:
    """Published exercises of one (language, type): untouched ones are what the refill counts."""

    language: str
    exercise_type: str
    target: int
    levels: dict[str, StockCell] = field(default_factory=dict)

    @property
    def published(self) -> int:
        return sum(cell.published for cell in self.levels.values())

    @property
    def untouched(self) -> int:
        return sum(cell.untouched for cell in self.levels.values())

    @property
    def deficit(self) -> int:
        return max(0, self.target - self.untouched)


@dataclass(frozen=True)
class ExerciseCounts:
    by_status: dict[str, int]
    stock: list[StockRow]


def exercise_counts(*, target: int) -> ExerciseCounts:
    """Exercises per status (the funnel) and published stock per (language, type, level).

    One grouped pass over the bank. The stock lists every configured (language, type) even when
    empty, then any other pair found in the bank (an unconfigured language).
    """
    rows = (
        Exercise.objects.values_list(
            "status", "exercise_language", "exercise_type", "language_level"
        )
        .annotate(n=Count("id"), untouched=Count("id", filter=Q(attempts_count=0)))
        .order_by()
    )
    by_status: dict[str, int] = defaultdict(int)
    stock: dict[tuple[str, str], StockRow] = {}
    for language in languages().values():
        for exercise_type in language.generated_types:
            stock[(language.bot_id, exercise_type)] = StockRow(
                language.bot_id, exercise_type, target
            )
    found: list[tuple[str, str, str, int, int]] = []
    for status, language_id, exercise_type, level, n, untouched in rows:
        by_status[status] += n
        if status == ExerciseStatus.PUBLISHED:
            found.append((language_id, exercise_type, level, n, untouched))
    for language_id, exercise_type, level, n, untouched in sorted(found):
        row = stock.setdefault(
            (language_id, exercise_type), StockRow(language_id, exercise_type, target)
        )
        row.levels[level] = StockCell(published=n, untouched=untouched)
    return ExerciseCounts(by_status=dict(by_status), stock=list(stock.values()))


def dashboard_exercises(board: Dashboard) -> None:
    target = settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW
    counts = cached(board, f"exercises:{target}", lambda: exercise_counts(target=target))
    model = "exercises_exercise"
    published = {"status__exact": ExerciseStatus.PUBLISHED.value}
    board.levels = list(LanguageLevel.values)
    for row in counts.stock:
        pair = {
            **published,
            "exercise_language__exact": row.language,
            "exercise_type__exact": row.exercise_type,
        }
        cells = []
        for level in board.levels:
            cell = row.levels.get(level, StockCell())
            at_level = {**pair, "language_level__exact": level}
            cells.append(
                {
                    "published": Number(cell.published, changelist(model, **at_level)),
                    "untouched": Number(
                        cell.untouched, changelist(model, **at_level, attempts_count__exact=0)
                    ),
                }
            )
        board.stock.append(
            {
                "language": row.language,
                "exercise_type": row.exercise_type,
                "untouched": Number(
                    row.untouched,
                    changelist(model, **pair, attempts_count__exact=0),
                    alert=row.deficit > 0,
                ),
                "target": row.target,
                "deficit": row.deficit,
                "published": Number(row.published, changelist(model, **pair)),
                "levels": cells,
            }
        )
    for status in ExerciseStatus:
        number = Number(
            counts.by_status.get(status, 0),
            changelist(model, status__exact=status.value),
            label=status.value,
            alert=status == ExerciseStatus.PENDING_ADMIN_REVIEW and status in counts.by_status,
        )
        (board.funnel if status in FUNNEL else board.other_statuses).append(number)
    board.funnel.sort(key=lambda number: FUNNEL.index(ExerciseStatus(number.label)))
    for status in (ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PENDING_ADMIN_REVIEW):
        board.today.append(
            Number(
                counts.by_status.get(status, 0),
                changelist(model, status__exact=status.value),
                label=f"{status.label.lower()} (queue)",
            )
        )
