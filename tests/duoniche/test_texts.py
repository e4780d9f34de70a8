"""Bot texts: every message exists in every language, fits Telegram, and falls back to English."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from duoniche.texts import MESSAGES, SUPPORTED_LANGUAGES, VARIANTS, render, render_variant

SAMPLES = {
    "pause_time": "3:00:00",
    "exercise_num": 15,
    "streak_days": 4,
    "active_days": 5,
    "total_attempts": 42,
    "accuracy": 87,
    "grammar_topics": "verb tense: past",
    "vocabulary_topics": "food",
    "error_topics": "noun gender",
    "prev_total_attempts": 30,
    "prev_accuracy": 80,
    "topic": "prepositions",
    "level": "B1",
    "freezes_used": 1,
    "freezes": 2,
}
LOCALE = Path(__file__).resolve().parents[2] / "locale"
PLACEHOLDER = re.compile(r"{(\w+)}")


def placeholders(text):
    return set(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_message_is_translated_with_the_same_placeholders(language):
    for key, source in MESSAGES.items():
        with_source = str(source)  # English, outside any override
        raw = render(key, language)  # no placeholders given: the raw template
        assert raw, key
        assert placeholders(raw) == placeholders(with_source), (language, key)
        if language != "en" and key != "weekly_report_detailed_button":
            assert raw != with_source, f"{key} is not translated to {language}"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_messages_fit_telegram_limits_and_are_valid_html(language):
    for key in MESSAGES:
        text = render(key, language, **{k: SAMPLES[k] for k in placeholders(render(key, "en"))})
        assert "{" not in text, (language, key)
        assert not set("<>&") & set(text), (language, key)
        assert len(text) <= 4096
    assert len(render("payment_title", language)) <= 32
    assert len(render("payment_description_unlock", language)) <= 255
    assert len(render("payment_description_donation", language)) <= 255


@pytest.mark.parametrize(
    ("language", "expected_language"),
    [("ru", "ru"), ("RU", "ru"), ("pt-BR", "en"), ("sr-Latn", "sr"), (None, "en"), ("", "en")],
)
def test_language_is_resolved_with_english_fallback(language, expected_language):
    assert render("limit_reached", language, pause_time="1:00:00") == render(
        "limit_reached", expected_language, pause_time="1:00:00"
    )


def test_rendering_fills_placeholders():
    assert render("limit_reached", "en", pause_time="3:00:00") == (
        "You have finished this session. The next exercise will be ready in 3:00:00."
    )
    assert "3:00:00" in render("limit_reached", "bg", pause_time="3:00:00")


def test_serbian_texts_use_latin_script():
    for key in MESSAGES:
        assert not re.search("[\u0400-\u04ff]", render(key, "sr")), key


def test_variants_are_picked_among_their_keys():
    seen = {render_variant("praise_and_next_set", "en") for _ in range(60)}
    assert seen == {render(key, "en") for key in VARIANTS["praise_and_next_set"]}


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is not installed")
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_committed_catalogs_are_compiled_from_the_sources(tmp_path, language):
    catalog = LOCALE / language / "LC_MESSAGES"
    compiled = tmp_path / "django.mo"

    subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(catalog / "django.po")], check=True
    )

    assert compiled.read_bytes() == (catalog / "django.mo").read_bytes()
