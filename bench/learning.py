"""Simulated learners: the learning rules (docs/learning.md) against the previous service's.

Each simulated learner goes through 60 days of 1-3 sessions a day against the real session
engine and validation, in-process on a dedicated PostgreSQL database: `profile_next_action` picks
every exercise, `attempt_validate` records every answer (stored verdicts: no LLM). The learners
are run twice on the same bank, with the same traits and the same calendar, so both policies serve
the same number of exercises:

- `previous`: the previous service's rules (SPACED_REVIEW, ADAPTIVE_LEVEL and streak freezes off);
- `new`: DuoNiche's rules with their defaults.

The memory model is ours and knows nothing of FSRS (seeded, so a run repeats):

- a learner has a true ability `theta` on the level scale (A1 = 0 ... C2 = 5): the true level plus
  a uniform offset in [-0.3, 0.3]; true levels A1 10 %, A2 30 %, B1 35 %, B2 20 %, C1 5 %;
- an exercise has a difficulty `b`: its level plus a normal offset (sd 0.3);
- without any memory of the exercise, the learner is right with `p0 = sigmoid(1.7 (theta - b) +
  1.4)` (about 80 % at their own level, 96 % a level below, 43 % a level above);
- seeing an exercise (and its feedback) leaves a memory trace that fades as `R = exp(-t / S)`,
  `t` in days; the learner is right with `1 - (1 - p0)(1 - R)`. The first exposure sets S to 1 day
  after a wrong answer (learnt from the feedback: 90 % remembered 2.5 hours later) and 10 days
  after a right one; a right answer multiplies S by `1.5 + 8 (1 - R)` (so a success after a
  spaced gap grows it most, a massed repeat least), a wrong one cuts it to `max(1, 0.3 S)`. The
  figures are chosen for the order of magnitude of how fast people forget vocabulary and grammar
  drills (a day for a fresh mistake, weeks for something known), not fitted to anything.

Reported per policy: recall of the exercises a learner had missed (the model's chance of a right
answer to each, at day 30 and 60), exercises mastered at day 60 (chance >= 0.9), distinct
exercises served, the share answered right after day 7 (learners inside 70-85 %), the sessions
until the stored level equals the true level (B1 learners start at A2), and streak lengths.

    .venv/bin/python bench/learning.py                   # 2,000 learners (both policies)
    .venv/bin/python bench/learning.py --learners 200 --days 30

The two policies run in two processes side by side (two cores); the database is dropped at the
end unless --keep.
"""

from __future__ import annotations

import argparse
import importlib
import math
import multiprocessing
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any

from benchdb import drop_database, reset_database  # a sibling module: the benches run as scripts

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
LEVELS = ["A1", "A2", "B1", "B2", "C1", "C2"]
BANK_SHARES = {"A1": 0.13, "A2": 0.25, "B1": 0.25, "B2": 0.2, "C1": 0.1, "C2": 0.07}
TRUE_LEVEL_SHARES = {"A1": 0.10, "A2": 0.30, "B1": 0.35, "B2": 0.20, "C1": 0.05}
TOPICS = ["general", "shopping", "travel", "food", "work", "health", "family", "home"]
POLICIES = ("previous", "new")


# --- the memory model ---------------------------------------------------------------------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass
class Trace:
    """What a learner remembers of one exercise."""

    stability: float  # days
    seen_at: datetime
    missed: bool = False  # answered wrong at least once


@dataclass
class Learner:
    index: int
    true_level: str
    theta: float
    practice_chance: float  # of practising on a given day
    rng: random.Random
    traces: dict[int, Trace] = field(default_factory=dict)
    answers: list[tuple[int, bool]] = field(default_factory=list)  # (day, right)
    sessions_to_level: int | None = None
    max_streak: int = 0
    recall: dict[int, float] = field(default_factory=dict)
    mastered: int = 0


def base_chance(theta: float, difficulty: float) -> float:
    return sigmoid(1.7 * (theta - difficulty) + 1.4)


def chance_right(learner: Learner, exercise_id: int, difficulty: float, now: datetime) -> float:
    p0 = base_chance(learner.theta, difficulty)
    trace = learner.traces.get(exercise_id)
    if trace is None:
        return p0
    retention = math.exp(-(now - trace.seen_at).total_seconds() / 86400 / trace.stability)
    return 1 - (1 - p0) * (1 - retention)


