"""Answer validators (purpose `validation`): fill-in-the-blank, choose-sentence.

Only answers that are the exercise's own options reach these prompts; the data tags are a
second layer. Accent and story answers are never sent to a model (automatic verdicts).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from duoniche.enums import ExerciseType
from duoniche.llm import Prompt
from exercises.prompts import DATA_RULE, ErrorTags
from exercises.tags import GRAMMAR_TAGS, VOCABULARY_TAGS


class AttemptValidation(BaseModel):
    is_correct: bool = Field(description="whether the learner's answer is acceptable")
    feedback: str = Field(
        description="empty when correct; otherwise a short explanation of the actual error"
    )
    error_tags: ErrorTags | None = Field(
        description="tags of the error from the allowed lists; null or empty lists when correct"
    )


SYSTEM = (
    "You are a patient tutor of {exercise_language}. A learner whose native language is "
    "{user_language} has answered an exercise, and you decide whether the answer is acceptable "
    "and explain mistakes in {user_language}.\n"
    "Rules:\n"
    "- Write every piece of {exercise_language} text inside <code>...</code>, never in quotes.\n"
    "- If the answer is correct, leave the feedback empty.\n"
    "- If it is wrong, explain briefly and concretely what the error is and why the correct form "
    "is needed. 'That is just how it is' or a bare 'wrong, try again' is not an explanation.\n"
    "- When in doubt, decide in the learner's favour: colloquially acceptable forms, word order "
    "that does not change the meaning and ambiguous articles count as correct.\n"
    "- Give error_tags only from these lists (or empty lists). Grammar: {grammar_tags}. "
    "Vocabulary: {vocabulary_tags}.\n"
    "- The only formatting allowed in the feedback is <b>, <i> and <code>.\n"
    f"- {DATA_RULE}\n"
    "{type_rules}"
)

FILL_RULES = (
    "This is a fill-in-the-blank exercise. Check the spelling, form and agreement of the words the "
    "learner put into the blanks, and whether the completed sentence is natural. Accept plausible "
    "alternatives: if a word from the offered list is in fact a valid choice, the answer is "
    "correct."
)
CHOOSE_RULES = (
    "This is a choose-the-correct-sentence exercise. Check the grammar and naturalness of the "
    "chosen sentence against the other options. If the learner picked the best option available, "
    "the answer is correct even if that sentence is not perfect."
)

FILL_USER = (
    "Target language: {exercise_language}\n"
    "Learner's native language: {user_language}\n"
    "Topic: {topic}\n"
    "Task: {task}\n"
    "Sentence with blanks (___): {text_with_blanks}\n"
    "Words offered: {words}\n"
    "The learner's completed sentence:\n"
    "{student_answer}"
)
CHOOSE_USER = (
    "Target language: {exercise_language}\n"
    "Learner's native language: {user_language}\n"
    "Topic: {topic}\n"
    "Task: {task}\n"
    "Options:\n"
    "{options}\n"
    "The sentence the learner chose:\n"
    "{student_answer}"
)

_TAGS = {
    "grammar_tags": "; ".join(GRAMMAR_TAGS),
    "vocabulary_tags": "; ".join(VOCABULARY_TAGS),
}


def _system(type_rules: str) -> str:
    # Fill the fixed parts now; the language placeholders stay for the call.
    return SYSTEM.replace("{type_rules}", type_rules).format(
        exercise_language="{exercise_language}", user_language="{user_language}", **_TAGS
    )


VALIDATE_FILL_IN_THE_BLANK = Prompt(
    id="validate_fill_in_the_blank",
    version="1",
    system=_system(FILL_RULES),
    user=FILL_USER,
    output=AttemptValidation,
)
VALIDATE_CHOOSE_SENTENCE = Prompt(
    id="validate_choose_sentence",
    version="1",
    system=_system(CHOOSE_RULES),
    user=CHOOSE_USER,
    output=AttemptValidation,
)

VALIDATORS: dict[str, Prompt[AttemptValidation]] = {
    ExerciseType.FILL_IN_THE_BLANK: VALIDATE_FILL_IN_THE_BLANK,
    ExerciseType.CHOOSE_SENTENCE: VALIDATE_CHOOSE_SENTENCE,
}
