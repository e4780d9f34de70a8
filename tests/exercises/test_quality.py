"""The generation-time quality assessor: deterministic checks, then the LLM review.

The model is the scripted fake chat model behind the chat-model seam of `duoniche.llm_models`.
"""

from __future__ import annotations

import dataclasses

import pytest

from duoniche.models import LLMCall
from exercises.drafts import Draft
from exercises.quality import (
    Assessment,
    assess_generated_exercise,
    deterministic_issues,
)

pytestmark = pytest.mark.django_db

TAGS = {"grammar": [], "vocabulary": []}
FILL = Draft(
    exercise_type="fill_in_the_blank",
    exercise_language="Bulgarian",
    language_level="A2",
    topic="food",
    data={"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една", "един"]},
    correct_answer={"words": ["едно"]},
    grammar_tags=TAGS,
    persona=None,
    llm_model="fake-model",
)
CHOOSE = Draft(
    exercise_type="choose_sentence",
    exercise_language="Serbian",
    language_level="A1",
    topic="food",
    data={"options": ["Želim jednu kafu.", "Želim jedna kafu.", "Želim jednu kafa."]},
    correct_answer={"answer": "Želim jednu kafu."},
    grammar_tags=TAGS,
    persona=None,
)
STORY = Draft(
    exercise_type="story_comprehension",
    exercise_language="Bulgarian",
    language_level="B1",
    topic="shopping",
    data={
        "content_text": "Мария отиде на пазара и купи сирене.",
        "audio_url": "",
        "audio_telegram_file_id": "",
        "options": ["Мария купи сирене.", "Мария купи хляб.", "Иван купи сирене."],
    },
    correct_answer={"answer": "Мария купи сирене."},
    grammar_tags=TAGS,
    persona=None,
)
VALID = {"issues": [], "is_valid": True}


def fill(text: str = "Искам ___ кафе, моля.", words=None, correct=None) -> Draft:
    words = words if words is not None else ["едно", "една", "един"]
    return dataclasses.replace(
        FILL,
        data={"text_with_blanks": text, "words": words},
        correct_answer={"words": correct if correct is not None else words[:1]},
    )


def options(draft: Draft, values: list[str]) -> Draft:
    return dataclasses.replace(
        draft, data={**draft.data, "options": values}, correct_answer={"answer": values[0]}
    )


# --- deterministic checks --------------------------------------------------------------------


@pytest.mark.parametrize("draft", [FILL, CHOOSE, STORY])
def test_well_formed_exercises_pass_every_check(draft):
    assert deterministic_issues(draft=draft) == []


@pytest.mark.parametrize(
    ("draft", "issues"),
    [
        # 1. duplicates after NFC: "й" composed and decomposed are the same option
        (fill(words=["чай", "ча\u0438\u0306", "кафе"]), ["duplicate_options"]),
        (options(CHOOSE, ["Želim kafu.", "Želim kafu.", "Želim kafa."]), ["duplicate_options"]),
        # 2. a fill word longer than 64 UTF-8 bytes (33 Cyrillic letters = 66 bytes)
        (fill(words=["едно", "я" * 33, "един"]), ["option_too_long"]),
        # 3. a fill word with whitespace
        (fill(words=["едно", "една чаша", "един"]), ["option_contains_space"]),
        # 4. correct words ≠ blanks (not mislabelled as "contains spaces")
        (fill(words=["едно", "две", "една"], correct=["едно", "две"]), ["blank_count_mismatch"]),
        (fill(text="Искам ___ кафе и ___ чай.", correct=None), ["blank_count_mismatch"]),
        (fill(text="Искам кафе.", words=["едно", "една"]), ["blank_count_mismatch"]),
        # 5. a letter of another script in any option, correct ones included, stories too
        (fill(words=["eдно", "една", "един"]), ["mixed_alphabet"]),  # Latin "e"
        (fill(words=["едно", "една", "eдин"]), ["mixed_alphabet"]),
        (options(CHOOSE, ["Želim jednu kafu.", "Желим jedna kafu.", "x y."]), ["mixed_alphabet"]),
        (
            options(STORY, ["Мария купи сирене.", "Мария купи хляб.", "Ivan купи."]),
            ["mixed_alphabet"],
        ),
        # 6. choose-sentence and story need exactly three options
        (options(CHOOSE, ["Želim jednu kafu.", "Želim jedna kafu."]), ["wrong_option_count"]),
        (
            options(STORY, ["Мария купи сирене.", "Мария купи хляб.", "а.", "б."]),
            ["wrong_option_count"],
        ),
        # several failures are all reported, in table order
        (
            fill(words=["една чаша", "една чаша", "x"], correct=["една чаша", "една чаша"]),
            [
                "duplicate_options",
                "option_contains_space",
                "blank_count_mismatch",
                "mixed_alphabet",
            ],
        ),
    ],
)
def test_each_deterministic_rule_has_its_issue_code(draft, issues):
    assert deterministic_issues(draft=draft) == issues


def test_a_two_blank_sentence_with_two_correct_words_passes():
    draft = fill(text="Аз ___ кафе и ти ___ чай.", words=["пия", "пиеш", "пие"], correct=None)
    draft = dataclasses.replace(draft, correct_answer={"words": ["пия", "пиеш"]})

    assert deterministic_issues(draft=draft) == []


