"""One generation end to end (docs/jobs.md), with the real `ChatOpenAI` against the loopback fake
OpenAI server; stories use the TTS and Telegram loopback fakes and local storage."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection, connections
from prometheus_client import REGISTRY

from duoniche.enums import ExerciseStatus
from duoniche.models import LLMCall
from exercises.content import content_hash
from exercises.generation import exercise_generate, generation_disabled_reason
from exercises.generators import GROUP_BY_TOPIC
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.personas import PERSONAS_BY_NAME
from exercises.services import exercise_create
from tests.fakes.dictionary_server import running_dictionary
from tests.fakes.openai_server import Before, Status

# The audio fakes' fixtures (`fake_tts`, `fake_telegram_voice`); not imported by name here, so that
# pytest registers (and assertion-rewrites) them as plugins.
pytest_plugins = ["tests.fakes.telegram_server", "tests.fakes.tts_server"]

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
TAGS = {"grammar": ["numerals: cardinal"], "vocabulary": ["drinks"]}
FILL = {
    "text_with_blanks": "Искам ___ кафе, моля.",
    "correct_words": ["едно"],
    "incorrect_options": ["една", "един"],
    "grammar_tags": TAGS,
}
CHOOSE = {
    "correct_sentence": "Želim jednu kafu.",
    "incorrect_sentences": ["Želim jedna kafu.", "Želim jednu kafa."],
    "grammar_tags": {"grammar": ["noun case: accusative"], "vocabulary": ["drinks"]},
}
STORY = {
    "story_text": "Мария отиде на пазара. Тя купи сирене и домати.",
    "correct_statement": "Мария купи сирене.",
    "incorrect_statements": ["Мария купи хляб.", "Мария отиде на кино."],
    "grammar_tags": {"grammar": ["verb tense: past"], "vocabulary": ["shopping: groceries"]},
}
VALID = {"issues": [], "is_valid": True}


@pytest.fixture(autouse=True)
def _no_personas(settings):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.0
    settings.GENERATE_AUDIO = False


def generate(exercise_type: str, bot_id: str = "Bulgarian", **kwargs: Any):
    return exercise_generate(
        bot_id=bot_id, exercise_type=exercise_type, now=NOW, level="A2", **kwargs
    )


def metric(name: str, exercise_type: str, target: str = "Bulgarian") -> float:
    labels = {
        "exercise_type": exercise_type,
        "level": "A2",
        "user_language": "en",
        "target_language": target,
        "llm_model": "fake-gpt",
    }
    return REGISTRY.get_sample_value(name, labels) or 0.0


def ledger() -> list[tuple[str, str, bool, str]]:
    return list(LLMCall.objects.order_by("pk").values_list("purpose", "operation", "ok", "subject"))


# --- published and rejected ----------------------------------------------------------------


def test_a_generated_fill_is_published_with_its_reference_verdict_and_review(openai_server):
    openai_server.script(FILL, VALID)
    created_before = metric("backend_exercise_created_total", "fill_in_the_blank")
    verified_before = metric("backend_exercise_verified_total", "fill_in_the_blank")

    result = generate("fill_in_the_blank")

    assert (result.outcome, result.reason, result.tts_failed) == ("generated", "", False)
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert (exercise.source, exercise.persona, exercise.language_level) == ("generated", None, "A2")
    assert exercise.topic == result.topic
    assert exercise.topic not in {"emergencies", "tech", "education", "pharmacy"}
    assert exercise.data == {
        "text_with_blanks": "Искам ___ кафе, моля.",
        "words": ["едно", "една", "един"],
    }
    assert exercise.grammar_tags == TAGS
    assert exercise.content_hash == content_hash(
        exercise_type="fill_in_the_blank",
        exercise_language="Bulgarian",
        data=exercise.data,
        correct_answer={"words": ["едно"]},
    )
    assert (exercise.status_changed_at, exercise.created_at, exercise.comments) == (NOW, NOW, "")
    verdict = ExerciseAnswer.objects.get(exercise=exercise)
    assert (verdict.is_reference, verdict.is_correct, verdict.created_by) == (True, True, "LLM")
    assert (verdict.answer, verdict.answer_text, verdict.feedback) == (
        {"words": ["едно"]},
        "едно",
        "",
    )
    review = ExerciseReview.objects.get(exercise=exercise)
    assert (review.source, review.previous_status, review.new_status, review.note) == (
        "generation_assessor",
        "published",
        "published",
        "",
    )
    assert review.analysis == {"stage": "llm", "model": "fake-gpt", "issues": [], "is_valid": True}
    assert Exercise.objects.published().filter(pk=exercise.pk).exists()
    # every call is in the ledger, one per request
    subject = "generation:Bulgarian:fill_in_the_blank"
    assert ledger() == [
        ("generation", "generate_fill_in_the_blank", True, subject),
        ("assessment", "assess_generated_exercise", True, subject),
    ]
    assert [request.mode for request in openai_server.requests] == ["json_schema", "json_schema"]
    assert metric("backend_exercise_created_total", "fill_in_the_blank") == created_before + 1
    assert metric("backend_exercise_verified_total", "fill_in_the_blank") == verified_before + 1


def test_a_rejected_choose_sentence_is_saved_with_its_review_and_never_served(openai_server):
    openai_server.script(
        CHOOSE, {"issues": ["two options are correct", "too easy"], "is_valid": False}
    )
    rejected_before = metric("backend_exercise_rejected_total", "choose_sentence", "Serbian")

    result = generate("choose_sentence", bot_id="Serbian")

    assert result.outcome == "rejected"
    assert result.reason == "two options are correct, too easy"
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.status == ExerciseStatus.REJECTED_BY_ASSESSOR
    assert exercise.data == {
        "options": ["Želim jednu kafu.", "Želim jedna kafu.", "Želim jednu kafa."]
    }
    assert exercise.comments == (
        "2026-03-04T05:06:07Z quality_assessor: two options are correct, too easy"
    )
    review = exercise.reviews.get()
    assert (review.source, review.new_status, review.note) == (
        "generation_assessor",
        "rejected_by_assessor",
        "two options are correct, too easy",
    )
    assert review.analysis["is_valid"] is False
    # the reference answer is saved too, but the exercise is never served
    assert exercise.verdicts.get().answer == {"answer": "Želim jednu kafu."}
    assert not Exercise.objects.published().filter(pk=exercise.pk).exists()
    assert (
        metric("backend_exercise_rejected_total", "choose_sentence", "Serbian")
        == rejected_before + 1
    )


def test_a_deterministic_rejection_makes_no_assessment_call(openai_server):
    openai_server.script({**FILL, "correct_words": ["едно", "две"]})

    result = generate("fill_in_the_blank")

    assert (result.outcome, result.reason) == ("rejected", "blank_count_mismatch")
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.comments == "2026-03-04T05:06:07Z quality_assessor: blank_count_mismatch"
    assert exercise.reviews.get().analysis["stage"] == "deterministic"
    assert [row[1] for row in ledger()] == ["generate_fill_in_the_blank"]


def test_a_failed_assessment_call_rejects_the_exercise(openai_server):
    openai_server.script(FILL, Status(500))

    result = generate("fill_in_the_blank")

    assert (result.outcome, result.reason) == ("rejected", "llm_assessment_failed:LLMUnavailable")
    assert Exercise.objects.get().status == ExerciseStatus.REJECTED_BY_ASSESSOR
    assert [row[2] for row in ledger()] == [True, False]


# --- duplicates and failures ---------------------------------------------------------------


def test_known_content_is_a_duplicate_without_assessment(openai_server):
    openai_server.script(FILL, VALID, FILL)
    first = generate("fill_in_the_blank")

    second = generate("fill_in_the_blank")

    assert (first.outcome, second.outcome) == ("generated", "duplicate")
    assert second.exercise_id is None
    assert Exercise.objects.count() == 1
    assert [row[1] for row in ledger()] == [
        "generate_fill_in_the_blank",
        "assess_generated_exercise",
        "generate_fill_in_the_blank",
    ]


def test_an_llm_failure_fails_the_generation_and_saves_nothing(openai_server):
    openai_server.script(Status(500, "overloaded"))

    result = generate("choose_sentence")

    assert result.outcome == "failed"
    assert result.reason.startswith("LLMUnavailable: InternalServerError")
    assert result.exercise_id is None
    assert Exercise.objects.count() == 0
    assert ExerciseReview.objects.count() == 0
    assert ledger() == [
        ("generation", "generate_choose_sentence", False, "generation:Bulgarian:choose_sentence")
    ]


def test_unparsable_output_fails_the_generation(openai_server):
    openai_server.script({**CHOOSE, "incorrect_sentences": ["only one"]})

    result = generate("choose_sentence")

    assert result.outcome == "failed"
    assert result.reason.startswith("LLMBadOutput")
    assert Exercise.objects.count() == 0


def test_without_an_llm_nothing_is_called(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""

    result = generate("fill_in_the_blank")

    assert generation_disabled_reason() == (
        "exercise generation disabled: no LLM configured "
        "(set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
    )
    assert (result.outcome, result.reason) == (
        "failed",
        (
            "exercise generation disabled: no LLM configured "
            "(set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
        ),
    )
    assert LLMCall.objects.count() == 0


def test_no_assessor_model_disables_generation(openai_server, settings):
    settings.OPENAI_MAIN_MODEL_NAME = ""
    settings.OPENAI_GENERATION_MODEL_NAME = "fake-gpt"

    result = generate("fill_in_the_blank")

    assert result.reason == (
        "exercise generation disabled: no model configured for assessment "
        "(set OPENAI_MAIN_MODEL_NAME or OPENAI_ASSESSOR_MODEL_NAME)"
    )
    assert openai_server.requests == []


def test_a_type_the_language_excludes_fails(openai_server):
    result = generate("choose_accent", bot_id="Serbian")

    assert (result.outcome, result.reason) == (
        "failed",
        "choose_accent is not generated for Serbian",
    )
    assert openai_server.requests == []


# --- personas ------------------------------------------------------------------------------


def test_personas_come_only_from_the_topics_group_and_reach_the_prompt(openai_server, settings):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 1.0
    for index in range(6):
        openai_server.script({**FILL, "text_with_blanks": f"Искам ___ кафе номер {index}."}, VALID)

    results = [generate("fill_in_the_blank") for _ in range(6)]

    assert [result.outcome for result in results] == ["generated"] * 6
    for result, request in zip(results, openai_server.requests[::2], strict=True):
        persona = PERSONAS_BY_NAME[result.persona]
        assert GROUP_BY_TOPIC[result.topic] in persona.groups
        assert (
            f"Persona: name: {persona.name}; role: {persona.role}"
            in (request.messages[0]["content"])
        )
        assert Exercise.objects.get(pk=result.exercise_id).persona == persona.name


# --- stories -------------------------------------------------------------------------------


def test_no_story_is_generated_without_an_audio_pipeline(openai_server):
    result = generate("story_comprehension")

    # Such a story could never be served, so it is not written at all
    assert (result.outcome, result.reason) == (
        "failed",
        "audio pipeline not ready: GENERATE_AUDIO is false",
    )
    assert openai_server.requests == []
    assert Exercise.objects.count() == 0


def test_a_dry_run_story_needs_no_audio_pipeline(openai_server):
    openai_server.script(STORY, VALID)

    result = generate("story_comprehension", dry_run=True)

    assert (result.outcome, result.status, result.exercise_id) == ("generated", "published", None)
    assert Exercise.objects.count() == 0


def test_a_rejected_story_gets_no_audio(openai_server, fake_tts, audio_storage):
    openai_server.script(STORY, {"issues": ["the statement is a summary"], "is_valid": False})

    result = generate("story_comprehension")

    assert result.outcome == "rejected"
    assert Exercise.objects.get().data["audio_url"] == ""
    assert fake_tts.syntheses == []


@pytest.fixture
def audio_storage(settings, tmp_path, fake_tts, fake_telegram_voice):
    """The whole audio pipeline ready: TTS and Telegram fakes, local storage with public URLs."""
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MEDIA_URL = "/media/"
    settings.PUBLIC_BASE_URL = "https://api.example.org"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return tmp_path


def test_a_published_story_gets_its_audio(
    openai_server, fake_tts, fake_telegram_voice, audio_storage
):
    openai_server.script(STORY, VALID)

    result = generate("story_comprehension")

    assert (result.outcome, result.reason, result.tts_failed) == ("generated", "", False)
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.status == ExerciseStatus.PUBLISHED
    url, file_id = exercise.data["audio_url"], exercise.data["audio_telegram_file_id"]
    prefix = f"https://api.example.org/media/Bulgarian/story_audio/A2/{exercise.topic}/"
    assert url.startswith(prefix)
    assert url.endswith(".ogg")
    assert (audio_storage / url.removeprefix("https://api.example.org/media/")).read_bytes() == (
        fake_tts.audio
    )
    (upload,) = fake_telegram_voice.uploads
    assert file_id == "voice-file-1"
    assert upload.files["voice"].content == fake_tts.audio
    assert fake_tts.syntheses[0]["input"]["text"] == exercise.data["content_text"]
    assert Exercise.objects.published().filter(pk=exercise.pk).exists()


def test_a_failed_synthesis_saves_the_story_for_repair_and_flags_tts(
    openai_server, fake_tts, fake_telegram_voice, audio_storage
):
    openai_server.script(STORY, VALID)
    fake_tts.fail(500, times=3)

    result = generate("story_comprehension")

    assert result.outcome == "generated"
    assert result.tts_failed
    assert result.reason.startswith("synthesis failed")
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert exercise.data["audio_url"] == exercise.data["audio_telegram_file_id"] == ""
    assert exercise.reviews.get().new_status == "audio_generation_error"
    assert not Exercise.objects.published().filter(pk=exercise.pk).exists()
    assert fake_telegram_voice.uploads == []


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_saved_meanwhile_discards_the_story_audio_and_no_call_is_in_a_transaction(
    openai_server, fake_tts, fake_telegram_voice, audio_storage
):
    main = connections["default"]  # this thread's connection, inspected from the fakes' threads
    in_transaction: list[bool] = []
    options = [STORY["correct_statement"], *STORY["incorrect_statements"]]

    def another_worker_saves_the_same_story() -> None:
        in_transaction.append(main.in_atomic_block)
        exercise_create(
            exercise_type="story_comprehension",
            exercise_language="Bulgarian",
            language_level="B1",
            topic="food",
            data={
                "content_text": STORY["story_text"],
                "audio_url": "",
                "audio_telegram_file_id": "",
                "options": options,
            },
            correct_answer={"answer": options[0]},
            grammar_tags=TAGS,
            status="audio_generation_error",
            persona=None,
            content_hash=content_hash(
                exercise_type="story_comprehension",
                exercise_language="Bulgarian",
                data={"content_text": STORY["story_text"], "options": options},
                correct_answer={"answer": options[0]},
            ),
            source="generated",
            created_by="LLM",
            now=NOW,
        )
        connection.close()  # the server thread's own connection

    fake_tts.on_synthesize = lambda: in_transaction.append(main.in_atomic_block)
    openai_server.script(
        Before(lambda: in_transaction.append(main.in_atomic_block), STORY),
        Before(another_worker_saves_the_same_story, VALID),
    )

    result = generate("story_comprehension")

    assert result.outcome == "duplicate"
    assert Exercise.objects.count() == 1  # the other worker's
    assert ExerciseReview.objects.count() == 0
    # the audio was made, then its object deleted
    assert len(fake_telegram_voice.uploads) == 1
    assert not any(path.is_file() for path in audio_storage.rglob("*.ogg"))
    # generation, assessment and synthesis all ran outside any transaction
    assert in_transaction == [False, False, False]


# --- choose_accent -------------------------------------------------------------------------


def test_choose_accent_comes_from_the_accent_generator_without_assessment(openai_server, settings):
    openai_server.script(
        {
            "word_to_assess": "вода",
            "is_common_and_suitable": True,
            "reasoning": "A basic word.",
            "confidence_level": "HIGH",
        },
        {
            "meaning": "Прозрачна течност.",
            "examples": ["Пия вода."],
            "grammar_tags": {"vocabulary": ["drinks"]},
        },
    )
    with running_dictionary() as dictionary:
        settings.ACCENT_DICTIONARY_RANDOM_URL = dictionary.random_url
        settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 1.0
        result = generate("choose_accent")

    assert (result.outcome, result.topic, result.persona) == ("generated", "general", None)
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert exercise.grammar_tags["grammar"] == ["accent"]
    verdict = exercise.verdicts.get()
    assert verdict.created_by == "LLM"
    assert verdict.feedback == exercise.data["meaning"]
    assert exercise.reviews.count() == 0  # no assessor for accent
    assert [row[1] for row in ledger()] == ["accent_word_suitability", "accent_word_definition"]


# --- dry run -------------------------------------------------------------------------------


def test_a_dry_run_generates_and_assesses_but_saves_nothing(openai_server):
    openai_server.script(FILL, VALID)

    result = generate("fill_in_the_blank", dry_run=True)

    assert (result.outcome, result.status, result.exercise_id) == ("generated", "published", None)
    assert Exercise.objects.count() == 0
    assert ExerciseReview.objects.count() == 0
    assert len(ledger()) == 2  # the calls were made and are paid for
