"""Run a periodic job now, in this process, through the same runner as Celery (docs/jobs.md).

Why it exists: without a broker (the embedded default) beat does not run, so this is how periodic
jobs run at all; with a broker it is the operator's "run it now and show me" (and `--dry-run` the
"what would it do"). The lock is always taken; `--force` only skips the period check.

Exit codes: 0 ran, or skipped for the period; 1 the job failed; 2 usage error; 3 lock held.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from duoniche.job_runs import JobOutcome, Outcome, job_run
from duoniche.jobs import JOBS, UnknownJob

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3


class Command(BaseCommand):
    help = "Run a periodic job now (in this process), or list the jobs with --list."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", nargs="?", help="the job to run (see --list)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="ignore the period check and record a separate forced run (the lock still holds)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="compute and print what the job would do; write and send nothing",
        )
        parser.add_argument(
            "--list", action="store_true", help="list the jobs, their Celery tasks and schedules"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        if options["list"]:
            if options["name"]:
                raise CommandError("give either a job name or --list", returncode=EXIT_USAGE)
            self._list(verbosity)
            return
        name = options["name"]
        if not name:
            raise CommandError(
                f"give a job name ({', '.join(JOBS)}) or --list", returncode=EXIT_USAGE
            )
        try:
            outcome = job_run(name, force=options["force"], dry_run=options["dry_run"])
        except UnknownJob:
            raise CommandError(
                f"unknown job {name!r}; jobs: {', '.join(JOBS)}", returncode=EXIT_USAGE
            ) from None
        self._report(outcome, verbosity)
        if outcome.outcome == Outcome.FAILED:
            raise CommandError(f"{name} failed: {outcome.reason}", returncode=EXIT_FAILED)
        if outcome.outcome == Outcome.SKIPPED_LOCKED:
            raise CommandError(f"{name} not run: {outcome.reason}", returncode=EXIT_LOCKED)

    def _list(self, verbosity: int) -> None:
        width = max(len(name) for name in JOBS)
        task_width = max(len(job.task) for job in JOBS.values())
        for name, job in JOBS.items():
            line = f"{name:<{width}}  {job.task:<{task_width}}  {job.describe_schedule()}"
            if verbosity >= 2:
                line += (
                    f"  limits {job.soft_time_limit}/{job.time_limit} s, lock {job.lock_ttl} s"
                    f"  ({job.description})"
                )
            self.stdout.write(line)

    def _report(self, outcome: JobOutcome, verbosity: int) -> None:
        if verbosity < 1:
            return
        if outcome.outcome in (Outcome.FAILED, Outcome.SKIPPED_LOCKED):
            return  # the CommandError line on stderr says it
        self.stdout.write(_summary(outcome))
        if outcome.outcome == Outcome.SUCCEEDED:
            indent = 2 if verbosity >= 2 else None
            self.stdout.write(json.dumps(outcome.stats, indent=indent, sort_keys=True))


def _summary(outcome: JobOutcome) -> str:
    if outcome.outcome == Outcome.SKIPPED_PERIOD:
        return f"{outcome.job} skipped_period: {outcome.reason}"
    flags = [flag for flag, on in (("dry run", outcome.dry_run), ("forced", outcome.forced)) if on]
    details = [f"period {outcome.period_key}", f"{outcome.duration_seconds:.1f} s"]
    if outcome.attempts > 1:
        details.append(f"attempt {outcome.attempts}")
    head = f"{outcome.job} {outcome.outcome}"
    if flags:
        head += f" ({', '.join(flags)})"
    return f"{head}: {', '.join(details)}"
