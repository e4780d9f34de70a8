"""Load exercises from a bank file (docs/exercise-bank.md).

It exists so that the starter bank, content moved between environments and content written outside
the LLM pipeline all enter through one validated, idempotent path.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from duoniche.progress import ProgressBar
from exercises.bank import BankItem, validate_bank_items
from exercises.services import exercise_bank_import


class Command(BaseCommand):
    help = (
        "Import exercises from a JSON bank file (or - for stdin). Idempotent: items whose content "
        "hash exists are left unchanged unless --update is given."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="path of the JSON array, or - for stdin")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid items and report the invalid ones (default: import nothing)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and report; write nothing"
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="items the language check flags are invalid, not warned about "
            "(docs/language-check.md)",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="update level, topic, tags, status, persona, meaning and audio of existing items",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        raw_items = self._read(options["file"])
        validation = validate_bank_items(raw_items, strict=options["strict"])
        for line in validation.errors:
            self.stderr.write(line)
        if options["verbosity"] >= 1:
            for line in validation.warnings:
                self.stderr.write(line)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        failed = validation.invalid_count and not options["skip_invalid"]
        if not failed:
            progress = ProgressBar(
                total=len(validation.items),
                label="importing",
                stream=self.stderr,
                enabled=options["verbosity"] >= 1,
            )

            def on_item(item: BankItem, outcome: str) -> None:
                progress.advance()
                if options["verbosity"] >= 2:
                    self.stdout.write(f"item[{item.index}] {outcome} {item.content_hash[:12]}")

            summary = exercise_bank_import(
                items=validation.items,
                update=options["update"],
                dry_run=options["dry_run"],
                on_item=on_item,
            )
            counts = {
                "created": summary.created,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
            }
        self.stdout.write(
            f"created={counts['created']} updated={counts['updated']} "
            f"unchanged={counts['unchanged']} invalid={validation.invalid_count} "
            f"warnings={len(validation.warnings)}"
            + (" (dry run: nothing written)" if options["dry_run"] and not failed else "")
        )
        if failed:
            raise CommandError(
                f"{validation.invalid_count} invalid item(s); nothing was imported "
                "(use --skip-invalid to import the valid ones).",
                returncode=1,
            )

    def _read(self, path: str) -> list[Any]:
        try:
            if path == "-":
                text = sys.stdin.buffer.read().decode("utf-8")
            else:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            items = json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(
                f"cannot read {path}: {exc.__class__.__name__}: {exc}", returncode=2
            ) from exc
        if not isinstance(items, list):
            raise CommandError(f"{path} must contain a JSON array of exercises.", returncode=2)
        return items
