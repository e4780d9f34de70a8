"""The choose_accent generator: a stressed Bulgarian word from a dictionary.

A batch of random entry pages is fetched concurrently from the dictionary
(`ACCENT_DICTIONARY_RANDOM_URL`); each page's headword is printed with its stress mark. Candidates
keep exactly one stress mark after a vowel and 2–5 vowels. In fetch order, the LLM judges whether
the word is common and suitable, then writes a Bulgarian definition with examples; the first
candidate that passes both becomes the draft. Distractors move the stress to every other vowel.

The stored exercise must also pass the bank's accent rules (docs/exercise-bank.md): options are the
same word once the marks are removed, each with exactly one mark. No LLM or HTTP call here may run
inside a database transaction (the caller's concern).
"""

from __future__ import annotations

import http.client
import logging
import unicodedata
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
from django.conf import settings

from duoniche import llm, llm_budget, llm_models
from duoniche.enums import ExerciseTopic, ExerciseType, LLMPurpose
from exercises.bank import MAX_MEANING_LENGTH
from exercises.content import STRESS_MARK, normalize_text, stress_problem, without_stress
from exercises.drafts import Draft, GenerationFailed
from exercises.prompts import language_name
from exercises.prompts.accent import (
    ACCENT_WORD_DEFINITION,
    ACCENT_WORD_SUITABILITY,
    WordDefinition,
    word_tag,
)
from exercises.tags import ACCENT_TAG, VOCABULARY_TAGS

logger = logging.getLogger(__name__)

ACCENT_LANGUAGE = "Bulgarian"
ACCENT_BATCH_SIZE = 15
ACCENT_FETCH_WORKERS = 5
ACCENT_FETCH_TIMEOUT_SECONDS = 10
#: Entry pages are small; anything past this is not read.
ACCENT_MAX_PAGE_BYTES = 2_000_000
ACCENT_USER_AGENT = "DuoNicheBot/1.0 (Bulgarian language-learning bot; accent exercises)"
MIN_VOWELS = 2
MAX_VOWELS = 5
VOWELS = frozenset("аеиоуъюя")
MAX_EXAMPLES = 2
MEANING_LABEL = "Значение"
EXAMPLES_LABEL = "Примери"
#: Generation prompts always address an English speaker.
USER_LANGUAGE_CODE = "en"

SUITABILITY_OPERATION = "accent_word_suitability"
DEFINITION_OPERATION = "accent_word_definition"

#: The headword: the first span of the entry's main heading (the dictionary's historic layout).
PRIMARY_HEADWORD_XPATH = "/html/body/div[2]/div[2]/div[1]/h2/span[1]"
#: Fallback: the first `h2 > span` in the content area (the whole body when there is none).
CONTENT_AREA_XPATH = "//*[@id='content' or @role='main' or self::main]"
FALLBACK_HEADWORD_XPATH = ".//h2/span"


# --- the dictionary ---------------------------------------------------------------------------


def _first_text(elements: Any) -> str | None:
    """The normalised text of the first element of an XPath result, or None."""
    if not isinstance(elements, list) or not elements:
        return None
    first = elements[0]
    if not isinstance(first, lxml.html.HtmlElement):
        return None
    return normalize_text(first.text_content()) or None


def headword_from_html(page: str) -> str | None:
    """The stressed headword of an entry page (NFC), or None when the page has none."""
    try:
        root = lxml.html.document_fromstring(page)
    except (lxml.etree.ParserError, ValueError):
        return None
    primary = _first_text(root.xpath(PRIMARY_HEADWORD_XPATH))
    if primary:
        return primary
    areas = root.xpath(CONTENT_AREA_XPATH) or root.xpath("/html/body")
    for area in areas:
        found = _first_text(area.xpath(FALLBACK_HEADWORD_XPATH))
        if found:
            return found
    return None


