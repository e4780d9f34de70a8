"""The exercise moderation console: the queue, the moderator's page, its actions and permissions."""

from __future__ import annotations

import importlib
import itertools
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from duoniche.enums import ExerciseStatus, ExerciseType, ReviewSource
from exercises.content import content_hash
from exercises.models import Exercise, ExerciseAnswer
from exercises.moderation import exercise_staff_regenerate_audio
from exercises.selectors import attempts_weighted_error_rate
from exercises.staff_edit import exercise_staff_edit
from exercises.staff_verdicts import exercise_add_accepted_answer, verdict_staff_edit
from learning.models import ExerciseAttempt
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory, ExerciseReviewFactory
from tests.learning.factories import BotProfileFactory, ExerciseAttemptFactory, TelegramUserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:exercises_exercise_changelist"


# --- set-up -------------------------------------------------------------------------------------


def change_url(exercise: Exercise) -> str:
    return reverse("admin:exercises_exercise_change", args=[exercise.pk])


def moderate_url(exercise: Exercise) -> str:
    return reverse("admin:exercises_exercise_moderate", args=[exercise.pk])


def texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


_numbers = itertools.count(1)


def fill(**kwargs: Any) -> Exercise:
    """A fill exercise whose words are ['едно', 'една', 'едни'] (correct: 'едно')."""
    kwargs.setdefault(
        "data",
        {
            "text_with_blanks": f"Искам ___ кафе {next(_numbers)}.",
            "words": ["едно", "една", "едни"],
        },
    )
    return ExerciseFactory(**kwargs)


def choose_sentence(options: list[str] | None = None, **kwargs: Any) -> Exercise:
    options = options or ["Вчера отидохме на кино.", "Вчера отиваме на кино.", "Вчера ще отидем."]
    return ExerciseFactory(
        exercise_type=ExerciseType.CHOOSE_SENTENCE, data={"options": options}, **kwargs
    )


def story(**kwargs: Any) -> Exercise:
    """A voiced story (a new text each call)."""
    kwargs.setdefault(
        "data",
        {
            "content_text": f"Марко отиде на пазара и купи ябълки. Беше {next(_numbers)} часа.",
            "audio_url": "https://cdn.example.org/stories/abc.ogg",
            "audio_telegram_file_id": "telegram-file-1",
            "options": ["Марко купи ябълки.", "Марко купи круши.", "Марко не излезе."],
        },
    )
    return ExerciseFactory(exercise_type=ExerciseType.STORY_COMPREHENSION, **kwargs)


def accent(**kwargs: Any) -> Exercise:
    return ExerciseFactory(
        exercise_type=ExerciseType.CHOOSE_ACCENT,
        data={"options": ["вода̀", "во̀да"], "meaning": "<b>вода</b> – течност без цвят"},
        grammar_tags={"grammar": ["accent"], "vocabulary": []},
        **kwargs,
    )


def wrong_verdict(exercise: Exercise, answer: dict[str, Any], **kwargs: Any) -> ExerciseAnswer:
    return ExerciseAnswerFactory(exercise=exercise, answer=answer, **kwargs)


def attempt(exercise: Exercise, verdict: ExerciseAnswer | None = None, **kwargs: Any) -> Any:
    verdict = verdict or exercise.verdicts.get(is_reference=True)
    return ExerciseAttemptFactory(
        exercise=exercise, verdict=verdict, is_correct=verdict.is_correct, **kwargs
    )


@pytest.fixture
def moderator(django_user_model):
    user = django_user_model.objects.create_user("mod_anna", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="moderator"))
    return user


@pytest.fixture
def moderator_client(client, moderator):
    client.force_login(moderator)
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("plain_staff", password="pw", is_staff=True)
    client.force_login(user)
    return client


