"""Exercise generators for fill-in-the-blank, choose-sentence and story.

Each generator asks the generation model for one exercise and post-processes the answer into a
`Draft`: text normalised (NFC, whitespace, blanks as `___`), options in wire order (correct first),
tags restricted to the vocabularies. Any LLM failure becomes `GenerationFailed`. Also the choices
made before a generation (docs/jobs.md): level, topic and persona.
"""

from __future__ import annotations

import random
from typing import Any

from django.conf import settings

from duoniche import llm, llm_models
from duoniche.enums import ExerciseTopic, ExerciseType, LanguageLevel, LLMPurpose
from duoniche.languages import Language, get_language
from exercises.content import normalize_blanks, normalize_text
from exercises.drafts import Draft, GenerationFailed
from exercises.personas import PERSONAS, Persona
from exercises.prompts import language_name
from exercises.prompts.generate import (
    EXERCISE_KINDS,
    GENERATE_CHOOSE_SENTENCE,
    GENERATE_FILL_IN_THE_BLANK,
    GENERATE_STORY_COMPREHENSION,
    ChooseSentenceGeneration,
    FillInTheBlankGeneration,
    GenerationTags,
    StoryGeneration,
)
from exercises.tags import GRAMMAR_TAGS, VOCABULARY_TAGS

#: Level offsets from `DEFAULT_LANGUAGE_LEVEL` and their weights (A2 → A1 10 %, A2 75 %, B1 10 %,
#: B2 5 %).
LEVEL_OFFSET_WEIGHTS: dict[int, float] = {0: 0.75, 1: 0.10, 2: 0.05, -1: 0.10}

#: Topic groups: which personas fit which topics.
TOPIC_GROUPS: dict[str, tuple[str, ...]] = {
    "SERVICE": ("shopping", "restaurant", "pharmacy", "public_services"),
    "DAILY_LIFE": ("home", "housing", "transport", "money", "family", "KIDS"),
    "SOCIAL": ("work", "education", "relationships", "dating", "culture"),
    "LEISURE": ("travel", "entertainment", "wine", "NATURE", "ANIMALS", "sports"),
    "HEALTH_EMERGENCY": ("health", "emergencies"),
    "NEUTRAL": ("general", "food", "weather", "digital_life", "tech"),
}
GROUP_BY_TOPIC: dict[str, str] = {
    topic: group for group, topics in TOPIC_GROUPS.items() for topic in topics
}

_GRAMMAR = frozenset(GRAMMAR_TAGS)
_VOCABULARY = frozenset(VOCABULARY_TAGS)


# --- choices before a generation --------------------------------------------------------------


def choose_level(*, rng: random.Random | None = None) -> str:
    """A level around `DEFAULT_LANGUAGE_LEVEL` (offsets weighted, kept within A1–C2)."""
    rng = rng or random.Random()
    levels = list(LanguageLevel.values)
    base = levels.index(settings.DEFAULT_LANGUAGE_LEVEL)
    (offset,) = rng.choices(list(LEVEL_OFFSET_WEIGHTS), weights=list(LEVEL_OFFSET_WEIGHTS.values()))
    return levels[min(max(base + offset, 0), len(levels) - 1)]


def generation_topics(*, bot_id: str, exercise_type: str) -> tuple[str, ...]:
    """The topics a generation may use: `general` for accent, else all minus the excluded."""
    if exercise_type == ExerciseType.CHOOSE_ACCENT:
        return (ExerciseTopic.GENERAL.value,)
    language = get_language(bot_id)
    excluded = language.excluded_topics if language is not None else frozenset()
    return tuple(topic for topic in ExerciseTopic.values if topic not in excluded)


def choose_topic(*, bot_id: str, exercise_type: str, rng: random.Random | None = None) -> str:
    """A topic drawn uniformly from `generation_topics`."""
    return (rng or random.Random()).choice(
        generation_topics(bot_id=bot_id, exercise_type=exercise_type)
    )


def compatible_personas(*, topic: str) -> tuple[Persona, ...]:
    """Personas whose groups contain the topic's group."""
    group = GROUP_BY_TOPIC.get(topic)
    return tuple(persona for persona in PERSONAS if group in persona.groups)


def choose_persona(
    *, topic: str, exercise_type: str, rng: random.Random | None = None
) -> Persona | None:
    """A persona compatible with the topic, with probability `CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC`.

    choose_accent never has one; a topic without compatible personas neither.
    """
    if exercise_type == ExerciseType.CHOOSE_ACCENT:
        return None
    rng = rng or random.Random()
    if rng.random() >= settings.CHANCE_TO_GENERATE_PERSONA_FOR_TOPIC:
        return None
    candidates = compatible_personas(topic=topic)
    return rng.choice(candidates) if candidates else None


# --- prompts ----------------------------------------------------------------------------------


def persona_line(persona: Persona | None) -> str:
    """The persona as one prompt line (its non-empty parts), or "" without one."""
    if persona is None:
        return ""
    parts = [
        ("name", persona.name),
        ("role", persona.role),
        ("emotion", persona.emotion),
        ("motivation", persona.motivation),
        ("communication style", persona.communication_style),
    ]
    return "Persona: " + "; ".join(f"{label}: {value}" for label, value in parts if value) + "."


