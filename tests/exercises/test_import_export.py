"""import_exercises / export_exercises: validation, idempotency, updates and the round trip."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from duoniche.languages import languages
from exercises.models import Exercise, ExerciseAnswer

pytestmark = pytest.mark.django_db

STARTER_BANK = Path(__file__).resolve().parents[2] / "exercises" / "fixtures" / "starter_bank.json"

FILL = {
    "exercise_type": "fill_in_the_blank",
    "exercise_language": "Bulgarian",
    "language_level": "A2",
    "topic": "restaurant",
    "data": {
        "text_with_blanks": "Искам да ___ едно кафе, моля.",
        "words": ["поръчах", "поръчвах", "поръчам", "поръчано"],
    },
    "correct_answer": {"words": ["поръчам"]},
    "grammar_tags": {"grammar": ["verb aspect: perfective"], "vocabulary": ["restaurant & cafe"]},
    "status": "published",
    "persona": "Polite Waiter",
}
CHOOSE = {
    "exercise_type": "choose_sentence",
    "exercise_language": "Bulgarian",
    "language_level": "A2",
    "topic": "entertainment",
    "data": {"options": ["Вчера отиваме на кино.", "Вчера отидохме на кино."]},
    "correct_answer": {"answer": "Вчера отидохме на кино."},
}
ACCENT = {
    "exercise_type": "choose_accent",
    "exercise_language": "Bulgarian",
    "language_level": "A1",
    "topic": "general",
    "data": {"options": ["во\u0300да", "вода\u0300"], "meaning": "Значение: течност."},
    "correct_answer": {"answer": "вода\u0300"},
    "grammar_tags": {"grammar": ["accent"], "vocabulary": ["drinks"]},
}
STORY = {
    "exercise_type": "story_comprehension",
    "exercise_language": "Serbian",
    "language_level": "A2",
    "topic": "shopping",
    "data": {
        "content_text": "Marko je kupio hleb.",
        "audio_url": "",
        "audio_telegram_file_id": "",
        "options": ["Marko je kupio hleb.", "Marko nije ništa kupio."],
    },
    "correct_answer": {"answer": "Marko je kupio hleb."},
    "status": "audio_generation_error",
}


def run_import(tmp_path, items, *args):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("import_exercises", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing_import(tmp_path, items, *args):
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_exercises", str(path), *args, stdout=out, stderr=err)
    return failure.value.returncode, out.getvalue(), err.getvalue()


def test_valid_items_are_stored_normalised_with_their_reference_answer(tmp_path):
    out, _ = run_import(tmp_path, [FILL, CHOOSE, ACCENT, STORY])

    assert out.strip() == "created=4 updated=0 unchanged=0 invalid=0 warnings=0"
    fill = Exercise.objects.get(exercise_type="fill_in_the_blank")
    # The correct word comes first, then the distractors in file order.
    assert fill.data["words"] == ["поръчам", "поръчах", "поръчвах", "поръчано"]
    assert fill.source == "imported"
    assert fill.persona == "Polite Waiter"
    reference = fill.verdicts.get()
    assert (reference.answer_text, reference.created_by, reference.is_reference) == (
        "поръчам",
        "import",
        True,
    )
    accent = Exercise.objects.get(exercise_type="choose_accent")
    assert accent.data["options"][0] == "вода\u0300"
    assert accent.verdicts.get().feedback == "Значение: течност."
    choose = Exercise.objects.get(exercise_type="choose_sentence")
    assert choose.data["options"][0] == "Вчера отидохме на кино."
    assert choose.grammar_tags == {"grammar": [], "vocabulary": []}
    assert Exercise.objects.get(exercise_type="story_comprehension").status == (
        "audio_generation_error"
    )


def test_reimport_creates_nothing(tmp_path):
    run_import(tmp_path, [FILL, CHOOSE])
    reordered = {**CHOOSE, "data": {"options": list(reversed(CHOOSE["data"]["options"]))}}
    spaced = {
        **FILL,
        "language_level": "B1",
        "data": {**FILL["data"], "text_with_blanks": " Искам  да ____ едно кафе, моля. "},
    }

    out, _ = run_import(tmp_path, [spaced, reordered])

    assert out.strip() == "created=0 updated=0 unchanged=2 invalid=0 warnings=0"
    assert Exercise.objects.count() == 2
    assert Exercise.objects.get(exercise_type="fill_in_the_blank").language_level == "A2"


def test_update_changes_only_mutable_fields(tmp_path):
    run_import(tmp_path, [FILL, ACCENT])
    before = Exercise.objects.get(exercise_type="fill_in_the_blank")
    changed_fill = {**FILL, "language_level": "B1", "status": "archived", "persona": None}
    changed_accent = {**ACCENT, "data": {**ACCENT["data"], "meaning": "Ново значение."}}

    out, _ = run_import(tmp_path, [changed_fill, changed_accent, CHOOSE], "--update")

    assert out.strip() == "created=1 updated=2 unchanged=0 invalid=0 warnings=0"
    after = Exercise.objects.get(pk=before.pk)
    assert (after.language_level, after.status, after.persona) == ("B1", "archived", None)
    assert after.status_changed_at > before.status_changed_at
    assert after.content_hash == before.content_hash
    accent = Exercise.objects.get(exercise_type="choose_accent")
    assert accent.data["meaning"] == "Ново значение."
    assert accent.verdicts.get(is_reference=True).feedback == "Ново значение."


def test_invalid_file_reports_every_error_and_imports_nothing(tmp_path):
    wrong_answer = {**CHOOSE, "correct_answer": {"answer": "Вчера отиде на кино."}}
    serbian_accent = {**ACCENT, "exercise_language": "Serbian"}
    unknown_tag = {**FILL, "grammar_tags": {"grammar": [], "vocabulary": ["coffee"]}}

    code, out, err = run_failing_import(
        tmp_path, [unknown_tag, wrong_answer, STORY, serbian_accent]
    )

    assert code == 1
    assert err.splitlines() == [
        'item[1] correct_answer.answer: "Вчера отиде на кино." is not one of data.options',
        "item[3] exercise_type: choose_accent is not available for Serbian",
        "item[3] data.options[0]: Serbian text must use Latin letters",
        "item[3] data.options[1]: Serbian text must use Latin letters",
        'warning: item[0] grammar_tags.vocabulary[0]: "coffee" is not a known vocabulary tag',
    ]
    assert out.strip() == "created=0 updated=0 unchanged=0 invalid=2 warnings=1"
    assert Exercise.objects.count() == 0
    assert ExerciseAnswer.objects.count() == 0


def test_skip_invalid_imports_the_valid_items(tmp_path):
    broken = {**FILL, "topic": "Food"}

    out, err = run_import(tmp_path, [broken, CHOOSE], "--skip-invalid")

    assert out.strip() == "created=1 updated=0 unchanged=0 invalid=1 warnings=0"
    assert "item[0] topic:" in err
    assert list(Exercise.objects.values_list("exercise_type", flat=True)) == ["choose_sentence"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({**FILL, "extra": 1}, "item[0] extra: unknown key"),
        ({k: v for k, v in FILL.items() if k != "data"}, "item[0] data: is required"),
        ({**FILL, "data": {**FILL["data"], "hint": "x"}}, "item[0] data.hint: unknown key"),
        (
            {**FILL, "data": {**FILL["data"], "text_with_blanks": "Без празно място."}},
            "item[0] data.text_with_blanks: must have 1 or 2 blanks (___), not 0",
        ),
        (
            {**FILL, "data": {**FILL["data"], "words": ["поръчам", "две думи"]}},
            'item[0] data.words[1]: "две думи" must be a single word',
        ),
        (
            {**FILL, "data": {**FILL["data"], "words": ["поръчам"]}},
            "item[0] data.words: must have 2 to 20 items, not 1",
        ),
        (
            {**FILL, "correct_answer": {"words": ["поръчам", "поръчах"]}},
            "item[0] correct_answer.words: must have one word per blank (1), not 2",
        ),
        ({**FILL, "status": "processing_error_retry"}, "item[0] status:"),
        ({**FILL, "persona": "Nobody"}, 'item[0] persona: "Nobody" is not a known persona'),
        (
            {**CHOOSE, "data": {"options": ["Едно.", "Едно."]}},
            'item[0] data.options[1]: "Едно." is repeated',
        ),
        (
            {**ACCENT, "data": {**ACCENT["data"], "options": ["вода\u0300", "ри\u0300ба"]}},
            "item[0] data.options: must all be the same word once the stress is removed",
        ),
        (
            {**STORY, "status": "published"},
            "item[0] data.audio_url: a published story needs audio",
        ),
        (
            {**CHOOSE, "data": {"options": ["Вчера отидохме на кино.", "Yesterday we went."]}},
            "item[0] data.options[1]: Bulgarian text must use Cyrillic letters",
        ),
    ],
)
def test_item_rules(tmp_path, item, message):
    code, _, err = run_failing_import(tmp_path, [item])

    assert code == 1
    assert any(line.startswith(message) for line in err.splitlines()), err


def test_duplicate_content_in_one_file_is_an_error(tmp_path):
    code, _, err = run_failing_import(tmp_path, [CHOOSE, FILL, CHOOSE])

    assert code == 1
    assert "item[2] : duplicate of item[0]" not in err
    assert "item[2]: duplicate of item[0]" in err


@pytest.mark.parametrize("content", ["not json", '{"an": "object"}', b"\xff\xfe"])
def test_unreadable_file_exits_2(tmp_path, content):
    path = tmp_path / "bank.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    with pytest.raises(CommandError) as failure:
        call_command("import_exercises", str(path), stdout=StringIO(), stderr=StringIO())
    assert failure.value.returncode == 2


def test_dry_run_writes_nothing(tmp_path):
    out, _ = run_import(tmp_path, [FILL, CHOOSE], "--dry-run")

    assert out.startswith("created=2 updated=0 unchanged=0 invalid=0 warnings=0")
    assert Exercise.objects.count() == 0


def export(*args):
    out = StringIO()
    call_command("export_exercises", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_export_then_import_round_trips(tmp_path):
    run_import(tmp_path, [FILL, CHOOSE, ACCENT, STORY])
    exported = export()
    hashes = set(Exercise.objects.values_list("content_hash", flat=True))

    Exercise.objects.all().delete()
    out, _ = run_import(tmp_path, exported)

    assert out.strip() == "created=4 updated=0 unchanged=0 invalid=0 warnings=0"
    assert set(Exercise.objects.values_list("content_hash", flat=True)) == hashes
    assert export() == exported
    assert list(exported[0]) == [
        "exercise_type",
        "exercise_language",
        "language_level",
        "topic",
        "data",
        "correct_answer",
        "grammar_tags",
        "status",
        "persona",
    ]


def test_two_exports_are_the_same_bytes_with_sorted_inner_keys(tmp_path):
    run_import(tmp_path, [FILL, CHOOSE, ACCENT, STORY])

    call_command("export_exercises", str(tmp_path / "one.json"), stderr=StringIO())
    call_command("export_exercises", str(tmp_path / "two.json"), stderr=StringIO())
    first = (tmp_path / "one.json").read_bytes()

    assert first == (tmp_path / "two.json").read_bytes()
    assert first.endswith(b"]\n")
    for item in json.loads(first):
        for part in ("data", "correct_answer", "grammar_tags"):
            assert list(item[part]) == sorted(item[part]), (item["exercise_type"], part)


def test_export_filters(tmp_path):
    run_import(tmp_path, [FILL, CHOOSE, ACCENT, STORY])

    assert [i["exercise_type"] for i in export("--language", "Serbian")] == ["story_comprehension"]
    assert len(export("--type", "choose_sentence", "--type", "choose_accent")) == 2
    assert len(export("--status", "published", "--language", "Bulgarian", "--level", "A1")) == 1
    with pytest.raises(CommandError) as failure:
        export("--language", "Klingon")
    assert failure.value.returncode == 2


def test_starter_bank_is_valid_complete_and_idempotent():
    out = StringIO()
    call_command("import_exercises", str(STARTER_BANK), stdout=out, stderr=StringIO())
    first = out.getvalue().strip()
    out = StringIO()
    call_command("import_exercises", str(STARTER_BANK), stdout=out, stderr=StringIO())

    total = Exercise.objects.count()
    assert first == f"created={total} updated=0 unchanged=0 invalid=0 warnings=0"
    assert out.getvalue().strip() == f"created=0 updated=0 unchanged={total} invalid=0 warnings=0"
    published = Exercise.objects.filter(status="published")
    assert published.filter(exercise_language="Bulgarian").count() >= 40
    assert published.filter(exercise_language="Serbian").count() >= 30
    for language in languages().values():
        for exercise_type in language.generated_types:
            if exercise_type == "story_comprehension":
                continue
            of_type = published.filter(
                exercise_language=language.bot_id, exercise_type=exercise_type
            )
            assert of_type.count() >= 5, (language.bot_id, exercise_type)
            assert set(of_type.values_list("language_level", flat=True)) >= {"A1", "A2", "B1"}
    assert len(set(published.values_list("topic", flat=True))) >= 8
    assert ExerciseAnswer.objects.filter(is_reference=True).count() == total