def edit_form(exercise: Exercise, **changes: Any) -> dict[str, Any]:
    """The change form's POST data for `exercise`, one field per part, with `changes` applied.

    `changes` are in the stored shape (`data`, `correct_answer`, `grammar_tags`, level, topic);
    they are typed into the fields a moderator sees (sentence, words, options, the correct one).
    """
    reference = exercise.verdicts.get(is_reference=True)
    values = {
        "data": exercise.data,
        "correct_answer": reference.answer,
        "grammar_tags": exercise.grammar_tags,
        "language_level": exercise.language_level,
        "topic": exercise.topic,
        **changes,
    }
    data, answer, tags = values["data"], values["correct_answer"], values["grammar_tags"]
    post: dict[str, Any] = {
        "language_level": values["language_level"],
        "topic": values["topic"],
        "grammar": "\n".join(tags.get("grammar", [])),
        "vocabulary": "\n".join(tags.get("vocabulary", [])),
        "_continue": "Save",
    }
    if exercise.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        post["sentence"] = data["text_with_blanks"]
        post.update({f"word_{n}": word for n, word in enumerate(data["words"], start=1)})
        post.update(
            {
                f"blank_{n}": data["words"].index(word) + 1
                for n, word in enumerate(answer["words"], start=1)
            }
        )
        return post
    post.update({f"option_{n}": option for n, option in enumerate(data["options"], start=1)})
    post["correct"] = data["options"].index(answer["answer"]) + 1
    if exercise.exercise_type == ExerciseType.STORY_COMPREHENSION:
        post["story"] = data["content_text"]
    if exercise.exercise_type == ExerciseType.CHOOSE_ACCENT:
        post["meaning"] = data.get("meaning") or ""
    return post


@pytest.fixture
def llm_on(settings) -> None:
    """An LLM configured (nothing calls it here): the LLM review can run."""
    settings.OPENAI_API_KEY = "test"
    settings.OPENAI_MAIN_MODEL_NAME = "fake-model"


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_opens_on_exercises_to_review_newest_first(admin_client):
    now = timezone.now()
    published = fill(status=ExerciseStatus.PUBLISHED)
    older = fill(status=ExerciseStatus.PENDING_REVIEW)
    newer = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    Exercise.objects.filter(pk=older.pk).update(status_changed_at=now - timedelta(days=2))
    Exercise.objects.filter(pk=newer.pk).update(status_changed_at=now - timedelta(days=1))

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [newer.pk, older.pk]
    everything = admin_client.get(reverse(CHANGELIST), {"queue": "all"})
    assert published.pk in {e.pk for e in everything.context["cl"].result_list}


def test_a_status_filter_searches_the_whole_bank(admin_client):
    published = fill(status=ExerciseStatus.PUBLISHED)
    fill(status=ExerciseStatus.PENDING_REVIEW)

    response = admin_client.get(reverse(CHANGELIST), {"status__exact": "published"})

    assert [e.pk for e in response.context["cl"].result_list] == [published.pk]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"queue": "all"},
        {"queue": "review"},
        {"status__exact": "archived"},
        {"exercise_language": "Bulgarian"},
        {"exercise_type__exact": "choose_sentence"},
        {"language_level__exact": "B1"},
        {"topic__exact": "food"},
        {"persona": "Embarrassed Tourist"},
        {"persona__isnull": "True"},
        {"source__exact": "imported"},
        {"error_rate": "none"},
        {"error_rate": "low"},
        {"error_rate": "mid"},
        {"error_rate": "high"},
        {"suggestion": "ARCHIVE"},
        {"suggestion": "revision"},
        {"suggestion": "none"},
        {"untouched": "yes"},
        {"q": "кафе"},
        {"q": "Вчера"},
        {"q": "12345"},
        {"o": "8"},
        {"o": "-9"},
        {"queue": "all", "o": "2.-8"},
    ],
)
def test_every_changelist_view_answers(admin_client, query):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)
    choose_sentence(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    attempt(exercise)
    ExerciseReviewFactory(exercise=exercise, analysis={"suggested_action": "ARCHIVE"})

    response = admin_client.get(reverse(CHANGELIST), query)

    assert response.status_code == 200


def test_a_search_looks_at_the_whole_bank_unless_the_queue_is_chosen(admin_client):
    published = fill(data={"text_with_blanks": "Пием ___ чай.", "words": ["зелен", "зелена"]})

    def found(query: dict[str, str]) -> list[int]:
        response = admin_client.get(reverse(CHANGELIST), query)
        return [e.pk for e in response.context["cl"].result_list]

    assert found({"q": "чай"}) == [published.pk]
    assert found({"q": "чай", "queue": "review"}) == []


def test_sorting_by_error_rate_puts_unattempted_exercises_last(admin_client):
    attempted = fill(status=ExerciseStatus.PENDING_REVIEW)
    attempt(attempted, wrong_verdict(attempted, {"words": ["една"]}))
    unattempted = fill(status=ExerciseStatus.PENDING_REVIEW)
    column = (
        admin_client.get(reverse(CHANGELIST)).context["cl"].list_display.index("error_rate_display")
    )

    descending = admin_client.get(reverse(CHANGELIST), {"o": f"-{column}"})

    assert [e.pk for e in descending.context["cl"].result_list] == [attempted.pk, unattempted.pk]


def test_search_finds_text_options_and_numbers(admin_client):
    sentence = fill(data={"text_with_blanks": "Пием ___ чай.", "words": ["зелен", "зелена"]})
    option = choose_sentence(options=["Котката спи на дивана.", "Котката спят на дивана."])
    other = fill()

    def found(term: str) -> set[int]:
        response = admin_client.get(reverse(CHANGELIST), {"queue": "all", "q": term})
        return {e.pk for e in response.context["cl"].result_list}

    assert found("чай") == {sentence.pk}
    assert found("спят") == {option.pk}
    assert found("зелена") == {sentence.pk}
    assert found(f"#{other.pk}") == {other.pk}


def test_error_rate_is_weighted_by_rating_and_banded(admin_client):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)
    wrong = wrong_verdict(exercise, {"words": ["една"]})
    expert, novice = TelegramUserFactory(), TelegramUserFactory()
    BotProfileFactory(user=expert, rating=0.9)
    BotProfileFactory(user=novice, rating=0.1)
    attempt(exercise, wrong, user=expert)  # 0.9 wrong
    attempt(exercise, user=novice)  # 0.1 right
    calm = fill(status=ExerciseStatus.PENDING_REVIEW)

    rate = attempts_weighted_error_rate(
        attempts=exercise.attempts.all(), exercise_language="Bulgarian", since=None
    )
    high = admin_client.get(reverse(CHANGELIST), {"error_rate": "high"})
    none = admin_client.get(reverse(CHANGELIST), {"error_rate": "none"})

    assert (rate.attempts, rate.weighted_total, rate.weighted_incorrect) == (2, 1.0, 0.9)
    assert rate.rate == pytest.approx(0.9)
    assert [e.pk for e in high.context["cl"].result_list] == [exercise.pk]
    assert high.context["cl"].result_list[0].error_rate == pytest.approx(0.9)
    assert [e.pk for e in none.context["cl"].result_list] == [calm.pk]


