"""One exercise generation, end to end (docs/jobs.md).

Level, topic and persona are chosen; the type's generator writes a draft (choose_accent comes from
`exercises.accent`); the quality assessor reviews it (not for accent); a story that is still
publishable gets its audio (`exercises.audio`); then the exercise, its reference verdict and the
assessor's review are saved in one short transaction. Every LLM, TTS and upload call happens
before that transaction, never inside one. The refill job and `generate_exercises` call this.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction

from duoniche import llm_budget, llm_models, metrics
from duoniche.enums import ExerciseStatus, ExerciseType, LLMPurpose
from duoniche.languages import get_language
from exercises import accent, audio
from exercises.content import content_hash
from exercises.drafts import Draft, GenerationFailed
from exercises.generators import (
    choose_level,
    choose_persona,
    choose_sentence_draft,
    choose_topic,
    fill_draft,
    story_draft,
)
from exercises.models import Exercise
from exercises.personas import Persona
from exercises.quality import Assessment, assess_generated_exercise
from exercises.services import DuplicateExercise, exercise_save_generated

logger = logging.getLogger(__name__)

GENERATED = "generated"
REJECTED = "rejected"
FAILED = "failed"
DUPLICATE = "duplicate"

#: The LLM purposes a generation needs: exercises are never published unreviewed.
REQUIRED_PURPOSES = (LLMPurpose.GENERATION, LLMPurpose.ASSESSMENT)

_GENERATORS: dict[str, Callable[..., Draft]] = {
    ExerciseType.FILL_IN_THE_BLANK: fill_draft,
    ExerciseType.CHOOSE_SENTENCE: choose_sentence_draft,
    ExerciseType.STORY_COMPREHENSION: story_draft,
}


@dataclass(frozen=True)
class GenerationResult:
    """What one generation did. `reason` says why it failed, the assessor's issues when rejected,
    or why a saved story has no audio; `tts_failed` is set only if speech synthesis failed."""

    outcome: str
    exercise_id: int | None = None
    reason: str = ""
    tts_failed: bool = False
    exercise_type: str = ""
    level: str = ""
    topic: str = ""
    persona: str | None = None
    status: str = ""


def generation_disabled_reason() -> str | None:
    """Why no exercise can be generated now (generation or assessment purpose off), or None."""
    for purpose in REQUIRED_PURPOSES:
        reason = llm_budget.disabled_reason(purpose)
        if reason is not None:
            return f"exercise generation disabled: {reason}"
    return None


class _DryRunRollback(Exception):
    pass


def exercise_generate(
    *,
    bot_id: str,
    exercise_type: str,
    now: datetime,
    level: str | None = None,
    dry_run: bool = False,
) -> GenerationResult:
    """Generate, assess and save one exercise of `exercise_type` for the bot `bot_id`.

    `level` overrides the weighted random level. A story is only generated when the audio
    pipeline is ready; if its audio then fails it is saved as `audio_generation_error` for the
    repair job. With `dry_run` the LLM work happens (and is in the ledger), story audio is
    skipped, and the save runs in a transaction that is rolled back: the result says what would
    have been saved, with no `exercise_id`.
    """
    language = get_language(bot_id)
    if language is None or exercise_type not in language.generated_types:
        return GenerationResult(
            outcome=FAILED,
            reason=f"{exercise_type} is not generated for {bot_id}",
            exercise_type=exercise_type,
        )
    disabled = generation_disabled_reason()
    if disabled is not None:
        return GenerationResult(outcome=FAILED, reason=disabled, exercise_type=exercise_type)
    if exercise_type == ExerciseType.STORY_COMPREHENSION and not dry_run:
        # A story that cannot get audio would never be served: don't write it.
        not_ready = audio.audio_pipeline_ready(bot_id)
        if not_ready is not None:
            return GenerationResult(
                outcome=FAILED,
                reason=f"audio pipeline not ready: {not_ready}",
                exercise_type=exercise_type,
            )

    started = time.monotonic()
    level = level or choose_level()
    topic = choose_topic(bot_id=bot_id, exercise_type=exercise_type)
    persona = choose_persona(topic=topic, exercise_type=exercise_type)
    chosen = GenerationResult(
        outcome=FAILED,
        exercise_type=exercise_type,
        level=level,
        topic=topic,
        persona=persona.name if persona is not None else None,
    )
    try:
        draft = _draft(
            bot_id=bot_id, exercise_type=exercise_type, level=level, topic=topic, persona=persona
        )
    except GenerationFailed as exc:
        logger.warning("generation of %s/%s failed: %s", bot_id, exercise_type, exc.reason)
        return dataclasses.replace(chosen, reason=exc.reason)

    key = content_hash(
        exercise_type=draft.exercise_type,
        exercise_language=draft.exercise_language,
        data=draft.data,
        correct_answer=draft.correct_answer,
    )
    if Exercise.objects.filter(content_hash=key).exists():
        # Known content: no need to assess it or to make its audio.
        return dataclasses.replace(chosen, outcome=DUPLICATE, reason="same content exists")

    labels = {
        **metrics.exercise_labels(exercise_type=exercise_type, level=draft.language_level),
        "user_language": metrics.user_language_label(settings.DEFAULT_USER_LANGUAGE),
        "target_language": metrics.bot_label(bot_id),
        "llm_model": llm_models.model_label(
            draft.llm_model or llm_models.model_name(LLMPurpose.GENERATION)
        ),
    }
    assessment: Assessment | None = None
    status = ExerciseStatus.PUBLISHED.value
    if exercise_type != ExerciseType.CHOOSE_ACCENT:
        assessed = time.monotonic()
        assessment = assess_generated_exercise(draft=draft)
        metrics.exercise_verification_time.labels(**labels).observe(time.monotonic() - assessed)
        metrics.exercise_verified.labels(**labels).inc()
        if not assessment.is_valid:
            status = ExerciseStatus.REJECTED_BY_ASSESSOR.value

    story_audio: audio.StoryAudio | None = None
    audio_problem = ""
    tts_failed = False
    if (
        exercise_type == ExerciseType.STORY_COMPREHENSION
        and status == ExerciseStatus.PUBLISHED
        and not dry_run
    ):
        story_audio, audio_problem, tts_failed = _story_audio(bot_id=bot_id, draft=draft)
        if story_audio is None:
            status = ExerciseStatus.AUDIO_GENERATION_ERROR.value
        else:
            draft = dataclasses.replace(
                draft,
                data={
                    **draft.data,
                    "audio_url": story_audio.url,
                    "audio_telegram_file_id": story_audio.file_id,
                },
            )

    issues = list(assessment.issues) if assessment is not None else []
    try:
        exercise_id = _save(
            draft=draft,
            status=status,
            key=key,
            issues=issues,
            assessment=assessment,
            now=now,
            dry_run=dry_run,
        )
    except DuplicateExercise:
        if story_audio is not None:
            audio.story_audio_discard(story_audio)
        return dataclasses.replace(
            chosen, outcome=DUPLICATE, reason="same content exists", tts_failed=tts_failed
        )

    rejected = status == ExerciseStatus.REJECTED_BY_ASSESSOR
    if not dry_run:
        (metrics.exercise_rejected if rejected else metrics.exercise_created).labels(**labels).inc()
        metrics.exercise_creation_time.labels(**labels).observe(time.monotonic() - started)
    reason = ", ".join(issues) if rejected else audio_problem
    logger.info(
        "generated %s/%s #%s: %s%s",
        bot_id,
        exercise_type,
        exercise_id,
        status,
        f" ({reason})" if reason else "",
    )
    return dataclasses.replace(
        chosen,
        outcome=REJECTED if rejected else GENERATED,
        exercise_id=exercise_id,
        reason=reason,
        tts_failed=tts_failed,
        status=status,
    )


def _draft(
    *, bot_id: str, exercise_type: str, level: str, topic: str, persona: Persona | None
) -> Draft:
    if exercise_type == ExerciseType.CHOOSE_ACCENT:
        return accent.accent_draft(bot_id=bot_id, level=level)
    generator = _GENERATORS.get(exercise_type)
    if generator is None:
        raise GenerationFailed(f"no generator for {exercise_type}")
    return generator(bot_id=bot_id, level=level, topic=topic, persona=persona)


def _story_audio(*, bot_id: str, draft: Draft) -> tuple[audio.StoryAudio | None, str, bool]:
    """The story's audio, or (None, why not, whether synthesis failed)."""
    try:
        produced = audio.story_audio_produce(
            bot_id=bot_id,
            text=str(draft.data["content_text"]),
            persona=draft.persona,
            level=draft.language_level,
            topic=draft.topic,
        )
    except audio.AudioFailed as exc:
        logger.warning("story audio for %s failed: %s", bot_id, exc.reason)
        return None, exc.reason, exc.synthesis_failed
    if not produced.url or not produced.file_id:
        audio.story_audio_discard(produced)
        return None, "story audio has no URL or no Telegram file id", False
    return produced, "", False


def _save(
    *,
    draft: Draft,
    status: str,
    key: str,
    issues: list[str],
    assessment: Assessment | None,
    now: datetime,
    dry_run: bool,
) -> int | None:
    """Save (the one transaction of a generation); with `dry_run`, roll it back."""
    analysis = assessment.analysis if assessment is not None else None
    if not dry_run:
        exercise = exercise_save_generated(
            draft=draft,
            status=status,
            content_hash=key,
            issues=issues,
            analysis=analysis,
            now=now,
        )
        return exercise.pk
    try:
        with transaction.atomic():
            exercise_save_generated(
                draft=draft,
                status=status,
                content_hash=key,
                issues=issues,
                analysis=analysis,
                now=now,
            )
            raise _DryRunRollback
    except _DryRunRollback:
        pass
    return None
