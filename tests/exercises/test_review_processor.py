"""The `review_processor` job (docs/jobs.md): the pending-review assessor for accent words
and the other types, the decision table row by row, and what stays pending.

The LLM is the scripted fake chat model behind `duoniche.llm` (`fake_llm`); everything else (the
structured call, the ledger, `exercise_change_status`) runs for real.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from duoniche.enums import ExerciseStatus, ExerciseType, ReviewSource
from duoniche.models import LLMCall
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.prompts.review import PendingExerciseAnalysis
from exercises.review import Decision, review_decision, review_processor
from exercises.services import exercise_change_status
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory
from tests.fakes.openai_server import Before

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
PENDING = ExerciseStatus.PENDING_REVIEW
PUBLISHED = ExerciseStatus.PUBLISHED
ARCHIVED = ExerciseStatus.ARCHIVED
ADMIN = ExerciseStatus.PENDING_ADMIN_REVIEW
ACCENT_WORD = "ма̀са"  # stressed with U+0300


def analysis(
    action: str,
    *,
    flawed: bool = False,
    complex_: bool = False,
    revision: str | None = None,
    reason: str = "learners confuse the forms",
) -> dict[str, Any]:
    return {
        "is_exercise_flawed": flawed,
        "is_complex_but_correct": complex_,
        "primary_reason_for_user_errors": reason,
        "suggested_action": action,
        "suggested_revision": revision,
    }


def flagged(**kwargs: Any) -> Exercise:
    """A published exercise the quality monitor flagged, with learners' answers counted."""
    exercise = ExerciseFactory(**kwargs)
    exercise_change_status(
        exercise_id=exercise.pk,
        new_status=PENDING,
        source=ReviewSource.QUALITY_MONITOR,
        now=timezone.now() - timedelta(hours=1),
        expected_status=PUBLISHED,
    )
    exercise.refresh_from_db()
    return exercise


def fill_with_answers(sentence: str = "Искам ___ кафе.") -> Exercise:
    """A fill exercise: the reference answered 3 times, two wrong answers (2 and 5 times)."""
    exercise = flagged(data={"text_with_blanks": sentence, "words": ["едно", "една", "един"]})
    ExerciseAnswer.objects.filter(exercise=exercise, is_reference=True).update(attempts_count=3)
    ExerciseAnswerFactory(
        exercise=exercise,
        answer={"words": ["една"]},
        attempts_count=2,
        feedback="Кафе е от среден род.",
        feedback_language="bg",
    )
    ExerciseAnswerFactory(
        exercise=exercise,
        answer={"words": ["една"]},
        attempts_count=1,
        feedback="<code>кафе</code> is neuter.",
        feedback_language="en",
    )
    ExerciseAnswerFactory(
        exercise=exercise,
        answer={"words": ["един"]},
        attempts_count=5,
        feedback="<code>кафе</code> is not masculine.",
        feedback_language="en",
    )
    return exercise


def accent() -> Exercise:
    return flagged(
        exercise_type=ExerciseType.CHOOSE_ACCENT,
        topic="general",
        data={"options": [ACCENT_WORD, "маса̀"], "meaning": "Мебел с плот."},
    )


def run() -> dict[str, Any]:
    return review_processor(now=NOW, dry_run=False)


def review_of(exercise: Exercise) -> ExerciseReview:
    return ExerciseReview.objects.filter(
        exercise=exercise, source=ReviewSource.REVIEW_PROCESSOR
    ).get()


# --- the decision table, row by row --------------------------------------------------------------

