"""The detailed report's text: written by the `reports` LLM, or from message templates.

`report_write` gives the LLM's report when the purpose is available and answers, else the
deterministic one; `report_text_finish` cleans it to the Telegram-HTML subset and caps its length.
"""

from __future__ import annotations

import html
import logging

from django.conf import settings

from duoniche import llm, llm_budget
from duoniche.enums import LLMPurpose
from duoniche.telegram_html import clean_telegram_html, truncate_visible, visible_length
from duoniche.texts import render
from exercises.prompts import language_name
from learning.prompts.report import (
    FIRST_LENGTH_TARGET,
    RETRY_LENGTH_TARGETS,
    WRITE_DETAILED_REPORT,
    data_tag,
    length_rule,
)
from learning.report_selectors import DetailedReportContext, IncorrectAttempt, percent, top_tags

logger = logging.getLogger(__name__)

MAX_LENGTH_FULL_REPORT = 3996  # visible characters; leaves room under Telegram's 4096
MAX_RETRIES_FULL_REPORT_GENERATION = 2  # length retries of the LLM writer (up to 3 requests)
ELLIPSIS = "…"


# --- the deterministic report -------------------------------------------------------------------


def _escape(text: str) -> str:
    """Data inserted into Telegram HTML: `&`, `<` and `>` escaped."""
    return html.escape(text, quote=False)


def _topics(tags: list[tuple[str, int]]) -> str:
    return ", ".join(_escape(tag) for tag, _ in tags)


def deterministic_detailed_report(context: DetailedReportContext, language: str | None) -> str:
    """The detailed report from message templates (no LLM), valid Telegram HTML.

    Message texts are Telegram-HTML already (catalogue rule); only the data we insert (tags) is
    escaped here. The only tag used is `<b>`, for the heading.
    """
    current = context.current
    parts = [
        f"<b>{render('detailed_report_heading', language)}</b>",
        render(
            "detailed_report_progress",
            language,
            total_attempts=current.total_attempts,
            accuracy=percent(current.accuracy),
            active_days=current.active_days,
        ),
    ]
    grammar = _topics(top_tags(current.grammar_tags, 3))
    vocabulary = _topics(top_tags(current.vocab_tags, 3))
    if grammar or vocabulary:
        parts.append(
            render(
                "detailed_report_focus",
                language,
                grammar_topics=grammar or "—",
                vocabulary_topics=vocabulary or "—",
            )
        )
    errors = top_tags(current.error_tags, 3)
    if errors:
        parts.append(render("detailed_report_challenges", language, error_topics=_topics(errors)))
    else:
        parts.append(render("detailed_report_no_challenges", language))
    review = top_tags(current.missed_grammar_tags, 3)
    if review:
        parts.append(render("detailed_report_review", language, grammar_topics=_topics(review)))
    previous = context.previous
    if previous.total_attempts:
        parts.append(
            render(
                "detailed_report_comparison",
                language,
                prev_total_attempts=previous.total_attempts,
                prev_accuracy=percent(previous.accuracy),
            )
        )
    for tag, _ in errors[:2]:
        parts.append(render("detailed_report_recommendation", language, topic=_escape(tag)))
    return "\n\n".join(parts)


# --- the LLM writer ----------------------------------------------------------------------------


def _tag_line(tags: dict[str, list[str]]) -> str:
    parts = [f"{kind}: {', '.join(values)}" for kind, values in tags.items() if values]
    return "; ".join(parts) or "none"


def _mistakes_text(mistakes: list[IncorrectAttempt]) -> str:
    if not mistakes:
        return "There were no incorrect answers this week."
    blocks = []
    for number, mistake in enumerate(mistakes, 1):
        blocks.append(
            "\n".join(
                (
                    f"Mistake {number} (exercise type: {mistake.exercise_type})",
                    f"Task as the learner answered it: {mistake.exercise_text}",
                    f"Learner's answer: {mistake.user_answer}",
                    f"Correct answer: {mistake.correct_answer}",
                    f"Feedback given: {mistake.feedback}",
                    f"Exercise tags: {_tag_line(mistake.exercise_tags)}",
                    f"Error tags: {_tag_line(mistake.error_tags)}",
                )
            )
        )
    return "\n\n".join(blocks)