def test_error_rate_counts_attempts_after_the_last_review_with_the_default_rating(settings):
    settings.QUALITY_DEFAULT_RATING = 0.25
    exercise = fill()
    wrong = wrong_verdict(exercise, {"words": ["една"]})
    old = attempt(exercise, wrong)  # the learner has no profile: default rating
    ExerciseAttempt.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    attempt(exercise, wrong)
    attempt(exercise)

    rate = attempts_weighted_error_rate(
        attempts=exercise.attempts.all(),
        exercise_language="Bulgarian",
        since=timezone.now() - timedelta(days=1),
    )

    assert (rate.attempts, rate.weighted_total, rate.weighted_incorrect) == (2, 0.5, 0.25)


def test_assessor_suggestion_filter_reads_the_latest_suggestion(admin_client):
    archive = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    revised = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    ExerciseReviewFactory(exercise=archive, analysis={"suggested_action": "PUBLISH_OK"})
    ExerciseReviewFactory(
        exercise=archive,
        analysis={"suggested_action": "archive: the sentence is ambiguous"},
        created_at=timezone.now() + timedelta(minutes=1),
    )
    ExerciseReviewFactory(  # a later staff decision without a suggestion does not hide it
        exercise=archive,
        analysis={"action": "publish"},
        created_at=timezone.now() + timedelta(minutes=2),
    )
    ExerciseReviewFactory(
        exercise=revised,
        analysis={"suggested_action": "REVISE_TEXT", "suggested_revision": "Искам едно кафе."},
    )

    def listed(value: str) -> list[int]:
        response = admin_client.get(reverse(CHANGELIST), {"suggestion": value})
        return [e.pk for e in response.context["cl"].result_list]

    assert listed("ARCHIVE") == [archive.pk]
    assert listed("PUBLISH_OK") == []
    assert listed("revision") == [revised.pk]