ROWS = [
    # 1: a suggested revision wins over everything, even PUBLISH_OK
    pytest.param(analysis("PUBLISH_OK", revision="Искам едно кафе, моля."), ADMIN, id="1-revision"),
    pytest.param(
        analysis("ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW", flawed=True, revision="една"),
        ADMIN,
        id="1-add-correct-answer",
    ),
    # 2: PUBLISH_OK (any case, as a substring), or KEEP_AS_IS_COMPLEX when not flawed
    pytest.param(analysis("publish_ok"), PUBLISHED, id="2-publish-ok-lowercase"),
    pytest.param(analysis("PUBLISH_OK", flawed=True), PUBLISHED, id="2-publish-ok-even-flawed"),
    pytest.param(analysis("KEEP_AS_IS_COMPLEX", complex_=True), PUBLISHED, id="2-keep-complex"),
    # 3: flawed, or ARCHIVE
    pytest.param(analysis("KEEP_AS_IS_COMPLEX", flawed=True), ARCHIVED, id="3-complex-but-flawed"),
    pytest.param(analysis("REVISE_TEXT", flawed=True), ARCHIVED, id="3-flawed"),
    pytest.param(analysis("Archive it"), ARCHIVED, id="3-archive-substring"),
    # 4: PENDING_ADMIN_REVIEW
    pytest.param(analysis("PENDING_ADMIN_REVIEW"), ADMIN, id="4-pending-admin-review"),
    # 5: anything else is archived
    pytest.param(analysis("REVISE_FEEDBACK"), ARCHIVED, id="5-revise-feedback"),
    pytest.param(
        analysis("ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW"), ARCHIVED, id="5-admin-review-not-pending"
    ),
    pytest.param(analysis(""), ARCHIVED, id="5-empty-action"),
]


@pytest.mark.parametrize(("output", "expected"), ROWS)
def test_the_decision_table_row_by_row(fake_llm, output, expected):
    fake_llm.script = [output]
    exercise = fill_with_answers()

    stats = run()

    exercise.refresh_from_db()
    assert exercise.status == expected
    assert exercise.status_changed_at == NOW
    assert exercise.last_reviewed_at == NOW
    review = review_of(exercise)
    assert (review.previous_status, review.new_status) == (PENDING, expected)
    assert review.analysis == output  # the assessor's output, verbatim
    assert review.note
    assert "\n" not in review.note
    assert stats["reviewed"] == 1
    assert stats["decisions"] == {expected: 1}
    assert review_decision(PendingExerciseAnalysis(**output)).new_status == expected


def test_the_decision_table_as_a_function():
    assert review_decision(PendingExerciseAnalysis(**analysis("PUBLISH_OK"))) == Decision(
        PUBLISHED, "assessor: the exercise is fine"
    )
    assert review_decision(PendingExerciseAnalysis(**analysis("NOTHING_USEFUL"))).new_status == (
        ARCHIVED
    )


def test_the_decision_is_appended_to_the_comments_with_a_real_utc_time(fake_llm):
    fake_llm.script = [
        analysis("ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW", flawed=True, revision="Accept една too.")
    ]
    exercise = fill_with_answers()
    Exercise.objects.filter(pk=exercise.pk).update(comments="imported from the old bank")

    review_processor(now=datetime(2025, 7, 1, 15, 4, 5, tzinfo=UTC), dry_run=False)

    exercise.refresh_from_db()
    assert exercise.comments == (
        "imported from the old bank\n"
        "---\n"
        "2025-07-01T15:04:05Z review_processor\n"
        "conclusion: learners confuse the forms\n"
        "suggested_action: ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW\n"
        "is_flawed: true\n"
        "is_complex_but_correct: false\n"
        "suggested_revision: Accept една too.\n"
        "new_status: pending_admin_review"
    )


def test_no_revision_line_without_a_revision(fake_llm):
    fake_llm.script = [analysis("KEEP_AS_IS_COMPLEX", complex_=True)]
    exercise = fill_with_answers()

    run()

    exercise.refresh_from_db()
    assert exercise.comments.startswith("---\n2025-07-01T12:00:00Z review_processor\n")
    assert "suggested_revision" not in exercise.comments
    assert exercise.comments.endswith("is_complex_but_correct: true\nnew_status: published")