def report_writer_values(
    context: DetailedReportContext, language: str | None, *, target: int, retry: bool
) -> dict[str, str]:
    """The prompt's values: the two weeks' summaries, the mistakes and the length instruction."""
    return {
        "target_language": context.bot_id,
        "user_language": language_name(language or settings.DEFAULT_USER_LANGUAGE),
        "length_rule": length_rule(target, retry=retry),
        "previous_week": data_tag(
            "previous_week", context.previous.describe() or "No exercises that week."
        ),
        "this_week": data_tag("this_week", context.current.describe() or "No exercises."),
        "mistakes": data_tag("mistakes", _mistakes_text(context.incorrect_attempts)),
    }


def report_write_llm(context: DetailedReportContext, language: str | None) -> str | None:
    """The report written by the `reports` LLM, cleaned; None when the deterministic one is due.

    Up to 1 + 2 requests (`MAX_RETRIES_FULL_REPORT_GENERATION`): when the cleaned answer is longer
    than 3996 visible characters, ask again with the next shorter target in the prompt. Returns
    the first answer that fits, else the shortest one (the caller truncates it safely). None when
    the purpose is disabled (no LLM, no model, budget exhausted) or the first request fails; a
    failed length retry keeps the answer already received.
    """
    reason = llm_budget.disabled_reason(LLMPurpose.REPORTS)
    if reason is not None:
        logger.info("detailed report %s: LLM writer disabled (%s)", context.report_id, reason)
        return None
    best: str | None = None
    best_length = 0
    targets = (FIRST_LENGTH_TARGET, *RETRY_LENGTH_TARGETS[:MAX_RETRIES_FULL_REPORT_GENERATION])
    for attempt_no, target in enumerate(targets, 1):
        values = report_writer_values(context, language, target=target, retry=attempt_no > 1)
        failure: llm.LLMError | None = None
        try:
            answer = llm.text_call(
                purpose=LLMPurpose.REPORTS,
                prompt=WRITE_DETAILED_REPORT,
                values=values,
                subject=f"report:{context.report_id}",
                attempt_no=attempt_no,
            )
        except llm.LLMError as exc:
            answer, failure = "", exc
        text = clean_telegram_html(answer)
        if not text:
            if best is None:
                logger.warning(
                    "detailed report %s: LLM writer failed (%s); using the template report",
                    context.report_id,
                    type(failure).__name__ if failure else "empty after cleaning",
                )
                return None
            logger.warning(
                "detailed report %s: length retry %d failed; keeping the longer answer",
                context.report_id,
                attempt_no - 1,
            )
            return best
        length = visible_length(text)
        if length <= MAX_LENGTH_FULL_REPORT:
            return text
        if best is None or length < best_length:
            best, best_length = text, length
        logger.info(
            "detailed report %s: answer %d has %d visible characters (limit %d)",
            context.report_id,
            attempt_no,
            length,
            MAX_LENGTH_FULL_REPORT,
        )
    return best


def report_write(context: DetailedReportContext, language: str | None) -> str:
    """Step 3: the LLM's report when it is available and answers, else the template report."""
    written = report_write_llm(context, language)
    if written is not None:
        return written
    return deterministic_detailed_report(context, language)


# --- cleaning and length -----------------------------------------------------------------------


def report_text_finish(text: str) -> str:
    """Steps 3-4 after writing: cleaned to the Telegram-HTML subset, capped at 3996 visible.

    The cap cuts at a word boundary, never inside a tag or an entity, closes open tags and ends
    with `…`. (The LLM writer retries with a shorter target before relying on this cut.)
    """
    return truncate_visible(clean_telegram_html(text), MAX_LENGTH_FULL_REPORT, ellipsis=ELLIPSIS)
