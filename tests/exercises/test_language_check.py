"""The language check against Debian's Hunspell dictionaries (docs/language-check.md): each kind of
finding in Bulgarian and in both Serbian scripts, where it runs (generation, import, lint_bank, the
moderator's page), and how it reports itself when a dictionary is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from duoniche import dictionaries
from duoniche.languages import LanguageConfigError, load_languages
from exercises.generation import exercise_generate
from exercises.language_check import check_exercise, issue_codes, lint_exercise
from exercises.models import Exercise
from tests.exercises.factories import ExerciseFactory

pytest_plugins = ["tests.fakes.telegram_server", "tests.fakes.tts_server"]


def checked(text: str, bot_id: str = "Bulgarian") -> bool:
    """Whether the check ran on `text` (False: it is disabled for the language)."""
    return (
        check_exercise(
            exercise_type="choose_sentence", exercise_language=bot_id, data={"options": [text]}
        )
        is not None
    )


def findings(text: str, bot_id: str = "Bulgarian", script: str = "") -> list[tuple[str, str, str]]:
    found = check_exercise(
        exercise_type="choose_sentence",
        exercise_language=bot_id,
        data={"options": [text]},
        script=script,
    )
    assert found is not None, "the dictionaries are installed on every test machine"
    return [(f.kind, f.word, f.origin) for f in found]


# --- the kinds of finding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # letter-level typos: swapped, dropped and added letters
        ("Прозроецът е отворен.", [("unknown_word", "Прозроецът", "")]),
        ("Тя чте книга.", [("unknown_word", "чте", "")]),
        ("Аз пиия кафе.", [("unknown_word", "пиия", "")]),
        # Russian words in Bulgarian
        ("Аз съм хорошо днес.", [("foreign_word", "хорошо", "ru")]),
        (
            "Спасибо за помощь.",
            [("foreign_word", "Спасибо", "ru"), ("foreign_word", "помощь", "ru")],
        ),
        # Latin inside Cyrillic Bulgarian, and one word of both scripts (Latin "a")
        ("Тя говори english.", [("wrong_script", "english", "")]),
        ("Аз пиa кафе.", [("mixed_script", "пиa", "")]),
    ],
)
def test_bulgarian_findings(text, expected):
    assert findings(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Аз ___ кафе всяка сутрин в 8 часа.",  # the blank and numbers
        "Вчера Иван и Мария отидоха в Пловдив.",  # names inside a sentence
        "Вчера видях Кольовци на площада.",  # an unknown capitalised word inside a sentence
        "Купих си телефон от ЕС.",  # an abbreviation
        "Тя е по-висока от брат си.",  # a hyphenated comparative
        "жена̀",  # a stress mark (choose_accent)
    ],
)
def test_bulgarian_text_that_is_allowed(text):
    assert findings(text) == []


def test_an_unknown_word_that_starts_a_sentence_is_not_taken_for_a_name():
    assert findings("Кольовци дойдоха. Кольовци си тръгнаха.") == [
        ("unknown_word", "Кольовци", ""),
        ("unknown_word", "Кольовци", ""),
    ]


@pytest.mark.parametrize(
    ("text", "script", "expected"),
    [
        ("Volim mleok i hleb.", "latin", [("unknown_word", "mleok", "")]),
        ("Volim mlijeko.", "latin", [("foreign_word", "mlijeko", "ijekavian")]),
        ("Gdje si bio juče?", "latin", [("foreign_word", "Gdje", "ijekavian")]),
        ("Kupio sam kruh.", "latin", [("foreign_word", "kruh", "hr")]),
        ("Tko je to?", "latin", [("foreign_word", "Tko", "hr")]),
        ("Ovo je lepo мesto.", "latin", [("mixed_script", "мesto", "")]),
        ("Ovo je лепо mesto.", "latin", [("wrong_script", "лепо", "")]),
        ("Волим млеок.", "cyrillic", [("unknown_word", "млеок", "")]),
        ("Волим млијеко.", "cyrillic", [("foreign_word", "млијеко", "ijekavian")]),
        ("Купио сам крух.", "cyrillic", [("foreign_word", "крух", "hr")]),
        ("Ово је lepo место.", "cyrillic", [("wrong_script", "lepo", "")]),
        ("Ово је лепо мeсто.", "cyrillic", [("mixed_script", "мeсто", "")]),
    ],
)
def test_serbian_findings_in_both_scripts(text, script, expected):
    assert findings(text, "Serbian", script) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Nije on kriv, rekao je Marko.",  # nije/je are not ijekavian reflexes
        "Bolje je da zemlje i polja ostanu kako jesu.",
        "Sutra idem u Beograd sa Anom.",
        "Želim da vidim reku i lepo mesto.",
        "Где си био јуче?",
    ],
)
def test_ekavian_serbian_is_not_flagged(text):
    script = "cyrillic" if text.startswith("Где") else "latin"
    assert findings(text, "Serbian", script) == []


def test_every_text_of_an_exercise_is_checked_and_located():
    found = check_exercise(
        exercise_type="story_comprehension",
        exercise_language="Bulgarian",
        data={"content_text": "Мария живее в Софья.", "options": ["Тя живее в София.", "хорошо"]},
    )

    assert [(f.field, f.word, f.start, f.end) for f in found or []] == [
        ("content_text", "Софья", 14, 19),
        ("options[1]", "хорошо", 0, 6),
    ]
    fill = check_exercise(
        exercise_type="fill_in_the_blank",
        exercise_language="Bulgarian",
        data={"text_with_blanks": "Аз ___ кафе.", "words": ["пия", "пиъ"]},
    )
    assert [(f.field, f.word) for f in fill or []] == [("words[1]", "пиъ")]


def test_issue_codes_name_each_kind_once_with_its_words():
    found = check_exercise(
        exercise_type="choose_sentence",
        exercise_language="Bulgarian",
        data={"options": ["Сегодня хорошо.", "Хорошо днес.", "Тя пиa кафе."]},
    )

    assert issue_codes(found or []) == [
        "foreign_word:Сегодня, хорошо, Хорошо",
        "mixed_script:пиa",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Аз\x00пия кафе.",  # NUL
        "Аз пи\ud800я кафе.",  # a lone surrogate inside a word
        "\u0300\u0300 ___ \U0001f600",  # lone marks, an emoji
        "а" * 20_000,  # one enormous word
        "Аз пия. " * 5_000,  # a long text
    ],
)
def test_hostile_text_never_raises(text):
    found = check_exercise(
        exercise_type="choose_sentence", exercise_language="Bulgarian", data={"options": [text]}
    )

    assert isinstance(found, list)


def test_a_serbian_word_the_transliteration_gets_wrong_is_found_as_cyrillic_readers_see_it():
    # "injekcija" is right in Latin; the library renders its n+j as one letter (ињекција).
    found = lint_exercise(
        exercise_type="choose_sentence",
        exercise_language="Serbian",
        data={"options": ["Dobio sam injekciju."]},
    )

    assert [(f.kind, f.word, f.shown_in) for f in found or []] == [
        ("unknown_word", "ињекцију", "cyrillic")
    ]


# --- disabled, never broken ---------------------------------------------------------------------


def test_a_missing_dictionary_disables_the_check_and_says_so(settings, tmp_path, client):
    settings.HUNSPELL_DIRS = [str(tmp_path)]

    assert not checked("хорошо", "Bulgarian")
    assert dictionaries.status(list(load_languages(settings.LANGUAGES_FILE).values())) == {
        "Bulgarian": "disabled (bg_BG.dic, ru_RU.dic)",
        "Serbian": "disabled (sr_Latn_RS.dic, sr_RS.dic, hr_HR.dic, bs_BA.dic)",
    }
    assert dictionaries.feature() == "disabled"
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert out.getvalue().count("duoniche.W009") == 2


@pytest.mark.django_db
def test_healthz_reports_a_partly_installed_check(settings, tmp_path, client):
    for name in ("bg_BG", "ru_RU"):
        for ext in ("dic", "aff"):
            (tmp_path / f"{name}.{ext}").write_bytes(
                Path(f"/usr/share/hunspell/{name}.{ext}").read_bytes()
            )
    settings.HUNSPELL_DIRS = [str(tmp_path)]

    assert client.get("/healthz").json()["features"]["language_check"] == "partial"
    assert findings("хорошо") == [("foreign_word", "хорошо", "ru")]
    assert (
        check_exercise(
            exercise_type="choose_sentence", exercise_language="Serbian", data={"options": ["kruh"]}
        )
        is None
    )


def test_turned_off_it_checks_nothing(settings):
    settings.LANGUAGE_CHECK = False

    assert not checked("хорошо", "Bulgarian")
    assert dictionaries.feature() == "disabled"


def test_the_languages_file_rejects_malformed_dictionary_keys(tmp_path):
    text = (Path(__file__).parents[2] / "duoniche" / "languages.yml").read_text(encoding="utf-8")
    path = tmp_path / "languages.yml"
    path.write_text(
        text.replace("dictionaries: {cyrillic: bg_BG}", "dictionaries: {greek: ../bg_BG}").replace(
            "ekavian: true", "ekavian: often"
        ),
        encoding="utf-8",
    )

    with pytest.raises(LanguageConfigError) as raised:
        load_languages(path)

    assert raised.value.problems == [
        "Bulgarian.dictionaries must map names to dictionary names",
        "Serbian.ekavian must be true or false",
    ]


# --- where it runs ------------------------------------------------------------------------------

FILL_RU = {
    "text_with_blanks": "Я ___ кафе сегодня.",
    "correct_words": ["пия"],
    "incorrect_options": ["пие", "пием"],
    "grammar_tags": {"grammar": ["verb conjugation"], "vocabulary": ["drinks"]},
}
CHOOSE_HR = {
    "correct_sentence": "Želim jednu kavu i kruh.",
    "incorrect_sentences": ["Želim jedna kavu i kruh.", "Želim jednu kava i kruh."],
    "grammar_tags": {"grammar": ["noun case: accusative"], "vocabulary": ["drinks"]},
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bot_id", "exercise_type", "draft", "reason"),
    [
        ("Bulgarian", "fill_in_the_blank", FILL_RU, "foreign_word:сегодня"),
        ("Serbian", "choose_sentence", CHOOSE_HR, "foreign_word:kavu, kruh, kava"),
    ],
)
def test_the_assessor_rejects_before_any_llm_call(
    openai_server, settings, bot_id, exercise_type, draft, reason
):
    settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC = 0.0
    openai_server.script(draft)

    result = exercise_generate(
        bot_id=bot_id, exercise_type=exercise_type, level="A2", now=timezone.now()
    )

    assert (result.outcome, result.reason) == ("rejected", reason)
    assert len(openai_server.requests) == 1  # the generation; no assessment was asked for
    exercise = Exercise.objects.get(pk=result.exercise_id)
    assert exercise.comments.endswith(f"quality_assessor: {reason}")
    assert exercise.reviews.get().analysis == {
        "stage": "deterministic",
        "is_valid": False,
        "issues": [reason],
    }


def bank_item(text: str) -> dict:
    return {
        "exercise_type": "choose_sentence",
        "exercise_language": "Bulgarian",
        "language_level": "A1",
        "topic": "general",
        "data": {"options": [text, "Аз е от България.", "Аз са от България."]},
        "correct_answer": {"answer": text},
    }


@pytest.mark.django_db
def test_import_warns_per_flagged_item_and_strict_refuses(tmp_path):
    path = tmp_path / "bank.json"
    items = [bank_item("Аз съм от България."), bank_item("Я съм от Болгария.")]
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as refused:
        call_command("import_exercises", str(path), "--strict", stdout=out, stderr=err)

    assert refused.value.returncode == 1
    assert Exercise.objects.count() == 0
    assert err.getvalue().splitlines() == [
        'item[1] language: foreign_word "Болгария" (ru, data.options[0])'
    ]

    out, err = StringIO(), StringIO()
    call_command("import_exercises", str(path), stdout=out, stderr=err)

    assert out.getvalue().strip() == "created=2 updated=0 unchanged=0 invalid=0 warnings=1"
    assert err.getvalue().splitlines() == [
        'warning: item[1] language: foreign_word "Болгария" (ru, data.options[0])'
    ]


@pytest.mark.django_db
def test_lint_bank_reports_per_language_with_an_exit_code():
    clean = ExerciseFactory()
    flagged = ExerciseFactory(
        exercise_language="Serbian",
        exercise_type="choose_sentence",
        data={"options": ["Pijem kavu.", "Pijem kafa.", "Dobio sam injekciju."]},
    )
    ExerciseFactory(data={"text_with_blanks": "Чорновик ___.", "words": ["а"]}, status="draft")
    out = StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("lint_bank", stdout=out)

    assert failed.value.returncode == 1
    assert out.getvalue().splitlines() == [
        "Bulgarian: 1 exercises checked, 0 flagged",
        "Serbian: 1 exercises checked, 1 flagged (unknown_word 1, foreign_word 1)",
        f'  #{flagged.pk} choose_sentence options[0]: foreign_word "kavu" (hr)',
        f'  #{flagged.pk} choose_sentence options[2]: unknown_word "ињекцију" (cyrillic)',
    ]
    out = StringIO()
    call_command("lint_bank", "--language", "Bulgarian", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report[0] | {"findings": []} == {
        "language": "Bulgarian",
        "disabled": "",
        "checked": 1,
        "flagged_exercises": 0,
        "kinds": {},
        "findings": [],
    }
    assert clean.pk
    with pytest.raises(CommandError) as drafts:
        call_command("lint_bank", "--language", "Bulgarian", "--status", "draft", stdout=StringIO())
    assert drafts.value.returncode == 1


@pytest.mark.django_db
def test_lint_bank_exits_2_when_it_cannot_check(settings, tmp_path):
    settings.HUNSPELL_DIRS = [str(tmp_path)]
    ExerciseFactory()
    out = StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("lint_bank", "--language", "Bulgarian", stdout=out)

    assert failed.value.returncode == 2
    assert out.getvalue().strip() == "Bulgarian: not checked (bg_BG.dic, ru_RU.dic)"


@pytest.mark.django_db
def test_the_moderators_page_marks_the_offending_words(admin_client):
    exercise = ExerciseFactory(
        exercise_type="choose_sentence",
        data={"options": ["Аз съм <b>хорошо</b>.", "Аз е добре.", "Тя пиa кафе."]},
    )
    clean = ExerciseFactory()

    page = admin_client.get(reverse("admin:exercises_exercise_change", args=[exercise.pk]))
    clean_page = admin_client.get(reverse("admin:exercises_exercise_change", args=[clean.pk]))

    html = page.content.decode()
    assert (
        '&gt;<mark class="language-foreign_word" '
        'title="another language&#x27;s word (ru)">хорошо</mark>&lt;/' in html
    )
    assert '<mark class="language-mixed_script"' in html
    assert "<b>хорошо</b>" not in html  # the stored text stays escaped
    assert "Every word is in the dictionary of its language." in clean_page.content.decode()


def test_without_the_binding_the_check_is_disabled_and_the_rest_starts():
    # A process in which `import hunspell` fails, as on a machine where it never built.
    script = (
        "import sys; sys.modules['hunspell'] = None\n"
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from duoniche import dictionaries\n"
        "from exercises.language_check import check_exercise\n"
        "print(dictionaries.feature())\n"
        "print(check_exercise(exercise_type='choose_sentence', exercise_language='Bulgarian',"
        " data={'options': ['хорошо']}))\n"
        "call_command('check')\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/unused",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["disabled", "None"]
    assert "The language check of Bulgarian is disabled (the hunspell Python binding)" in (
        result.stderr
    )


def test_threads_checking_at_once_get_the_answers_one_thread_gets():
    # The generation runs several drafts in one worker's threads; the dictionaries are shared.
    from concurrent.futures import ThreadPoolExecutor

    words = ["кафе", "чай", "вода", "мляко", "сок", "хляб", "сирене", "домати"]
    texts = [f"Аз пия {w} {n} пъти. Хорошо, сегодня." for n in range(50) for w in words]
    texts += [f"Volim mlijeko i kruh, {w}." for w in ["mleok", "hleb", "sir", "voda", "kafa"]]

    def run(text: str) -> list[tuple[str, str, str]]:
        return findings(text, "Serbian" if text.startswith("Volim") else "Bulgarian")

    serial = [run(text) for text in texts]
    dictionaries._spell_cached.cache_clear()  # so that the threads ask libhunspell itself
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(run, texts))

    assert parallel == serial
    assert serial[0] == [("foreign_word", "Хорошо", "ru"), ("foreign_word", "сегодня", "ru")]
    assert serial[-5][-1] == ("unknown_word", "mleok", "")


def test_threads_asking_for_a_dictionary_at_once_load_it_once(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(dictionaries, "_LOADED", {})  # as in a fresh worker process

    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = list(pool.map(lambda _: dictionaries.speller("bg_BG"), range(8)))

    assert loaded[0] is not None
    assert all(one is loaded[0] for one in loaded)


@pytest.mark.django_db
def test_the_moderators_page_says_when_the_check_cannot_run(admin_client, settings, tmp_path):
    settings.HUNSPELL_DIRS = [str(tmp_path)]
    exercise = ExerciseFactory()

    page = admin_client.get(reverse("admin:exercises_exercise_change", args=[exercise.pk]))

    assert "Not checked: bg_BG.dic, ru_RU.dic." in page.content.decode()