# --- what the assessor sees (other types) --------------------------------------------------------


def test_the_exercise_assessor_sees_answers_in_context_with_counts_and_english_feedback(fake_llm):
    fake_llm.script = [analysis("PUBLISH_OK")]
    exercise = fill_with_answers()

    run()

    system, user = (str(message.content) for message in fake_llm.calls[0])
    assert "flawed or a fair but hard challenge" in system
    assert "level A2, topic food" in system
    assert "Text inside XML-style data tags" in system
    assert (
        "<exercise_data>\nFill in the blanks in the sentence.\nИскам ___ кафе.\n"
        "Words offered: едно, една, един\n</exercise_data>" in user
    )
    assert "<exercise_options>\n- Искам едно кафе. (chosen by 3 learners)\n</exercise_options>" in (
        user
    )
    # Incorrect answers: most frequent first; the two "една" variants are summed (2 + 1) and the
    # English feedback is the one shown.
    assert (
        "<student_answer>\n"
        "- Искам един кафе. (given by 5 learners)\n"
        "  Feedback they got: <code>кафе</code> is not masculine.\n"
        "- Искам една кафе. (given by 3 learners)\n"
        "  Feedback they got: <code>кафе</code> is neuter.\n"
        "</student_answer>" in user
    )
    assert "definite and indefinite forms" in user
    assert "ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW" in user
    call = LLMCall.objects.get()
    assert (call.purpose, call.operation, call.ok) == (
        "assessment",
        "assess_pending_exercise",
        True,
    )
    assert call.subject == f"review:exercise:{exercise.pk}"
    assert call.prompt_version == "assess_pending_exercise@1"


def test_the_story_assessor_sees_the_story_and_the_options(fake_llm):
    fake_llm.script = [analysis("PUBLISH_OK")]
    exercise = flagged(
        exercise_type=ExerciseType.STORY_COMPREHENSION,
        data={
            "content_text": "Иван отиде на пазар.",
            "audio_url": "https://cdn.example/a.ogg",
            "audio_telegram_file_id": "file-1",
            "options": ["Иван отиде на пазар.", "Иван спа.", "Иван плува."],
        },
    )

    run()

    user = str(fake_llm.calls[0][1].content)
    assert "Story:\nИван отиде на пазар.\n\nListen to the story" in user
    assert "Options:\n- Иван отиде на пазар.\n- Иван спа.\n- Иван плува." in user
    assert "(none recorded)" in user
    exercise.refresh_from_db()
    assert exercise.status == PUBLISHED


# --- accent words ------------------------------------------------------------------------------


def accent_output(common: bool, confidence: str) -> dict[str, Any]:
    return {
        "word_to_assess": "маса",
        "is_common_and_known": common,
        "reasoning": "An everyday noun." if common else "A rare dialect word.",
        "confidence_level": confidence,
    }


def test_a_common_accent_word_with_high_confidence_is_published(fake_llm):
    fake_llm.script = [accent_output(True, "HIGH")]
    exercise = accent()

    run()

    exercise.refresh_from_db()
    assert exercise.status == PUBLISHED
    system, user = (str(message.content) for message in fake_llm.calls[0])
    assert "Ignore the stress" in system
    assert "level A2 (topic general)" in system
    assert user == "The word to assess:\n<dictionary_word>\nмаса\n</dictionary_word>"
    stored = review_of(exercise).analysis
    assert stored["suggested_action"] == "PUBLISH_OK"
    assert stored["is_exercise_flawed"] is False
    assert stored["suggested_revision"] is None
    assert stored["word_analysis"] == accent_output(True, "HIGH")
    assert LLMCall.objects.get().operation == "assess_pending_accent_word"