def test_the_changelist_query_count_does_not_grow_with_the_page(
    admin_client, django_assert_max_num_queries
):
    learners = [TelegramUserFactory() for _ in range(3)]
    for learner in learners:
        BotProfileFactory(user=learner, rating=0.5)
    for index in range(50):
        exercise = fill(
            status=ExerciseStatus.PENDING_REVIEW
            if index % 2
            else ExerciseStatus.PENDING_ADMIN_REVIEW,
            data={"text_with_blanks": f"Искам ___ кафе {index}.", "words": ["едно", "една"]},
        )
        attempt(exercise, user=learners[index % 3])
        ExerciseReviewFactory(exercise=exercise, analysis={"suggested_action": "REVISE_TEXT"})

    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50


# --- the exercise page --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [fill, choose_sentence, story, accent])
def test_the_page_shows_every_type_as_the_bot_does(admin_client, make):
    exercise = make(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    response = admin_client.get(change_url(exercise))

    assert response.status_code == 200
    assert response.context["moderation"]["exercise"]["choices"][0].is_correct
    body = response.content.decode()
    assert "As the bot shows it" in body
    assert "Review history" in body


def test_the_page_shows_story_audio_and_accent_meaning(admin_client):
    narrated = story()
    stressed = accent()

    story_page = admin_client.get(change_url(narrated)).content.decode()
    accent_page = admin_client.get(change_url(stressed)).content.decode()

    assert '<audio controls preload="none" src="https://cdn.example.org/stories/abc.ogg">' in (
        story_page
    )
    assert "Марко отиде на пазара" in story_page
    assert "<b>вода</b> – течност без цвят" in accent_page


def test_the_answers_table_counts_learners_and_shows_feedback_per_language(admin_client):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)
    english = wrong_verdict(exercise, {"words": ["една"]}, feedback="<i>Gender</i> mismatch")
    wrong_verdict(
        exercise, {"words": ["една"]}, feedback_language="ru", feedback="Не тот <b>род</b>"
    )
    learner = TelegramUserFactory()
    attempt(exercise, english, user=learner)
    attempt(exercise, english, user=learner)
    attempt(exercise, english)
    attempt(exercise)

    response = admin_client.get(change_url(exercise))

    rows = {a["row"].answer_text: a for a in response.context["moderation"]["answers"]}
    assert (rows["една"]["row"].learners, rows["една"]["row"].attempts) == (2, 3)
    assert rows["една"]["row"].is_correct is False
    assert rows["една"]["can_accept"]
    assert [v["verdict"].feedback_language for v in rows["една"]["verdicts"]] == ["en", "ru"]
    assert (rows["едно"]["row"].learners, rows["едно"]["row"].is_reference) == (1, True)
    assert not rows["едно"]["can_accept"]
    body = response.content.decode()
    assert "<i>Gender</i> mismatch" in body
    assert "Не тот <b>род</b>" in body


def test_stored_feedback_is_shown_as_the_telegram_subset_only(admin_client):
    exercise = fill()
    wrong_verdict(
        exercise, {"words": ["една"]}, feedback='<script>alert(1)</script><a href="x">y</a>'
    )

    body = admin_client.get(change_url(exercise)).content.decode()

    assert "<script>alert(1)" not in body
    assert '<a href="x">' not in body


def test_the_history_shows_who_decided_and_when(admin_client, moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)
    moderator_client.post(moderate_url(exercise), {"action": "archive"})

    response = admin_client.get(change_url(exercise))

    [entry] = response.context["moderation"]["history"]
    assert entry["who"] == "mod_anna"
    assert entry["review"].created_at is not None
    assert "archived by mod_anna" in response.content.decode()


# --- actions ------------------------------------------------------------------------------------

ACTIONS = [
    ("publish", ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PUBLISHED),
    ("archive", ExerciseStatus.PENDING_ADMIN_REVIEW, ExerciseStatus.ARCHIVED),
    ("send_to_review", ExerciseStatus.PENDING_ADMIN_REVIEW, ExerciseStatus.PENDING_REVIEW),
    ("admin_review", ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PENDING_ADMIN_REVIEW),
    ("regenerate_audio", ExerciseStatus.PUBLISHED, ExerciseStatus.AUDIO_GENERATION_ERROR),
]


@pytest.mark.parametrize(("action", "before", "after"), ACTIONS)
def test_each_page_button_decides_and_records_the_moderator(
    moderator_client, llm_on, action, before, after
):
    exercise = story(status=before)

    response = moderator_client.post(moderate_url(exercise), {"action": action})

    assert response.status_code == 302
    assert response.url == reverse(CHANGELIST)  # nothing else waits: back to the empty queue
    exercise.refresh_from_db()
    assert exercise.status == after
    review = exercise.reviews.get()
    assert (review.source, review.previous_status, review.new_status) == (
        ReviewSource.STAFF, before, after
    )  # fmt: skip
    assert review.analysis["moderator"] == "mod_anna"
    assert review.analysis["action"] == action
    assert review.note.endswith("by mod_anna")


