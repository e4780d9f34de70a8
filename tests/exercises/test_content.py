"""Content hash test vectors of the bank format, and the normalisation it rests on."""

import pytest

from exercises.content import content_hash, normalize_blanks, normalize_text, stress_problem

STORY_TEXT = (
    "Marko je u subotu ujutru otišao na pijacu. Kupio je paradajz, sir i hleb. Na povratku je "
    "sreo komšinicu Anu, koja mu je rekla da je njen pas bolestan. Marko joj je ponudio da psa "
    "odveze kod veterinara u ponedeljak."
)
STORY_OPTIONS = [
    "Marko je na pijaci kupio sir.",
    "Marko je Anu sreo na pijaci.",
    "Ana je ponudila Marku da psa odveze kod veterinara.",
]


@pytest.mark.parametrize(
    ("exercise_type", "language", "data", "correct", "expected"),
    [
        (
            "fill_in_the_blank",
            "Bulgarian",
            {
                "text_with_blanks": "Искам да ___ едно кафе, моля.",
                "words": ["поръчам", "поръчах", "поръчвах", "поръчано"],
            },
            {"words": ["поръчам"]},
            "e089fb9cecab45bcfeb56fca6cdc255571c13a3866f4b75dbdaa9bf57ee8a7a6",
        ),
        (
            "choose_sentence",
            "Bulgarian",
            {
                "options": [
                    "Вчера отидохме на кино.",
                    "Вчера отиваме на кино.",
                    "Вчера ще отидем на кино.",
                ]
            },
            {"answer": "Вчера отидохме на кино."},
            "15c2a796f173bbc721ec4a576b0e0fd768937188b372bb2bc589ffce09ab71c3",
        ),
        (
            "choose_accent",
            "Bulgarian",
            {"options": ["вода\u0300", "во\u0300да"], "meaning": "вода"},
            {"answer": "вода\u0300"},
            "f362fcb9ad7d69976a57a36bb405c0b01a5a2cc7e81f7ce079ed7f5357f52064",
        ),
        (
            "story_comprehension",
            "Serbian",
            {
                "content_text": STORY_TEXT,
                "audio_url": "",
                "audio_telegram_file_id": "",
                "options": STORY_OPTIONS,
            },
            {"answer": STORY_OPTIONS[0]},
            "7ec1394aa81574591386562b1016ec812dfb8f9dca8fdfbc0c13ef24f32f99c4",
        ),
    ],
)
def test_content_hash_matches_the_spec_vectors(exercise_type, language, data, correct, expected):
    assert (
        content_hash(
            exercise_type=exercise_type,
            exercise_language=language,
            data=data,
            correct_answer=correct,
        )
        == expected
    )


def test_option_order_does_not_change_the_hash():
    options = ["Вчера отидохме на кино.", "Вчера отиваме на кино.", "Вчера ще отидем на кино."]
    first = content_hash(
        exercise_type="choose_sentence",
        exercise_language="Bulgarian",
        data={"options": options},
        correct_answer={"answer": options[0]},
    )
    second = content_hash(
        exercise_type="choose_sentence",
        exercise_language="Bulgarian",
        data={"options": list(reversed(options))},
        correct_answer={"answer": options[0]},
    )
    other_language = content_hash(
        exercise_type="choose_sentence",
        exercise_language="Serbian",
        data={"options": options},
        correct_answer={"answer": options[0]},
    )
    assert first == second
    assert first != other_language


def test_normalisation_composes_trims_and_collapses_whitespace():
    assert normalize_text("  Ис\u043a\u0430м \t да\n\n  ___ ") == "Искам да ___"
    assert normalize_text("и\u0300") == "\u045d"
    assert normalize_blanks("Искам да __ едно _____ кафе.") == "Искам да ___ едно ___ кафе."


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("вода\u0300", None),
        ("учи\u0300тел", None),
        ("\u045dтел", None),  # a composed и with grave counts as a stressed vowel
        ("вода", "must contain exactly one stress mark (U+0300)"),
        ("во\u0300да\u0300", "must contain exactly one stress mark (U+0300)"),
        ("вод\u0300а", "the stress mark must follow a vowel"),
    ],
)
def test_stress_mark_rules(option, problem):
    assert stress_problem(option) == problem
