"""The languages file: loaded into typed objects, and a malformed file stops startup."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from duoniche.checks import check_languages
from duoniche.languages import LanguageConfigError, bot_ids, get_language, load_languages

VALID = """
Bulgarian:
  language_code: bg
  tts_locale: bg-BG
  generation_script: cyrillic
  display_alphabets: [cyrillic]
  excluded_topics: [tech]
  excluded_types: []
  type_distribution: {fill_in_the_blank: 1}
"""


def test_configured_languages_match_the_spec():
    assert bot_ids() == ("Bulgarian", "Serbian")
    bulgarian = get_language("Bulgarian")
    serbian = get_language("Serbian")
    assert bulgarian is not None
    assert serbian is not None
    assert bulgarian.language_code == "bg"
    assert bulgarian.tts_locale == "bg-BG"
    assert bulgarian.excluded_topics == {"emergencies", "tech", "education", "pharmacy"}
    assert bulgarian.type_distribution == {
        "fill_in_the_blank": 0.4,
        "choose_sentence": 0.3,
        "choose_accent": 0.1,
        "story_comprehension": 0.2,
    }
    assert serbian.generation_script == "latin"
    assert serbian.default_alphabet == "latin"
    assert serbian.display_alphabets == ("latin", "cyrillic")
    assert "choose_accent" not in serbian.generated_types
    assert get_language("Klingon") is None


def test_a_new_language_is_one_entry_in_the_file(tmp_path):
    path = tmp_path / "languages.yml"
    path.write_text(VALID)

    languages = load_languages(path)

    assert list(languages) == ["Bulgarian"]
    assert languages["Bulgarian"].excluded_topics == {"tech"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("just a string", "must map bot ids"),
        ("Bulgarian: [1, 2]", "Bulgarian must be a mapping"),
        (VALID.replace("  tts_locale: bg-BG\n", ""), "Bulgarian: missing keys tts_locale"),
        (VALID + "  voice: x\n", "Bulgarian: unknown keys voice"),
        (VALID.replace("cyrillic\n  display", "greek\n  display"), "generation_script"),
        (VALID.replace("[tech]", "[Tech]"), "excluded_topics: unknown value 'Tech'"),
        (VALID.replace("fill_in_the_blank: 1", "fill: 1"), "unknown type 'fill'"),
        (VALID.replace("fill_in_the_blank: 1", "fill_in_the_blank: -1"), "must be a number >= 0"),
        (VALID.replace("excluded_types: []", "excluded_types: [fill_in_the_blank]"), "excluded"),
        ("Bulgarian: {language_code: [unclosed", "cannot read"),
    ],
)
def test_malformed_files_are_rejected_with_the_reason(tmp_path, text, problem):
    path = tmp_path / "languages.yml"
    path.write_text(text)

    with pytest.raises(LanguageConfigError) as failure:
        load_languages(path)

    assert any(problem in item for item in failure.value.problems), failure.value.problems


def test_system_check_refuses_a_malformed_file(tmp_path, settings):
    path = tmp_path / "languages.yml"
    path.write_text(VALID.replace("[tech]", "[nope]"))
    settings.LANGUAGES_FILE = path

    errors = check_languages()

    assert [error.id for error in errors] == ["duoniche.E001"]
    assert "nope" in errors[0].msg
    with pytest.raises(SystemCheckError, match=r"duoniche\.E001"):
        call_command("check")


def test_system_check_accepts_the_shipped_file():
    assert check_languages() == []
