"""The `refill_stock` job (docs/jobs.md): deficits from the untouched stock,
availability gates, slots, repairs, the TTS cooldown, idempotency and the stock gauge.

Generation goes over HTTP to a loopback OpenAI-compatible fake (`ExerciseWriter`) that answers by
what is asked: a valid, unique exercise per generation request and a verdict per assessment, so
concurrent slots can be served without a fixed reply order. TTS and Telegram are their loopback
fakes; storage is the local file system in a temporary directory.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.utils import timezone
from prometheus_client import REGISTRY

from duoniche import llm_models
from duoniche.enums import ExerciseSource, ExerciseStatus, ExerciseType, JobRunStatus
from duoniche.models import JobLock, JobRun, LLMCall
from exercises.audio import tts_cooldown_active, tts_failure_note
from exercises.models import Exercise, ExerciseReview
from exercises.refill import stock_refill, untouched_stock
from tests.exercises.factories import ExerciseFactory
from tests.fakes.openai_server import FAKE_API_KEY, FAKE_MODEL, FakeOpenAIServer, Slow

pytest_plugins = ["tests.fakes.telegram_server", "tests.fakes.tts_server"]

pytestmark = pytest.mark.django_db

FILL = ExerciseType.FILL_IN_THE_BLANK.value
CHOOSE = ExerciseType.CHOOSE_SENTENCE.value
ACCENT = ExerciseType.CHOOSE_ACCENT.value
STORY = ExerciseType.STORY_COMPREHENSION.value
NO_LLM = (
    "exercise generation disabled: no LLM configured "
    "(set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
)
_numbers = itertools.count(1)


# --- the LLM fake -------------------------------------------------------------------------------


def exercise_reply(schema: str, language: str, n: int) -> dict[str, Any]:
    """A valid generation answer for `schema` in `language`, unique by `n`."""
    tags = {"grammar": [], "vocabulary": []}
    serbian = language == "Serbian"
    if schema == "FillInTheBlankGeneration":
        if serbian:
            text, correct, wrong = f"Juče sam kupio ___ jabuke za {n} dinara.", "tri", ["troje"]
        else:
            text, correct, wrong = f"Вчера купих ___ ябълки за {n} лева.", "три", ["трима"]
        return {
            "text_with_blanks": text,
            "correct_words": [correct],
            "incorrect_options": [*wrong, "pet" if serbian else "пет"],
            "grammar_tags": tags,
        }
    if schema == "ChooseSentenceGeneration":
        forms = ["pijem", "pije", "pijemo"] if serbian else ["пия", "пие", "пием"]
        pattern = "Ja {} kafu u {} sati." if serbian else "Аз {} кафе в {} часа."
        sentences = [pattern.format(form, n) for form in forms]
        return {
            "correct_sentence": sentences[0],
            "incorrect_sentences": sentences[1:],
            "grammar_tags": tags,
        }
    if schema == "StoryGeneration":
        if serbian:
            story = f"Marko je kupio hleb u {n} sati. Posle je otišao kući."
            statements = [
                f"Marko je kupio hleb u {n} sati.",
                "Marko je kupio mleko.",
                "Marko spava.",
            ]
        else:
            story = f"Мария купи хляб в {n} часа. После отиде вкъщи."
            statements = [f"Мария купи хляб в {n} часа.", "Мария купи мляко.", "Мария спи."]
        return {
            "story_text": story,
            "correct_statement": statements[0],
            "incorrect_statements": statements[1:],
            "grammar_tags": tags,
        }
    if schema == "ExerciseReview":
        return {"issues": [], "is_valid": True}
    raise AssertionError(f"unexpected request for {schema}")


def requested_schema(body: dict[str, Any]) -> str:
    """The output schema a request asks for (json_schema or tool calling)."""
    response_format = body.get("response_format") or {}
    if response_format.get("json_schema"):
        return str(response_format["json_schema"].get("name") or "")
    tools = body.get("tools") or [{}]
    return str(tools[0].get("function", {}).get("name") or "")


def requested_language(body: dict[str, Any]) -> str:
    """The exercise language, named in the user message (the system prompt names both)."""
    user = str((body.get("messages") or [{}])[-1].get("content") or "")
    return "Serbian" if "Serbian" in user else "Bulgarian"


@dataclass
class ExerciseWriter(FakeOpenAIServer):
    """The fake server answering each request by its schema (queued replies still go first)."""

    latency: float = 0.0
    _current: threading.local = field(default_factory=threading.local)

    def record(self, request: Any) -> None:
        super().record(request)
        self._current.request = request  # the handler asks for the reply next, same thread

    def next_reply(self) -> Any:
        queued = super().next_reply()
        if queued is not None:
            return queued
        body = self._current.request.body
        reply = exercise_reply(requested_schema(body), requested_language(body), next(_numbers))
        return Slow(self.latency, reply) if self.latency else reply


@pytest.fixture
def exercise_llm(settings) -> Iterator[ExerciseWriter]:
    """A running `ExerciseWriter` with the LLM settings pointing at it (real `ChatOpenAI`)."""
    server = ExerciseWriter().start()
    settings.OPENAI_BASE_URL = server.url
    settings.OPENAI_API_KEY = FAKE_API_KEY
    settings.OPENAI_MAIN_MODEL_NAME = FAKE_MODEL
    settings.OPENAI_GENERATION_MODEL_NAME = ""
    settings.OPENAI_ASSESSOR_MODEL_NAME = ""
    settings.OPENAI_REQUEST_TIMEOUT = 5.0
    settings.OPENAI_MAX_RETRIES = 0
    settings.LLM_DAILY_BUDGET_USD = 0.0
    try:
        with llm_models.using_chat_model(llm_models.provider_chat_model):
            yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _refill_settings(settings, tmp_path):
    """No LLM and no audio pipeline unless a test configures them; small, fast refills."""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.GENERATE_AUDIO = False
    settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = 5
    settings.GENERATION_CONCURRENCY = 4
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.0
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }


@pytest.fixture
def audio_ready(fake_tts, fake_telegram_voice, settings):
    """The audio pipeline configured: TTS and Telegram fakes, local storage with a public URL."""
    settings.PUBLIC_BASE_URL = "https://api.example.org"
    return fake_tts


# --- helpers ------------------------------------------------------------------------------------


def seed(language: str, exercise_type: str, count: int, **fields: Any) -> list[Exercise]:
    return [
        ExerciseFactory(
            exercise_language=language,
            exercise_type=exercise_type,
            data=_data(language, exercise_type, next(_numbers)),
            **fields,
        )
        for _ in range(count)
    ]


def _data(language: str, exercise_type: str, n: int) -> dict[str, Any]:
    word = f"reč{n}" if language == "Serbian" else f"дума{n}"
    if exercise_type == FILL:
        return {"text_with_blanks": f"Текст ___ {n}.", "words": [word, word + "a"]}
    if exercise_type == ACCENT:
        return {"options": [f"во\u0300да{n}", f"вода\u0300{n}"], "meaning": "вода"}
    options = [f"{word} едно.", f"{word} две.", f"{word} три."]
    if exercise_type == STORY:
        return {
            "content_text": f"Разказ номер {n}.",
            "audio_url": "",
            "audio_telegram_file_id": "",
            "options": options,
        }
    return {"options": options}


def attempted(exercises: list[Exercise]) -> None:
    """As if learners had answered them (no longer untouched)."""
    Exercise.objects.filter(pk__in=[e.pk for e in exercises]).update(
        attempts_count=F("attempts_count") + 1
    )


def gauge(language: str, exercise_type: str) -> float | None:
    return REGISTRY.get_sample_value(
        "backend_untouched_exercises_total",
        {"exercise_language": language, "exercise_type": exercise_type},
    )


def run_job(*args: str) -> dict[str, Any]:
    """`manage.py run_job` and the stats JSON it printed."""
    out = StringIO()
    call_command("run_job", *args, stdout=out)
    lines = out.getvalue().splitlines()
    return json.loads(lines[1]) if len(lines) > 1 else {}


def untouched(language: str, exercise_type: str) -> int:
    return untouched_stock().get((language, exercise_type), 0)


# --- deficits and dry runs ----------------------------------------------------------------------


def test_deficits_count_only_untouched_published_exercises(django_assert_num_queries):
    seed("Bulgarian", FILL, 3)
    attempted(seed("Bulgarian", FILL, 2))
    seed("Bulgarian", FILL, 1, status=ExerciseStatus.REJECTED_BY_ASSESSOR)
    seed("Bulgarian", FILL, 1, status=ExerciseStatus.PENDING_REVIEW)
    seed("Bulgarian", CHOOSE, 6)
    seed("Serbian", CHOOSE, 4)
    stale = seed(
        "Bulgarian",
        STORY,
        1,
        status=ExerciseStatus.PROCESSING_ERROR_RETRY,
    )[0]
    Exercise.objects.filter(pk=stale.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=2)
    )

    with django_assert_num_queries(1):  # the stock: one grouped query; a dry run writes nothing
        stats = stock_refill(now=timezone.now(), dry_run=True)

    bulgarian, serbian = stats["stock"]["Bulgarian"], stats["stock"]["Serbian"]
    assert (bulgarian[FILL]["untouched"], bulgarian[FILL]["deficit"]) == (3, 2)
    assert (bulgarian[CHOOSE]["untouched"], bulgarian[CHOOSE]["deficit"]) == (6, 0)
    assert bulgarian[ACCENT]["deficit"] == 5
    assert bulgarian[STORY]["deficit"] == 5
    assert (serbian[CHOOSE]["untouched"], serbian[CHOOSE]["deficit"]) == (4, 1)
    assert serbian[FILL]["deficit"] == 5
    assert ACCENT not in serbian  # Serbian excludes choose_accent
    assert stats["totals"]["deficit"] == 2 + 0 + 5 + 5 + 5 + 1 + 5
    assert stats["dry_run"] is True
    assert stats["stale_repairs_reset"] == 0
    assert stats["totals"]["generated"] == 0
    assert Exercise.objects.get(pk=stale.pk).status == ExerciseStatus.PROCESSING_ERROR_RETRY


def test_the_stock_gauge_is_set_per_language_and_type():
    seed("Bulgarian", FILL, 2)
    seed("Serbian", STORY, 1)
    seed("Serbian", FILL, 1, status=ExerciseStatus.ARCHIVED)

    stock_refill(now=timezone.now(), dry_run=True)

    assert gauge("Bulgarian", FILL) == 2
    assert gauge("Bulgarian", CHOOSE) == 0
    assert gauge("Bulgarian", ACCENT) == 0
    assert gauge("Serbian", STORY) == 1
    assert gauge("Serbian", FILL) == 0
    assert gauge("Serbian", ACCENT) is None


def test_run_job_dry_run_prints_the_deficits_and_writes_nothing():
    seed("Serbian", FILL, 4)

    stats = run_job("refill_stock", "--dry-run")

    assert stats["stock"]["Serbian"][FILL]["deficit"] == 1
    assert stats["stock"]["Bulgarian"][FILL]["skipped_reason"] == NO_LLM
    assert not JobRun.objects.exists()
    assert not JobLock.objects.exists()
    assert Exercise.objects.count() == 4


# --- gates --------------------------------------------------------------------------------------


def test_without_an_llm_nothing_is_generated_and_the_reason_is_in_the_stats(caplog):
    seed("Bulgarian", FILL, 1)
    caplog.set_level(logging.WARNING, logger="exercises.refill")

    stats = run_job("refill_stock")

    assert Exercise.objects.count() == 1
    assert not LLMCall.objects.exists()
    run = JobRun.objects.get(job="refill_stock")
    assert run.status == JobRunStatus.SUCCEEDED
    assert run.stats == stats
    assert stats["generation_disabled"] == NO_LLM
    assert stats["totals"]["generated"] == 0
    assert stats["slots"] == 0
    for types in stats["stock"].values():
        for exercise_type, entry in types.items():
            if exercise_type != STORY:
                assert entry["skipped_reason"] == NO_LLM
    assert stats["stock"]["Bulgarian"][FILL]["deficit"] == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings.count(NO_LLM) == 1


def test_stale_repairs_go_back_to_audio_generation_error():
    now = timezone.now()
    old, recent = seed("Bulgarian", STORY, 2, status=ExerciseStatus.PROCESSING_ERROR_RETRY)
    Exercise.objects.filter(pk=old.pk).update(status_changed_at=now - timedelta(minutes=61))
    Exercise.objects.filter(pk=recent.pk).update(status_changed_at=now - timedelta(minutes=10))

    stats = stock_refill(now=now)

    assert stats["stale_repairs_reset"] == 1
    assert Exercise.objects.get(pk=old.pk).status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert Exercise.objects.get(pk=recent.pk).status == ExerciseStatus.PROCESSING_ERROR_RETRY


def test_the_tts_cooldown_stops_story_work(audio_ready):
    now = timezone.now()
    broken = seed("Bulgarian", STORY, 1, status=ExerciseStatus.AUDIO_GENERATION_ERROR)[0]
    tts_failure_note(now - timedelta(minutes=10))

    stats = stock_refill(now=now)

    assert stats["tts_cooldown"] is True
    story = stats["stock"]["Bulgarian"][STORY]
    assert story["skipped_reason"] == "TTS cooldown after a synthesis failure"
    assert story["repaired"] == 0
    assert Exercise.objects.get(pk=broken.pk).status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert audio_ready.syntheses == []


@pytest.mark.django_db(transaction=True)
def test_stories_are_not_generated_without_the_audio_pipeline(exercise_llm, caplog):
    """With GENERATE_AUDIO=false a refill makes fill and choose, but no story."""
    caplog.set_level(logging.WARNING, logger="exercises.refill")
    seed("Bulgarian", ACCENT, 5)

    stats = run_job("refill_stock")

    generated = Exercise.objects.filter(source=ExerciseSource.GENERATED)
    assert not generated.filter(exercise_type=STORY).exists()
    assert not Exercise.objects.filter(exercise_type=STORY).exists()
    for language in ("Bulgarian", "Serbian"):
        for exercise_type in (FILL, CHOOSE):
            assert (
                generated.filter(exercise_language=language, exercise_type=exercise_type).count()
                == 5
            )
        story = stats["stock"][language][STORY]
        assert story["skipped_reason"] == "audio pipeline not ready: GENERATE_AUDIO is false"
        assert story["generated"] == 0
        assert f"stories of {language} skipped" in caplog.text
    assert stats["totals"]["generated"] == 20


# --- generation ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_refill_creates_exactly_the_deficit_and_a_second_one_nothing(exercise_llm, settings):
    settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = 3
    seed("Bulgarian", FILL, 1)
    attempted(seed("Bulgarian", FILL, 2))
    seed("Bulgarian", ACCENT, 3)
    seed("Serbian", CHOOSE, 3)

    stats = run_job("refill_stock")

    expected = {("Bulgarian", FILL): 2, ("Bulgarian", CHOOSE): 3, ("Serbian", FILL): 3}
    for (language, exercise_type), deficit in expected.items():
        entry = stats["stock"][language][exercise_type]
        assert (entry["deficit"], entry["generated"], entry["failed"]) == (deficit, deficit, 0)
    assert stats["stock"]["Serbian"][CHOOSE]["deficit"] == 0
    assert stats["totals"]["generated"] == 8
    for language, exercise_type in [*expected, ("Serbian", CHOOSE), ("Bulgarian", ACCENT)]:
        assert untouched(language, exercise_type) == 3
    generated = Exercise.objects.filter(source=ExerciseSource.GENERATED)
    assert generated.count() == 8
    assert set(generated.values_list("status", flat=True)) == {ExerciseStatus.PUBLISHED}
    assert all(exercise.verdicts.filter(is_reference=True).count() == 1 for exercise in generated)
    assert ExerciseReview.objects.filter(exercise__in=generated).count() == 8
    assert LLMCall.objects.filter(ok=True).count() == 16  # a generation and an assessment each
    assert len(exercise_llm.requests) == 16
    # The gauge is computed at scrape time: it shows the stock as it is now.
    assert gauge("Bulgarian", FILL) == 3
    assert gauge("Serbian", FILL) == 3

    again = run_job("refill_stock", "--force")

    assert again["totals"]["generated"] == 0
    assert again["slots"] == 0
    assert all(
        again["stock"][language][exercise_type]["deficit"] == 0
        for language, exercise_type in expected
    )
    assert Exercise.objects.count() == 8 + 1 + 2 + 3 + 3
    assert LLMCall.objects.count() == 16
    assert gauge("Bulgarian", FILL) == 3
    assert gauge("Serbian", FILL) == 3
    runs = JobRun.objects.filter(job="refill_stock").order_by("pk")
    assert [(run.forced, run.status) for run in runs] == [
        (False, JobRunStatus.SUCCEEDED),
        (True, JobRunStatus.SUCCEEDED),
    ]


@pytest.mark.django_db(transaction=True)
def test_rejected_and_failed_generations_are_counted(exercise_llm, settings):
    settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = 1
    settings.GENERATION_CONCURRENCY = 1
    seed("Bulgarian", ACCENT, 1)
    seed("Bulgarian", CHOOSE, 1)
    seed("Serbian", CHOOSE, 1)
    seed("Serbian", FILL, 1)
    # The one missing exercise (Bulgarian fill): generated, then the assessor rejects it.
    exercise_llm.script(
        exercise_reply("FillInTheBlankGeneration", "Bulgarian", next(_numbers)),
        {"issues": ["the sentence is unnatural"], "is_valid": False},
    )

    stats = stock_refill(now=timezone.now())

    entry = stats["stock"]["Bulgarian"][FILL]
    assert (entry["deficit"], entry["generated"], entry["rejected"]) == (1, 0, 1)
    rejected = Exercise.objects.get(status=ExerciseStatus.REJECTED_BY_ASSESSOR)
    assert rejected.exercise_type == FILL
    assert untouched("Bulgarian", FILL) == 0  # rejected ones don't count: the next run retries

    exercise_llm.script({"not": "a fill exercise"})
    again = stock_refill(now=timezone.now())

    assert again["stock"]["Bulgarian"][FILL]["failed"] == 1
    assert Exercise.objects.filter(exercise_type=FILL, exercise_language="Bulgarian").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refills_one_runs_and_the_other_exits_3(exercise_llm, settings):
    """A second `run_job refill_stock` while one runs is locked out (exit 3)."""
    settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = 2
    exercise_llm.latency = 0.2
    seed("Bulgarian", ACCENT, 2)
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            outcome["stats"] = run_job("refill_stock")
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not exercise_llm.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert JobLock.objects.filter(name="refill_stock").exists()

        with pytest.raises(CommandError) as error:
            run_job("refill_stock")
    finally:
        thread.join(60)

    assert error.value.returncode == 3
    assert outcome["stats"]["totals"]["generated"] == 8
    assert Exercise.objects.filter(source=ExerciseSource.GENERATED).count() == 8
    assert JobRun.objects.filter(job="refill_stock").count() == 1
    assert not JobLock.objects.exists()


# --- story repair -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_broken_story_is_repaired_even_when_generation_is_disabled(audio_ready):
    broken = seed("Bulgarian", STORY, 1, status=ExerciseStatus.AUDIO_GENERATION_ERROR)[0]

    stats = stock_refill(now=timezone.now())

    story = Exercise.objects.get(pk=broken.pk)
    assert story.status == ExerciseStatus.PUBLISHED
    assert story.data["audio_url"].startswith("https://api.example.org/")
    assert story.data["audio_telegram_file_id"]
    entry = stats["stock"]["Bulgarian"][STORY]
    assert (entry["deficit"], entry["repaired"], entry["generated"]) == (5, 1, 0)
    assert entry["skipped_reason"] == f"{NO_LLM} (repairs only)"
    assert stats["stock"]["Serbian"][STORY]["repaired"] == 0
    assert len(audio_ready.syntheses) == 1
    assert stats["tts_failed"] is False


@pytest.mark.django_db(transaction=True)
def test_a_tts_failure_starts_the_cooldown(audio_ready):
    now = timezone.now()
    broken = seed("Bulgarian", STORY, 1, status=ExerciseStatus.AUDIO_GENERATION_ERROR)[0]
    audio_ready.fail(500, times=5)

    stats = stock_refill(now=now)

    assert stats["tts_failed"] is True
    # Slots already running when the first synthesis failed may try once more; none after that.
    assert 1 <= stats["stock"]["Bulgarian"][STORY]["failed"] <= 4
    assert stats["stock"]["Bulgarian"][STORY]["repaired"] == 0
    assert Exercise.objects.get(pk=broken.pk).status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert tts_cooldown_active(now + timedelta(minutes=59))
    assert not tts_cooldown_active(now + timedelta(minutes=61))
