"""Write exercises as a bank file (docs/exercise-bank.md), the same format import reads.

It exists to move content between environments and to review the bank outside the admin.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from duoniche.enums import ExerciseStatus, ExerciseType, LanguageLevel
from duoniche.languages import bot_ids
from exercises.selectors import exercises_for_export


class Command(BaseCommand):
    help = (
        "Export exercises as a JSON bank file (default: stdout). Filters repeat: OR within one "
        "option, AND across options; by default everything is exported, whatever its status."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", nargs="?", default="-", help="output path, or - for stdout")
        parser.add_argument("--language", action="append", default=[], help="bot id")
        parser.add_argument("--type", action="append", default=[], help="exercise type")
        parser.add_argument("--status", action="append", default=[], help="exercise status")
        parser.add_argument("--level", action="append", default=[], help="language level")

    def handle(self, *args: Any, **options: Any) -> None:
        for option, allowed in (
            ("language", bot_ids()),
            ("type", tuple(ExerciseType.values)),
            ("status", tuple(ExerciseStatus.values)),
            ("level", tuple(LanguageLevel.values)),
        ):
            for value in options[option]:
                if value not in allowed:
                    raise CommandError(
                        f"--{option} {value!r} is not one of {', '.join(allowed)}", returncode=2
                    )
        items = []
        for exercise, item in exercises_for_export(
            languages=options["language"],
            types=options["type"],
            statuses=options["status"],
            levels=options["level"],
        ):
            if item is None:
                self.stderr.write(
                    f"warning: exercise #{exercise.pk} has no reference answer; skipped"
                )
                continue
            items.append(item)
        # An item's own keys keep the bank format's reading order; the keys inside its parts are
        # sorted (PostgreSQL's jsonb keeps its own order), so two exports of the same bank are
        # the same bytes and a diff between exports shows only what changed. Lists keep their
        # order: an option's place can matter.
        items = [{key: _sorted_keys(value) for key, value in item.items()} for item in items]
        text = json.dumps(items, ensure_ascii=False, indent=2) + "\n"
        if options["file"] == "-":
            self.stdout.write(text, ending="")
        else:
            with open(options["file"], "w", encoding="utf-8") as handle:
                handle.write(text)
        if options["verbosity"] >= 1 and options["file"] != "-":
            self.stderr.write(f"exported {len(items)} exercise(s) to {options['file']}")


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(element) for element in value]
    return value
