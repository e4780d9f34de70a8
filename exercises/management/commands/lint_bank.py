"""Check the exercise bank against the dictionaries (docs/language-check.md).

A report per language; the exit code is for CI: 0 nothing flagged, 1 something flagged, 2 a
language could not be checked (a dictionary or the binding is missing).
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from duoniche.dictionaries import missing_parts
from duoniche.enums import ExerciseStatus
from duoniche.languages import bot_ids, get_language
from exercises.language_check import KINDS, lint_exercise
from exercises.models import Exercise


class Command(BaseCommand):
    help = (
        "Check the published bank (or --status) against the Hunspell dictionaries: unknown, "
        "foreign, wrong-script and mixed-script words. Exit 1 when something is flagged, 2 when "
        "a language cannot be checked."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--language",
            action="append",
            choices=bot_ids(),
            help="the bot id to check (repeatable; default: every language)",
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=ExerciseStatus.values,
            help="exercise status to check (repeatable; default: published)",
        )
        parser.add_argument(
            "--json", action="store_true", help="one JSON report on stdout instead of text"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = options["status"] or [ExerciseStatus.PUBLISHED.value]
        reports = [
            self._lint(bot_id, statuses) for bot_id in options["language"] or list(bot_ids())
        ]
        if options["json"]:
            self.stdout.write(json.dumps(reports, ensure_ascii=False, indent=2))
        else:
            for report in reports:
                self._write(report)
        if any(report["disabled"] for report in reports):
            raise CommandError("a language could not be checked", returncode=2)
        if any(report["flagged_exercises"] for report in reports):
            raise CommandError(
                f"{sum(r['flagged_exercises'] for r in reports)} exercise(s) flagged", returncode=1
            )

    def _lint(self, bot_id: str, statuses: list[str]) -> dict[str, Any]:
        language = get_language(bot_id)
        assert language is not None  # argparse choices
        report: dict[str, Any] = {
            "language": bot_id,
            "disabled": ", ".join(missing_parts(language)),
            "checked": 0,
            "flagged_exercises": 0,
            "kinds": {},
            "findings": [],
        }
        if report["disabled"]:
            return report
        kinds: Counter[str] = Counter()
        exercises = (
            Exercise.objects.filter(exercise_language=bot_id, status__in=statuses)
            .order_by("pk")
            .only("pk", "exercise_type", "exercise_language", "data")
        )
        for exercise in exercises.iterator(chunk_size=500):
            report["checked"] += 1
            findings = lint_exercise(
                exercise_type=exercise.exercise_type,
                exercise_language=bot_id,
                data=exercise.data,
            )
            if findings:
                report["flagged_exercises"] += 1
            for finding in findings or []:
                kinds[finding.kind] += 1
                report["findings"].append(
                    {"exercise": exercise.pk, "type": exercise.exercise_type, **finding.as_dict()}
                )
        report["kinds"] = {kind: kinds[kind] for kind in KINDS if kinds[kind]}
        return report

    def _write(self, report: dict[str, Any]) -> None:
        name = report["language"]
        if report["disabled"]:
            self.stdout.write(f"{name}: not checked ({report['disabled']})")
            return
        kinds = ", ".join(f"{kind} {count}" for kind, count in report["kinds"].items())
        self.stdout.write(
            f"{name}: {report['checked']} exercises checked, "
            f"{report['flagged_exercises']} flagged" + (f" ({kinds})" if kinds else "")
        )
        for finding in report["findings"]:
            details = [d for d in (finding["origin"], finding["shown_in"]) if d]
            self.stdout.write(
                f"  #{finding['exercise']} {finding['type']} {finding['field']}: "
                f'{finding["kind"]} "{finding["word"]}"'
                + (f" ({', '.join(details)})" if details else "")
            )
