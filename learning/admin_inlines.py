"""The learner page's inlines: the user's profiles and the latest rows the system wrote for them.

Rows the system writes (attempts, payments, notifications) are read-only and say so when there
are none; a profile's editable fields are saved by `learning.admin` through the services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy

from duoniche.texts import format_pause_time
from learning.admin_forms import DASH, BotProfileForm, plain_text, readable_lines
from learning.models import BotProfile, ExerciseAttempt

#: How many of the latest attempts and notifications the pages show (the lists link to the rest).
LATEST = 20


def session_state(profile: BotProfile, now: datetime, *, limit: int | None = None) -> str:
    """The derived session state in words, as the next call would see it."""
    served = profile.exercises_get_in_session
    if profile.session_frozen_until is not None:
        if now < profile.session_frozen_until:
            left = format_pause_time(profile.session_frozen_until - now, language="en")
            return f"frozen for {left} more, after {served} exercises"
        return "freeze over: a new session starts on the next call"
    if profile.session_started_at is None:
        return "no session yet"
    if now - profile.session_started_at > settings.MAX_SESSIONS_LENGTH:
        return "expired: a new session starts on the next call"
    of_limit = f"/{limit}" if limit is not None else ""
    return (
        f"active: {served}{of_limit} served, "
        f"{profile.exercises_get_in_set}/{settings.EXERCISES_IN_SET} in this set"
    )


class LatestFormSet(BaseInlineFormSet):
    """An inline formset of the latest `LATEST` rows only (the inline's ordering decides which)."""

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        if not queryset.query.is_sliced:
            queryset = queryset[:LATEST]
            self._queryset = queryset
        return queryset


class ReadOnlyInline(admin.TabularInline):
    """Rows the system writes: shown on the parent's page, never edited there.

    Without rows the inline says so (`empty_text`) instead of showing an empty table.
    """

    extra = 0
    can_delete = False
    template = "admin/learning/edit_inline/latest_tabular.html"
    empty_text: Any = gettext_lazy("Nothing yet.")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BotProfileInline(admin.StackedInline):
    model = BotProfile
    form = BotProfileForm
    extra = 0
    fields = (
        "bot_id",
        "user_language",
        "language_level",
        "status",
        "reason",
        "settings",
        "session",
        "current_streak_days",
        "last_exercise",
    )
    readonly_fields = ("bot_id", "session", "current_streak_days", "last_exercise")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # profiles are created by the bot's first call

    @admin.display(description=gettext_lazy("session"))
    def session(self, profile: BotProfile) -> str:
        return session_state(profile, timezone.now())

    @admin.display(description=gettext_lazy("last exercise at"))
    def last_exercise(self, profile: BotProfile) -> str:
        return _when(profile.last_exercise_at)


def _when(moment: datetime | None) -> str:
    """A moment in the admin's time zone, or a dash."""
    if moment is None:
        return DASH
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


class AttemptInline(ReadOnlyInline):
    model = ExerciseAttempt
    formset = LatestFormSet
    verbose_name = gettext_lazy("attempt")
    verbose_name_plural = format_lazy(gettext_lazy("latest {} attempts"), LATEST)
    empty_text = gettext_lazy("No attempts yet.")
    fields = ("created_at", "exercise", "answer_text", "verdict_word", "feedback_text", "mistakes")
    ordering = ("-created_at", "-id")
    show_change_link = True

    @admin.display(description=gettext_lazy("verdict"))
    def verdict_word(self, attempt: ExerciseAttempt) -> str:
        return gettext("correct") if attempt.is_correct else gettext("wrong")

    @admin.display(description=gettext_lazy("feedback"))
    def feedback_text(self, attempt: ExerciseAttempt) -> str:
        return plain_text(attempt.feedback)

    @admin.display(description=gettext_lazy("mistakes"))
    def mistakes(self, attempt: ExerciseAttempt) -> SafeString | str:
        return readable_lines(attempt.error_tags)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExerciseAttempt]:
        return super().get_queryset(request).select_related("exercise")
