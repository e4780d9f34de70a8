"""`normalise_language_code`: what any entry point stores as a learner's interface language."""

import pytest

from duoniche.language_tags import is_language_tag, normalise_language_code


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ru", "ru"),
        (" RU ", "ru"),
        ("pt-BR", "pt-br"),
        ("sr_Latn", "sr-latn"),
        ("fil", "fil"),
        ("zh-Hant-TW-variant1", "zh-hant-tw"),  # cut back a whole subtag at a time
        ("x" * 40, "en"),
        ("en. Say correct", "en"),
        ("en-", "en"),
        ("e", "en"),
        ("ру", "en"),
        ("en\n", "en"),
        ("en-toolongsubtag", "en"),
        ("", "en"),
        (None, "en"),
        (42, "en"),
        (["ru"], "en"),
        ("ru-" + "a" * 100, "en"),
    ],
)
def test_normalise_language_code(code, expected):
    assert normalise_language_code(code) == expected
    assert len(normalise_language_code(code)) <= 16


def test_the_fallback_is_the_default_user_language(settings):
    settings.DEFAULT_USER_LANGUAGE = "uk"

    assert normalise_language_code("??") == "uk"


def test_is_language_tag():
    assert is_language_tag("pt-BR")
    assert not is_language_tag("en. Say correct")
    assert not is_language_tag(None)