@pytest.mark.parametrize("confidence", ["MEDIUM", "LOW"])
def test_a_common_accent_word_without_high_confidence_goes_to_staff(fake_llm, confidence):
    fake_llm.script = [accent_output(True, confidence)]
    exercise = accent()

    run()

    exercise.refresh_from_db()
    assert exercise.status == ADMIN
    stored = review_of(exercise).analysis
    assert stored["suggested_action"] == "PENDING_ADMIN_REVIEW"
    assert "'маса'" in stored["suggested_revision"]
    assert "level A2" in stored["suggested_revision"]
    assert confidence in stored["suggested_revision"]
    assert f"suggested_revision: {stored['suggested_revision']}" in exercise.comments


def test_an_uncommon_accent_word_is_archived(fake_llm):
    fake_llm.script = [accent_output(False, "HIGH")]
    exercise = accent()

    run()

    exercise.refresh_from_db()
    assert exercise.status == ARCHIVED
    stored = review_of(exercise).analysis
    assert (stored["is_exercise_flawed"], stored["suggested_action"]) == (True, "ARCHIVE")
    assert "A rare dialect word." in stored["primary_reason_for_user_errors"]


# --- no assessment: archived without the model, or left pending ---------------------------------


def test_an_exercise_without_any_verdict_is_archived_without_the_model(fake_llm):
    fake_llm.script = [analysis("PUBLISH_OK")]
    exercise = flagged()
    exercise.verdicts.all().delete()

    run()

    exercise.refresh_from_db()
    assert exercise.status == ARCHIVED
    assert review_of(exercise).note == "no answers with counts"
    assert fake_llm.calls == []
    assert "conclusion: no answers with counts\nnew_status: archived" in exercise.comments


def test_an_exercise_without_a_correct_answer_is_archived_without_the_model(fake_llm):
    fake_llm.script = [analysis("PUBLISH_OK")]
    exercise = flagged()
    exercise.verdicts.filter(is_reference=True).delete()
    ExerciseAnswerFactory(exercise=exercise, attempts_count=4)

    run()

    exercise.refresh_from_db()
    assert exercise.status == ARCHIVED
    assert review_of(exercise).note == "no correct reference answers"
    assert fake_llm.calls == []


def test_a_reference_answer_nobody_chose_still_counts_as_correct(fake_llm):
    fake_llm.script = [analysis("PUBLISH_OK")]
    exercise = flagged()
    ExerciseAnswerFactory(exercise=exercise, attempts_count=4)

    run()

    exercise.refresh_from_db()
    assert exercise.status == PUBLISHED
    assert "(chosen by 0 learners)" in str(fake_llm.calls[0][1].content)


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(TimeoutError("the provider timed out"), "LLMUnavailable", id="unavailable"),
        pytest.param("I am not sure what to say.", "LLMBadOutput", id="bad-output"),
    ],
)
def test_an_assessor_failure_leaves_the_exercise_pending_and_the_run_goes_on(
    fake_llm, failure, error
):
    fake_llm.script = [failure, analysis("PUBLISH_OK")]
    first = fill_with_answers()
    second = fill_with_answers("Искам ___ чай.")
    Exercise.objects.filter(pk=second.pk).update(
        status_changed_at=first.status_changed_at + timedelta(seconds=1)
    )

    stats = run()

    first.refresh_from_db()
    assert first.status == PENDING
    assert first.last_reviewed_at is None
    assert first.comments == ""
    failed = review_of(first)
    assert (failed.previous_status, failed.new_status) == (PENDING, PENDING)
    assert failed.note == f"assessment error: {error}"
    assert failed.analysis["error_type"] == error
    second.refresh_from_db()
    assert second.status == PUBLISHED
    assert (stats["errors"], stats["reviewed"]) == (1, 1)


def test_an_accent_assessor_failure_leaves_the_exercise_pending(fake_llm):
    fake_llm.script = [ConnectionError("refused")]
    exercise = accent()

    run()

    exercise.refresh_from_db()
    assert exercise.status == PENDING
    assert review_of(exercise).note == "assessment error: LLMUnavailable"