def test_a_serbian_option_with_latin_diacritics_is_not_mixed():
    draft = options(CHOOSE, ["Đak čeka ćup.", "Đak čeka ćupa.", "Žena šije."])

    assert deterministic_issues(draft=draft) == []


def test_a_deterministic_failure_rejects_without_an_llm_call(fake_llm):
    fake_llm.script = [VALID]

    assessment = assess_generated_exercise(draft=fill(words=["едно", "една чаша", "един"]))

    assert assessment == Assessment(
        is_valid=False,
        issues=("option_contains_space",),
        analysis={
            "stage": "deterministic",
            "is_valid": False,
            "issues": ["option_contains_space"],
        },
    )
    assert fake_llm.calls == []
    assert LLMCall.objects.count() == 0


# --- the LLM review ------------------------------------------------------------------------


def test_a_valid_review_passes_and_keeps_the_output(fake_llm):
    fake_llm.script = [{"issues": ["could be a little harder"], "is_valid": True}]

    assessment = assess_generated_exercise(draft=FILL)

    assert assessment.is_valid
    assert assessment.issues == ()
    assert assessment.analysis == {
        "stage": "llm",
        "model": "fake-model",
        "issues": ["could be a little harder"],
        "is_valid": True,
    }
    call = LLMCall.objects.get()
    assert (call.purpose, call.operation, call.subject, call.prompt_version) == (
        "assessment",
        "assess_generated_exercise",
        "generation:Bulgarian:fill_in_the_blank",
        "assess_generated_exercise@1",
    )


def test_the_fill_review_sees_the_sentence_the_options_and_the_completed_sentence(fake_llm):
    fake_llm.script = [VALID]

    assess_generated_exercise(draft=FILL)

    system, user = (str(message.content) for message in fake_llm.calls[0])
    assert "The incorrect options are wrong on purpose" in system
    assert "Text inside XML-style data tags" in system
    assert "Exercise type: fill_in_the_blank" in user
    assert "Level: A2" in user
    assert (
        "<exercise_data>\nFill in the blanks in the sentence.\nИскам ___ кафе, моля.\n"
        "</exercise_data>" in user
    )
    assert "Correct options:\n<exercise_options>\n- едно\n</exercise_options>" in user
    assert "Incorrect options:\n<exercise_options>\n- една\n- един\n</exercise_options>" in user
    assert "<exercise_options>\n- едно\n- една\n- един\n</exercise_options>" in user
    assert "Designated correct answer:\n<exercise_data>\nИскам едно кафе, моля.\n" in user


def test_the_story_review_sees_the_story_then_the_task(fake_llm):
    fake_llm.script = [VALID]

    assess_generated_exercise(draft=STORY)

    _, user = (str(message.content) for message in fake_llm.calls[0])
    assert (
        "<exercise_data>\nМария отиде на пазара и купи сирене.\n"
        "Listen to the story and choose the true statement.\n</exercise_data>" in user
    )
    assert "Designated correct answer:\n<exercise_data>\nМария купи сирене.\n" in user
    assert "Incorrect options:\n<exercise_options>\n- Мария купи хляб.\n- Иван" in user


def test_the_choose_review_names_the_correct_sentence(fake_llm):
    fake_llm.script = [VALID]

    assess_generated_exercise(draft=CHOOSE)

    _, user = (str(message.content) for message in fake_llm.calls[0])
    assert "Choose the correct sentence." in user
    assert "Correct options:\n<exercise_options>\n- Želim jednu kafu.\n" in user


def test_an_invalid_review_rejects_with_the_models_issues(fake_llm):
    fake_llm.script = [
        {"issues": ["  'една' also fits\n the blank ", "", "too easy"], "is_valid": False}
    ]

    assessment = assess_generated_exercise(draft=FILL)

    assert not assessment.is_valid
    assert assessment.issues == ("'една' also fits the blank", "too easy")
    assert assessment.analysis["issues"] == ["  'една' also fits\n the blank ", "", "too easy"]


def test_an_invalid_review_without_issues_still_says_why(fake_llm):
    fake_llm.script = [{"issues": [], "is_valid": False}]

    assessment = assess_generated_exercise(draft=CHOOSE)

    assert assessment.issues == ("rejected without a stated issue",)


@pytest.mark.parametrize(
    ("reply", "issue", "error"),
    [
        (ConnectionError("down"), "llm_assessment_failed:LLMUnavailable", "ConnectionError"),
        ("Looks good to me!", "llm_assessment_failed:LLMBadOutput", "EmptyStructuredOutput"),
        (
            {"issues": "none", "is_valid": "maybe"},
            "llm_assessment_failed:LLMBadOutput",
            "ValidationError",
        ),
    ],
)
def test_an_llm_failure_counts_as_invalid(fake_llm, reply, issue, error):
    fake_llm.script = [reply]

    assessment = assess_generated_exercise(draft=STORY)

    assert not assessment.is_valid
    assert assessment.issues == (issue,)
    assert assessment.analysis["stage"] == "llm"
    assert assessment.analysis["error"].startswith(error)
    assert LLMCall.objects.get().ok is False  # one attempt


def test_a_disabled_assessment_purpose_counts_as_invalid(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""

    assessment = assess_generated_exercise(draft=FILL)

    assert assessment.issues == ("llm_assessment_failed:LLMUnavailable",)
    assert LLMCall.objects.count() == 0
