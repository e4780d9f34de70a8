"""Exercise generators (purpose `generation`).

One common system prompt (the teaching expert, the persona, the alphabet, the tag vocabularies)
followed by the type's own instructions, and one output schema per type. Nothing untrusted goes
in: every value is ours (the language, level, topic and persona), so there are no data tags.
Placeholders filled at call time: `user_language`, `exercise_language`, `alphabet`,
`language_level`, `topic`, `persona_line`, `exercise_kind`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from duoniche.enums import ExerciseType
from duoniche.llm import Prompt
from exercises.tags import GRAMMAR_TAGS, VOCABULARY_TAGS

#: Incorrect sentences or statements a choose-sentence or story exercise must have.
INCORRECT_COUNT = 2


class GenerationTags(BaseModel):
    grammar: list[str] = Field(description="grammar tags, only from the allowed grammar list")
    vocabulary: list[str] = Field(
        description="vocabulary tags, only from the allowed vocabulary list"
    )


def _exactly_two(values: list[str]) -> list[str]:
    if len(values) != INCORRECT_COUNT:
        raise ValueError(f"exactly {INCORRECT_COUNT} items are required, got {len(values)}")
    return values


#: Exactly two strings (checked on parsing: another count is invalid output).
TwoStrings = Annotated[list[str], AfterValidator(_exactly_two)]


class FillInTheBlankGeneration(BaseModel):
    text_with_blanks: str = Field(
        description="the sentence with each missing word replaced by ___ (three underscores)"
    )
    correct_words: list[str] = Field(
        description="the missing words in blank order, one single word per blank"
    )
    incorrect_options: list[str] = Field(
        description="2-4 single-word distractors per blank, in the target alphabet only"
    )
    grammar_tags: GenerationTags


class ChooseSentenceGeneration(BaseModel):
    correct_sentence: str = Field(description="the one correct, natural sentence")
    incorrect_sentences: TwoStrings = Field(
        description="exactly 2 near-copies of the correct sentence, each with one clear error"
    )
    grammar_tags: GenerationTags


class StoryGeneration(BaseModel):
    story_text: str = Field(description="the story, 3-5 sentences")
    correct_statement: str = Field(
        description="a statement about one specific detail that the story confirms"
    )
    incorrect_statements: TwoStrings = Field(
        description="exactly 2 plausible statements that the story does not confirm"
    )
    grammar_tags: GenerationTags


SYSTEM = (
    "You are an expert teacher of {exercise_language} who writes exercises for language "
    "learners. Write one {exercise_kind} exercise for a learner whose native language is "
    "{user_language}, who is learning {exercise_language} at CEFR level {language_level}. The "
    "topic is: {topic}.\n"
    "{persona_line}\n"
    "General rules:\n"
    "- If a persona is given above, the situation and the wording must clearly show the "
    "persona's role, emotion, motivation and way of speaking. The same need sounds different from "
    "different people: an irritated customer complains that the change is wrong again, a polite "
    "waiter asks whether everything was to the guest's liking, a rushing student asks for the "
    "quickest way in as few words as possible. Without a persona, write a neutral everyday "
    "situation.\n"
    "- Every piece of {exercise_language} text (sentences, answers and distractors alike) must "
    "use only the {alphabet} alphabet of {exercise_language}. Never mix in look-alike letters "
    "from another script (for example a Latin 'a', 'e', 'o', 'p' or 'c' inside a Cyrillic word, "
    "or the other way round).\n"
    "- For Serbian, write everything in the Latin alphabet, never in Cyrillic.\n"
    '- Give grammar_tags as an object {{"grammar": [...], "vocabulary": [...]}} describing '
    "what the exercise practises. Use only tags from these lists, exactly as written (they are "
    "English).\n"
    "  Grammar: {grammar_tags}.\n"
    "  Vocabulary: {vocabulary_tags}.\n"
    "{type_rules}"
)

FILL_RULES = (
    "Fill-in-the-blank rules:\n"
    "- Write one interesting, natural sentence that suits the level and the topic (and the "
    "persona, if any) and has exactly one reading.\n"
    "- Replace one key word with ___ (three underscores). If the sentence is longer than 11 words, "
    "replace two key words, each with its own ___.\n"
    "- Prefer single words that test grammar or topic vocabulary and that cannot be guessed "
    "without understanding the context.\n"
    "- correct_words: the missing words in the order of the blanks, each a single word without "
    "spaces.\n"
    "- incorrect_options: 2 to 4 single-word distractors for each blank. Every distractor must "
    "make the sentence grammatically wrong or absurd; none may produce another valid sentence. "
    "Put each distractor into each blank and check the result: if any substitution gives a "
    "valid sentence, start again with a different sentence or different distractors.\n"
    "- Finally check that every word uses only the {alphabet} alphabet."
)

CHOOSE_RULES = (
    "Choose-the-correct-sentence rules:\n"
    "- correct_sentence: one correct, natural sentence that suits the level and the topic (and "
    "the persona, if any).\n"
    "- incorrect_sentences: exactly 2 sentences that stay very close to the correct one in "
    "structure and vocabulary. Each contains one clear, common grammatical error suited to the "
    "level: tense, case, preposition, word order, agreement, article or spelling. A sentence that "
    "is grammatical but means something else does not count as incorrect.\n"
    "- Check that exactly one of the three sentences is correct, then check that every sentence "
    "uses only the {alphabet} alphabet."
)

STORY_RULES = (
    "Story comprehension rules:\n"
    "- story_text: a coherent story of 3 to 5 sentences in {exercise_language}, with several "
    "details, actions or characters. With a persona, the persona tells the story in the first "
    "person (or the story clearly centres on them) and it shows the persona's traits.\n"
    "- correct_statement: a statement about one specific detail of the story (not a summary) "
    "that the story confirms.\n"
    "- incorrect_statements: exactly 2 statements that sound plausible to someone who only "
    "skimmed the story but are not confirmed by it. Use subtle changes of a detail, consequences "
    "the story does not state, mixed-up elements of the story, or reasonable assumptions it does "
    "not confirm. Plain negations of the story and 'X instead of Y' or 'not Y but X' patterns "
    "are not allowed.\n"
    "- Check that exactly one statement is confirmed by the story, that the story and the "
    "statements are natural for the level, and that everything uses only the {alphabet} alphabet."
)

USER = (
    "Write the {exercise_kind} exercise in {exercise_language} now, following the instructions "
    "above."
)

_TAGS = {
    "{grammar_tags}": "; ".join(GRAMMAR_TAGS),
    "{vocabulary_tags}": "; ".join(VOCABULARY_TAGS),
}


def _system(type_rules: str) -> str:
    # The fixed parts (tag lists, type rules) are filled now; the rest at call time.
    text = SYSTEM.replace("{type_rules}", type_rules)
    for placeholder, value in _TAGS.items():
        text = text.replace(placeholder, value)
    return text


GENERATE_FILL_IN_THE_BLANK = Prompt(
    id="generate_fill_in_the_blank",
    version="1",
    system=_system(FILL_RULES),
    user=USER,
    output=FillInTheBlankGeneration,
)
GENERATE_CHOOSE_SENTENCE = Prompt(
    id="generate_choose_sentence",
    version="1",
    system=_system(CHOOSE_RULES),
    user=USER,
    output=ChooseSentenceGeneration,
)
GENERATE_STORY_COMPREHENSION = Prompt(
    id="generate_story_comprehension",
    version="1",
    system=_system(STORY_RULES),
    user=USER,
    output=StoryGeneration,
)

#: How each type is named in the prompts.
EXERCISE_KINDS: dict[str, str] = {
    ExerciseType.FILL_IN_THE_BLANK: "fill-in-the-blank",
    ExerciseType.CHOOSE_SENTENCE: "choose-the-correct-sentence",
    ExerciseType.STORY_COMPREHENSION: "story comprehension",
}