def remember(learner: Learner, exercise_id: int, right: bool, now: datetime) -> None:
    trace = learner.traces.get(exercise_id)
    if trace is None:
        learner.traces[exercise_id] = Trace(
            stability=10.0 if right else 1.0, seen_at=now, missed=not right
        )
        return
    retention = math.exp(-(now - trace.seen_at).total_seconds() / 86400 / trace.stability)
    if right:
        trace.stability *= 1.5 + 8 * (1 - retention)
    else:
        trace.stability = max(1.0, 0.3 * trace.stability)
        trace.missed = True
    trace.seen_at = now


def make_learners(count: int, seed: int) -> list[tuple[str, float, float]]:
    """(true level, theta, daily practice chance) per learner: the same for both policies."""
    rng = random.Random(seed)
    levels = list(TRUE_LEVEL_SHARES)
    weights = list(TRUE_LEVEL_SHARES.values())
    learners = []
    for _ in range(count):
        level = rng.choices(levels, weights=weights)[0]
        theta = LEVELS.index(level) + rng.uniform(-0.3, 0.3)
        learners.append((level, theta, rng.uniform(0.7, 0.98)))
    return learners


# --- the database -------------------------------------------------------------------------------


def setup_django(
    database_url: str, redis_url: str, policy: str | None, new_rules: dict[str, str] | None = None
) -> None:
    """Django on the bench database; each policy with its own Redis database."""
    import django

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "duoniche.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DATABASE_URL": database_url,
            "REDIS_URL": f"{redis_url.rsplit('/', 1)[0]}/{13 - POLICIES.index(policy)}"
            if policy in POLICIES
            else redis_url,
            "PAYMENTS_PAYLOAD_SECRET": "bench",
            "API_TOKENS": "bench-token",
        }
    )
    if policy == "previous":
        os.environ.update(
            {"SPACED_REVIEW": "false", "ADAPTIVE_LEVEL": "false", "STREAK_FREEZES_MAX": "0"}
        )
    elif policy == "new":
        os.environ.update(new_rules or {})
    # This script's folder comes first on the path, and its name would hide the `learning` app.
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(ROOT)] + [entry for entry in sys.path if Path(entry).resolve() != here]
    importlib.invalidate_caches()
    importlib.import_module("learning")  # the app package, now that nothing hides it
    django.setup()


def seed_bank(size: int, seed: int) -> None:
    """`size` Bulgarian fill-in-the-blank exercises, each with its right and one wrong verdict."""
    from django.core.management import call_command

    from exercises.content import answer_text, text_hash
    from exercises.models import Exercise, ExerciseAnswer

    call_command("migrate", verbosity=0)
    rng = random.Random(seed)
    exercises = []
    for n in range(size):
        level = rng.choices(list(BANK_SHARES), weights=list(BANK_SHARES.values()))[0]
        exercises.append(
            Exercise(
                exercise_type="fill_in_the_blank",
                exercise_language="Bulgarian",
                language_level=level,
                topic=rng.choice(TOPICS),
                data={"text_with_blanks": f"Изречение ___ {n}.", "words": [f"да{n}", f"не{n}"]},
                grammar_tags={"grammar": [f"rule {n % 40}"], "vocabulary": []},
                content_hash=f"learning-bench-{n}",
                source="imported",
            )
        )
    created = Exercise.objects.bulk_create(exercises, batch_size=2000)
    verdicts = []
    for exercise in created:
        for word, right in ((exercise.data["words"][0], True), (exercise.data["words"][1], False)):
            text = answer_text("fill_in_the_blank", {"words": [word]})
            verdicts.append(
                ExerciseAnswer(
                    exercise=exercise,
                    answer={"words": [word]},
                    answer_text=text,
                    answer_key=text_hash(text),
                    is_correct=right,
                    feedback="" if right else "Not this word.",
                    feedback_language="" if right else "en",
                    is_reference=right,
                    created_by="import" if right else "LLM:bench",
                )
            )
    ExerciseAnswer.objects.bulk_create(verdicts, batch_size=4000)


def difficulties(seed: int) -> dict[int, float]:
    """Each exercise's difficulty: its level plus a seeded offset (the same in both processes)."""
    from exercises.models import Exercise

    rng = random.Random(seed + 1)
    return {
        pk: LEVELS.index(level) + rng.gauss(0, 0.3)
        for pk, level in Exercise.objects.order_by("pk").values_list("pk", "language_level")
    }


# --- one policy ---------------------------------------------------------------------------------