def test_without_an_llm_the_run_does_nothing_and_says_why():
    exercise = fill_with_answers()

    stats = run()

    assert (
        stats["skipped_reason"]
        == "no LLM configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
    )
    assert stats["queue"] == [exercise.pk]
    exercise.refresh_from_db()
    assert exercise.status == PENDING
    assert not ExerciseReview.objects.filter(source=ReviewSource.REVIEW_PROCESSOR).exists()
    assert LLMCall.objects.count() == 0


# --- the queue, dry runs and idempotency ---------------------------------------------------------


def test_a_batch_takes_the_oldest_flagged_exercises_first(fake_llm, settings):
    settings.REVIEW_PROCESSOR_BATCH_SIZE = 2
    fake_llm.script = [analysis("PUBLISH_OK")]
    exercises = [fill_with_answers(f"Искам ___ кафе номер {n}.") for n in range(3)]
    base = timezone.now() - timedelta(hours=3)
    for age, exercise in zip([1, 3, 2], exercises, strict=True):
        Exercise.objects.filter(pk=exercise.pk).update(
            status_changed_at=base - timedelta(hours=age)
        )
    newest = exercises[0]

    stats = run()

    assert stats["queue"] == [exercises[1].pk, exercises[2].pk]
    assert Exercise.objects.get(pk=newest.pk).status == PENDING
    assert set(Exercise.objects.filter(status=PUBLISHED).values_list("pk", flat=True)) == {
        exercises[1].pk,
        exercises[2].pk,
    }


def test_a_dry_run_shows_the_queue_and_changes_nothing(fake_llm):
    fake_llm.script = [analysis("ARCHIVE")]
    exercise = fill_with_answers()

    stats = review_processor(now=NOW, dry_run=True)

    assert stats["dry_run"] is True
    assert stats["queue"] == [exercise.pk]
    assert fake_llm.calls == []
    exercise.refresh_from_db()
    assert exercise.status == PENDING


def test_running_twice_leaves_the_same_state(fake_llm):
    first = fill_with_answers()
    second = accent()
    fake_llm.script = [analysis("PUBLISH_OK"), accent_output(False, "HIGH")]

    run()
    state = list(Exercise.objects.order_by("pk").values_list("pk", "status", "comments"))
    reviews = ExerciseReview.objects.count()
    calls = LLMCall.objects.count()
    again = review_processor(now=NOW + timedelta(hours=3), dry_run=False)

    assert list(Exercise.objects.order_by("pk").values_list("pk", "status", "comments")) == state
    assert dict((pk, status) for pk, status, _ in state) == {
        first.pk: PUBLISHED,
        second.pk: ARCHIVED,
    }
    assert ExerciseReview.objects.count() == reviews
    assert LLMCall.objects.count() == calls == 2
    assert again["queue"] == []
    assert again["reviewed"] == 0


@pytest.mark.django_db(transaction=True)
def test_an_exercise_that_left_the_queue_meanwhile_is_not_decided_again(openai_server):
    """Staff decided while the model was thinking: the processor's decision is dropped."""
    exercise = fill_with_answers()

    def staff_decides() -> None:  # in the fake server's thread, on its own connection
        try:
            exercise_change_status(
                exercise_id=exercise.pk,
                new_status=ARCHIVED,
                source=ReviewSource.STAFF,
                now=NOW,
                expected_status=PENDING,
            )
        finally:
            connection.close()

    openai_server.script(Before(staff_decides, analysis("PUBLISH_OK")))

    stats = run()

    exercise.refresh_from_db()
    assert exercise.status == ARCHIVED
    assert not ExerciseReview.objects.filter(
        exercise=exercise, source=ReviewSource.REVIEW_PROCESSOR
    ).exists()
    assert stats["skipped"] == 1
    assert stats["reviewed"] == 0
