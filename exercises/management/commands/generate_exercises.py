"""Generate exercises of one language and type on demand (docs/jobs.md).

It exists so that staff can fill a gap, try a new prompt or model, or see what generation produces
without waiting for the refill job: the same service (`exercise_generate`) runs once per exercise,
and the run's cost is read back from the LLM ledger.
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from duoniche.enums import ExerciseType, LanguageLevel
from duoniche.languages import bot_ids, get_language
from duoniche.models import LLMCall
from duoniche.progress import ProgressBar
from exercises import audio
from exercises.generation import (
    REQUIRED_PURPOSES,
    GenerationResult,
    exercise_generate,
    generation_disabled_reason,
)


class Command(BaseCommand):
    help = (
        "Generate, assess and save exercises of one language and type, printing each outcome and "
        "the run's LLM tokens and cost. --dry-run generates and assesses (the LLM calls are made "
        "and recorded in the ledger) but saves nothing: the saving step runs inside a transaction "
        "that is rolled back, and story audio is not produced."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--language", required=True, help="bot id, e.g. Bulgarian")
        parser.add_argument(
            "--type", required=True, choices=ExerciseType.values, help="exercise type"
        )
        parser.add_argument(
            "--level",
            choices=LanguageLevel.values,
            help="CEFR level (default: weighted random around DEFAULT_LANGUAGE_LEVEL)",
        )
        parser.add_argument(
            "--count", type=int, default=1, help="exercises to generate (default 1)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="generate and assess, save nothing (rolled-back save, no story audio)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bot_id, exercise_type, count = options["language"], options["type"], options["count"]
        language = get_language(bot_id)
        if language is None:
            raise CommandError(
                f"unknown language {bot_id!r}; valid: {', '.join(bot_ids())}", returncode=2
            )
        if exercise_type not in language.generated_types:
            raise CommandError(f"{exercise_type} is not generated for {bot_id}", returncode=2)
        if count < 1:
            raise CommandError("--count must be at least 1", returncode=2)
        # An explicit request that cannot run is a failure (exit 1), saying what to set.
        disabled = generation_disabled_reason()
        if disabled is not None:
            raise CommandError(f"{disabled}; nothing generated")
        if exercise_type == ExerciseType.STORY_COMPREHENSION and not options["dry_run"]:
            not_ready = audio.audio_pipeline_ready(bot_id)
            if not_ready is not None:
                raise CommandError(
                    f"stories need audio, and the audio pipeline is not ready: {not_ready}; "
                    "nothing generated (--dry-run works without audio)"
                )

        first_call = LLMCall.objects.aggregate(last=Max("pk"))["last"] or 0
        progress = ProgressBar(
            total=count,
            label=f"generating {bot_id} {exercise_type}",
            stream=self.stderr,
            enabled=options["verbosity"] >= 1,
        )
        outcomes: Counter[str] = Counter()
        for _ in range(count):
            result = exercise_generate(
                bot_id=bot_id,
                exercise_type=exercise_type,
                now=timezone.now(),
                level=options["level"],
                dry_run=options["dry_run"],
            )
            outcomes[result.outcome] += 1
            progress.advance()
            if options["verbosity"] >= 1:
                self.stdout.write(self._line(result))
        self.stdout.write(self._totals(outcomes, first_call, dry_run=options["dry_run"]))

    def _line(self, result: GenerationResult) -> str:
        parts = [
            result.outcome,
            f"#{result.exercise_id}" if result.exercise_id else "",
            result.level,
            result.topic,
            f"persona={result.persona}" if result.persona else "",
            f"status={result.status}" if result.status else "",
        ]
        line = " ".join(part for part in parts if part)
        return f"{line}: {result.reason}" if result.reason else line

    def _totals(self, outcomes: Counter[str], first_call: int, *, dry_run: bool) -> str:
        usage = LLMCall.objects.filter(pk__gt=first_call, purpose__in=REQUIRED_PURPOSES).aggregate(
            calls=Count("pk"),
            errors=Count("pk", filter=Q(ok=False)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost_usd"),
        )
        cost = usage["cost"]
        return (
            f"generated={outcomes['generated']} rejected={outcomes['rejected']} "
            f"failed={outcomes['failed']} duplicates={outcomes['duplicate']} "
            f"llm_calls={usage['calls']} llm_errors={usage['errors']} "
            f"input_tokens={usage['input_tokens'] or 0} "
            f"output_tokens={usage['output_tokens'] or 0} "
            f"cost_usd={cost if cost is not None else 'unknown'}"
            + (" (dry run: nothing saved)" if dry_run else "")
        )
