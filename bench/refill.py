"""Benchmark of `refill_stock`: how close the slot pool gets to the ideal concurrency of LLM calls.

It creates a dedicated database (`duoniche_bench_refill`), migrates it, and seeds the stock so that
the only deficit is fill-in-the-blank and choose-sentence in both languages (`--count` exercises in
all; choose_accent and stories are already stocked, and `GENERATE_AUDIO=false`). A loopback
OpenAI-compatible fake (`tests.fakes.openai_server`) answers every request after `--latency`
seconds with a valid, unique exercise or a positive assessment. The job then runs once through the
real runner (`duoniche.job_runs.job_run`, forced) with `GENERATION_CONCURRENCY=--concurrency`, over
real HTTP with the real `ChatOpenAI` client, and the script prints:

- elapsed wall time of the job and the exercises generated. The process first builds its LLM
  clients, as a worker that has run before already has (shown as "process warm-up", ~0.5 s: the
  TLS context of the cached HTTP clients), so `elapsed` is a steady run;
- LLM calls (rows in the `LLMCall` ledger) and the ideal time `calls × latency / concurrency`;
- the ratio elapsed / ideal (target ≤ 1.3: the pool keeps every slot busy);
- ledger totals: input/output tokens and cost from a price table (USD per million tokens).

    .venv/bin/python bench/refill.py                                # 60 exercises, 6 slots, 300 ms
    .venv/bin/python bench/refill.py --count 120 --concurrency 10 --latency 0.5
    .venv/bin/python bench/refill.py --database-url postgres://postgres@127.0.0.1:5432/other

Needs only the local PostgreSQL (no Redis: the cache is in memory). The database is dropped at
the end unless `--keep`. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchdb import drop_database, reset_database  # a sibling module: the benches run as scripts

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench-gpt-mini"
#: USD per million tokens (the shape of LLM_PRICES_JSON); a small current model's list price.
PRICES = {MODEL: {"input": 0.40, "output": 1.60}}
#: Tokens the fake reports per call: (prompt, completion), roughly what the real prompts use.
USAGE = {"generation": (1400, 160), "assessment": (900, 40)}
TYPES = ("fill_in_the_blank", "choose_sentence")
STOCKED_TYPES = ("choose_accent", "story_comprehension")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60, help="exercises to generate (÷ 4)")
    parser.add_argument("--concurrency", type=int, default=6, help="GENERATION_CONCURRENCY")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per LLM call")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/duoniche_bench_refill"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.count <= 0 or args.count % (2 * len(TYPES)):
        parser.error("--count must be a positive multiple of 4 (2 languages × 2 types)")
    return args


# --- database -----------------------------------------------------------------------------------


def setup_django(args: argparse.Namespace) -> None:
    import django

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "duoniche.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "API_TOKENS": "bench-token",
            "DJANGO_LOG_LEVEL": "ERROR",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": "",
            "CELERY_BROKER_URL": "",
            "SENTRY_DSN": "",
            "GENERATE_AUDIO": "false",
        }
    )
    # prometheus_client switches to multiprocess files by the variable's presence, even empty.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)
    sys.path.insert(0, str(ROOT))
    django.setup()


def seed_stocked_types(minimum: int) -> int:
    """`minimum` untouched published accents (Bulgarian) and stories (both): no deficit there."""
    from django.utils import timezone

    from duoniche.languages import languages
    from exercises.content import content_hash
    from exercises.services import exercise_create

    created = 0
    for bot_id, language in languages().items():
        for exercise_type in STOCKED_TYPES:
            if exercise_type not in language.generated_types:
                continue
            for n in range(minimum):
                if exercise_type == "choose_accent":
                    data: dict[str, Any] = {"options": [f"во\u0300да{n}", f"вода\u0300{n}"]}
                    data["meaning"] = "вода"
                else:
                    data = {
                        "content_text": f"Story {n}.",
                        "audio_url": f"https://example.invalid/{bot_id}/{n}.ogg",
                        "audio_telegram_file_id": f"file-{bot_id}-{n}",
                        "options": [f"true {n}", f"false {n}", f"other {n}"],
                    }
                answer = {"answer": data["options"][0]}
                exercise_create(
                    exercise_type=exercise_type,
                    exercise_language=bot_id,
                    language_level="A2",
                    topic="general",
                    data=data,
                    correct_answer=answer,
                    grammar_tags={"grammar": [], "vocabulary": []},
                    status="published",
                    persona=None,
                    content_hash=content_hash(
                        exercise_type=exercise_type,
                        exercise_language=bot_id,
                        data=data,
                        correct_answer=answer,
                    ),
                    source="imported",
                    created_by="import",
                    now=timezone.now(),
                )
                created += 1
    return created


# --- the LLM fake -------------------------------------------------------------------------------

_numbers = itertools.count(1)


#: The structured outputs `exercise_reply` writes.
WRITTEN = frozenset({"FillInTheBlankGeneration", "ChooseSentenceGeneration", "ExerciseReview"})


def exercise_reply(schema: str, language: str, n: int) -> tuple[str, dict[str, Any]]:
    """(purpose, answer): a valid generation for `schema` in `language`, unique by `n`."""
    tags: dict[str, list[str]] = {"grammar": [], "vocabulary": []}
    serbian = language == "Serbian"
    if schema == "FillInTheBlankGeneration":
        if serbian:
            text, words = f"Juče sam kupio ___ jabuke za {n} dinara.", ["tri", "troje", "pet"]
        else:
            text, words = f"Вчера купих ___ ябълки за {n} лева.", ["три", "трима", "пет"]
        answer = {
            "text_with_blanks": text,
            "correct_words": words[:1],
            "incorrect_options": words[1:],
            "grammar_tags": tags,
        }
        return "generation", answer
    if schema == "ChooseSentenceGeneration":
        forms = ["pijem", "pije", "pijemo"] if serbian else ["пия", "пие", "пием"]
        pattern = "Ja {} kafu u {} sati." if serbian else "Аз {} кафе в {} часа."
        sentences = [pattern.format(form, n) for form in forms]
        answer = {
            "correct_sentence": sentences[0],
            "incorrect_sentences": sentences[1:],
            "grammar_tags": tags,
        }
        return "generation", answer
    if schema == "ExerciseReview":
        return "assessment", {"issues": [], "is_valid": True}
    raise RuntimeError(f"the bench fake got an unexpected request for {schema!r}")


def make_server(latency: float, other: Callable[[str], Any] | None = None) -> Any:
    """The fake; `other(schema)` answers what this module does not write (None: not handled)."""
    from tests.fakes.openai_server import FakeOpenAIServer, Reply, Slow

    @dataclass
    class ExerciseWriter(FakeOpenAIServer):
        """Answers each request by the schema it asks for, after `latency` seconds."""

        _current: threading.local = field(default_factory=threading.local)

        def record(self, request: Any) -> None:
            super().record(request)
            self._current.request = request  # the handler asks for the reply next, same thread

        def next_reply(self) -> Any:
            body = self._current.request.body
            response_format = body.get("response_format") or {}
            schema = str((response_format.get("json_schema") or {}).get("name") or "")
            if not schema:
                schema = str((body.get("tools") or [{}])[0].get("function", {}).get("name") or "")
            if other is not None and schema not in WRITTEN:
                return other(schema)
            user = str((body.get("messages") or [{}])[-1].get("content") or "")
            language = "Serbian" if "Serbian" in user else "Bulgarian"
            purpose, answer = exercise_reply(schema, language, next(_numbers))
            return Slow(latency, Reply(answer, usage=USAGE[purpose]))

    return ExerciseWriter().start()  # the fake answers without Nagle's delay (TCP_NODELAY)


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db.models import Count, Sum

    from duoniche import llm_models
    from duoniche.job_runs import job_run
    from duoniche.models import LLMCall
    from exercises.models import Exercise

    minimum = args.count // (2 * len(TYPES))
    seeded = seed_stocked_types(minimum)
    server = make_server(args.latency)
    try:
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = "sk-bench-fake-key"
        settings.OPENAI_MAIN_MODEL_NAME = MODEL
        settings.OPENAI_REQUEST_TIMEOUT = 30.0
        settings.OPENAI_MAX_RETRIES = 0
        settings.LLM_PRICES_JSON = PRICES
        settings.LLM_DAILY_BUDGET_USD = 0.0
        settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = minimum
        settings.GENERATION_CONCURRENCY = args.concurrency
        settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.5

        # A worker process builds its LLM clients once (the first run pays it): do it first, so
        # `elapsed` is a steady run of the job. Shown separately; no request is made.
        warm_started = time.monotonic()
        for purpose in ("generation", "assessment"):
            llm_models.chat_model(purpose)
        warm_up = time.monotonic() - warm_started

        started = time.monotonic()
        outcome = job_run("refill_stock", force=True)
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    totals = outcome.stats.get("totals", {})
    ledger = LLMCall.objects.aggregate(
        calls=Count("id"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cost=Sum("cost_usd"),
    )
    calls = int(ledger["calls"])
    failed_calls = LLMCall.objects.filter(ok=False).count()
    by_purpose = LLMCall.objects.values("purpose").annotate(n=Count("id")).order_by("purpose")
    ideal = calls * args.latency / args.concurrency
    ratio = elapsed / ideal if ideal else float("inf")
    generated = Exercise.objects.filter(source="generated").count()
    published = Exercise.objects.filter(source="generated", status="published").count()
    cost = ledger["cost"] or Decimal(0)

    print(
        f"refill_stock: {outcome.outcome}; {args.count} missing "
        f"({minimum} per language × type, {seeded} accents/stories pre-stocked), "
        f"concurrency {args.concurrency}, LLM latency {args.latency * 1000:.0f} ms"
    )
    print(f"  elapsed          {elapsed:8.2f} s  (the job, in a warm worker process)")
    print(f"  process warm-up  {warm_up:8.2f} s  (LLM clients built once per process)")
    print(
        f"  exercises        {generated:8d} generated ({published} published; stats: "
        f"{totals.get('generated', 0)} generated, {totals.get('rejected', 0)} rejected, "
        f"{totals.get('failed', 0)} failed, {totals.get('duplicates', 0)} duplicates)"
    )
    purposes = ", ".join(f"{row['purpose']} {row['n']}" for row in by_purpose)
    print(f"  LLM calls        {calls:8d} ({purposes}; {failed_calls} failed)")
    print(f"  ideal            {ideal:8.2f} s  (= {calls} × {args.latency} s / {args.concurrency})")
    verdict = "OK" if ratio <= 1.3 else "ABOVE TARGET"
    print(f"  ratio            {ratio:8.2f}    (target ≤ 1.30: {verdict})")
    print(
        f"  ledger           {ledger['input_tokens'] or 0} input + "
        f"{ledger['output_tokens'] or 0} output tokens, {cost:.6f} USD "
        f"(prices per 1M tokens: {PRICES[MODEL]['input']} in / {PRICES[MODEL]['output']} out)"
    )
    per_exercise = cost / generated if generated else Decimal(0)
    print(f"  cost/exercise    {per_exercise:.6f} USD")


def main() -> None:
    args = parse_args()
    # LangChain's `include_raw` output trips a pydantic serializer warning on every call: noise.
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    reset_database(args.database_url)
    try:
        setup_django(args)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        try:
            run(args)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            drop_database(args.database_url)


if __name__ == "__main__":
    main()