def fetch_headword(url: str) -> str | None:
    """GET one random entry page (redirects followed) and parse its headword; None on failure."""
    request = urllib.request.Request(
        url,
        headers={
            "User-Agent": ACCENT_USER_AGENT,
            "Accept": "text/html",
            "Accept-Language": "bg",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=ACCENT_FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(ACCENT_MAX_PAGE_BYTES)
            charset = response.headers.get_content_charset() or "utf-8"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # Only the host and the error class: a configured URL may carry credentials.
        status = getattr(exc, "code", None)
        logger.info(
            "accent dictionary fetch from %s failed: %s%s",
            urlsplit(url).hostname or "?",
            type(exc).__name__,
            f" (HTTP {status})" if isinstance(status, int) else "",
        )
        return None
    try:
        page = body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        page = body.decode("utf-8", errors="replace")
    return headword_from_html(page)


def fetch_headwords(url: str, count: int = ACCENT_BATCH_SIZE) -> list[str]:
    """`count` random headwords fetched concurrently, in fetch order; failed fetches skipped."""
    with ThreadPoolExecutor(max_workers=ACCENT_FETCH_WORKERS) as pool:
        results = list(pool.map(fetch_headword, [url] * count))
    return [word for word in results if word]


# --- the word ---------------------------------------------------------------------------------


def _plain(accented: str) -> str:
    """The word without its stress mark, NFC (so `й` stays one letter, not и + breve)."""
    return unicodedata.normalize("NFC", without_stress(accented))


def _is_cyrillic_word(word: str) -> bool:
    """Cyrillic letters (optionally hyphenated) and the stress mark only; NFC input."""
    return all(
        ch in (STRESS_MARK, "-") or (ch.isalpha() and "CYRILLIC" in unicodedata.name(ch, ""))
        for ch in word
    )


def _stress_variants(plain: str) -> list[str]:
    """The word stressed on each of its vowels in turn (NFC), in vowel order."""
    return [
        unicodedata.normalize("NFC", plain[: i + 1] + STRESS_MARK + plain[i + 1 :])
        for i, ch in enumerate(plain)
        if ch.lower() in VOWELS
    ]


def accent_candidate(headword: str) -> str | None:
    """`headword` (NFC) when it can be an exercise: one stress mark after a vowel, 2–5 vowels."""
    word = normalize_text(headword)
    if not word or " " in word or not _is_cyrillic_word(word):
        return None
    if stress_problem(word) is not None:
        return None
    # Stressed on one of its own vowels: the word is one of its stress variants.
    variants = _stress_variants(_plain(word))
    if not MIN_VOWELS <= len(variants) <= MAX_VOWELS or word not in variants:
        return None
    return word


def accent_distractors(accented: str) -> list[str]:
    """The word with the stress moved to each other vowel: deduplicated, in vowel order."""
    return [
        variant
        for variant in dict.fromkeys(_stress_variants(_plain(accented)))
        if variant != accented
    ]


def _definition_text(meaning: str) -> str:
    """The definition, normalised, without a `Значение:` label the model may have echoed."""
    text = normalize_text(meaning)
    label = f"{MEANING_LABEL}:"
    if text.casefold().startswith(label.casefold()):
        text = text[len(label) :].strip()
    return text


def accent_meaning(meaning: str, examples: list[str]) -> str:
    """The stored meaning: `Значение: …`, then `Примери:` and `- example` lines if any."""
    stored = f"{MEANING_LABEL}: {_definition_text(meaning)}"
    kept = [example for example in (normalize_text(e) for e in examples) if example]
    if kept:
        lines = "\n".join(f"- {example}" for example in kept[:MAX_EXAMPLES])
        stored += f"\n{EXAMPLES_LABEL}:\n{lines}"
    return stored


def _vocabulary_tags(tags: list[str]) -> list[str]:
    allowed = frozenset(VOCABULARY_TAGS)
    return list(dict.fromkeys(tag for tag in (normalize_text(t) for t in tags) if tag in allowed))


# --- the LLM steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accepted:
    accented: str
    definition: WordDefinition
    meaning: str


def _subject() -> str:
    return f"generation:{ACCENT_LANGUAGE}:{ExerciseType.CHOOSE_ACCENT.value}"


def _is_suitable(*, accented: str, level: str) -> bool:
    try:
        assessment = llm.structured_call(
            purpose=LLMPurpose.GENERATION,
            prompt=ACCENT_WORD_SUITABILITY,
            values={
                "user_language": language_name(USER_LANGUAGE_CODE),
                "language_level": level,
                "word": word_tag(_plain(accented)),
            },
            subject=_subject(),
            attempts=1,
            operation=SUITABILITY_OPERATION,
        )
    except llm.LLMError as exc:
        logger.info("accent word suitability check failed: %s", type(exc).__name__)
        return False
    return assessment.is_common_and_suitable and assessment.confidence_level != "LOW"


def _definition(*, accented: str, level: str) -> tuple[WordDefinition, str] | None:
    try:
        definition = llm.structured_call(
            purpose=LLMPurpose.GENERATION,
            prompt=ACCENT_WORD_DEFINITION,
            values={"language_level": level, "word": word_tag(accented)},
            subject=_subject(),
            attempts=1,
            operation=DEFINITION_OPERATION,
        )
    except llm.LLMError as exc:
        logger.info("accent word definition failed: %s", type(exc).__name__)
        return None
    if not _definition_text(definition.meaning):
        logger.info("accent word definition rejected: empty meaning")
        return None
    meaning = accent_meaning(definition.meaning, definition.examples)
    if len(meaning) > MAX_MEANING_LENGTH:
        logger.info("accent word definition rejected: longer than %s", MAX_MEANING_LENGTH)
        return None
    return definition, meaning


def _first_accepted(candidates: list[str], *, level: str) -> _Accepted | None:
    for accented in candidates:
        if not _is_suitable(accented=accented, level=level):
            continue
        defined = _definition(accented=accented, level=level)
        if defined is None:
            continue
        definition, meaning = defined
        return _Accepted(accented=accented, definition=definition, meaning=meaning)
    return None


# --- the generator ----------------------------------------------------------------------------


def accent_draft(*, bot_id: str, level: str) -> Draft:
    """A choose_accent draft for `level` from a batch of random dictionary words.

    Raises `GenerationFailed` for a language other than Bulgarian, when generation is disabled,
    or when none of the `ACCENT_BATCH_SIZE` candidates is usable.
    """
    if bot_id != ACCENT_LANGUAGE:
        raise GenerationFailed(f"choose_accent is {ACCENT_LANGUAGE} only, not {bot_id}")
    reason = llm_budget.disabled_reason(LLMPurpose.GENERATION)
    if reason is not None:
        raise GenerationFailed(f"generation disabled: {reason}")
    url = str(settings.ACCENT_DICTIONARY_RANDOM_URL)
    if urlsplit(url).scheme not in ("http", "https"):
        raise GenerationFailed("ACCENT_DICTIONARY_RANDOM_URL must be an http(s) URL")

    headwords = fetch_headwords(url)
    candidates = [word for word in (accent_candidate(h) for h in headwords) if word]
    logger.info(
        "accent candidates: %s fetched of %s, %s with a usable stress",
        len(headwords),
        ACCENT_BATCH_SIZE,
        len(candidates),
    )
    accepted = _first_accepted(candidates, level=level)
    if accepted is None:
        raise GenerationFailed(f"no suitable accent word among {ACCENT_BATCH_SIZE} candidates")

    distractors = accent_distractors(accepted.accented)
    if not distractors:  # unreachable with MIN_VOWELS >= 2; a guard for the bank rules
        raise GenerationFailed("accent word has no distractor")
    return Draft(
        exercise_type=ExerciseType.CHOOSE_ACCENT.value,
        exercise_language=ACCENT_LANGUAGE,
        language_level=level,
        topic=ExerciseTopic.GENERAL.value,
        data={"options": [accepted.accented, *distractors], "meaning": accepted.meaning},
        correct_answer={"answer": accepted.accented},
        grammar_tags={
            "grammar": [ACCENT_TAG],
            "vocabulary": _vocabulary_tags(accepted.definition.grammar_tags.vocabulary),
        },
        persona=None,
        llm_model=llm_models.model_name(LLMPurpose.GENERATION),
    )