@pytest.mark.parametrize(("action", "before", "after"), ACTIONS)
def test_each_bulk_action_decides_every_selected_exercise(
    moderator_client, llm_on, action, before, after
):
    chosen = [story(status=before), story(status=before)]
    untouched = story(status=before)

    response = moderator_client.post(
        reverse(CHANGELIST) + "?queue=all",
        {"action": action, "_selected_action": [e.pk for e in chosen]},
    )

    assert response.status_code == 302
    for exercise in chosen:
        exercise.refresh_from_db()
        assert exercise.status == after
        assert exercise.reviews.get().analysis["moderator"] == "mod_anna"
    untouched.refresh_from_db()
    assert untouched.status == before
    assert not untouched.reviews.exists()


def test_leaving_the_queue_restarts_the_quality_stats(moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    moderator_client.post(moderate_url(exercise), {"action": "publish"})

    exercise.refresh_from_db()
    assert exercise.last_reviewed_at is not None


def test_publishing_a_story_without_audio_is_refused_with_a_message(moderator_client):
    exercise = story(status=ExerciseStatus.AUDIO_GENERATION_ERROR)
    Exercise.objects.filter(pk=exercise.pk).update(
        data={**exercise.data, "audio_url": "", "audio_telegram_file_id": ""}
    )

    response = moderator_client.post(moderate_url(exercise), {"action": "publish"}, follow=True)

    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert not exercise.reviews.exists()
    assert any("needs audio" in message for message in texts(response))


def test_regenerating_audio_of_a_non_story_is_refused(moderator_client):
    exercise = fill(status=ExerciseStatus.PUBLISHED)

    response = moderator_client.post(
        reverse(CHANGELIST) + "?queue=all",
        {"action": "regenerate_audio", "_selected_action": [exercise.pk]},
        follow=True,
    )

    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert "Skipped 1 exercise that is not a story." in texts(response)
    assert not exercise.reviews.exists()


def test_the_audio_service_refuses_a_non_story(moderator):
    exercise = fill(status=ExerciseStatus.PUBLISHED)

    with pytest.raises(ValidationError) as raised:
        exercise_staff_regenerate_audio(exercise_id=exercise.pk, user=moderator, now=timezone.now())

    assert (raised.value.code, raised.value.messages) == (
        "not_a_story",
        ["Only stories have audio."],
    )
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PUBLISHED


def test_an_unknown_page_action_is_a_bad_request(moderator_client):
    exercise = fill()

    assert moderator_client.post(moderate_url(exercise), {"action": "explode"}).status_code == 400
    assert moderator_client.get(moderate_url(exercise)).status_code == 405


# --- accepted answers ---------------------------------------------------------------------------


def test_accepting_an_answer_adds_a_correct_verdict_by_the_moderator(moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    wrong = wrong_verdict(exercise, {"words": ["една"]})
    kept = attempt(exercise, wrong)

    response = moderator_client.post(
        moderate_url(exercise), {"action": "accept_answer", "answer": "една"}
    )

    assert response.status_code == 302
    accepted = exercise.verdicts.get(answer_text="една")
    assert (accepted.is_correct, accepted.feedback_language, accepted.created_by) == (
        True, "", "staff:mod_anna"
    )  # fmt: skip
    assert not ExerciseAnswer.objects.filter(pk=wrong.pk).exists()
    kept.refresh_from_db()
    assert (kept.is_correct, kept.verdict_id) == (False, None)  # the attempt keeps its copy
    review = exercise.reviews.get()
    assert review.analysis["action"] == "accept_answer"
    assert review.analysis["moderator"] == "mod_anna"
    assert review.new_status == ExerciseStatus.PENDING_ADMIN_REVIEW


def test_accepting_an_answer_drops_automatic_verdicts_listing_the_old_correct_answers(moderator):
    exercise = accent()
    auto = wrong_verdict(
        exercise, {"answer": "во̀да"}, created_by="auto:7", feedback="✅ <code>вода̀</code>"
    )

    verdict = exercise_add_accepted_answer(
        exercise_id=exercise.pk, answer="во̀да", user=moderator, now=timezone.now()
    )

    assert verdict.is_correct
    assert not ExerciseAnswer.objects.filter(pk=auto.pk).exists()


def test_an_answer_outside_the_options_cannot_be_accepted(moderator_client):
    exercise = fill()

    response = moderator_client.post(
        moderate_url(exercise), {"action": "accept_answer", "answer": "три"}, follow=True
    )

    assert not exercise.verdicts.filter(answer_text="три").exists()
    assert any("not made of this exercise's options" in message for message in texts(response))
    assert not exercise.reviews.exists()


# --- editing ------------------------------------------------------------------------------------


def test_edit_and_publish_drops_verdicts_that_no_longer_hold_and_keeps_attempts(
    moderator_client,
):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    still_valid = wrong_verdict(exercise, {"words": ["една"]})
    removed_word = wrong_verdict(exercise, {"words": ["едни"]})
    on_removed = attempt(exercise, removed_word)
    on_valid = attempt(exercise, still_valid)
    new_data = {**exercise.data, "words": ["едно", "една", "два"]}

    response = moderator_client.post(change_url(exercise), edit_form(exercise, data=new_data))

    assert response.status_code == 302
    exercise.refresh_from_db()
    assert exercise.data == new_data
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert exercise.content_hash == content_hash(
        exercise_type=exercise.exercise_type,
        exercise_language="Bulgarian",
        data=new_data,
        correct_answer={"words": ["едно"]},
    )
    assert ExerciseAnswer.objects.filter(pk=still_valid.pk).exists()
    assert not ExerciseAnswer.objects.filter(pk=removed_word.pk).exists()
    on_removed.refresh_from_db()
    on_valid.refresh_from_db()
    assert (on_removed.verdict_id, on_removed.answer_text, on_removed.is_correct) == (
        None, "едни", False
    )  # fmt: skip
    assert on_valid.verdict_id == still_valid.pk
    assert exercise.attempts.count() == 2
    review = exercise.reviews.get()
    assert (review.previous_status, review.new_status) == ("pending_admin_review", "published")
    assert review.analysis["moderator"] == "mod_anna"
    assert review.analysis["previous"]["data"]["words"] == ["едно", "една", "едни"]
    assert review.analysis["previous"]["data"]["text_with_blanks"] == new_data["text_with_blanks"]
    assert review.analysis["previous"]["correct_answer"] == {"words": ["едно"]}
    assert review.analysis["dropped_verdicts"] == 1


def test_a_new_correct_answer_replaces_the_reference_and_every_old_judgement(moderator):
    exercise = choose_sentence(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    old_reference = exercise.verdicts.get(is_reference=True)
    other = wrong_verdict(exercise, {"answer": exercise.data["options"][1]})
    attempt(exercise)
    new_correct = exercise.data["options"][1]

    edit = exercise_staff_edit(
        exercise_id=exercise.pk,
        data=exercise.data,
        correct_answer={"answer": new_correct},
        grammar_tags=exercise.grammar_tags,
        user=moderator,
        now=timezone.now(),
    )

    exercise.refresh_from_db()
    reference = exercise.verdicts.get(is_reference=True)
    assert (reference.answer_text, reference.created_by) == (new_correct, "staff:mod_anna")
    assert exercise.data["options"][0] == new_correct  # the wire order: correct first
    assert not ExerciseAnswer.objects.filter(pk__in=[old_reference.pk, other.pk]).exists()
    assert exercise.verdicts.count() == 1
    assert exercise.attempts.get().verdict_id is None
    assert edit.dropped_verdicts == 1
    assert exercise.last_reviewed_at is not None  # the stats restart on the new content


def test_changing_a_story_text_sends_it_to_new_audio(moderator_client):
    exercise = story(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    data = {**exercise.data, "content_text": "Марко отиде на пазара и купи круши."}
    data.pop("audio_url")
    data.pop("audio_telegram_file_id")

    moderator_client.post(change_url(exercise), edit_form(exercise, data=data))

    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.AUDIO_GENERATION_ERROR
    assert (exercise.data["audio_url"], exercise.data["audio_telegram_file_id"]) == ("", "")
    assert exercise.data["content_text"] == "Марко отиде на пазара и купи круши."


def test_editing_a_story_keeps_its_audio_when_the_text_stays(moderator_client):
    exercise = story(status=ExerciseStatus.PENDING_ADMIN_REVIEW)

    moderator_client.post(change_url(exercise), edit_form(exercise, language_level="B1"))

    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert exercise.language_level == "B1"
    assert exercise.data["audio_url"] == "https://cdn.example.org/stories/abc.ogg"


def test_an_edit_colliding_with_another_exercise_is_rejected_with_a_message(moderator_client):
    first = fill()
    second = fill(
        status=ExerciseStatus.PENDING_ADMIN_REVIEW,
        data={"text_with_blanks": "Искам ___ чай.", "words": ["едно", "една"]},
    )
    before = (second.data, second.content_hash)

    response = moderator_client.post(
        change_url(second),
        edit_form(second, data={**first.data, "words": list(reversed(first.data["words"]))}),
    )

    assert response.status_code == 200
    assert f"Exercise #{first.pk} already has this content" in response.content.decode()
    second.refresh_from_db()
    assert (second.data, second.content_hash) == before
    assert second.status == ExerciseStatus.PENDING_ADMIN_REVIEW
    assert not second.reviews.exists()


def test_the_edit_service_rejects_a_collision(moderator):
    first = fill()
    second = fill(data={"text_with_blanks": "Искам ___ чай.", "words": ["едно", "една", "едни"]})

    with pytest.raises(ValidationError) as raised:
        exercise_staff_edit(
            exercise_id=second.pk,
            data=first.data,
            correct_answer={"words": ["едно"]},
            grammar_tags=second.grammar_tags,
            user=moderator,
            now=timezone.now(),
        )

    assert raised.value.code == "duplicate"


def test_save_model_reports_a_service_error_with_a_message(rf, moderator):
    """The race after the form's check: the service refuses and the moderator is told."""
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage

    first = fill()
    second = fill(data={"text_with_blanks": "Искам ___ чай.", "words": ["едно", "една", "едни"]})
    request = rf.post(change_url(second))
    request.user = moderator
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = admin.site._registry[Exercise]
    form = SimpleNamespace(
        content={
            "data": first.data,
            "correct_answer": {"words": ["едно"]},
            "grammar_tags": second.grammar_tags,
        }
    )

    model_admin.save_model(request, second, form, change=True)
    response = model_admin.response_change(request, second)

    assert [str(m) for m in get_messages(request)] == [
        f"Exercise #{first.pk} already has this content (the same content hash)."
    ]
    assert response.status_code == 302
    assert response.url == request.path
    second.refresh_from_db()
    assert second.data["text_with_blanks"] == "Искам ___ чай."


def test_invalid_content_is_refused_with_the_import_rules(moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_ADMIN_REVIEW)
    before = exercise.data
    data = {"text_with_blanks": "Искам ___ кафе ___ и ___.", "words": ["едно", "една"]}

    response = moderator_client.post(change_url(exercise), edit_form(exercise, data=data))

    assert response.status_code == 200
    assert "must have 1 or 2 blanks" in response.content.decode()
    exercise.refresh_from_db()
    assert exercise.data == before
    assert not exercise.reviews.exists()


def test_the_edit_form_shows_the_correct_answer_and_hides_story_audio(admin_client):
    exercise = story()

    form = admin_client.get(change_url(exercise)).context["adminform"].form

    assert form["story"].value() == exercise.data["content_text"]
    assert form["option_1"].value() == "Марко купи ябълки."
    assert form["correct"].value() == 1
    assert not {"audio_url", "audio_telegram_file_id", "data", "correct_answer"} & set(form.fields)


# --- verdicts -----------------------------------------------------------------------------------


def test_the_verdict_and_history_pages_answer(admin_client, moderator_client):
    exercise = fill()
    verdict = wrong_verdict(exercise, {"words": ["една"]})
    reference = exercise.verdicts.get(is_reference=True)
    review = ExerciseReviewFactory(exercise=exercise)
    urls = [
        reverse("admin:exercises_exerciseanswer_changelist"),
        reverse("admin:exercises_exerciseanswer_change", args=[verdict.pk]),
        reverse("admin:exercises_exerciseanswer_change", args=[reference.pk]),
        reverse("admin:exercises_exercisereview_changelist"),
        reverse("admin:exercises_exercisereview_change", args=[review.pk]),
    ]

    for client in (admin_client, moderator_client):
        assert [client.get(url).status_code for url in urls] == [200] * len(urls)


def test_a_moderator_edits_a_verdict_through_the_service(moderator_client):
    exercise = fill()
    verdict = wrong_verdict(exercise, {"words": ["една"]})
    url = reverse("admin:exercises_exerciseanswer_change", args=[verdict.pk])

    response = moderator_client.post(
        url, {"is_correct": "", "feedback": '<p>Use <b>едно</b></p><a href="x">here</a>'}
    )

    assert response.status_code == 302
    verdict.refresh_from_db()
    assert verdict.feedback == "Use <b>едно</b>\nhere"
    assert verdict.created_by == "LLM:user:1"
    review = exercise.reviews.get()
    assert (review.analysis["action"], review.analysis["moderator"]) == ("verdict_edit", "mod_anna")


def test_the_reference_verdict_cannot_be_deleted_or_made_wrong(moderator_client):
    exercise = fill()
    reference = exercise.verdicts.get(is_reference=True)

    delete = moderator_client.post(
        reverse("admin:exercises_exerciseanswer_delete", args=[reference.pk]), {"post": "yes"}
    )
    moderator_client.post(
        reverse("admin:exercises_exerciseanswer_change", args=[reference.pk]),
        {"is_correct": "", "feedback": ""},
    )

    assert delete.status_code == 403
    reference.refresh_from_db()
    assert reference.is_correct


def test_the_verdict_service_keeps_the_reference_correct(moderator):
    reference = fill().verdicts.get(is_reference=True)

    with pytest.raises(ValidationError) as raised:
        verdict_staff_edit(
            verdict_id=reference.pk,
            is_correct=False,
            feedback="",
            user=moderator,
            now=timezone.now(),
        )

    assert raised.value.code == "reference"
    reference.refresh_from_db()
    assert reference.is_correct


def test_deleting_a_verdict_keeps_the_attempts_and_records_it(moderator_client):
    exercise = fill()
    verdict = wrong_verdict(exercise, {"words": ["една"]})
    kept = attempt(exercise, verdict)

    response = moderator_client.post(
        reverse("admin:exercises_exerciseanswer_delete", args=[verdict.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not ExerciseAnswer.objects.filter(pk=verdict.pk).exists()
    kept.refresh_from_db()
    assert (kept.verdict_id, kept.feedback) == (None, kept.feedback)
    assert exercise.reviews.get().analysis["action"] == "verdict_delete"


# --- permissions --------------------------------------------------------------------------------


def test_the_moderator_group_has_exactly_the_queue_permissions():
    codenames = set(
        Group.objects.get(name="moderator").permissions.values_list("codename", flat=True)
    )

    assert codenames == {
        "view_exercise",
        "change_exercise",
        "view_exerciseanswer",
        "change_exerciseanswer",
        "delete_exerciseanswer",
        "view_exercisereview",
    }


def test_the_group_migration_is_reversible_and_idempotent():
    migration = importlib.import_module("exercises.migrations.0002_moderator_group")
    editor = SimpleNamespace(connection=connection)

    migration.remove_group(django_apps, editor)
    assert not Group.objects.filter(name="moderator").exists()
    migration.create_group(django_apps, editor)
    migration.create_group(django_apps, editor)
    assert Group.objects.get(name="moderator").permissions.count() == 6


def test_a_moderator_uses_the_queue_page_and_actions(moderator_client):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)

    assert moderator_client.get(reverse(CHANGELIST)).status_code == 200
    assert moderator_client.get(change_url(exercise)).status_code == 200
    assert moderator_client.post(moderate_url(exercise), {"action": "publish"}).status_code == 302
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PUBLISHED
    assert (
        moderator_client.get(reverse("admin:exercises_exercisereview_changelist")).status_code
        == 200
    )


def test_plain_staff_without_the_group_cannot_moderate(staff_client):
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)

    assert staff_client.get(reverse(CHANGELIST)).status_code == 403
    assert staff_client.get(change_url(exercise)).status_code == 403
    assert staff_client.post(change_url(exercise), edit_form(exercise)).status_code == 403
    assert staff_client.post(moderate_url(exercise), {"action": "publish"}).status_code == 403
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PENDING_REVIEW
    assert not exercise.reviews.exists()


def test_view_only_staff_sees_the_page_but_cannot_decide(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_exercise"))
    client.force_login(user)
    exercise = fill(status=ExerciseStatus.PENDING_REVIEW)

    page = client.get(change_url(exercise))

    assert page.status_code == 200
    assert page.context["moderation"]["actions"] == []
    assert client.post(moderate_url(exercise), {"action": "publish"}).status_code == 403