def session_times(learner: Learner, day: int) -> list[datetime]:
    """The learner's sessions on `day`: none, or 1-3 starts at least 3.5 h apart."""
    if learner.rng.random() > learner.practice_chance:
        return []
    count = learner.rng.choice((1, 2, 3))
    first = 7 + learner.rng.random() * 3
    hours = [first + index * (3.5 + learner.rng.random() * 2) for index in range(count)]
    return [START + timedelta(days=day, hours=hour) for hour in hours]


def run_policy(args: argparse.Namespace, policy: str, queue: Any) -> None:
    setup_django(args.database_url, args.redis_url, policy, dict(args.set or []))
    from django.core.cache import cache
    from django.db import connection

    from learning.models import BotProfile, TelegramUser
    from learning.sessions import profile_next_action
    from learning.validation import attempt_validate

    difficulty = difficulties(args.seed)
    offset = 0 if policy == "previous" else 10_000_000
    started = time.monotonic()
    for index, (level, theta, chance) in enumerate(make_learners(args.learners, args.seed)):
        user = TelegramUser.objects.create(
            telegram_id=str(offset + index),
            telegram_data={"language_code": "en"},
            custom_settings={"exercise_type_distribution": {"fill_in_the_blank": 1}},
        )
        BotProfile.objects.create(user=user, bot_id="Bulgarian", user_language="en")
        learner = Learner(
            index=index,
            true_level=level,
            theta=theta,
            practice_chance=chance,
            rng=random.Random(f"{args.seed}-{index}"),
        )
        run_learner(
            learner, user.pk, args.days, difficulty, profile_next_action, attempt_validate, cache
        )
        queue.put((policy, summary_of(learner, user.pk)))
        if (index + 1) % max(1, args.learners // 10) == 0:
            elapsed = time.monotonic() - started
            print(f"  {policy}: {index + 1} learners in {elapsed:.0f} s", flush=True)
    connection.close()
    queue.put((policy, None))


def run_learner(
    learner: Learner,
    user_id: int,
    days: int,
    difficulty: dict[int, float],
    next_action: Any,
    validate: Any,
    cache: Any,
) -> None:
    from learning.models import BotProfile

    sessions = 0
    for day in range(days):
        for start in session_times(learner, day):
            sessions += 1
            moment = start
            while True:
                result = next_action(user_id=user_id, bot_id="Bulgarian", now=moment)
                if result.action != "new_exercise":
                    if result.action in ("congratulations_and_wait", "limit_reached", "error"):
                        break
                    continue
                exercise_id = result.exercise["exercise_id"]
                moment += timedelta(seconds=learner.rng.uniform(15, 45))
                right = learner.rng.random() < chance_right(
                    learner, exercise_id, difficulty[exercise_id], moment
                )
                data = result.exercise["data"]["words"]
                word = data[0] if right else data[1]
                validate(
                    exercise_id=exercise_id,
                    user_id=user_id,
                    answer={"exercise_type": "fill_in_the_blank", "words": [word]},
                    now=moment,
                )
                remember(learner, exercise_id, right, moment)
                learner.answers.append((day, right))
            # Hours pass between sessions, but seconds on the bench's clock: the duplicate-answer
            # windows (ASYNC_TASK_CACHE_TTL, in real time) are over for the learner.
            cache.clear()
            profile = BotProfile.objects.only("language_level", "current_streak_days").get(
                user_id=user_id, bot_id="Bulgarian"
            )
            learner.max_streak = max(learner.max_streak, profile.current_streak_days)
            if learner.sessions_to_level is None and profile.language_level == learner.true_level:
                learner.sessions_to_level = sessions
        for checkpoint in (30, 60):
            if day + 1 == checkpoint:
                at = START + timedelta(days=checkpoint)
                missed = [pk for pk, trace in learner.traces.items() if trace.missed]
                if missed:
                    learner.recall[checkpoint] = statistics.fmean(
                        chance_right(learner, pk, difficulty[pk], at) for pk in missed
                    )
    end = START + timedelta(days=days)
    learner.mastered = sum(
        1 for pk in learner.traces if chance_right(learner, pk, difficulty[pk], end) >= 0.9
    )


def summary_of(learner: Learner, user_id: int) -> dict[str, Any]:
    from learning.models import BotProfile

    after_week = [right for day, right in learner.answers if day >= 7]
    profile = BotProfile.objects.get(user_id=user_id, bot_id="Bulgarian")
    return {
        "index": learner.index,
        "true_level": learner.true_level,
        "final_level": profile.language_level,
        "served": len(learner.answers),
        "distinct": len(learner.traces),
        "missed": sum(1 for trace in learner.traces.values() if trace.missed),
        "recall_30": learner.recall.get(30),
        "recall_60": learner.recall.get(60),
        "mastered": learner.mastered,
        "share_after_week": sum(after_week) / len(after_week) if after_week else None,
        "sessions_to_level": learner.sessions_to_level,
        "max_streak": learner.max_streak,
    }


# --- the report ---------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def quantiles(values: list[int]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)

    def at(fraction: float) -> int:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return f"{at(0.25)} / {at(0.5)} / {at(0.75)} / {ordered[-1]}"


def figures(rows: list[dict[str, Any]]) -> dict[str, str]:
    def values(key: str) -> list[Any]:
        return [row[key] for row in rows if row[key] is not None]

    shares = values("share_after_week")
    in_band = sum(1 for share in shares if 0.70 <= share <= 0.85)
    b1 = [row for row in rows if row["true_level"] == "B1"]
    b1_reached = [row["sessions_to_level"] for row in b1 if row["sessions_to_level"] is not None]
    matched = [row for row in rows if row["final_level"] == row["true_level"]]
    return {
        "learners": f"{len(rows)}",
        "exercises served (mean per learner)": f"{mean(values('served')):.0f}",
        "distinct exercises (new coverage)": f"{mean(values('distinct')):.0f}",
        "recall of missed exercises, day 30": f"{mean(values('recall_30')):.3f}",
        "recall of missed exercises, day 60": f"{mean(values('recall_60')):.3f}",
        "exercises mastered at the end": f"{mean(values('mastered')):.0f}",
        "share right after day 7 (mean)": f"{mean(shares):.1%}",
        "learners with share in 70-85 %": f"{in_band / len(shares):.0%}" if shares else "-",
        "level = true level at the end": f"{len(matched) / len(rows):.0%}",
        "B1 learners at B1 within 10 sessions": (
            f"{sum(1 for s in b1_reached if s <= 10) / len(b1):.0%} of {len(b1)}" if b1 else "-"
        ),
        "sessions until B1 (median, B1 learners)": (
            f"{statistics.median(b1_reached):.0f}" if b1_reached else "never"
        ),
        "longest streak p25/p50/p75/max": quantiles(values("max_streak")),
    }


def print_table(results: dict[str, list[dict[str, Any]]]) -> None:
    previous, new = figures(results["previous"]), figures(results["new"])
    width = max(len(key) for key in previous)
    print(f"\n| {'':{width}} | previous policy | DuoNiche |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for key in previous:
        print(f"| {key:{width}} | {previous[key]} | {new[key]} |")
    recall_ratio = float(new["recall of missed exercises, day 60"]) / float(
        previous["recall of missed exercises, day 60"]
    )
    coverage = float(new["distinct exercises (new coverage)"]) / float(
        previous["distinct exercises (new coverage)"]
    )
    print(
        f"\nrecall of missed exercises at day 60: {recall_ratio:.2f}x the previous policy's; "
        f"new-exercise coverage {coverage - 1:+.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--bank", type=int, default=6000, help="exercises in the bank")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--set",
        nargs=2,
        action="append",
        metavar=("VARIABLE", "VALUE"),
        help="a setting for DuoNiche's rules, e.g. --set REVIEWS_IN_SET 1 (repeatable)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/duoniche_learning_bench"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="the policies use this database number and the one below it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    started = time.monotonic()
    reset_database(args.database_url)
    seeder = multiprocessing.get_context("spawn").Process(target=_seed, args=(args,))
    seeder.start()
    seeder.join()
    if seeder.exitcode:
        sys.exit("seeding failed (its traceback is above)")
    print(f"bank of {args.bank} exercises seeded; {args.learners} learners x {args.days} days")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=run_policy, args=(args, p, queue)) for p in POLICIES]
    for worker in workers:
        worker.start()
    results: dict[str, list[dict[str, Any]]] = {policy: [] for policy in POLICIES}
    done = 0
    while done < len(POLICIES):
        try:
            policy, row = queue.get(timeout=5)
        except Empty:
            if any(worker.exitcode not in (None, 0) for worker in workers):
                sys.exit("a policy's process failed (its traceback is above)")
            continue
        if row is None:
            done += 1
        else:
            results[policy].append(row)
    for worker in workers:
        worker.join()
    if not args.keep:
        drop_database(args.database_url)
    print_table(results)
    print(f"\n{time.monotonic() - started:.0f} s in all")


def _seed(args: argparse.Namespace) -> None:
    setup_django(args.database_url, args.redis_url, None)
    seed_bank(args.bank, args.seed)


if __name__ == "__main__":
    main()
