"""Pending-review assessor prompts (purpose `assessment`).

The quality monitor flags published exercises that many learners get wrong; the review processor
asks for a second opinion before anything changes. Two prompts:

* `assess_pending_exercise` (fill, choose-sentence, story): is the exercise flawed, or a fair but
  hard challenge? The exercise and the learners' answers were written by a model and by learners,
  so they go only in the user message inside data tags.
* `assess_pending_accent_word` (choose-accent): how common and well known the word is for the
  learner's level; the stress is not judged. The word comes from a scraped dictionary page.

The accent result is mapped onto `PendingExerciseAnalysis` by `exercises.review_assessor`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from duoniche.llm import Prompt
from exercises.prompts import DATA_RULE

#: Actions the exercise assessor may suggest (PENDING_ADMIN_REVIEW comes from the accent mapping).
ACTIONS = (
    "PUBLISH_OK",
    "KEEP_AS_IS_COMPLEX",
    "ARCHIVE",
    "REVISE_TEXT",
    "REVISE_CORRECT_ANSWER",
    "ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW",
    "REVISE_FEEDBACK",
)


class PendingExerciseAnalysis(BaseModel):
    is_exercise_flawed: bool = Field(
        description="true if the exercise, its designated correct answer or its feedback is flawed"
    )
    is_complex_but_correct: bool = Field(
        description="true if the exercise is correct but genuinely hard for the level"
    )
    primary_reason_for_user_errors: str = Field(
        description="a brief explanation, in English, of why learners get it wrong"
    )
    suggested_action: str = Field(description="exactly one of: " + ", ".join(ACTIONS))
    suggested_revision: str | None = Field(
        description=(
            "the corrected text, the corrected answer or the extra answer to accept, when the "
            "action is a revision; null otherwise"
        )
    )


class AccentWordAnalysis(BaseModel):
    word_to_assess: str = Field(description="the word you assessed, exactly as given")
    is_common_and_known: bool = Field(
        description="whether the word is in common use and well known to learners at this level"
    )
    reasoning: str = Field(description="one or two sentences explaining the decision, in English")
    confidence_level: Literal["HIGH", "MEDIUM", "LOW"] = Field(
        description="how sure you are of the decision"
    )


EXERCISE_SYSTEM = (
    "You are an expert teacher of {exercise_language} who reviews exercises for learners whose "
    "native language is {user_language}. Many learners get the exercise below wrong. Decide "
    "whether the exercise is flawed or a fair but hard challenge.\n"
    "The exercise: type {exercise_type}, level {language_level}, topic {topic}.\n"
    "Be cautious. If you have real doubts about the clarity of the exercise, the correctness or "
    "uniqueness of its designated answer, its distractors or its existing feedback, mark it as "
    "flawed or suggest ARCHIVE. Suggest PUBLISH_OK, or KEEP_AS_IS_COMPLEX without a flaw, only "
    "when you are highly confident that the exercise is good and that the errors are ordinary "
    "learner mistakes.\n"
    f"{DATA_RULE}"
)

EXERCISE_USER = (
    "Exercise:\n"
    "{exercise_text}\n\n"
    "Designated correct answers, in full context, with the number of learners who chose each:\n"
    "{correct_answers}\n\n"
    "Incorrect learner answers, most frequent first, with counts and the feedback learners got:\n"
    "{incorrect_answers}\n\n"
    "Consider, in this order:\n"
    "1. Is the exercise clear and unambiguous?\n"
    "2. Is the designated answer correct, and the only correct one? Take into account how often "
    "it was chosen.\n"
    "3. Are the incorrect answers ordinary learner mistakes, or do they point to a flaw of the "
    "exercise (a misleading sentence, a wrong designated answer, an option that is also "
    "correct)?\n"
    "4. Take special care with the definite and indefinite forms of nouns, which can be "
    "ambiguous in {exercise_language}. If a learner's answer is plausibly correct because of such "
    "an ambiguity, suggest ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW and put that answer in "
    "suggested_revision; if the ambiguity makes the exercise hopeless, suggest ARCHIVE.\n"
    "5. Is the existing feedback, written in {user_language}, correct and helpful? Wrong or "
    "unhelpful feedback is a flaw too (REVISE_FEEDBACK).\n"
    "Then answer with suggested_action set to exactly one of: " + ", ".join(ACTIONS) + ". Give "
    "suggested_revision only with a revision action, otherwise null. If in doubt, prefer flawed "
    "or ARCHIVE."
)

ACCENT_SYSTEM = (
    "You are an expert in {exercise_language} vocabulary. A word-stress exercise asks learners "
    "whose native language is {user_language}, at level {language_level} (topic {topic}), to pick "
    "the correctly stressed form of a word, and many of them get it wrong. Decide how common and "
    "well known the word itself is for such a learner. Ignore the stress and any stress marks: "
    "judge only the word.\n"
    "- Put the word you assessed, exactly as given, in word_to_assess.\n"
    "- Keep the reasoning to one or two sentences in English.\n"
    "- Set confidence_level to HIGH, MEDIUM or LOW according to how sure you are.\n"
    f"- {DATA_RULE}"
)

ACCENT_USER = "The word to assess:\n{word}"

ASSESS_PENDING_EXERCISE = Prompt(
    id="assess_pending_exercise",
    version="1",
    system=EXERCISE_SYSTEM,
    user=EXERCISE_USER,
    output=PendingExerciseAnalysis,
)

ASSESS_PENDING_ACCENT_WORD = Prompt(
    id="assess_pending_accent_word",
    version="1",
    system=ACCENT_SYSTEM,
    user=ACCENT_USER,
    output=AccentWordAnalysis,
)
