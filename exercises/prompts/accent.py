"""Choose-accent prompts (purpose `generation`): word suitability, definition.

The word comes from a scraped dictionary page, so it is untrusted: it goes only into the user
message, inside `<dictionary_word>` tags, with any closing tag inside it neutralised.
The suitability check sees the word without its stress mark (the stress is not to be judged); the
definition sees the stressed word, because the stress tells homographs apart (па̀ра / пара̀).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from duoniche.llm import Prompt
from exercises.prompts import DATA_RULE, data_tag
from exercises.tags import VOCABULARY_TAGS

WORD_TAG = "dictionary_word"
_CLOSING_WORD_TAG = re.compile(r"<\s*/\s*" + WORD_TAG + r"\s*>", re.IGNORECASE)


def word_tag(word: str) -> str:
    """`word` wrapped in `<dictionary_word>` tags, closing data tags inside it neutralised."""
    return data_tag(WORD_TAG, _CLOSING_WORD_TAG.sub(f"[/{WORD_TAG}]", word))


class WordSuitabilityAssessment(BaseModel):
    word_to_assess: str = Field(description="the word you assessed, exactly as given")
    is_common_and_suitable: bool = Field(
        description="whether the word is common, well known and useful for this learner"
    )
    reasoning: str = Field(description="one or two sentences explaining the decision, in English")
    confidence_level: Literal["HIGH", "MEDIUM", "LOW"] = Field(
        description="how sure you are of the decision"
    )


class DefinitionTags(BaseModel):
    vocabulary: list[str] = Field(
        description="vocabulary tags of the word, only from the allowed list (may be empty)"
    )


class WordDefinition(BaseModel):
    meaning: str = Field(
        description="a concise definition of the word in Bulgarian, without any label before it"
    )
    examples: list[str] = Field(
        description="one or two short, simple example sentences in Bulgarian using the word"
    )
    grammar_tags: DefinitionTags = Field(description="the word's vocabulary tags")


SUITABILITY_SYSTEM = (
    "You help choose words for a Bulgarian word-stress exercise. The learner's native language "
    "is {user_language} and their Bulgarian level is {language_level}.\n"
    "You receive one headword picked at random from a Bulgarian dictionary, with its stress mark "
    "removed. Decide whether this learner is likely to meet the word and benefit from knowing it: "
    "an everyday, well-known word is suitable; an archaic, dialectal, rare, highly technical or "
    "offensive word, a proper name, an abbreviation or a fragment of a word is not.\n"
    "Rules:\n"
    "- Judge only the word itself. Do not judge or discuss its stress.\n"
    "- Put the word you assessed, exactly as given, in word_to_assess.\n"
    "- Keep the reasoning to one or two sentences in English.\n"
    "- Set confidence_level to HIGH, MEDIUM or LOW according to how sure you are.\n"
    f"- {DATA_RULE}"
)
SUITABILITY_USER = "The dictionary headword to assess:\n{word}"

DEFINITION_SYSTEM = (
    "You write short dictionary entries for learners of Bulgarian at level {language_level}.\n"
    "You receive one Bulgarian word. A grave accent after a vowel marks its stressed syllable; "
    "where words are spelled alike, it tells you which word is meant.\n"
    "Rules:\n"
    "- meaning: a concise definition of the word's most common sense, written in simple "
    "Bulgarian suited to the level. Write only the definition, with no label such as "
    '"Значение:" before it.\n'
    "- examples: one or two short, natural example sentences in Bulgarian that use the word, "
    "simple enough for the level.\n"
    "- Write Bulgarian only in the Cyrillic alphabet, with no look-alike letters from other "
    "scripts, and mark no stress in your text.\n"
    "- grammar_tags.vocabulary: the topics the word belongs to, only from this list, or an empty "
    "list: {vocabulary_tags}.\n"
    f"- {DATA_RULE}"
)
DEFINITION_USER = "The word to define:\n{word}"

ACCENT_WORD_SUITABILITY = Prompt(
    id="accent_word_suitability",
    version="1",
    system=SUITABILITY_SYSTEM,
    user=SUITABILITY_USER,
    output=WordSuitabilityAssessment,
)
ACCENT_WORD_DEFINITION = Prompt(
    id="accent_word_definition",
    version="1",
    system=DEFINITION_SYSTEM.replace("{vocabulary_tags}", "; ".join(VOCABULARY_TAGS)),
    user=DEFINITION_USER,
    output=WordDefinition,
)
