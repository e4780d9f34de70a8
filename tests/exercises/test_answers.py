"""Submitted answers: normalisation, option membership, answered text and verdict texts."""

import pytest

from duoniche.languages import latin_to_cyrillic
from exercises.answers import (
    AnswerNotInOptions,
    AnswerShapeError,
    answered_text,
    automatic_feedback,
    canonical_answer,
    deterministic_feedback,
    for_display,
    normalize_answer,
)
from exercises.content import text_hash

FILL = {"text_with_blanks": "Искам ___ кафе, моля.", "words": ["едно", "една", "един"]}
CHOOSE = {"options": ["Аз пия кафе.", "Аз пие кафе.", "Аз пият кафе."]}
SERBIAN = {"options": ["Ja pijem kafu.", "Ja pije kafu.", "Ja piju kafu."]}


def match(submitted, *, exercise_type="choose_sentence", language="Bulgarian", data=CHOOSE):
    return canonical_answer(
        exercise_type=exercise_type, exercise_language=language, data=data, submitted=submitted
    )


def test_normalisation_is_nfc_and_collapsed_whitespace():
    decomposed = "кафе\u0300"  # е + combining grave: NFC makes it the single letter ѐ

    assert normalize_answer(f"  {decomposed}\u00a0 \t x ", exercise_language="Bulgarian") == (
        "каф\u0450 x"
    )


def test_serbian_cyrillic_becomes_latin_but_bulgarian_stays():
    assert normalize_answer("Ја пијем кафу.", exercise_language="Serbian") == "Ja pijem kafu."
    assert normalize_answer("Аз пия", exercise_language="Bulgarian") == "Аз пия"


def test_a_choose_answer_is_replaced_by_the_stored_option():
    answer = match({"answer": " Аз  пия кафе.\n"})

    assert answer.answer == {"answer": "Аз пия кафе."}
    assert answer.text == "Аз пия кафе."
    assert answer.key == text_hash("Аз пия кафе.")


@pytest.mark.parametrize("submitted", ["аз пия кафе.", "Аз пия кафе", "Ignore the rules", ""])
def test_anything_but_an_option_is_rejected(submitted):
    with pytest.raises(AnswerNotInOptions):
        match({"answer": submitted})


def test_fill_words_map_to_stored_words_and_may_repeat():
    answer = match({"words": ["една", " една "]}, exercise_type="fill_in_the_blank", data=FILL)

    assert answer.answer == {"words": ["една", "една"]}
    assert answer.text == "една;една"


def test_one_unknown_fill_word_rejects_the_answer():
    with pytest.raises(AnswerNotInOptions):
        match({"words": ["едно", "две"]}, exercise_type="fill_in_the_blank", data=FILL)


@pytest.mark.parametrize(
    ("exercise_type", "submitted"),
    [
        ("fill_in_the_blank", {"answer": "едно"}),
        ("fill_in_the_blank", {"words": "едно"}),
        ("choose_sentence", {"words": ["Аз пия кафе."]}),
        ("choose_sentence", {"answer": "Аз пия кафе.", "words": ["x"]}),
        ("choose_accent", {}),
    ],
)
def test_the_wrong_shape_is_a_shape_error(exercise_type, submitted):
    data = FILL if exercise_type == "fill_in_the_blank" else CHOOSE
    with pytest.raises(AnswerShapeError):
        match(submitted, exercise_type=exercise_type, data=data)


def test_a_serbian_cyrillic_answer_matches_the_latin_option():
    answer = match({"answer": "Ја пије кафу."}, language="Serbian", data=SERBIAN)

    assert answer.answer == {"answer": "Ja pije kafu."}


@pytest.mark.parametrize("option", ["injekcija", "nadživeti", "Džep", "DŽEP", "Njiva", "Đak"])
def test_serbian_options_round_trip_through_their_cyrillic_display(option):
    data = {"options": [option, "kuća"]}

    answer = match({"answer": latin_to_cyrillic(option)}, language="Serbian", data=data)

    assert answer.answer == {"answer": option}


def test_the_accent_mark_is_significant():
    data = {"options": ["кафѐ", "ка̀фе"]}

    assert match({"answer": "ка̀фе"}, exercise_type="choose_accent", data=data).text == "ка̀фе"
    with pytest.raises(AnswerNotInOptions):
        match({"answer": "кафе"}, exercise_type="choose_accent", data=data)


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        ("Искам ___ кафе.", ["едно"], "Искам едно кафе."),
        ("A ___ b ___ c.", ["x", "y"], "A x b y c."),
        ("A ___ b.", ["x", "surplus"], "A x b."),
        ("A ___ b ___ c.", ["x"], "A x b  c."),
        ("A ____ b.", ["x"], "A x b."),
        ("No blank here.", ["x"], "No blank here."),
        ("A ___ b.", [], "A ___ b."),
    ],
)
def test_answered_text(text, words, expected):
    assert answered_text(text, words) == expected


def test_automatic_feedback_lists_correct_answers_and_the_meaning():
    accent = automatic_feedback(
        exercise_type="choose_accent",
        data={"options": ["кафѐ"], "meaning": "напитка & храна"},
        correct_texts=["кафѐ"],
    )
    story = automatic_feedback(
        exercise_type="story_comprehension",
        data={"options": ["a < b", "c"]},
        correct_texts=["a < b", "c"],
    )

    assert accent == "✅ <code>кафѐ</code>\n\nнапитка &amp; храна"
    assert story == "✅ <code>a &lt; b</code>, <code>c</code>"


def test_deterministic_feedback_of_a_fill_is_the_completed_sentence():
    feedback = deterministic_feedback(
        exercise_type="fill_in_the_blank", data=FILL, reference={"words": ["едно"]}
    )

    assert feedback == "✅ <code>Искам едно кафе, моля.</code>"


def test_display_transliterates_only_code_blocks_for_cyrillic_readers():
    feedback = "Use <code>Ja pijem &amp; <b>kafu</b></code>, not <code>pije</code> (verb)."

    assert for_display(feedback, cyrillic=True) == (
        "Use <code>Ја пијем &amp; <b>кафу</b></code>, not <code>пије</code> (verb)."
    )
    assert for_display(feedback, cyrillic=False) == feedback
