"""Generators for fill, choose-sentence and story and the choices made before a
generation: level, topic, persona (docs/jobs.md). The model is the scripted fake chat
model behind the chat-model seam of `duoniche.llm_models`; parsing, attempts and the ledger
run for real."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from duoniche.enums import ExerciseTopic, ExerciseType
from duoniche.models import LLMCall
from exercises.drafts import Draft, GenerationFailed
from exercises.generators import (
    GROUP_BY_TOPIC,
    TOPIC_GROUPS,
    choose_level,
    choose_persona,
    choose_sentence_draft,
    choose_topic,
    compatible_personas,
    fill_draft,
    generation_topics,
    persona_line,
    story_draft,
)
from exercises.personas import PERSONAS_BY_NAME

pytestmark = pytest.mark.django_db

TAGS = {"grammar": ["numerals: cardinal", "made-up grammar"], "vocabulary": ["drinks", "drinks"]}
FILL = {
    "text_with_blanks": "Искам  ____ кафе,\nмоля.",
    "correct_words": [" едно "],
    "incorrect_options": ["една", "един", ""],
    "grammar_tags": TAGS,
}
CHOOSE = {
    "correct_sentence": "Želim  jednu kafu.",
    "incorrect_sentences": ["Želim jedna kafu.", "Želim jednu kafa."],
    "grammar_tags": {"grammar": ["noun case: accusative"], "vocabulary": ["drinks"]},
}
STORY = {
    "story_text": "Вчера Мария отиде на пазара.\nКупи домати и сирене. После срещна Иван.",
    "correct_statement": "Мария купи сирене.",
    "incorrect_statements": ["Мария купи хляб.", "Иван купи домати."],
    "grammar_tags": {"grammar": ["verb tense: past"], "vocabulary": ["shopping: groceries"]},
}
BARISTA = PERSONAS_BY_NAME["Friendly Barista"]


def system_and_user(fake_llm) -> tuple[str, str]:
    system, user = fake_llm.calls[-1]
    return str(system.content), str(user.content)


# --- fill-in-the-blank ---------------------------------------------------------------------


def test_a_fill_draft_is_normalised_with_the_correct_words_first(fake_llm):
    fake_llm.script = [FILL]

    draft = fill_draft(bot_id="Bulgarian", level="A2", topic="food", persona=BARISTA)

    assert draft == Draft(
        exercise_type="fill_in_the_blank",
        exercise_language="Bulgarian",
        language_level="A2",
        topic="food",
        data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една", "един"]},
        correct_answer={"words": ["едно"]},
        grammar_tags={"grammar": ["numerals: cardinal"], "vocabulary": ["drinks"]},
        persona="Friendly Barista",
        llm_model="fake-model",
    )
    call = LLMCall.objects.get()
    assert (call.purpose, call.operation, call.subject, call.prompt_version) == (
        "generation",
        "generate_fill_in_the_blank",
        "generation:Bulgarian:fill_in_the_blank",
        "generate_fill_in_the_blank@1",
    )


def test_the_fill_prompt_carries_language_level_topic_persona_alphabet_and_tags(fake_llm):
    fake_llm.script = [FILL]

    fill_draft(bot_id="Bulgarian", level="B1", topic="restaurant", persona=BARISTA)

    system, user = system_and_user(fake_llm)
    assert "native language is English" in system
    assert "learning Bulgarian at CEFR level B1" in system
    assert "The topic is: restaurant." in system
    assert (
        "Persona: name: Friendly Barista; role: barista; "
        "communication style: friendly, talkative." in system
    )
    assert "only the Cyrillic alphabet of Bulgarian" in system
    assert "For Serbian, write everything in the Latin alphabet" in system
    assert '{"grammar": [...], "vocabulary": [...]}' in system
    assert "noun case: locative/prepositional" in system
    assert "kids & parenting" in system
    assert "longer than 11 words, replace two key words" in system
    assert "Write the fill-in-the-blank exercise in Bulgarian now" in user


def test_two_blanks_of_any_length_become_two_standard_blanks(fake_llm):
    fake_llm.script = [
        {**FILL, "text_with_blanks": "Аз __ кафе и ти _____ чай.", "correct_words": ["пия", "пиеш"]}
    ]

    draft = fill_draft(bot_id="Bulgarian", level="A2", topic="food", persona=None)

    assert draft.data["text_with_blanks"] == "Аз ___ кафе и ти ___ чай."
    assert draft.data["words"][:2] == ["пия", "пиеш"]
    assert draft.correct_answer == {"words": ["пия", "пиеш"]}
    assert draft.persona is None


def test_without_a_persona_the_persona_line_is_empty(fake_llm):
    fake_llm.script = [FILL]

    fill_draft(bot_id="Bulgarian", level="A2", topic="food", persona=None)

    system, _ = system_and_user(fake_llm)
    assert "Persona:" not in system
    assert persona_line(None) == ""


# --- choose-sentence and story -------------------------------------------------------------


def test_a_choose_sentence_draft_puts_the_correct_sentence_first(fake_llm):
    fake_llm.script = [CHOOSE]

    draft = choose_sentence_draft(bot_id="Serbian", level="A1", topic="food", persona=None)

    assert draft.data == {
        "options": ["Želim jednu kafu.", "Želim jedna kafu.", "Želim jednu kafa."]
    }
    assert draft.correct_answer == {"answer": "Želim jednu kafu."}
    assert draft.grammar_tags == {"grammar": ["noun case: accusative"], "vocabulary": ["drinks"]}
    system, _ = system_and_user(fake_llm)
    assert "only the Latin alphabet of Serbian" in system
    assert "exactly 2 sentences" in system
    assert LLMCall.objects.get().operation == "generate_choose_sentence"


def test_a_story_draft_has_no_audio_yet_and_the_true_statement_first(fake_llm):
    fake_llm.script = [STORY]
    pensioner = PERSONAS_BY_NAME["Suspicious Pensioner"]

    draft = story_draft(bot_id="Bulgarian", level="A2", topic="health", persona=pensioner)

    assert draft.data == {
        "content_text": "Вчера Мария отиде на пазара. Купи домати и сирене. После срещна Иван.",
        "audio_url": "",
        "audio_telegram_file_id": "",
        "options": ["Мария купи сирене.", "Мария купи хляб.", "Иван купи домати."],
    }
    assert draft.correct_answer == {"answer": "Мария купи сирене."}
    assert draft.persona == "Suspicious Pensioner"
    system, _ = system_and_user(fake_llm)
    assert "the persona tells the story in the first person" in system
    assert "'X instead of Y'" in system
    assert "emotion: suspicious" in system
    assert LLMCall.objects.get().operation == "generate_story_comprehension"


@pytest.mark.parametrize(
    ("generator", "reply"),
    [
        (choose_sentence_draft, {**CHOOSE, "incorrect_sentences": ["Želim jedna kafu."]}),
        (story_draft, {**STORY, "incorrect_statements": ["a", "b", "c"]}),
        (fill_draft, "Here is a nice sentence for you!"),
        (fill_draft, ConnectionError("provider down")),
    ],
)
def test_llm_failures_become_generation_failed(fake_llm, generator, reply):
    fake_llm.script = [reply]

    with pytest.raises(GenerationFailed) as failed:
        generator(bot_id="Serbian", level="A2", topic="food", persona=None)

    assert failed.value.reason.startswith(("LLMBadOutput", "LLMUnavailable"))
    assert LLMCall.objects.get().ok is False  # one attempt for generation


@pytest.mark.parametrize(
    ("generator", "reply", "reason"),
    [
        (choose_sentence_draft, {**CHOOSE, "correct_sentence": "  "}, "empty correct sentence"),
        (story_draft, {**STORY, "story_text": ""}, "empty story"),
        (fill_draft, {**FILL, "correct_words": [" "]}, "no correct words"),
    ],
)
def test_empty_required_text_fails_the_generation(fake_llm, generator, reply, reason):
    fake_llm.script = [reply]

    with pytest.raises(GenerationFailed, match=reason):
        generator(bot_id="Bulgarian", level="A2", topic="food", persona=None)


def test_a_disabled_purpose_fails_without_a_call(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""

    with pytest.raises(GenerationFailed, match="no LLM configured"):
        fill_draft(bot_id="Bulgarian", level="A2", topic="food", persona=None)

    assert LLMCall.objects.count() == 0


def test_an_unknown_language_fails():
    with pytest.raises(GenerationFailed, match="unknown language"):
        fill_draft(bot_id="Klingon", level="A2", topic="food", persona=None)


# --- level, topic, persona -----------------------------------------------------------------


def test_levels_are_weighted_around_the_default_level(settings):
    settings.DEFAULT_LANGUAGE_LEVEL = "A2"
    rng = random.Random(7)

    counts = Counter(choose_level(rng=rng) for _ in range(20_000))

    assert set(counts) == {"A1", "A2", "B1", "B2"}
    shares = {level: count / 20_000 for level, count in counts.items()}
    assert shares["A2"] == pytest.approx(0.75, abs=0.02)
    assert shares["A1"] == pytest.approx(0.10, abs=0.01)
    assert shares["B1"] == pytest.approx(0.10, abs=0.01)
    assert shares["B2"] == pytest.approx(0.05, abs=0.01)


@pytest.mark.parametrize(("default", "allowed"), [("A1", {"A1", "A2", "B1"}), ("C2", {"C1", "C2"})])
def test_levels_stay_within_a1_to_c2(settings, default, allowed):
    settings.DEFAULT_LANGUAGE_LEVEL = default
    rng = random.Random(3)

    assert {choose_level(rng=rng) for _ in range(2_000)} == allowed


def test_topics_exclude_the_languages_excluded_topics():
    bulgarian = generation_topics(bot_id="Bulgarian", exercise_type="fill_in_the_blank")
    serbian = generation_topics(bot_id="Serbian", exercise_type="choose_sentence")
    rng = random.Random(1)

    assert len(serbian) == 28
    assert set(bulgarian) == set(ExerciseTopic.values) - {
        "emergencies",
        "tech",
        "education",
        "pharmacy",
    }
    drawn = {
        choose_topic(bot_id="Bulgarian", exercise_type="story_comprehension", rng=rng)
        for _ in range(2_000)
    }
    assert drawn == set(bulgarian)


def test_choose_accent_is_always_general_and_never_has_a_persona(settings):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 1.0

    assert generation_topics(bot_id="Bulgarian", exercise_type="choose_accent") == ("general",)
    assert choose_topic(bot_id="Bulgarian", exercise_type="choose_accent") == "general"
    assert choose_persona(topic="general", exercise_type="choose_accent") is None


def test_every_topic_belongs_to_exactly_one_group():
    grouped = [topic for topics in TOPIC_GROUPS.values() for topic in topics]

    assert sorted(grouped) == sorted(ExerciseTopic.values)
    assert len(GROUP_BY_TOPIC) == 28


@pytest.mark.parametrize(
    ("topic", "names"),
    [
        ("health", {"Embarrassed Tourist", "Suspicious Pensioner"}),
        ("work", {"Rushing Student", "Demanding Client", "Ironic Colleague"}),
        (
            "restaurant",
            {
                "Embarrassed Tourist",
                "Irritated Customer",
                "Friendly Barista",
                "Suspicious Pensioner",
                "Demanding Client",
                "Polite Waiter",
            },
        ),
    ],
)
def test_personas_come_only_from_the_topics_group(settings, topic, names):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 1.0
    rng = random.Random(11)

    drawn = {
        choose_persona(topic=topic, exercise_type="fill_in_the_blank", rng=rng) for _ in range(500)
    }

    assert {persona.name for persona in compatible_personas(topic=topic)} == names
    assert {persona.name for persona in drawn if persona is not None} == names
    assert None not in drawn


def test_a_persona_is_chosen_about_half_the_time(settings):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.5
    rng = random.Random(5)

    picks = [
        choose_persona(topic="travel", exercise_type=ExerciseType.STORY_COMPREHENSION, rng=rng)
        for _ in range(4_000)
    ]

    with_persona = [persona for persona in picks if persona is not None]
    assert len(with_persona) / len(picks) == pytest.approx(0.5, abs=0.03)
    assert all("LEISURE" in persona.groups for persona in with_persona)


def test_no_persona_when_the_chance_is_zero(settings):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.0

    assert all(
        choose_persona(topic="food", exercise_type="fill_in_the_blank") is None for _ in range(50)
    )