def _language(bot_id: str) -> Language:
    language = get_language(bot_id)
    if language is None:
        raise GenerationFailed(f"unknown language {bot_id!r}")
    return language


def _generate(
    *,
    prompt: llm.Prompt[Any],
    exercise_type: str,
    language: Language,
    level: str,
    topic: str,
    persona: Persona | None,
) -> Any:
    values = {
        "user_language": language_name(settings.DEFAULT_USER_LANGUAGE),
        "exercise_language": language.bot_id,
        "alphabet": language.generation_script.capitalize(),
        "language_level": level,
        "topic": topic,
        "persona_line": persona_line(persona),
        "exercise_kind": EXERCISE_KINDS[exercise_type],
    }
    try:
        return llm.structured_call(
            purpose=LLMPurpose.GENERATION,
            prompt=prompt,
            values=values,
            subject=generation_subject(bot_id=language.bot_id, exercise_type=exercise_type),
        )
    except llm.LLMError as exc:
        raise GenerationFailed(f"{type(exc).__name__}: {exc}") from exc


def generation_subject(*, bot_id: str, exercise_type: str) -> str:
    """The ledger subject of one generation's calls (`generation:Bulgarian:choose_sentence`)."""
    return f"generation:{bot_id}:{exercise_type}"


def _tags(tags: GenerationTags) -> dict[str, list[str]]:
    """The model's tags restricted to the vocabularies, deduplicated in order."""
    return {
        "grammar": list(dict.fromkeys(tag for tag in tags.grammar if tag in _GRAMMAR)),
        "vocabulary": list(dict.fromkeys(tag for tag in tags.vocabulary if tag in _VOCABULARY)),
    }


def _texts(values: list[str]) -> list[str]:
    """Normalised texts, empty ones dropped."""
    return [text for text in (normalize_text(value) for value in values) if text]


def _required(value: str, what: str) -> str:
    text = normalize_text(value)
    if not text:
        raise GenerationFailed(f"the model returned an empty {what}")
    return text


# --- generators -------------------------------------------------------------------------------


def fill_draft(*, bot_id: str, level: str, topic: str, persona: Persona | None) -> Draft:
    """A fill-in-the-blank exercise: words = correct words (blank order) + distractors."""
    language = _language(bot_id)
    result: FillInTheBlankGeneration = _generate(
        prompt=GENERATE_FILL_IN_THE_BLANK,
        exercise_type=ExerciseType.FILL_IN_THE_BLANK,
        language=language,
        level=level,
        topic=topic,
        persona=persona,
    )
    text = normalize_blanks(result.text_with_blanks)
    if not text:
        raise GenerationFailed("the model returned an empty sentence")
    correct = _texts(result.correct_words)
    if not correct:
        raise GenerationFailed("the model returned no correct words")
    return Draft(
        exercise_type=ExerciseType.FILL_IN_THE_BLANK,
        exercise_language=language.bot_id,
        language_level=level,
        topic=topic,
        data={"text_with_blanks": text, "words": correct + _texts(result.incorrect_options)},
        correct_answer={"words": correct},
        grammar_tags=_tags(result.grammar_tags),
        persona=persona.name if persona is not None else None,
        llm_model=llm_models.model_name(LLMPurpose.GENERATION),
    )


def choose_sentence_draft(*, bot_id: str, level: str, topic: str, persona: Persona | None) -> Draft:
    """A choose-sentence exercise: options = the correct sentence, then the two incorrect ones."""
    language = _language(bot_id)
    result: ChooseSentenceGeneration = _generate(
        prompt=GENERATE_CHOOSE_SENTENCE,
        exercise_type=ExerciseType.CHOOSE_SENTENCE,
        language=language,
        level=level,
        topic=topic,
        persona=persona,
    )
    correct = _required(result.correct_sentence, "correct sentence")
    return Draft(
        exercise_type=ExerciseType.CHOOSE_SENTENCE,
        exercise_language=language.bot_id,
        language_level=level,
        topic=topic,
        data={"options": [correct, *_texts(result.incorrect_sentences)]},
        correct_answer={"answer": correct},
        grammar_tags=_tags(result.grammar_tags),
        persona=persona.name if persona is not None else None,
        llm_model=llm_models.model_name(LLMPurpose.GENERATION),
    )


def story_draft(*, bot_id: str, level: str, topic: str, persona: Persona | None) -> Draft:
    """A story exercise without audio yet: options = the true statement, then the two others."""
    language = _language(bot_id)
    result: StoryGeneration = _generate(
        prompt=GENERATE_STORY_COMPREHENSION,
        exercise_type=ExerciseType.STORY_COMPREHENSION,
        language=language,
        level=level,
        topic=topic,
        persona=persona,
    )
    story = _required(result.story_text, "story")
    correct = _required(result.correct_statement, "correct statement")
    return Draft(
        exercise_type=ExerciseType.STORY_COMPREHENSION,
        exercise_language=language.bot_id,
        language_level=level,
        topic=topic,
        data={
            "content_text": story,
            "audio_url": "",
            "audio_telegram_file_id": "",
            "options": [correct, *_texts(result.incorrect_statements)],
        },
        correct_answer={"answer": correct},
        grammar_tags=_tags(result.grammar_tags),
        persona=persona.name if persona is not None else None,
        llm_model=llm_models.model_name(LLMPurpose.GENERATION),
    )
