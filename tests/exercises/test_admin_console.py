"""The moderation console as a console: an edit form with one field per part, only the decisions
that apply, the next exercise of the queue after a decision, and judgements in words."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from duoniche.enums import ExerciseStatus, ExerciseType
from exercises.admin.verdicts import VerdictForm
from exercises.models import Exercise
from exercises.moderation import exercise_staff_publish
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory
from tests.learning.factories import ExerciseAttemptFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:exercises_exercise_changelist"
_numbers = itertools.count(1)


def change_url(exercise: Exercise, filters: str = "") -> str:
    url = reverse("admin:exercises_exercise_change", args=[exercise.pk])
    return f"{url}?{urlencode({'_changelist_filters': filters})}" if filters else url


def moderate_url(exercise: Exercise, filters: str = "") -> str:
    url = reverse("admin:exercises_exercise_moderate", args=[exercise.pk])
    return f"{url}?{urlencode({'_changelist_filters': filters})}" if filters else url


def texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def fill(**kwargs: Any) -> Exercise:
    """Words ['едно', 'една', 'едни'], the first correct; a new sentence each call."""
    kwargs.setdefault(
        "data",
        {
            "text_with_blanks": f"Искам ___ кафе {next(_numbers)}.",
            "words": ["едно", "една", "едни"],
        },
    )
    return ExerciseFactory(**kwargs)


def choose_sentence(**kwargs: Any) -> Exercise:
    n = next(_numbers)
    return ExerciseFactory(
        exercise_type=ExerciseType.CHOOSE_SENTENCE,
        data={"options": [f"Вчера отидохме на кино {n}.", f"Вчера отиваме на кино {n}."]},
        **kwargs,
    )


def story(**kwargs: Any) -> Exercise:
    return ExerciseFactory(
        exercise_type=ExerciseType.STORY_COMPREHENSION,
        data={
            "content_text": f"Марко отиде на пазара и купи ябълки. Беше {next(_numbers)} часа.",
            "audio_url": "https://cdn.example.org/stories/abc.ogg",
            "audio_telegram_file_id": "telegram-file-1",
            "options": ["Марко купи ябълки.", "Марко купи круши.", "Марко не излезе."],
        },
        **kwargs,
    )


def accent(**kwargs: Any) -> Exercise:
    return ExerciseFactory(
        exercise_type=ExerciseType.CHOOSE_ACCENT,
        data={"options": ["вода̀", "во̀да"], "meaning": "<b>вода</b> – течност без цвят"},
        grammar_tags={"grammar": ["accent"], "vocabulary": []},
        **kwargs,
    )


def queue(*statuses: str) -> list[Exercise]:
    """Fill exercises in the given statuses, listed in this order (newest status change first)."""
    now = timezone.now()
    made = [fill(status=status) for status in statuses]
    for age, exercise in enumerate(made):
        Exercise.objects.filter(pk=exercise.pk).update(
            status_changed_at=now - timedelta(hours=age + 1)
        )
    return made


@pytest.fixture
def moderator(django_user_model):
    user = django_user_model.objects.create_user("mod_boris", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="moderator"))
    return user


@pytest.fixture
def moderator_client(client, moderator):
    client.force_login(moderator)
    return client


@pytest.fixture
def llm_on(settings) -> None:
    settings.OPENAI_API_KEY = "test"
    settings.OPENAI_MAIN_MODEL_NAME = "fake-model"


@pytest.fixture
def llm_off(settings) -> None:
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""


def the_form(client: Any, exercise: Exercise) -> Any:
    return client.get(change_url(exercise)).context["adminform"].form


def fill_post(**fields: Any) -> dict[str, Any]:
    return {"language_level": "A2", "topic": "food", "grammar": "", "vocabulary": "", **fields}


# --- one field per part -------------------------------------------------------------------------

PARTS = {
    ExerciseType.FILL_IN_THE_BLANK: {"sentence", "blank_1", "blank_2"},
    ExerciseType.CHOOSE_SENTENCE: {"correct"},
    ExerciseType.CHOOSE_ACCENT: {"correct", "meaning"},
    ExerciseType.STORY_COMPREHENSION: {"correct", "story"},
}
EVERY_PART = set().union(*PARTS.values())


@pytest.mark.parametrize("make", [fill, choose_sentence, accent, story])
def test_each_type_is_edited_with_its_own_fields_and_no_json(moderator_client, make):
    exercise = make(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    page = moderator_client.get(change_url(exercise))

    form = page.context["adminform"].form
    shown = {field for fieldset in page.context["adminform"] for line in fieldset for field in line}
    names = {field.field.name for field in shown if not field.is_readonly}
    own = PARTS[exercise.exercise_type]
    assert own <= names
    assert not (EVERY_PART - own) & names  # the parts of other types are not shown
    assert not {"data", "correct_answer", "grammar_tags"} & set(form.fields)
    choices = exercise.data["words" if make is fill else "options"]
    prefix = "word" if make is fill else "option"
    assert [form[f"{prefix}_{n}"].value() for n in range(1, len(choices) + 1)] == choices
    assert {"language_level", "topic", "grammar", "vocabulary"} <= names


def test_a_fill_exercise_is_edited_word_by_word(moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    response = moderator_client.post(
        change_url(exercise),
        fill_post(
            sentence="Искам ___ чай и ___ кафе.",
            word_1="едно",
            word_2="една",
            word_3="",  # emptied: the word goes
            word_4="две",  # an extra field: a new word
            blank_1="2",
            blank_2="1",
            grammar="numerals: cardinal\nnoun gender",
            _continue="Save",
        ),
    )

    assert response.status_code == 302
    exercise.refresh_from_db()
    assert exercise.data == {
        "text_with_blanks": "Искам ___ чай и ___ кафе.",
        "words": ["една", "едно", "две"],  # the correct words first, as stored on import
    }
    assert exercise.verdicts.get(is_reference=True).answer == {"words": ["една", "едно"]}
    assert exercise.grammar_tags == {
        "grammar": ["numerals: cardinal", "noun gender"],
        "vocabulary": [],
    }
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert exercise.reviews.get().analysis["moderator"] == "mod_boris"


def test_choosing_another_correct_option_replaces_the_reference(moderator_client):
    exercise = choose_sentence(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    first, second = exercise.data["options"]

    moderator_client.post(
        change_url(exercise),
        fill_post(option_1=first, option_2=second, option_3="Вчера ще отидем.", correct="2"),
    )

    exercise.refresh_from_db()
    assert exercise.data["options"] == [second, first, "Вчера ще отидем."]
    assert exercise.verdicts.get(is_reference=True).answer_text == second


def test_an_accent_meaning_and_a_story_text_have_their_fields(moderator_client):
    stressed = accent(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    narrated = story(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    moderator_client.post(
        change_url(stressed),
        fill_post(
            option_1="вода̀", option_2="во̀да", correct="1", meaning="<i>течност</i>\r\nбез цвят"
        ),
    )
    moderator_client.post(
        change_url(narrated),
        fill_post(
            story="Марко купи круши.",
            option_1="Марко купи ябълки.",
            option_2="Марко купи круши.",
            correct="2",
        ),
    )

    stressed.refresh_from_db()
    narrated.refresh_from_db()
    assert stressed.data["meaning"] == "<i>течност</i>\nбез цвят"
    assert stressed.status == ExerciseStatus.PUBLISHED
    assert narrated.data["content_text"] == "Марко купи круши."
    assert narrated.data["options"] == ["Марко купи круши.", "Марко купи ябълки."]
    assert narrated.data["audio_url"] == ""  # a new text needs new audio
    assert narrated.status == ExerciseStatus.AUDIO_GENERATION_ERROR


@pytest.mark.parametrize(
    ("make", "fields", "field", "message"),
    [
        (
            fill,
            {"sentence": "Искам кафе.", "word_1": "едно", "word_2": "една", "blank_1": "1"},
            "sentence",
            "must have 1 or 2 blanks",
        ),
        (
            fill,
            {"sentence": "Искам ___.", "word_1": "едно", "word_2": "one", "blank_1": "1"},
            "word_2",
            "Cyrillic",
        ),
        (
            fill,
            {"sentence": "Искам ___.", "word_1": "едно", "word_2": "една", "blank_1": "4"},
            "blank_1",
            "is empty",
        ),
        (
            choose_sentence,
            {"option_1": "Вчера отидохме.", "option_2": "Вчера отидохме.", "correct": "1"},
            "option_2",
            "is repeated",
        ),
        (
            choose_sentence,
            {"option_1": "Вчера отидохме.", "option_2": "", "correct": "2"},
            "correct",
            "is empty",
        ),
        (
            accent,
            {"option_1": "вода", "option_2": "во̀да", "correct": "2", "meaning": ""},
            "option_1",
            "stress mark",
        ),
        (
            story,
            {"story": "", "option_1": "Да.", "option_2": "Не.", "correct": "1"},
            "story",
            "required",
        ),
    ],
)
def test_a_problem_shows_on_the_field_it_concerns_and_nothing_is_written(
    moderator_client, make, fields, field, message
):
    exercise = make(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    before = (exercise.data, exercise.content_hash, exercise.status)

    response = moderator_client.post(change_url(exercise), fill_post(**fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field]), errors
    exercise.refresh_from_db()
    assert (exercise.data, exercise.content_hash, exercise.status) == before
    assert not exercise.reviews.exists()


def test_a_duplicate_of_another_exercise_is_a_form_error(moderator_client):
    first = fill()
    second = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    words = first.data["words"]

    response = moderator_client.post(
        change_url(second),
        fill_post(
            sentence=first.data["text_with_blanks"],
            **{f"word_{n}": word for n, word in enumerate(words, start=1)},
            blank_1="1",
        ),
    )

    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [f"Exercise #{first.pk} already has this content (the same content hash)."]
    assert not second.reviews.exists()


def test_the_verdict_form_refuses_making_the_reference_wrong():
    reference = fill().verdicts.get(is_reference=True)

    form = VerdictForm(instance=reference, data={"is_correct": "", "feedback": ""})

    assert not form.is_valid()
    assert "edit the exercise instead" in form.errors["is_correct"][0]
    reference.refresh_from_db()
    assert reference.is_correct


def test_a_view_only_user_sees_no_edit_fields(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_exercise"))
    client.force_login(user)

    page = client.get(change_url(fill()))

    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="sentence"' not in body
    assert 'name="_save"' not in body


# --- the next exercise of the queue -------------------------------------------------------------


def test_a_decision_opens_the_next_exercise_of_the_queue_until_it_is_empty(moderator_client):
    first, second, third = queue(*[ExerciseStatus.PENDING_REVIEW] * 3)
    filters = "queue=review"

    to_second = moderator_client.post(moderate_url(first, filters), {"action": "publish"})
    to_third = moderator_client.post(moderate_url(second, filters), {"action": "archive"})
    to_queue = moderator_client.post(moderate_url(third, filters), {"action": "publish"})

    assert to_second.url == change_url(second, filters)
    assert to_third.url == change_url(third, filters)
    assert to_queue.url == reverse(CHANGELIST) + "?queue=review"
    assert "The queue is empty." in texts(to_queue)
    empty = moderator_client.get(to_queue.url)
    assert "The queue is empty." in empty.content.decode()
    assert [e.status for e in Exercise.objects.order_by("pk")] == [
        "published", "archived", "published"
    ]  # fmt: skip


def test_the_next_exercise_follows_the_filters_the_moderator_came_from(moderator_client):
    first, fill_between, last = queue(*[ExerciseStatus.PENDING_ADMIN_REVIEW] * 3)
    Exercise.objects.filter(pk=fill_between.pk).update(language_level="B2")
    filters = "language_level__exact=A2"

    response = moderator_client.post(moderate_url(first, filters), {"action": "publish"})

    assert response.url == change_url(last, filters)


def test_in_the_whole_bank_the_next_is_the_one_after_the_decided_exercise(moderator_client):
    """The decided exercise stays listed (and moves to the top): the next is the one after it."""
    _top, middle, bottom = queue(
        ExerciseStatus.PUBLISHED, ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PUBLISHED
    )

    response = moderator_client.post(moderate_url(middle, "queue=all"), {"action": "publish"})

    assert response.url == change_url(bottom, "queue=all")


def test_without_filters_the_next_is_taken_from_the_default_queue(moderator_client):
    published, waiting = queue(ExerciseStatus.PUBLISHED, ExerciseStatus.PENDING_REVIEW)

    response = moderator_client.post(moderate_url(published), {"action": "archive"})

    assert response.url == change_url(waiting)


def test_bad_filters_fall_back_to_the_default_queue(moderator_client):
    first, second = queue(ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PENDING_REVIEW)

    response = moderator_client.post(
        moderate_url(first, "nonsense__field=1"), {"action": "publish"}
    )

    assert response.status_code == 302
    assert response.url == change_url(second)


def test_save_and_publish_opens_the_next_exercise_and_continue_stays(moderator_client):
    first, second = queue(ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PENDING_REVIEW)
    words = {f"word_{n}": word for n, word in enumerate(first.data["words"], start=1)}
    post = fill_post(sentence=first.data["text_with_blanks"], blank_1="1", **words)

    stay = moderator_client.post(change_url(first, "queue=review"), {**post, "_continue": "1"})
    Exercise.objects.filter(pk=first.pk).update(status=ExerciseStatus.PENDING_REVIEW)
    onward = moderator_client.post(change_url(first, "queue=review"), {**post, "_save": "1"})

    assert stay.url == change_url(first, "queue=review")
    assert onward.url == change_url(second, "queue=review")
    assert any("is now published" in message for message in texts(onward))


def test_a_refused_decision_stays_on_the_exercise(moderator_client):
    exercise = story(status=ExerciseStatus.AUDIO_GENERATION_ERROR)
    Exercise.objects.filter(pk=exercise.pk).update(data={**exercise.data, "audio_url": ""})
    fill(status=ExerciseStatus.PENDING_REVIEW)

    response = moderator_client.post(moderate_url(exercise, "queue=all"), {"action": "publish"})

    assert response.url == change_url(exercise, "queue=all")
    assert any("needs audio" in message for message in texts(response))


def test_accepting_an_answer_stays_on_the_exercise(moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    response = moderator_client.post(
        moderate_url(exercise), {"action": "accept_answer", "answer": "една"}
    )

    assert response.url == change_url(exercise)
    assert exercise.verdicts.get(answer_text="една").is_correct


# --- only the decisions that apply --------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "status", "offered"),
    [
        (fill, "published", ["archive", "send_to_review", "admin_review"]),
        (fill, "archived", ["publish", "send_to_review", "admin_review"]),
        (fill, "pending_review", ["publish", "archive", "admin_review"]),
        (fill, "pending_admin_review", ["publish", "archive", "send_to_review"]),
        (story, "published", ["archive", "send_to_review", "admin_review", "regenerate_audio"]),
        (
            story,
            "audio_generation_error",
            ["publish", "archive", "send_to_review", "admin_review"],
        ),
    ],
)
def test_the_page_offers_only_the_decisions_that_change_the_status(
    moderator_client, llm_on, make, status, offered
):
    exercise = make(status=status)

    page = moderator_client.get(change_url(exercise))

    actions = page.context["moderation"]["actions"]
    assert [action["name"] for action in actions] == offered
    assert all(action["unavailable"] is None for action in actions)
    body = page.content.decode()
    for name in {"publish", "archive", "send_to_review", "admin_review"} - set(offered):
        assert f'name="decide" value="{name}"' not in body


def test_a_decision_already_taken_is_refused(moderator_client):
    exercise = fill(status=ExerciseStatus.PUBLISHED)

    response = moderator_client.post(moderate_url(exercise), {"action": "publish"})

    assert response.url == change_url(exercise)
    assert texts(response) == [f"Exercise #{exercise.pk} is already published."]
    assert not exercise.reviews.exists()


def test_the_publish_service_refuses_a_published_exercise(moderator):
    exercise = fill(status=ExerciseStatus.PUBLISHED)

    with pytest.raises(ValidationError) as raised:
        exercise_staff_publish(exercise_id=exercise.pk, user=moderator, now=timezone.now())

    assert raised.value.code == "no_change"
    assert not exercise.reviews.exists()


def test_a_bulk_action_skips_the_exercises_it_does_not_apply_to(moderator_client):
    waiting = fill(status=ExerciseStatus.PENDING_REVIEW)
    published = [fill(status=ExerciseStatus.PUBLISHED), fill(status=ExerciseStatus.PUBLISHED)]

    response = moderator_client.post(
        reverse(CHANGELIST) + "?queue=all",
        {"action": "publish", "_selected_action": [waiting.pk, *(e.pk for e in published)]},
        follow=True,
    )

    assert texts(response) == [
        "Publish: 1 exercise.",
        "Skipped 2 exercises that are already published.",
    ]
    waiting.refresh_from_db()
    assert waiting.status == ExerciseStatus.PUBLISHED
    assert not any(e.reviews.exists() for e in published)


def test_without_an_llm_the_review_button_says_why_and_nothing_is_parked(moderator_client, llm_off):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    page = moderator_client.get(change_url(exercise))
    posted = moderator_client.post(moderate_url(exercise), {"action": "send_to_review"})
    bulk = moderator_client.post(
        reverse(CHANGELIST),
        {"action": "send_to_review", "_selected_action": [exercise.pk]},
        follow=True,
    )

    [review] = [a for a in page.context["moderation"]["actions"] if a["name"] == "send_to_review"]
    assert "OPENAI_API_KEY" in review["unavailable"]
    body = page.content.decode()
    assert 'value="send_to_review" disabled' in body
    assert "Re-run the LLM review is not available: no LLM configured" in body
    assert posted.url == change_url(exercise)
    [refused] = texts(posted)
    assert refused.startswith("The LLM review cannot run: no LLM configured")
    *_, bulk_refused = texts(bulk)  # (after the page's own, not shown yet)
    assert bulk_refused.startswith("Re-run the LLM review is not available: no LLM configured")
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PENDING_ADMIN_REVIEW
    assert not exercise.reviews.exists()


# --- judgements in words, empty states ----------------------------------------------------------


def test_judgements_are_words_with_a_colour_class(admin_client):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)
    wrong = ExerciseAnswerFactory(exercise=exercise, answer={"words": ["една"]})
    ExerciseAttemptFactory(exercise=exercise, verdict=wrong, is_correct=False)

    page = admin_client.get(change_url(exercise))

    judged = {a["row"].answer_text: a["judgement"] for a in page.context["moderation"]["answers"]}
    assert judged["една"] == {"kind": "incorrect", "label": "incorrect"}
    assert judged["едно"] == {"kind": "correct", "label": "correct"}
    body = page.content.decode()
    assert '<span class="verdict verdict-incorrect">incorrect</span>' in body
    assert '<span class="verdict verdict-correct">correct</span>' in body
    assert "❌" not in body
    assert ".verdict-incorrect { color:" in body


def test_a_fresh_exercise_says_no_attempts_and_no_reviews_yet(admin_client):
    body = admin_client.get(change_url(fill())).content.decode()

    assert "No attempts yet." in body
    assert "No reviews yet." in body
    assert "<th>When</th>" not in body  # no empty history table


def test_an_empty_queue_and_an_empty_filter_say_so(admin_client):
    fill(status=ExerciseStatus.PUBLISHED)

    empty_queue = admin_client.get(reverse(CHANGELIST)).content.decode()
    no_match = admin_client.get(reverse(CHANGELIST), {"queue": "all", "q": "липсва"})

    assert "The queue is empty." in empty_queue
    assert "No exercise matches these filters." in no_match.content.decode()
    assert "The queue is empty." not in no_match.content.decode()


def test_the_verdict_list_shows_judgements_in_words_and_no_red_crosses(admin_client):
    exercise = fill()
    ExerciseAnswerFactory(exercise=exercise, answer={"words": ["една"]})

    body = admin_client.get(reverse("admin:exercises_exerciseanswer_changelist")).content.decode()

    assert '<span class="verdict verdict-incorrect">incorrect</span>' in body
    assert '<span class="verdict verdict-correct">correct</span>' in body
    assert "icon-no.svg" not in body  # "not the reference" is the normal case, not an error
    assert '<td class="field-reference_display">reference</td>' in body
