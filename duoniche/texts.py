"""User-visible bot texts: one catalogue, gettext with a stable key as context.

Every message is `pgettext_lazy(<key>, <English source>)`; translations live in `locale/`. Texts are
rendered for a profile's interface language with `render(key, language, **placeholders)`; anything
we have no catalogue for falls back to `DEFAULT_BOT_MESSAGE_LANGUAGE`.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import npgettext, pgettext, pgettext_lazy

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "ru", "uk", "bg", "sr", "tr")

MESSAGES: dict[str, Promise] = {
    "error_getting_new_exercise": pgettext_lazy(
        "error_getting_new_exercise",
        "Sorry, we have no new exercise for you right now. Please try again a little later.",
    ),
    "limit_reached": pgettext_lazy(
        "limit_reached",
        "You have finished this session. The next exercise will be ready in {pause_time}.",
    ),
    "praise_and_next_set_1": pgettext_lazy(
        "praise_and_next_set_1", "Well done! That set is complete, on to the next one."
    ),
    "praise_and_next_set_2": pgettext_lazy(
        "praise_and_next_set_2", "Nice work! Take a breath, a new set is coming up."
    ),
    "praise_and_next_set_3": pgettext_lazy(
        "praise_and_next_set_3",
        "Great progress! Let's keep going with the next set. "
        "Tip: /my_language changes the language of these messages.",
    ),
    "congratulations_and_wait": pgettext_lazy(
        "congratulations_and_wait",
        "Congratulations, you have done {exercise_num} exercises! Time for a short break. "
        "The next session will be ready in {pause_time}.",
    ),
    "congratulations_and_wait_streak": pgettext_lazy(
        "congratulations_and_wait_streak",
        "Congratulations, you have done {exercise_num} exercises, and this is day {streak_days} "
        "of your streak! Time for a short break. The next session will be ready in {pause_time}.",
    ),
    "level_up": pgettext_lazy(
        "level_up",
        "Your answers show you are ready for more: most exercises are now at level {level}.",
    ),
    "level_down": pgettext_lazy(
        "level_down",
        "Let's make the basics solid: for a while, most exercises are at level {level}.",
    ),
    "streak_freeze_used": pgettext_lazy(
        "streak_freeze_used",
        "Welcome back! Streak freezes covered the days you missed ({freezes_used}), "
        "so your streak goes on: day {streak_days}.",
    ),
    "streak_freeze_held": pgettext_lazy(
        "streak_freeze_held",
        "Streak freezes you hold: {freezes}. Each covers one missed day, "
        "so your streak of {streak_days} days can still go on.",
    ),
    "payment_button_text": pgettext_lazy(
        "payment_button_text", "Support the project and continue now"
    ),
    "task_fill_in_the_blank": pgettext_lazy(
        "task_fill_in_the_blank", "Fill in the blanks in the sentence."
    ),
    "task_choose_sentence": pgettext_lazy("task_choose_sentence", "Choose the correct sentence."),
    "task_choose_accent": pgettext_lazy(
        "task_choose_accent", "Choose the word with the correct stress."
    ),
    "task_story_comprehension": pgettext_lazy(
        "task_story_comprehension", "Listen to the story and choose the true statement."
    ),
    "payment_title": pgettext_lazy("payment_title", "Support DuoNiche"),
    "payment_description_unlock": pgettext_lazy(
        "payment_description_unlock",
        "Support the project and your next session opens right away.",
    ),
    "payment_description_donation": pgettext_lazy(
        "payment_description_donation",
        "If DuoNiche helps you learn, please support it: "
        "your help lets us make the exercises better.",
    ),
    "payment_tier_1": pgettext_lazy("payment_tier_1", "A drop of support"),
    "payment_tier_2": pgettext_lazy("payment_tier_2", "A cup of coffee"),
    "payment_tier_3": pgettext_lazy("payment_tier_3", "Keep it going"),
    "payment_tier_4": pgettext_lazy("payment_tier_4", "I believe in the idea"),
    "payment_tier_5": pgettext_lazy("payment_tier_5", "Help the project grow"),
    "payment_tier_6": pgettext_lazy("payment_tier_6", "Legendary support"),
    "payment_thanks_answer": pgettext_lazy("payment_thanks_answer", "Thank you for your support!"),
    "report_donation_button_text": pgettext_lazy(
        "report_donation_button_text", "Support the project"
    ),
    "session_is_ready": pgettext_lazy(
        "session_is_ready", "A new session is ready for you. Shall we practise a little?"
    ),
    "long_break_1d_streak_1": pgettext_lazy(
        "long_break_1d_streak_1",
        "{streak_days} days in a row, impressive! Don't break the streak: a few exercises today?",
    ),
    "long_break_1d_streak_2": pgettext_lazy(
        "long_break_1d_streak_2",
        "Your streak is {streak_days} days long. Keep it alive with a quick session today!",
    ),
    "long_break_1d_streak_3": pgettext_lazy(
        "long_break_1d_streak_3",
        "You have practised {streak_days} days in a row. One more day makes it even better!",
    ),
    "long_break_1d_streak_4": pgettext_lazy(
        "long_break_1d_streak_4",
        "{streak_days} days without a gap! Five minutes today will keep your streak going.",
    ),
    "long_break_1d": pgettext_lazy(
        "long_break_1d",
        "Yesterday at about this time you were practising. Shall we carry on?",
    ),
    "long_break_3d": pgettext_lazy(
        "long_break_3d",
        "It has been three days since your last practice. One short session will bring you back.",
    ),
    "long_break_5d": pgettext_lazy(
        "long_break_5d",
        "The best time to plant a tree was years ago; the second best time is now. "
        "The same goes for a language.",
    ),
    "long_break_8d": pgettext_lazy(
        "long_break_8d",
        "Eight days have passed, but every step still counts. Come back for a few exercises.",
    ),
    "long_break_13d": pgettext_lazy(
        "long_break_13d",
        "Thirteen days away is perfectly fine. Your next step is waiting whenever you are ready.",
    ),
    "long_break_21d": pgettext_lazy(
        "long_break_21d",
        "Time is short and a language is not always the top priority, "
        "but even a few minutes still help.",
    ),
    "long_break_30d": pgettext_lazy(
        "long_break_30d",
        "A month has passed since your last practice. Maybe now is a good moment to return?",
    ),
    "long_break_final": pgettext_lazy(
        "long_break_final",
        "It has been a long time since we practised together. "
        "We won't send more reminders, but your exercises are always here.",
    ),
    "weekly_report": pgettext_lazy(
        "weekly_report",
        "Your week in numbers:\n"
        "Active days: {active_days} of 7\n"
        "Exercises done: {total_attempts}\n"
        "Accuracy: {accuracy}%\n\n"
        "Would you like a detailed breakdown? Press the button and it will be ready "
        "in about 10–15 minutes.",
    ),
    "weekly_report_detailed_button": pgettext_lazy("weekly_report_detailed_button", "✅ ⏳ 📊"),
    "detailed_report_heading": pgettext_lazy(
        "detailed_report_heading", "Your detailed weekly report"
    ),
    "detailed_report_progress": pgettext_lazy(
        "detailed_report_progress",
        "This week you did {total_attempts} exercises with {accuracy}% accuracy "
        "on {active_days} active days.",
    ),
    "detailed_report_focus": pgettext_lazy(
        "detailed_report_focus",
        "You practised most: grammar: {grammar_topics}; vocabulary: {vocabulary_topics}.",
    ),
    "detailed_report_challenges": pgettext_lazy(
        "detailed_report_challenges", "Your most frequent mistakes were in: {error_topics}."
    ),
    "detailed_report_no_challenges": pgettext_lazy(
        "detailed_report_no_challenges", "No recurring mistakes this week. Excellent!"
    ),
    "detailed_report_comparison": pgettext_lazy(
        "detailed_report_comparison",
        "Last week: {prev_total_attempts} exercises with {prev_accuracy}% accuracy.",
    ),
    "detailed_report_review": pgettext_lazy(
        "detailed_report_review",
        "To review: {grammar_topics}. The exercises you missed come back just before "
        "you would forget them.",
    ),
    "detailed_report_recommendation": pgettext_lazy(
        "detailed_report_recommendation", "Suggestion: spend a little extra time on {topic}."
    ),
}

#: Keys that have several variants; `render_variant` picks one uniformly.
VARIANTS: dict[str, tuple[str, ...]] = {
    "praise_and_next_set": (
        "praise_and_next_set_1",
        "praise_and_next_set_2",
        "praise_and_next_set_3",
    ),
    "long_break_1d_streak": (
        "long_break_1d_streak_1",
        "long_break_1d_streak_2",
        "long_break_1d_streak_3",
        "long_break_1d_streak_4",
    ),
}


def resolve_language(language: str | None) -> str:
    """Map an interface language (`pt-BR`, `RU`, None) onto a language we have texts for."""
    primary = (language or "").strip().lower().replace("_", "-").split("-")[0]
    if primary in SUPPORTED_LANGUAGES:
        return primary
    return str(settings.DEFAULT_BOT_MESSAGE_LANGUAGE)


def render(key: str, language: str | None, **placeholders: Any) -> str:
    """The message `key` in `language` (English fallback) with its `{placeholders}` filled."""
    with translation.override(resolve_language(language)):
        text = str(MESSAGES[key])
    return text.format(**placeholders) if placeholders else text


def render_variant(group: str, language: str | None, **placeholders: Any) -> str:
    """One of the variants of `group`, chosen uniformly at random."""
    return render(random.choice(VARIANTS[group]), language, **placeholders)


_MINUTE_US = 60_000_000


def format_pause_time(value: timedelta, *, language: str | None) -> str:
    """A wait as people write it, in `language` (English fallback): "3 hours", "2 hours 59
    minutes", "45 minutes", "less than a minute". Rounded up to the minute, so "ready in" is
    never early; hours are not folded into days ("26 hours"). Plural forms follow each
    catalogue's Plural-Forms (Russian, Ukrainian and Serbian have three)."""
    total_us = value // timedelta(microseconds=1)
    with translation.override(resolve_language(language)):
        if total_us < _MINUTE_US:
            return pgettext("duration_less_than_a_minute", "less than a minute")
        hours, minutes = divmod(-(-total_us // _MINUTE_US), 60)
        hours_text = npgettext("duration_hours", "{count} hour", "{count} hours", hours)
        minutes_text = npgettext("duration_minutes", "{count} minute", "{count} minutes", minutes)
        if not minutes:
            return hours_text.format(count=hours)
        if not hours:
            return minutes_text.format(count=minutes)
        return pgettext("duration_hours_minutes", "{hours} {minutes}").format(
            hours=hours_text.format(count=hours), minutes=minutes_text.format(count=minutes)
        )
